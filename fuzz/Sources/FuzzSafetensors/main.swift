import Format
import Foundation
import FuzzSupport

// One safetensors file through the reader (header length, JSON header, record and offset
// checks), then every tensor it accepts through the conversion to a constant and its values.
exit(runLibFuzzer { bytes in
    let file = try bytes.withUnsafeBytes { try SafetensorsFile.read(bytes: $0, name: "fuzz.safetensors") }
    for tensor in file.tensors {
        guard let constant = try? file.constant(named: tensor.name) else { continue }
        _ = constant.floatValues()
    }
})

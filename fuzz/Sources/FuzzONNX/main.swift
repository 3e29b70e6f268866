import Convert
import Foundation
import FuzzSupport

// One ONNX model through the importer: protobuf decoding, tensor decoding and lowering.
// No directory is given, so external-data references fail with an error, never a read.
exit(runLibFuzzer { bytes in
    _ = try ONNXImporter().importGraph(bytes: Data(bytes), fileName: "fuzz.onnx", directory: nil)
})

import Foundation
@testable import Format

/// Writes safetensors files for the template tests: a fixture checkpoint with tensors
/// removed, added, renamed or re-typed, so each refusal can be tested on an otherwise real
/// checkpoint.
struct SafetensorsWriter {
    struct Tensor {
        var name: String
        var dtype: SafetensorsDType
        var shape: [Int]
        var bytes: [UInt8]
    }

    var tensors: [Tensor] = []

    /// The tensors of `file`, in its order (each viewed type, F32 for the fixtures).
    init(copying file: SafetensorsFile) throws {
        for info in file.tensors {
            let constant = try file.constant(named: info.name)
            tensors.append(Tensor(name: info.name, dtype: info.dtype, shape: info.shape, bytes: Array(constant.bytes)))
        }
    }

    mutating func remove(_ name: String) { tensors.removeAll { $0.name == name } }

    mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        tensors.append(Tensor(name: name, dtype: .float32, shape: shape, bytes: floats.withUnsafeBytes { Array($0) }))
    }

    /// Every F32 tensor stored as F16 (rounded to nearest), as a half-precision checkpoint is.
    mutating func storeAsFloat16() {
        for index in tensors.indices where tensors[index].dtype == .float32 {
            let floats = tensors[index].bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            tensors[index].dtype = .float16
            tensors[index].bytes = floats.map { Float16($0).bitPattern }.withUnsafeBytes { Array($0) }
        }
    }

    func write(to path: String) throws {
        var header: [String: Any] = [:]
        var data: [UInt8] = []
        for tensor in tensors {
            header[tensor.name] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape,
                                   "data_offsets": [data.count, data.count + tensor.bytes.count]]
            data += tensor.bytes
        }
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * $0)) }
        bytes += json + data
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

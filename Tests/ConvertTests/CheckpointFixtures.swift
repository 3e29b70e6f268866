import Foundation
import ImageFiles
import Runtime
@testable import Convert
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

    /// Every F32 tensor stored as BF16 (rounded to nearest even, as torch's
    /// `.to(torch.bfloat16)`), as a bfloat16 checkpoint is.
    mutating func storeAsBFloat16() {
        for index in tensors.indices where tensors[index].dtype == .float32 {
            let floats = tensors[index].bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            tensors[index].dtype = .bfloat16
            tensors[index].bytes = floats.map { Conversion.bfloat16Bits($0) }.withUnsafeBytes { Array($0) }
        }
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

/// A checkpoint fixture under Tests/Fixtures/checkpoints (scripts/fixtures/make_checkpoints.py):
/// its inputs, conversion with template options, and running a converted graph.
struct CheckpointCase {
    let folder: URL

    init(_ name: String) {
        folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/checkpoints/\(name)")
    }

    /// A checkpoint case generated on demand into `folder`.
    init(folder: URL) { self.folder = folder }

    func file(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// input_0.npy, input_1.npy: z and class_vector.
    func inputs() throws -> [HostTensor] { try ["input_0.npy", "input_1.npy"].map { try NumPyFile.read(path: file($0)) } }

    func reference(_ name: String) throws -> HostTensor { try NumPyFile.read(path: file(name)) }

    static func convert(_ path: String, truncation: Double? = nil, architecture: String? = nil,
                        weights: ConversionOptions.WeightType? = nil) throws -> Conversion.Result {
        var options = ConversionOptions()
        options.importing.truncation = truncation
        options.importing.architecture = architecture
        options.weights = weights
        return try Conversion.convert(path, options: options)
    }

    /// The first output of `graph` on the case's inputs.
    func run(_ graph: Graph) throws -> HostTensor {
        try Session(model: try Model(graph: graph), threads: 2).run(try inputs())[0]
    }

    /// The case's tensors with `edit` applied, and its config.json (if any) edited by `config`,
    /// written to `directory`; returns `directory`.
    func edited(into directory: String, config: ((inout [String: Any]) -> Void)? = nil,
                tensors edit: (inout SafetensorsWriter) -> Void = { _ in }) throws -> String {
        var writer = try SafetensorsWriter(copying: SafetensorsFile.read(contentsOf: file("model.safetensors")))
        edit(&writer)
        try writer.write(to: directory + "/model.safetensors")
        if FileManager.default.fileExists(atPath: file("config.json")) {
            var settings = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json")))
                as? [String: Any] ?? [:]
            config?(&settings)
            try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: directory + "/config.json"))
        }
        return directory
    }
}

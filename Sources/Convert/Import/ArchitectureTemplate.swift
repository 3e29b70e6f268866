import Format
import Foundation

/// How one family of published checkpoints becomes a graph: which tensor names it
/// recognises, and a builder that reads them (through `CheckpointWeights`, which checks
/// each shape) and emits Restore's fused ops directly.
public protocol ArchitectureTemplate: Sendable {
    /// The name `convert --arch` takes ("biggan-deep").
    var name: String { get }
    /// One line for `convert --list-archs`: the publisher's layout it reads.
    var summary: String { get }
    /// Whether a checkpoint holding `names` is of this family (used when no `--arch` is given).
    func recognises(_ names: Set<String>) -> Bool
    /// Whether an unread tensor is one only training uses (skipped, listed under `-v`) rather
    /// than one the template does not understand (refused).
    func isTrainingOnly(_ name: String) -> Bool
    /// Builds the graph from the checkpoint's tensors and its `config.json` (nil when there is none).
    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph
}

/// Every template `convert` knows, in the order detection tries them.
public enum ArchitectureTemplates {
    public static let all: [any ArchitectureTemplate] = [BigGANDeepTemplate(), BigGANPyTorchTemplate(), UperNetSwinTemplate(),
                                                           MMSegUperNetSwinTemplate(), TimmSwinTemplate(),
                                                           ViTAdapterUperNetTemplate(), Mask2FormerSwinTemplate()]

    /// The template called `name`.
    static func named(_ name: String, file: String) throws -> any ArchitectureTemplate {
        guard let template = all.first(where: { $0.name == name }) else {
            throw CheckpointError.unknownArchitecture(file: file, name: name, known: all.map(\.name))
        }
        return template
    }

    /// The one template that recognises `names`.
    static func detect(_ names: Set<String>, file: String) throws -> any ArchitectureTemplate {
        let matching = all.filter { $0.recognises(names) }
        guard matching.count == 1, let template = matching.first else {
            throw CheckpointError.undetectedArchitecture(file: file, candidates: matching.map(\.name),
                                                         sample: Array(names.sorted().prefix(5)))
        }
        return template
    }
}

/// A checkpoint's `config.json`, decoded on demand into a template's own type.
public struct TemplateConfig: Sendable {
    /// The file, for messages; nil when the checkpoint has none.
    public let file: String?
    let data: Data?

    /// The config decoded as `type`; a template whose defaults are the publisher's gets them
    /// from an empty object when there is no file.
    func decode<Config: Decodable>(_ type: Config.Type) throws -> Config {
        do {
            return try JSONDecoder().decode(type, from: data ?? Data("{}".utf8))
        } catch let error as DecodingError {
            throw CheckpointError.badConfig(file: file ?? "config.json", detail: error.locatedDescription)
        }
    }
}

/// A template's view of a checkpoint: tensors read by name with their shapes checked,
/// and a record of what was read so that what is left can be refused or skipped by name.
public struct CheckpointWeights {
    public let checkpoint: SafetensorsCheckpoint
    private(set) var read: Set<String> = []

    init(_ checkpoint: SafetensorsCheckpoint) { self.checkpoint = checkpoint }

    /// Whether the checkpoint holds `name`.
    public func has(_ name: String) -> Bool { checkpoint.info(name) != nil }

    /// The shape of tensor `name`; a missing tensor is refused by name.
    public func shape(of name: String) throws -> [Int] {
        guard let info = checkpoint.info(name) else { throw CheckpointError.missingTensor(file: checkpoint.source, tensor: name) }
        return info.shape
    }

    /// Tensor `name` as stored, after checking that its shape is `shape` (`why` says what the
    /// shape follows from, e.g. "config channel_width 128").
    public mutating func constant(_ name: String, shape: [Int], why: String) throws -> ConstantTensor {
        let found = try self.shape(of: name)
        guard found == shape else {
            throw CheckpointError.shapeMismatch(file: checkpoint.file(holding: name), tensor: name, expected: shape,
                                                found: found, why: why)
        }
        read.insert(name)
        return try checkpoint.constant(named: name)
    }

    /// Tensor `name`'s values widened to f32, after the shape check of `constant`.
    public mutating func floats(_ name: String, shape: [Int], why: String) throws -> [Float] {
        let tensor = try constant(name, shape: shape, why: why)
        guard tensor.dtype.isFloatingPoint else {
            throw CheckpointError.shapeMismatch(file: checkpoint.file(holding: name), tensor: name, expected: shape,
                                                found: tensor.shape, why: "a float tensor, found \(tensor.dtype.rawValue)")
        }
        return tensor.floatValues()
    }

    /// The tensors no template step read: those `trainingOnly` accepts are returned (to be
    /// listed under -v); any other is refused, all of them named.
    func unread(trainingOnly: (String) -> Bool) throws -> [String] {
        let left = checkpoint.tensorNames.filter { !read.contains($0) }
        let unexpected = left.filter { !trainingOnly($0) }
        guard unexpected.isEmpty else { throw CheckpointError.unexpectedTensors(file: checkpoint.source, tensors: unexpected) }
        return left
    }

    /// The storage type of most floating-point weights, by element count.
    var predominantFloatType: DType {
        var counts: [SafetensorsDType: Int] = [:]
        for file in checkpoint.files {
            for tensor in file.tensors where [.float32, .float16, .bfloat16].contains(tensor.dtype) {
                counts[tensor.dtype, default: 0] += tensor.elementCount
            }
        }
        switch counts.max(by: { $0.value < $1.value })?.key {
        case .float16?: return .float16
        case .bfloat16?: return .bfloat16
        default: return .float32
        }
    }
}

/// Why a checkpoint could not become a graph, naming the file and the tensor or setting.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missingTensor(file: String, tensor: String)
    /// Tensors no part of the template reads and that are not training-only.
    case unexpectedTensors(file: String, tensors: [String])
    /// A tensor whose shape disagrees with the config (or with the tensors it must fit).
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int], why: String)
    case badConfig(file: String, detail: String)
    case unknownArchitecture(file: String, name: String, known: [String])
    /// No template (or more than one) recognises the names; `sample` shows a few of them.
    case undetectedArchitecture(file: String, candidates: [String], sample: [String])
    /// A value derived from the weights that the graph cannot use (a spectral norm of 0).
    case badWeights(file: String, tensor: String, detail: String)
    /// An option the template does not take, or a value out of its range.
    case badOption(file: String, option: String, detail: String)

    public var description: String {
        switch self {
        case .missingTensor(let file, let tensor):
            "\(file): the checkpoint has no tensor '\(tensor)', which the architecture needs"
        case .unexpectedTensors(let file, let tensors):
            "\(file): \(tensors.count) tensor(s) the architecture does not use: "
                + tensors.prefix(10).map { "'\($0)'" }.joined(separator: ", ") + (tensors.count > 10 ? ", …" : "")
                + " (a different variant or config? pass --arch to choose the template)"
        case .shapeMismatch(let file, let tensor, let expected, let found, let why):
            "\(file): tensor '\(tensor)' has shape \(found), expected \(expected) (\(why))"
        case .badConfig(let file, let detail):
            "\(file): bad config: \(detail)"
        case .unknownArchitecture(let file, let name, let known):
            "\(file): no architecture '\(name)'; known: \(known.joined(separator: ", ")) (convert --list-archs)"
        case .undetectedArchitecture(let file, let candidates, let sample):
            candidates.isEmpty
                ? "\(file): no architecture template recognises these tensor names (\(sample.joined(separator: ", ")), …); "
                    + "see convert --list-archs"
                : "\(file): several templates recognise these tensor names (\(candidates.joined(separator: ", "))); pass --arch"
        case .badWeights(let file, let tensor, let detail):
            "\(file): tensor '\(tensor)': \(detail)"
        case .badOption(let file, let option, let detail):
            "\(file): \(option): \(detail)"
        }
    }
}

import Format
import Foundation

/// What `convert` tells an importer besides the file: choices only a checkpoint needs,
/// since an ONNX file carries its whole graph.
public struct ImportOptions: Sendable, Equatable {
    /// The architecture template to use (`convert --arch`), instead of detecting it from names.
    public var architecture: String?
    /// BigGAN's truncation (`convert --truncation`), 0 < t ≤ 1: which row of its batch norms'
    /// statistics tables the model uses.
    public var truncation: Double?

    public init() {}

    /// The options set, as `convert` spells them, for messages.
    var flagsSet: [String] {
        (architecture == nil ? [] : ["--arch"]) + (truncation == nil ? [] : ["--truncation"])
    }
}

/// A model an importer read, with what it noticed on the way.
public struct ImportedModel: Sendable {
    public var graph: Graph
    /// The checkpoint's own storage type for weights when it is not f32 (f16, bf16):
    /// `convert` keeps it unless `--weights` says otherwise.
    public var storedWeightType: DType?
    /// Lines for `convert -v`: the template chosen, tensors skipped as training-only.
    public var notes: [String]

    public init(graph: Graph, storedWeightType: DType? = nil, notes: [String] = []) {
        self.graph = graph
        self.storedWeightType = storedWeightType
        self.notes = notes
    }
}

/// Reads one kind of model file into a `Graph` of Restore's op set. `convert` asks each
/// of `Importers.all` in turn whether it can read a file; adding a format is adding a
/// conformer to that list.
public protocol Importer: Sendable {
    /// The format's name, for messages ("ONNX").
    var formatName: String { get }
    /// The file extensions this importer reads, lowercased and without the dot.
    var fileExtensions: [String] { get }
    /// Whether this importer reads the file at `url`; by default, whether its extension
    /// is one of `fileExtensions`.
    func canImport(_ url: URL) -> Bool
    /// Imports the file at `url`. Errors name the file and what in it is wrong.
    func importGraph(at url: URL) throws -> Graph
    /// Imports the file at `url` with `options`; by default `importGraph(at:)`, refusing
    /// options the format has no use for.
    func importModel(at url: URL, options: ImportOptions) throws -> ImportedModel
}

extension Importer {
    public func canImport(_ url: URL) -> Bool {
        fileExtensions.contains(url.pathExtension.lowercased())
    }

    public func importModel(at url: URL, options: ImportOptions) throws -> ImportedModel {
        if let flag = options.flagsSet.first { throw ConversionError.optionNeedsCheckpoint(flag: flag, format: formatName) }
        return ImportedModel(graph: try importGraph(at: url))
    }
}

/// The importers `convert` chooses from.
public enum Importers {
    /// In the order they are asked; the first that can read a file imports it.
    public static let all: [any Importer] = [ONNXImporter(), SafetensorsImporter()]

    /// The importer for the file at `url`; `ConversionError.unknownFormat` when none reads it.
    public static func importer(for url: URL) throws -> any Importer {
        guard let importer = all.first(where: { $0.canImport(url) }) else { throw ConversionError.unknownFormat(url.relativePath) }
        return importer
    }

    /// The formats read, as a message lists them ("ONNX (.onnx)").
    static var formatList: String {
        all.map { "\($0.formatName) (\($0.fileExtensions.map { "." + $0 }.joined(separator: ", ")))" }
            .joined(separator: ", ")
    }
}

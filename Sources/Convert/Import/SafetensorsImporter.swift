import Format
import Foundation

/// Reads a safetensors checkpoint as published — a folder with `config.json` and
/// `model.safetensors` (or a sharded `model.safetensors.index.json`), or a `.safetensors`
/// file with its `config.json` beside it, if any — through the architecture template its
/// tensor names (or `--arch`) select.
public struct SafetensorsImporter: Importer {
    public init() {}

    public var formatName: String { "safetensors" }
    public var fileExtensions: [String] { ["safetensors"] }

    public func canImport(_ url: URL) -> Bool {
        if url.pathExtension.lowercased() == "safetensors" || url.lastPathComponent == SafetensorsCheckpoint.indexFileName {
            return true
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return false
        }
        return [SafetensorsCheckpoint.singleFileName, SafetensorsCheckpoint.indexFileName].contains {
            FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path)
        }
    }

    public func importGraph(at url: URL) throws -> Graph { try importModel(at: url, options: ImportOptions()).graph }

    public func importModel(at url: URL, options: ImportOptions) throws -> ImportedModel {
        let checkpoint = try SafetensorsCheckpoint.open(url.path)
        let names = Set(checkpoint.tensorNames)
        let template = try options.architecture.map { try ArchitectureTemplates.named($0, file: checkpoint.source) }
            ?? ArchitectureTemplates.detect(names, file: checkpoint.source)
        var weights = CheckpointWeights(checkpoint)
        var graph = try template.build(&weights, config: Self.config(beside: url), options: options)
        let skipped = try weights.unread(trainingOnly: template.isTrainingOnly)
        graph.metadata[Self.architectureKey] = template.name
        var notes = ["architecture template \(template.name)" + (options.architecture == nil ? " (detected from names)" : "")]
        notes += skipped.map { "skipped training-only tensor \($0)" }
        let stored = weights.predominantFloatType
        return ImportedModel(graph: graph, storedWeightType: stored == .float32 ? nil : stored, notes: notes)
    }

    /// Metadata key recording the template a model was built by.
    public static let architectureKey = "convert.architecture"

    /// The `config.json` of the checkpoint at `url`: in the folder, or beside the file.
    static func config(beside url: URL) throws -> TemplateConfig {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let folder = isDirectory.boolValue ? url : url.deletingLastPathComponent()
        let file = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: file.path) else { return TemplateConfig(file: nil, data: nil) }
        do {
            return TemplateConfig(file: file.path, data: try Data(contentsOf: file))
        } catch {
            throw CheckpointError.badConfig(file: file.path, detail: error.localizedDescription)
        }
    }
}

import Format
import Foundation

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
}

extension Importer {
    public func canImport(_ url: URL) -> Bool {
        fileExtensions.contains(url.pathExtension.lowercased())
    }
}

/// The importers `convert` chooses from.
public enum Importers {
    /// In the order they are asked; the first that can read a file imports it.
    public static let all: [any Importer] = [ONNXImporter()]

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

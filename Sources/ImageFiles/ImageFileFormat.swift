import Runtime

/// The image file formats read and written, chosen by a path's extension (case-insensitive):
/// `.png`; `.jpg`, `.jpeg`. Reading checks the bytes too: a JPEG named `.png` is refused
/// by the PNG reader with what it found, never decoded as something else quietly.
public enum ImageFileFormat: String, Sendable, CaseIterable {
    case png, jpeg

    /// Every extension, for messages: ".png, .jpg or .jpeg".
    public static let extensionList = ".png, .jpg or .jpeg"

    /// The extension files of this format are written with.
    public var fileExtension: String {
        switch self {
        case .png: "png"
        case .jpeg: "jpg"
        }
    }

    /// The format a path's extension names, or nil.
    public init?(path: String) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        switch name[name.index(after: dot)...].lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }
}

extension PixelImage {
    /// Reads the image file at `path` in the format its extension names.
    public static func read(path: String) throws -> PixelImage {
        switch ImageFileFormat(path: path) {
        case .png: try readPNG(path: path)
        case .jpeg: try readJPEG(path: path)
        case nil: throw ImageIOError.unknownFormat(file: path)
        }
    }

    /// Writes the image to `path` in the format its extension names (all or nothing).
    public func write(path: String) throws {
        switch ImageFileFormat(path: path) {
        case .png: try writePNG(path: path)
        case .jpeg: try writeJPEG(path: path)
        case nil: throw ImageIOError.unknownFormat(file: path)
        }
    }
}

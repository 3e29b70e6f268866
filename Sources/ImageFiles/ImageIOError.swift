/// Why a PNG, JPEG or WebP could not be read or written; every case names the file (or
/// "<memory>" for bytes that came from no file).
public enum ImageIOError: Error, Equatable, CustomStringConvertible {
    /// The bytes do not start with the PNG signature; `found` is what they look like.
    case notPNG(file: String, found: FileKind)
    /// The bytes do not start with a JPEG start-of-image marker.
    case notJPEG(file: String, found: FileKind)
    /// libjpeg refused the content (a bad marker, corrupt or missing entropy-coded data, …).
    case corruptJPEG(file: String, detail: String)
    /// A JPEG this code does not read (CMYK), or an image JPEG cannot hold (alpha, 16 bits).
    case unsupportedJPEG(file: String, detail: String)
    /// The bytes do not start with a RIFF header of form WEBP.
    case notWebP(file: String, found: FileKind)
    /// libwebp refused the content (a malformed header, cut short or corrupt image data).
    case corruptWebP(file: String, detail: String)
    /// A WebP this code does not read (an animation), or an image WebP cannot hold (16 bits).
    case unsupportedWebP(file: String, detail: String)
    /// The path's extension names no image format this code reads or writes.
    case unknownFormat(file: String)
    /// The data ends before the image does (or is too short to hold the declared size).
    case truncated(file: String, detail: String)
    /// A critical chunk's CRC does not match its contents.
    case crcMismatch(file: String, detail: String)
    /// libpng rejected the content for another reason (bad chunk, bad zlib stream, …).
    case corrupt(file: String, detail: String)
    /// The declared dimensions exceed the decoder's limits (see `PixelImage.maximumSide`).
    case tooLarge(file: String, detail: String)
    /// A layout this code does not handle.
    case unsupported(file: String, detail: String)
    case outOfMemory(file: String)
    /// Opening, reading, writing or renaming failed.
    case fileSystem(file: String, detail: String)

    public var description: String {
        switch self {
        case .notPNG(let file, let found): "\(file): not a PNG file: expected the PNG signature, found \(found)"
        case .notJPEG(let file, let found): "\(file): not a JPEG file: expected the FF D8 FF start marker, found \(found)"
        case .corruptJPEG(let file, let detail): "\(file): corrupt JPEG (\(detail))"
        case .unsupportedJPEG(let file, let detail): "\(file): unsupported JPEG (\(detail))"
        case .notWebP(let file, let found): "\(file): not a WebP file: expected a RIFF header of form WEBP, found \(found)"
        case .corruptWebP(let file, let detail): "\(file): corrupt WebP (\(detail))"
        case .unsupportedWebP(let file, let detail): "\(file): unsupported WebP (\(detail))"
        case .unknownFormat(let file):
            "\(file): unknown image format: expected a name ending in \(ImageFileFormat.extensionList)"
        case .truncated(let file, let detail): "\(file): truncated PNG (\(detail))"
        case .crcMismatch(let file, let detail): "\(file): PNG CRC error (\(detail))"
        case .corrupt(let file, let detail): "\(file): corrupt PNG (\(detail))"
        case .tooLarge(let file, let detail): "\(file): image too large (\(detail))"
        case .unsupported(let file, let detail): "\(file): unsupported PNG (\(detail))"
        case .outOfMemory(let file): "\(file): out of memory"
        case .fileSystem(let file, let detail): "\(file): \(detail)"
        }
    }
}

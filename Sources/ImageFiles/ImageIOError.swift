/// Why a PNG could not be read or written; every case names the file (or "<memory>" for
/// bytes that came from no file).
public enum ImageIOError: Error, Equatable, CustomStringConvertible {
    /// The bytes do not start with the PNG signature.
    case notPNG(file: String)
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
        case .notPNG(let file): "\(file): not a PNG file (bad signature)"
        case .truncated(let file, let detail): "\(file): truncated PNG (\(detail))"
        case .crcMismatch(let file, let detail): "\(file): PNG CRC error (\(detail))"
        case .corrupt(let file, let detail): "\(file): corrupt PNG (\(detail))"
        case .tooLarge(let file, let detail): "\(file): PNG too large (\(detail))"
        case .unsupported(let file, let detail): "\(file): unsupported PNG (\(detail))"
        case .outOfMemory(let file): "\(file): out of memory"
        case .fileSystem(let file, let detail): "\(file): \(detail)"
        }
    }
}

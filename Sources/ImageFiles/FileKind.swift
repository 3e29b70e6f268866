/// What a file's first bytes say it is, so a reader handed the wrong kind of file can say
/// what it found ("not a .npy file … it looks like a JPEG image") instead of only what it
/// expected. Only magic numbers are checked; `.unknown` is everything else.
public enum FileKind: Sendable, Equatable, CustomStringConvertible {
    case empty, png, jpeg, webp, gif, bmp, tiff, numPy, rgraph, unknown

    public init(sniffing bytes: some Collection<UInt8>) {
        let head = Array(bytes.prefix(12))
        func starts(_ magic: [UInt8]) -> Bool { head.starts(with: magic) }
        if head.isEmpty {
            self = .empty
        } else if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if starts([0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if head.count == 12, starts(Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) {
            self = .webp
        } else if starts(Array("GIF8".utf8)) {
            self = .gif
        } else if starts(Array("BM".utf8)) {
            self = .bmp
        } else if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) {
            self = .tiff
        } else if starts(NumPyFile.magic) {
            self = .numPy
        } else if starts(Array("RGRAPH".utf8)) {
            self = .rgraph
        } else {
            self = .unknown
        }
    }

    public var description: String {
        switch self {
        case .empty: "an empty file"
        case .png: "a PNG image"
        case .jpeg: "a JPEG image"
        case .webp: "a WebP image"
        case .gif: "a GIF image"
        case .bmp: "a BMP image"
        case .tiff: "a TIFF image"
        case .numPy: "a .npy array"
        case .rgraph: "an .rgraph model"
        case .unknown: "none of PNG, JPEG or .npy"
        }
    }
}

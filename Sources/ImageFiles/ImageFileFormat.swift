import Runtime

/// The image file formats read and written, chosen by a path's extension (case-insensitive):
/// `.png`; `.jpg`, `.jpeg`. Reading checks the bytes too: a JPEG named `.png` is refused
/// by the PNG reader with what it found, never decoded as something else quietly.
public enum ImageFileFormat: String, Sendable, CaseIterable {
    case png, jpeg, webp

    /// Every extension, for messages.
    public static let extensionList = ".png, .jpg, .jpeg or .webp"

    /// The format's name in messages.
    public var name: String {
        switch self {
        case .png: "PNG"
        case .jpeg: "JPEG"
        case .webp: "WebP"
        }
    }

    /// The extension files of this format are written with.
    public var fileExtension: String {
        switch self {
        case .png: "png"
        case .jpeg: "jpg"
        case .webp: "webp"
        }
    }

    /// The format a path's extension names, or nil.
    public init?(path: String) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        switch name[name.index(after: dot)...].lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        case "webp": self = .webp
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
        case .webp: try readWebP(path: path)
        case nil: throw ImageIOError.unknownFormat(file: path)
        }
    }

    /// Writes the image to `path` in the format its extension names (all or nothing).
    public func write(path: String) throws {
        switch ImageFileFormat(path: path) {
        case .png: try writePNG(path: path)
        case .jpeg: try writeJPEG(path: path)
        case .webp: try writeWebP(path: path)
        case nil: throw ImageIOError.unknownFormat(file: path)
        }
    }

    /// Width × height as a file's first bytes declare them, without decoding it, or 0 when
    /// `header` does not hold them (the file fails later, when it is decoded).
    public static func pixelCount(header bytes: [UInt8], format: ImageFileFormat) -> Int {
        let number = { (at: Int, size: Int) in bytes[at..<at + size].reduce(0) { $0 << 8 | Int($1) } }
        switch format {
        case .png:
            // IHDR is the first chunk, right after the signature.
            return bytes.count >= 24 ? number(16, 4) * number(20, 4) : 0
        case .jpeg:
            // Segments from after SOI (FFD8) to the first start of frame: FFC0…FFCF except the
            // Huffman (C4), arithmetic-coding (CC) and reserved (C8) markers; its height and
            // width follow the segment length and precision.
            var at = 2
            while at + 9 <= bytes.count, bytes[at] == 0xFF {
                let marker = bytes[at + 1]
                if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                    return number(at + 5, 2) * number(at + 7, 2)
                }
                at += 2 + number(at + 2, 2)
            }
            return 0
        case .webp:
            return webpPixelCount(header: bytes)
        }
    }

    /// What a file of `format` cannot hold of this image (alpha, 16 bits), or nil when it fits.
    public func loss(in format: ImageFileFormat) -> String? {
        switch format {
        case .png: nil
        case .jpeg: jpegLoss
        case .webp: webpLoss
        }
    }

    /// A copy a file of `format` can hold (see `loss(in:)`): itself when nothing is lost.
    public func compatible(with format: ImageFileFormat) -> PixelImage {
        switch format {
        case .png: self
        case .jpeg: jpegCompatible()
        case .webp: webpCompatible()
        }
    }

    /// A copy with 8-bit samples, and without its alpha channel unless `keepingAlpha`.
    func eightBit(keepingAlpha: Bool) -> PixelImage {
        let channels = colorType.channels
        let kept = (colorType.isGray ? 1 : 3) + (keepingAlpha && colorType.hasAlpha ? 1 : 0)
        let values = samples
        var result = [Float](repeating: 0, count: width * height * kept)
        for pixel in 0..<(width * height) {
            for c in 0..<kept { result[pixel * kept + c] = values[pixel * channels + c] }
        }
        return PixelImage(width: width, height: height, bitDepth: 8, colorType: ColorType(channels: kept)!, samples: result)
    }
}

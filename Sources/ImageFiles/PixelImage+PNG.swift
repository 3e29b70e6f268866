import CImageIO
import Runtime

/// PNG decoding and encoding through libpng (wrapped in the CImageIO C target so that
/// libpng's longjmp errors never cross into Swift).
///
/// What is read: 8- and 16-bit gray, gray+alpha, RGB and RGBA; palettes (expanded to
/// 8-bit RGB, or RGBA when a tRNS chunk gives transparency); 1/2/4-bit gray (expanded to
/// 8-bit); any tRNS becomes an alpha channel; Adam7-interlaced images. Gamma, colour
/// profiles and other ancillary chunks are ignored: samples are passed through as stored.
///
/// What is written: the image's own bit depth and colour type, not interlaced. A palette
/// image is therefore written as 8-bit RGB (RGBA if it had transparency): the pixels are
/// identical, only the file is larger, and no quantisation step is needed.
///
/// Limits against hostile files: width and height at most `maximumSide` (through
/// png_set_user_limits), width × height at most `maximumPixels`, and any ancillary chunk
/// at most 16 MiB in memory; and the bytes after the header must be able to hold the
/// declared image (deflate expands at most 1032-fold), else it is reported truncated.
/// All are checked before the pixel buffer is allocated.
extension PixelImage {
    /// The largest width or height decoded (65536).
    public static let maximumSide = Int(CIMAGEIO_MAX_SIDE)
    /// The largest width × height decoded (2^27, e.g. 11585²; 2 GiB as 4-channel floats).
    public static let maximumPixels = Int(CIMAGEIO_MAX_PIXELS)

    /// Reads the PNG file at `path`.
    public static func readPNG(path: String) throws -> PixelImage {
        let bytes = try FileBytes.readAll(path) { ImageIOError.fileSystem(file: path, detail: $0) }
        return try decodePNG(bytes, source: path)
    }

    /// Decodes a PNG held in memory; `source` names it in errors. The header is read first
    /// so that libpng writes the pixels straight into the image's own storage.
    public static func decodePNG(_ bytes: [UInt8], source: String = "<memory>") throws -> PixelImage {
        var message = [CChar](repeating: 0, count: 256)
        var header = cimageio_image()
        let headerStatus = bytes.withUnsafeBufferPointer { data in
            cimageio_png_decode(data.baseAddress, data.count, &header, nil, 0, &message, message.count)
        }
        guard headerStatus == CIMAGEIO_OK else {
            throw error(for: headerStatus, message: message, file: source, bytes: bytes)
        }
        guard let colorType = ColorType(channels: Int(header.channels)), header.bit_depth == 8 || header.bit_depth == 16 else {
            throw ImageIOError.unsupported(file: source, detail: "\(header.channels) channels at \(header.bit_depth) bits")
        }
        let width = Int(header.width), height = Int(header.height), bitDepth = Int(header.bit_depth)
        let byteCount = width * height * colorType.channels * bitDepth / 8
        var status = CIMAGEIO_OK
        let samples = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
            var decoded = cimageio_image()
            status = bytes.withUnsafeBufferPointer { data in
                cimageio_png_decode(data.baseAddress, data.count, &decoded, buffer.baseAddress, byteCount, &message, message.count)
            }
            initialized = status == CIMAGEIO_OK ? byteCount : 0
        }
        guard status == CIMAGEIO_OK else { throw error(for: status, message: message, file: source, bytes: bytes) }
        return PixelImage(width: width, height: height, bitDepth: bitDepth, colorType: colorType, bytes: samples)
    }

    /// Encodes the image as PNG bytes at its own bit depth and colour type.
    public func encodePNG(name: String = "<memory>") throws -> [UInt8] {
        try withEncodedPNG(name: name) { Array($0) }
    }

    /// Writes the image as a PNG file at `path`, through a temporary file renamed into
    /// place only when complete.
    public func writePNG(path: String) throws {
        try withEncodedPNG(name: path) { encoded in
            try FileBytes.writeAtomically(encoded, to: path) { ImageIOError.fileSystem(file: path, detail: $0) }
        }
    }

    /// Calls `body` with the image encoded as PNG in libpng's buffer (not copied: a large
    /// image's file is tens of megabytes).
    private func withEncodedPNG<Result>(name: String, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        var message = [CChar](repeating: 0, count: 256)
        var encoded: UnsafeMutablePointer<UInt8>?
        var encodedSize = 0
        let status = bytes.withUnsafeBytes { samples in
            var image = cimageio_image(width: UInt32(width), height: UInt32(height), bit_depth: Int32(bitDepth),
                                       channels: Int32(colorType.channels),
                                       samples: UnsafeMutableRawPointer(mutating: samples.baseAddress))
            return cimageio_png_encode(&image, &encoded, &encodedSize, &message, message.count)
        }
        defer { cimageio_free(encoded) }
        guard status == CIMAGEIO_OK, let encoded else {
            throw Self.error(for: status, message: message, file: name, bytes: [])
        }
        return try body(UnsafeRawBufferPointer(start: encoded, count: encodedSize))
    }

    private static func error(for status: cimageio_status, message: [CChar], file: String, bytes: [UInt8]) -> ImageIOError {
        let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch status {
        case CIMAGEIO_NOT_PNG: return .notPNG(file: file, found: FileKind(sniffing: bytes))
        case CIMAGEIO_TRUNCATED: return .truncated(file: file, detail: detail)
        case CIMAGEIO_CRC_ERROR: return .crcMismatch(file: file, detail: detail)
        case CIMAGEIO_TOO_LARGE: return .tooLarge(file: file, detail: detail)
        case CIMAGEIO_UNSUPPORTED: return .unsupported(file: file, detail: detail)
        case CIMAGEIO_OUT_OF_MEMORY: return .outOfMemory(file: file)
        default: return .corrupt(file: file, detail: detail.isEmpty ? "libpng status \(status.rawValue)" : detail)
        }
    }
}

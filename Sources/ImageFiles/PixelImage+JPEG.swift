import CImageIO
import Runtime

/// JPEG decoding and encoding through libjpeg-turbo (in CImageIO, under setjmp like PNG).
///
/// Read: baseline and progressive, gray (1 channel) or YCbCr/RGB (3 channels, converted
/// to RGB), 8 bits. CMYK is refused. Any warning libjpeg raises — corrupt entropy data, a
/// premature end — is an error: libjpeg would otherwise fill the rest with grey and the
/// damage would pass unnoticed into the restored image. Same size limits as PNG.
///
/// Written: 8-bit gray or RGB at `jpegQuality`, without chroma subsampling. JPEG has no
/// alpha and no 16 bits: such images are refused (`jpegCompatible()` makes a copy that fits).
extension PixelImage {
    /// The quality JPEGs are written at: 95 keeps restored detail at about a third of the
    /// PNG's size for photos.
    public static let jpegQuality = 95

    /// Reads the JPEG file at `path`.
    public static func readJPEG(path: String) throws -> PixelImage {
        let bytes = try FileBytes.readAll(path) { ImageIOError.fileSystem(file: path, detail: $0) }
        return try decodeJPEG(bytes, source: path)
    }

    /// Decodes a JPEG held in memory; `source` names it in errors.
    public static func decodeJPEG(_ bytes: [UInt8], source: String = "<memory>") throws -> PixelImage {
        var message = [CChar](repeating: 0, count: 256)
        var header = cimageio_image()
        let headerStatus = bytes.withUnsafeBufferPointer { data in
            cimageio_jpeg_decode(data.baseAddress, data.count, &header, nil, 0, &message, message.count)
        }
        guard headerStatus == CIMAGEIO_OK else { throw jpegError(headerStatus, message, source, bytes) }
        guard let colorType = ColorType(channels: Int(header.channels)), header.bit_depth == 8 else {
            throw ImageIOError.unsupportedJPEG(file: source, detail: "\(header.channels) channels at \(header.bit_depth) bits")
        }
        let width = Int(header.width), height = Int(header.height)
        let byteCount = width * height * colorType.channels
        var status = CIMAGEIO_OK
        let samples = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
            var decoded = cimageio_image()
            status = bytes.withUnsafeBufferPointer { data in
                cimageio_jpeg_decode(data.baseAddress, data.count, &decoded, buffer.baseAddress, byteCount, &message, message.count)
            }
            initialized = status == CIMAGEIO_OK ? byteCount : 0
        }
        guard status == CIMAGEIO_OK else { throw jpegError(status, message, source, bytes) }
        return PixelImage(width: width, height: height, bitDepth: 8, colorType: colorType, bytes: samples)
    }

    /// Encodes the image as JPEG bytes; it must be 8-bit gray or RGB.
    public func encodeJPEG(name: String = "<memory>", quality: Int = jpegQuality) throws -> [UInt8] {
        try withEncodedJPEG(name: name, quality: quality) { Array($0) }
    }

    /// Writes the image as a JPEG file at `path`, through a temporary file renamed into place.
    public func writeJPEG(path: String, quality: Int = jpegQuality) throws {
        try withEncodedJPEG(name: path, quality: quality) { encoded in
            try FileBytes.writeAtomically(encoded, to: path) { ImageIOError.fileSystem(file: path, detail: $0) }
        }
    }

    /// What JPEG cannot hold of this image, or nil when it fits: alpha, or 16 bits.
    public var jpegLoss: String? {
        switch (colorType.hasAlpha, bitDepth) {
        case (false, 8): nil
        case (true, 8): "its alpha channel"
        case (false, _): "\(bitDepth)-bit precision (JPEG holds 8 bits)"
        case (true, _): "its alpha channel and \(bitDepth)-bit precision (JPEG holds 8 bits)"
        }
    }

    /// A copy JPEG can hold: alpha dropped, samples rounded to 8 bits.
    public func jpegCompatible() -> PixelImage {
        jpegLoss == nil ? self : eightBit(keepingAlpha: false)
    }

    private func withEncodedJPEG<Result>(name: String, quality: Int,
                                         _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        if let jpegLoss {
            throw ImageIOError.unsupportedJPEG(file: name, detail: "JPEG cannot hold \(jpegLoss); write a PNG to keep it")
        }
        var message = [CChar](repeating: 0, count: 256)
        var encoded: UnsafeMutablePointer<UInt8>?
        var encodedSize = 0
        let status = bytes.withUnsafeBytes { samples in
            var image = cimageio_image(width: UInt32(width), height: UInt32(height), bit_depth: Int32(bitDepth),
                                       channels: Int32(colorType.channels),
                                       samples: UnsafeMutableRawPointer(mutating: samples.baseAddress))
            return cimageio_jpeg_encode(&image, Int32(clamping: quality), &encoded, &encodedSize, &message, message.count)
        }
        defer { cimageio_free(encoded) }
        guard status == CIMAGEIO_OK, let encoded else { throw Self.jpegError(status, message, name, []) }
        return try body(UnsafeRawBufferPointer(start: encoded, count: encodedSize))
    }

    private static func jpegError(_ status: cimageio_status, _ message: [CChar], _ file: String, _ bytes: [UInt8]) -> ImageIOError {
        let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch status {
        case CIMAGEIO_NOT_JPEG: return .notJPEG(file: file, found: FileKind(sniffing: bytes))
        case CIMAGEIO_TOO_LARGE: return .tooLarge(file: file, detail: detail)
        case CIMAGEIO_UNSUPPORTED: return .unsupportedJPEG(file: file, detail: detail)
        case CIMAGEIO_OUT_OF_MEMORY: return .outOfMemory(file: file)
        default: return .corruptJPEG(file: file, detail: detail.isEmpty ? "libjpeg status \(status.rawValue)" : detail)
        }
    }
}

import CWebP
import Runtime

/// WebP decoding and encoding through libwebp (Debian's libwebp-dev), called directly:
/// libwebp reports errors by return value, never by longjmp, so it needs no C wrapper.
///
/// Read: still images, lossy or lossless, with or without alpha, as 8-bit RGB or RGBA
/// (WebP has no gray and no 16 bits). Animated files are refused. A file cut short or
/// corrupt anywhere is an error: the simple decoding API decodes the whole bitstream or
/// nothing. Same size limits as PNG and JPEG, checked on the header before any pixel memory.
///
/// Written: lossless, so the restored pixels are stored exactly (lossy WebP always halves
/// the chroma resolution, which would undo restored colour detail), at libwebp's default
/// effort. Gray is stored as R = G = B (and read back as RGB); 16-bit images are refused
/// (`compatible(with: .webp)` makes an 8-bit copy).
extension PixelImage {
    /// Reads the WebP file at `path`.
    public static func readWebP(path: String) throws -> PixelImage {
        let bytes = try FileBytes.readAll(path) { ImageIOError.fileSystem(file: path, detail: $0) }
        return try decodeWebP(bytes, source: path)
    }

    /// Decodes a WebP image held in memory; `source` names it in errors.
    public static func decodeWebP(_ bytes: [UInt8], source: String = "<memory>") throws -> PixelImage {
        guard FileKind(sniffing: bytes) == .webp else { throw ImageIOError.notWebP(file: source, found: FileKind(sniffing: bytes)) }
        var features = WebPBitstreamFeatures()
        let status = bytes.withUnsafeBufferPointer { WebPGetFeatures($0.baseAddress, $0.count, &features) }
        guard status == VP8_STATUS_OK else { throw ImageIOError.corruptWebP(file: source, detail: describe(status)) }
        guard features.has_animation == 0 else {
            throw ImageIOError.unsupportedWebP(file: source, detail: "an animation; only still images are read")
        }
        let width = Int(features.width), height = Int(features.height)
        guard width > 0, height > 0, width <= maximumSide, height <= maximumSide, width * height <= maximumPixels else {
            throw ImageIOError.tooLarge(file: source, detail: "\(width)×\(height) is beyond \(maximumPixels) pixels")
        }
        let colorType: ColorType = features.has_alpha != 0 ? .rgba : .rgb
        let rowBytes = width * colorType.channels, byteCount = rowBytes * height
        var decoded = false
        let samples = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, initialized in
            let result = bytes.withUnsafeBufferPointer { data in
                colorType == .rgba
                    ? WebPDecodeRGBAInto(data.baseAddress, data.count, buffer.baseAddress, byteCount, Int32(rowBytes))
                    : WebPDecodeRGBInto(data.baseAddress, data.count, buffer.baseAddress, byteCount, Int32(rowBytes))
            }
            decoded = result != nil
            initialized = decoded ? byteCount : 0
        }
        guard decoded else {
            throw ImageIOError.corruptWebP(file: source, detail: "the \(width)×\(height) image data is cut short or corrupt")
        }
        return PixelImage(width: width, height: height, bitDepth: 8, colorType: colorType, bytes: samples)
    }

    /// Width × height from a WebP file's first bytes (the RIFF and VP8/VP8L/VP8X headers), or 0.
    static func webpPixelCount(header bytes: [UInt8]) -> Int {
        var width: Int32 = 0, height: Int32 = 0
        let found = bytes.withUnsafeBufferPointer { WebPGetInfo($0.baseAddress, $0.count, &width, &height) }
        return found != 0 ? Int(width) * Int(height) : 0
    }

    /// Encodes the image as lossless WebP bytes; it must be 8-bit.
    public func encodeWebP(name: String = "<memory>") throws -> [UInt8] {
        try withEncodedWebP(name: name) { Array($0) }
    }

    /// Writes the image as a lossless WebP file at `path`, through a temporary file renamed into place.
    public func writeWebP(path: String) throws {
        try withEncodedWebP(name: path) { encoded in
            try FileBytes.writeAtomically(encoded, to: path) { ImageIOError.fileSystem(file: path, detail: $0) }
        }
    }

    /// What WebP cannot hold of this image, or nil when it fits: 16 bits.
    public var webpLoss: String? {
        bitDepth == 8 ? nil : "\(bitDepth)-bit precision (WebP holds 8 bits)"
    }

    /// A copy WebP can hold: samples rounded to 8 bits.
    public func webpCompatible() -> PixelImage {
        webpLoss == nil ? self : eightBit(keepingAlpha: true)
    }

    private func withEncodedWebP<Result>(name: String, _ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        if let webpLoss {
            throw ImageIOError.unsupportedWebP(file: name, detail: "WebP cannot hold \(webpLoss); write a PNG to keep it")
        }
        guard width <= Int(WEBP_MAX_DIMENSION), height <= Int(WEBP_MAX_DIMENSION) else {
            throw ImageIOError.unsupportedWebP(file: name, detail: "\(width)×\(height) is beyond WebP's \(WEBP_MAX_DIMENSION) pixels a side")
        }
        // Gray (and gray + alpha) are widened to RGB(A): WebP stores colour only.
        let widened = colorType.isGray ? PixelImage(width: width, height: height, bitDepth: 8,
                                                    colorType: colorType.hasAlpha ? .rgba : .rgb, samples: rgbSamples())
                                       : self
        // The advanced API for `exact`: the simple lossless one drops the colour of fully
        // transparent pixels, and a restored image's colour is kept whatever its alpha.
        var config = WebPConfig()
        var picture = WebPPicture()
        var writer = WebPMemoryWriter()
        guard WebPConfigInit(&config) != 0, WebPPictureInit(&picture) != 0 else { throw ImageIOError.outOfMemory(file: name) }
        config.lossless = 1
        config.exact = 1
        picture.use_argb = 1
        picture.width = Int32(width)
        picture.height = Int32(height)
        WebPMemoryWriterInit(&writer)
        defer {
            WebPPictureFree(&picture)
            WebPMemoryWriterClear(&writer)
        }
        let channels = widened.colorType.channels
        let imported = widened.bytes.withUnsafeBufferPointer { samples in
            channels == 4 ? WebPPictureImportRGBA(&picture, samples.baseAddress, Int32(width * 4))
                          : WebPPictureImportRGB(&picture, samples.baseAddress, Int32(width * 3))
        }
        guard imported != 0 else { throw ImageIOError.outOfMemory(file: name) }
        let encoded = withUnsafeMutablePointer(to: &writer) { output in
            picture.writer = WebPMemoryWrite
            picture.custom_ptr = UnsafeMutableRawPointer(output)
            return WebPEncode(&config, &picture)
        }
        guard encoded != 0, let memory = writer.mem else {
            throw ImageIOError.unsupportedWebP(file: name, detail: "libwebp could not encode it (error \(picture.error_code.rawValue))")
        }
        return try body(UnsafeRawBufferPointer(start: memory, count: writer.size))
    }

    /// The samples with gray repeated into R, G and B (alpha kept), as floats.
    private func rgbSamples() -> [Float] {
        let channels = colorType.channels, values = samples
        let out = colorType.hasAlpha ? 4 : 3
        var result = [Float](repeating: 0, count: width * height * out)
        for pixel in 0..<(width * height) {
            let gray = values[pixel * channels]
            for c in 0..<3 { result[pixel * out + c] = gray }
            if colorType.hasAlpha { result[pixel * out + 3] = values[pixel * channels + 1] }
        }
        return result
    }

    /// libwebp's status as a phrase.
    private static func describe(_ status: VP8StatusCode) -> String {
        switch status {
        case VP8_STATUS_OUT_OF_MEMORY: "out of memory"
        case VP8_STATUS_INVALID_PARAM: "invalid parameter"
        case VP8_STATUS_BITSTREAM_ERROR: "a malformed header"
        case VP8_STATUS_UNSUPPORTED_FEATURE: "a feature libwebp does not decode"
        case VP8_STATUS_NOT_ENOUGH_DATA: "the header is cut short"
        default: "libwebp status \(status.rawValue)"
        }
    }
}

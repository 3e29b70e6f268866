/// A decoded raster image: its size, bit depth and colour layout, with every sample held
/// as the integer the file stores (one byte at 8 bits, a native-endian UInt16 at 16).
///
/// Samples are **interleaved** and row-major, sample c of pixel (x, y) at index
/// `(y * width + x) * channels + c`, the order PNG stores them in, so decoding and
/// encoding copy straight through. Keeping the integers rather than floats is exact and
/// takes a quarter (8-bit) or half (16-bit) of the memory: a 4096×4096 RGB photo is
/// 48 MiB instead of 192. Values in 0…1 — sample v is v/255 or v/65535 — are made where
/// they are used: a row at a time for the restorer (`readColour`, `writeColour`), or all at
/// once by `rgbTensor()` and `samples`.
///
/// Files are not read or written here: the PNG codec is an extension in the ImageFiles
/// module, so the runtime (and libRestore, which takes pixels from memory) links no image
/// library.
public struct PixelImage: Sendable, Equatable {
    /// How many samples a pixel has and what they mean.
    public enum ColorType: Sendable, Equatable, CaseIterable {
        case gray, grayAlpha, rgb, rgba

        public var channels: Int {
            switch self {
            case .gray: 1
            case .grayAlpha: 2
            case .rgb: 3
            case .rgba: 4
            }
        }

        public var hasAlpha: Bool { self == .grayAlpha || self == .rgba }
        public var isGray: Bool { self == .gray || self == .grayAlpha }

        /// The layout of `channels` samples a pixel (1…4), or nil for any other count.
        public init?(channels: Int) {
            switch channels {
            case 1: self = .gray
            case 2: self = .grayAlpha
            case 3: self = .rgb
            case 4: self = .rgba
            default: return nil
            }
        }
    }

    public let width: Int
    public let height: Int
    /// 8 or 16: the precision the image came with and will be written with.
    public let bitDepth: Int
    public let colorType: ColorType
    /// The samples as stored: `width * height * channels` bytes at 8 bits, as many
    /// native-endian UInt16 at 16 bits (twice the bytes).
    public private(set) var bytes: [UInt8]

    /// An image over stored samples (`bytes` as described there).
    public init(width: Int, height: Int, bitDepth: Int, colorType: ColorType, bytes: [UInt8]) {
        precondition(bitDepth == 8 || bitDepth == 16, "bit depth \(bitDepth) is not 8 or 16")
        precondition(width > 0 && height > 0, "empty image \(width)x\(height)")
        precondition(bytes.count == width * height * colorType.channels * bitDepth / 8,
                     "\(bytes.count) bytes for \(width)x\(height) \(colorType) at \(bitDepth) bits")
        self.width = width
        self.height = height
        self.bitDepth = bitDepth
        self.colorType = colorType
        self.bytes = bytes
    }

    /// An image from interleaved samples in 0…1, each rounded to the nearest level of the
    /// bit depth (clamped; NaN becomes 0).
    public init(width: Int, height: Int, bitDepth: Int, colorType: ColorType, samples: [Float]) {
        precondition(samples.count == width * height * colorType.channels,
                     "\(samples.count) samples for \(width)x\(height) \(colorType)")
        let levels = Float((1 << bitDepth) - 1)
        self.init(width: width, height: height, bitDepth: bitDepth, colorType: colorType,
                  bytes: [UInt8](repeating: 0, count: samples.count * bitDepth / 8))
        if bitDepth == 8 {
            store(UInt8.self) { for i in samples.indices { $0[i] = UInt8(Self.level(samples[i], levels: levels)) } }
        } else {
            store(UInt16.self) { for i in samples.indices { $0[i] = UInt16(Self.level(samples[i], levels: levels)) } }
        }
    }

    /// The largest sample value at this bit depth (255 or 65535).
    public var maximumSampleValue: Int { (1 << bitDepth) - 1 }

    /// Every sample as an integer at the image's bit depth.
    public func quantizedSamples() -> [UInt16] {
        bitDepth == 8 ? load(UInt8.self) { $0.map(UInt16.init) } : load(UInt16.self) { Array($0) }
    }

    /// Every sample in 0…1 (a float copy of the whole image).
    public var samples: [Float] {
        let levels = Float(maximumSampleValue)
        return quantizedSamples().map { Float($0) / levels }
    }

    /// The colour as a 1×3×H×W planar RGB tensor in 0…1; gray is replicated into R, G
    /// and B. Alpha is not part of it: it stays in this image, untouched, for `withRGB`.
    public func rgbTensor() -> HostTensor {
        var planar = [Float](repeating: 0, count: 3 * width * height)
        planar.withUnsafeMutableBufferPointer { target in
            guard let base = target.baseAddress else { return }
            for y in 0..<height {
                readColour(row: y, columns: 0..<width, into: base + y * width, planeStride: width * height)
            }
        }
        return HostTensor(shape: [1, 3, height, width], floats: planar)
    }

    /// A new image with this image's bit depth and colour type whose colour comes from a
    /// 1×3×H'×W' RGB tensor (a model's output), stored as `writeColour` does.
    /// Alpha is carried over as it was; when the tensor is k times larger in both
    /// directions (super-resolution), each alpha sample is repeated over a k×k block, and
    /// any other size change with alpha present is an error.
    public func withRGB(_ tensor: HostTensor) throws -> PixelImage {
        guard tensor.rank == 4, tensor.shape[0] == 1, tensor.shape[1] == 3,
              tensor.shape[2] > 0, tensor.shape[3] > 0 else {
            throw PixelImageError.tensorShape(expected: "[1, 3, H, W]", found: tensor.shape)
        }
        let newHeight = tensor.shape[2], newWidth = tensor.shape[3]
        let scale = newWidth / width
        if colorType.hasAlpha && !(scale >= 1 && newWidth == width * scale && newHeight == height * scale) {
            throw PixelImageError.tensorShape(
                expected: "[1, 3, k*\(height), k*\(width)] to carry the alpha channel", found: tensor.shape)
        }
        var result = blankCopy(width: newWidth, height: newHeight, scale: max(scale, 1))
        tensor.floats.withUnsafeBufferPointer { planes in
            guard let base = planes.baseAddress else { return }
            for y in 0..<newHeight {
                result.writeColour(row: y, from: base + y * newWidth, planeStride: newWidth * newHeight)
            }
        }
        return result
    }

    /// An image of the given size with this one's bit depth and colour type, black, with
    /// this image's alpha repeated over `scale`×`scale` blocks (when it has alpha, the size
    /// must be `scale` times this one's).
    func blankCopy(width newWidth: Int, height newHeight: Int, scale: Int) -> PixelImage {
        var result = PixelImage(width: newWidth, height: newHeight, bitDepth: bitDepth, colorType: colorType,
                                bytes: [UInt8](repeating: 0, count: newWidth * newHeight * colorType.channels * bitDepth / 8))
        guard colorType.hasAlpha else { return result }
        precondition(newWidth == width * scale && newHeight == height * scale, "alpha cannot follow a non-integer resize")
        if bitDepth == 8 { copyAlpha(UInt8.self, into: &result, scale: scale) } else { copyAlpha(UInt16.self, into: &result, scale: scale) }
        return result
    }

    private func copyAlpha<Level: FixedWidthInteger>(_: Level.Type, into result: inout PixelImage, scale: Int) {
        let channels = colorType.channels, alpha = channels - 1
        let (newWidth, newHeight) = (result.width, result.height)
        load(Level.self) { original in
            result.store(Level.self) { target in
                for y in 0..<newHeight {
                    let sourceRow = (y / scale) * width
                    for x in 0..<newWidth {
                        target[(y * newWidth + x) * channels + alpha] = original[(sourceRow + x / scale) * channels + alpha]
                    }
                }
            }
        }
    }

    /// Writes the colour of pixels `columns` of row `y` in 0…1 as three planes:
    /// R of column `columns.lowerBound + i` at `planes[i]`, G at `planes[planeStride + i]`,
    /// B at `planes[2 * planeStride + i]`. Gray is replicated into the three.
    func readColour(row y: Int, columns: Range<Int>, into planes: UnsafeMutablePointer<Float>, planeStride: Int) {
        if bitDepth == 8 {
            readColour(UInt8.self, row: y, columns: columns, into: planes, planeStride: planeStride)
        } else {
            readColour(UInt16.self, row: y, columns: columns, into: planes, planeStride: planeStride)
        }
    }

    private func readColour<Level: FixedWidthInteger>(_: Level.Type, row y: Int, columns: Range<Int>,
                                                      into planes: UnsafeMutablePointer<Float>, planeStride: Int) {
        let channels = colorType.channels
        let maximum = Float(maximumSampleValue)
        load(Level.self) { levels in
            for c in 0..<3 {
                let channel = colorType.isGray ? 0 : c
                let plane = planes + c * planeStride
                for (i, x) in columns.enumerated() {
                    plane[i] = Float(levels[(y * width + x) * channels + channel]) / maximum
                }
            }
        }
    }

    /// Stores row `y`'s colour from three planes of `width` values each (R at `planes[x]`,
    /// G at `planes[planeStride + x]`, B at `planes[2 * planeStride + x]`), leaving alpha.
    ///
    /// - Gray images keep the ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B: a model that
    ///   changes colours slightly still gives the brightness a viewer sees, and for
    ///   R = G = B it returns that value exactly.
    /// - Values are clamped to 0…1 (NaN becomes 0) and rounded to the bit depth.
    mutating func writeColour(row y: Int, from planes: UnsafePointer<Float>, planeStride: Int) {
        if bitDepth == 8 {
            writeColour(UInt8.self, row: y, from: planes, planeStride: planeStride)
        } else {
            writeColour(UInt16.self, row: y, from: planes, planeStride: planeStride)
        }
    }

    private mutating func writeColour<Level: FixedWidthInteger>(_: Level.Type, row y: Int, from planes: UnsafePointer<Float>,
                                                                 planeStride: Int) {
        let channels = colorType.channels, isGray = colorType.isGray, width = width
        let levels = Float(maximumSampleValue)
        store(Level.self) { target in
            let row = y * width * channels
            if isGray {
                for x in 0..<width {
                    let luma = 0.299 * Double(planes[x]) + 0.587 * Double(planes[planeStride + x])
                        + 0.114 * Double(planes[2 * planeStride + x])
                    target[row + x * channels] = Level(Self.level(Float(luma), levels: levels))
                }
            } else {
                for c in 0..<3 {
                    for x in 0..<width {
                        target[row + x * channels + c] = Level(Self.level(planes[c * planeStride + x], levels: levels))
                    }
                }
            }
        }
    }

    /// Calls `body` with the samples as integers of type `Level` (UInt8 at 8 bits, UInt16 at 16).
    private func load<Level: FixedWidthInteger, Result>(_: Level.Type,
                                                         _ body: (UnsafeBufferPointer<Level>) -> Result) -> Result {
        bytes.withUnsafeBytes { $0.withMemoryRebound(to: Level.self, body) }
    }

    /// Lets `body` change the samples as integers of type `Level`.
    private mutating func store<Level: FixedWidthInteger>(_: Level.Type, _ body: (UnsafeMutableBufferPointer<Level>) -> Void) {
        bytes.withUnsafeMutableBytes { $0.withMemoryRebound(to: Level.self, body) }
    }

    /// Clamps to 0…1 (NaN to 0) and rounds to the nearest of `levels` + 1 steps.
    @inline(__always)
    static func quantize(_ value: Float, levels: Float) -> Float {
        level(value, levels: levels) / levels
    }

    /// The integer step 0…`levels` nearest to `value` (clamped; NaN gives 0), as a Float.
    @inline(__always)
    static func level(_ value: Float, levels: Float) -> Float {
        guard value > 0 else { return 0 }     // also catches NaN
        guard value < 1 else { return levels }
        return (value * levels).rounded()
    }
}

/// Why a model's output tensor cannot become an image.
public enum PixelImageError: Error, Equatable, CustomStringConvertible {
    /// The tensor is not 1×3×H×W, or its size does not let the alpha channel follow.
    case tensorShape(expected: String, found: [Int])

    public var description: String {
        switch self {
        case .tensorShape(let expected, let found): "image tensor must be \(expected), found \(found)"
        }
    }
}

/// A decoded raster image: its size, storage bit depth and colour layout, with every
/// sample as a Float in 0…1.
///
/// Samples are **interleaved** and row-major, `samples[(y * width + x) * channels + c]`,
/// the order PNG stores them in, so decoding and encoding copy straight through; the
/// planar layout models want is made by `rgbTensor()`. An 8-bit sample v is stored as
/// v/255 and a 16-bit one as v/65535, so converting back (`quantized`) is exact.
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

        init?(channels: Int) {
            switch channels {
            case 1: self = .gray
            case 2: self = .grayAlpha
            case 3: self = .rgb
            case 4: self = .rgba
            default: return nil
            }
        }
    }

    public var width: Int
    public var height: Int
    /// 8 or 16: the precision the image came with and will be written with.
    public var bitDepth: Int
    public var colorType: ColorType
    /// Interleaved samples in 0…1, `width * height * colorType.channels` of them.
    public var samples: [Float]

    public init(width: Int, height: Int, bitDepth: Int, colorType: ColorType, samples: [Float]) {
        precondition(bitDepth == 8 || bitDepth == 16, "bit depth \(bitDepth) is not 8 or 16")
        precondition(width > 0 && height > 0, "empty image \(width)x\(height)")
        precondition(samples.count == width * height * colorType.channels,
                     "\(samples.count) samples for \(width)x\(height) \(colorType)")
        self.width = width
        self.height = height
        self.bitDepth = bitDepth
        self.colorType = colorType
        self.samples = samples
    }

    /// The largest sample value at this bit depth (255 or 65535).
    public var maximumSampleValue: Int { (1 << bitDepth) - 1 }

    /// The colour as a 1×3×H×W planar RGB tensor; gray is replicated into R, G and B.
    /// Alpha is not part of it: it stays in this image, untouched, for `withRGB`.
    public func rgbTensor() -> HostTensor {
        let plane = width * height
        let channels = colorType.channels
        var planar = [Float](repeating: 0, count: 3 * plane)
        samples.withUnsafeBufferPointer { source in
            planar.withUnsafeMutableBufferPointer { target in
                for outputChannel in 0..<3 {
                    let sourceChannel = colorType.isGray ? 0 : outputChannel
                    for pixel in 0..<plane {
                        target[outputChannel * plane + pixel] = source[pixel * channels + sourceChannel]
                    }
                }
            }
        }
        return HostTensor(shape: [1, 3, height, width], floats: planar)
    }

    /// A new image with this image's bit depth and colour type whose colour comes from a
    /// 1×3×H'×W' RGB tensor (a model's output).
    ///
    /// - Gray images keep the ITU-R BT.601 luma of the result, 0.299 R + 0.587 G + 0.114 B:
    ///   a model that changes colours slightly still gives the brightness a viewer sees,
    ///   and for R = G = B it returns that value exactly.
    /// - Alpha is carried over as it was. When the tensor is k times larger in both
    ///   directions (super-resolution), each alpha sample is repeated over a k×k block;
    ///   any other size change with alpha present is an error.
    /// - Samples are clamped to 0…1 (NaN becomes 0) and rounded to the bit depth, so the
    ///   result holds exactly what `encodePNG` will write.
    public func withRGB(_ tensor: HostTensor) throws -> PixelImage {
        guard tensor.rank == 4, tensor.shape[0] == 1, tensor.shape[1] == 3,
              tensor.shape[2] > 0, tensor.shape[3] > 0 else {
            throw ImageIOError.tensorShape(expected: "[1, 3, H, W]", found: tensor.shape)
        }
        let newHeight = tensor.shape[2], newWidth = tensor.shape[3]
        let scale = newWidth / width
        if colorType.hasAlpha && !(scale >= 1 && newWidth == width * scale && newHeight == height * scale) {
            throw ImageIOError.tensorShape(
                expected: "[1, 3, k*\(height), k*\(width)] to carry the alpha channel", found: tensor.shape)
        }
        let plane = newWidth * newHeight
        let channels = colorType.channels
        let levels = Float(maximumSampleValue)
        let rgb = tensor.floats
        var output = [Float](repeating: 0, count: plane * channels)
        rgb.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                if colorType.isGray {
                    for pixel in 0..<plane {
                        let luma = 0.299 * Double(source[pixel]) + 0.587 * Double(source[plane + pixel])
                            + 0.114 * Double(source[2 * plane + pixel])
                        target[pixel * channels] = Self.quantize(Float(luma), levels: levels)
                    }
                } else {
                    for channel in 0..<3 {
                        for pixel in 0..<plane {
                            target[pixel * channels + channel] = Self.quantize(source[channel * plane + pixel], levels: levels)
                        }
                    }
                }
                guard colorType.hasAlpha else { return }
                samples.withUnsafeBufferPointer { original in
                    let alpha = channels - 1
                    for y in 0..<newHeight {
                        let sourceRow = (y / scale) * width
                        for x in 0..<newWidth {
                            target[(y * newWidth + x) * channels + alpha] = original[(sourceRow + x / scale) * channels + alpha]
                        }
                    }
                }
            }
        }
        return PixelImage(width: newWidth, height: newHeight, bitDepth: bitDepth, colorType: colorType,
                          samples: output)
    }

    /// The samples as integers at the image's bit depth (clamped, rounded half away from 0).
    public func quantizedSamples() -> [UInt16] {
        let levels = Float(maximumSampleValue)
        return samples.map { UInt16(Self.level($0, levels: levels)) }
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

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Runtime

/// Why two images cannot be compared.
public enum MetricError: Error, Equatable, CustomStringConvertible {
    /// The two tensors differ in shape.
    case shapeMismatch([Int], [Int])
    /// Not [H, W], [C, H, W] or [1, C, H, W].
    case unsupportedShape([Int])
    /// SSIM needs at least a full window (`minimum` pixels) in each direction.
    case imageTooSmall(shape: [Int], minimum: Int)

    public var description: String {
        switch self {
        case .shapeMismatch(let a, let b): "cannot compare images of shapes \(a) and \(b)"
        case .unsupportedShape(let shape): "image shape \(shape) is not [H, W], [C, H, W] or [1, C, H, W]"
        case .imageTooSmall(let shape, let minimum): "image \(shape) is smaller than the \(minimum)×\(minimum) SSIM window"
        }
    }
}

/// Full-reference image quality: PSNR and SSIM, computed as scikit-image computes them so
/// the numbers can be compared with Python directly.
///
/// Images are planar float tensors of shape [H, W] (one channel), [C, H, W] or
/// [1, C, H, W] (what `PixelImage.rgbTensor()` gives), in any value range given by
/// `dataRange` (1 for 0…1 images, 255 for 0…255).
public enum ImageMetrics {
    /// Peak signal-to-noise ratio in dB, 10·log10(range² / MSE) with the MSE over every
    /// sample of every channel; +∞ for identical images (as `skimage.metrics.peak_signal_noise_ratio`).
    public static func psnr(_ a: HostTensor, _ b: HostTensor, dataRange: Double) throws -> Double {
        _ = try planes(a, b)
        let x = a.floats, y = b.floats
        var sum = 0.0
        for index in x.indices {
            let difference = Double(x[index]) - Double(y[index])
            sum += difference * difference
        }
        let meanSquaredError = sum / Double(max(x.count, 1))
        return 10 * log10(dataRange * dataRange / meanSquaredError)
    }

    /// The (channels, height, width) of two same-shaped image tensors.
    static func planes(_ a: HostTensor, _ b: HostTensor) throws -> (channels: Int, height: Int, width: Int) {
        guard a.shape == b.shape else { throw MetricError.shapeMismatch(a.shape, b.shape) }
        switch a.shape.count {
        case 2: return (1, a.shape[0], a.shape[1])
        case 3: return (a.shape[0], a.shape[1], a.shape[2])
        case 4 where a.shape[0] == 1: return (a.shape[1], a.shape[2], a.shape[3])
        default: throw MetricError.unsupportedShape(a.shape)
        }
    }
}

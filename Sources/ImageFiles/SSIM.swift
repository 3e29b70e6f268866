#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Runtime

extension ImageMetrics {
    /// Mean structural similarity, equal to scikit-image 0.26's
    /// `structural_similarity(a, b, gaussian_weights=True, sigma=1.5, data_range=dataRange,
    /// channel_axis=0)` with its defaults: K1 = 0.01, K2 = 0.03, sample covariance
    /// (variances scaled by N/(N-1) with N = 11² window taps), a Gaussian window of σ = 1.5
    /// truncated at 3.5σ (radius 5, 11 taps, normalised as scipy.ndimage does), the SSIM map
    /// averaged over the image cropped by 5 pixels on every side, then over channels.
    ///
    /// scikit-image filters the whole image with 'reflect' borders and then crops exactly
    /// the filter radius; every kept pixel's window therefore lies inside the image, so
    /// this computes only those pixels and never needs a border rule. The filter is
    /// separable: per output row, a vertical 11-tap pass over the five moments (x, y, x²,
    /// y², xy) then a horizontal one, in Double as scikit-image does in float64 for
    /// float64 input. Rows are split in fixed blocks so the sum does not depend on the
    /// thread count.
    public static func ssim(_ a: HostTensor, _ b: HostTensor, dataRange: Double,
                            pool: ThreadPool = ThreadPool(threads: 1)) throws -> Double {
        let (channels, height, width) = try planes(a, b)
        let window = 2 * ssimRadius + 1
        guard height >= window, width >= window else {
            throw MetricError.imageTooSmall(shape: a.shape, minimum: window)
        }
        let x = a.floats, y = b.floats
        let plane = height * width
        var total = 0.0
        x.withUnsafeBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                for channel in 0..<channels {
                    total += meanSSIM(UnsafeBufferPointer(rebasing: x[channel * plane..<(channel + 1) * plane]),
                                      UnsafeBufferPointer(rebasing: y[channel * plane..<(channel + 1) * plane]),
                                      height: height, width: width, dataRange: dataRange, pool: pool)
                }
            }
        }
        return total / Double(channels)
    }

    /// The window radius: scipy's int(truncate·σ + 0.5) with truncate 3.5 and σ 1.5.
    static let ssimRadius = 5

    /// scipy.ndimage's Gaussian taps, exp(-x²/2σ²) normalised to sum 1, for x = -r…r.
    static let ssimWeights: [Double] = {
        let sigma = 1.5
        let taps = (-ssimRadius...ssimRadius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let sum = taps.reduce(0, +)
        return taps.map { $0 / sum }
    }()

    /// Mean SSIM of one channel over the pixels at least `ssimRadius` from every border.
    private static func meanSSIM(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>,
                                 height: Int, width: Int, dataRange: Double, pool: ThreadPool) -> Double {
        let radius = ssimRadius
        let taps = 2 * radius + 1
        let c1 = (0.01 * dataRange) * (0.01 * dataRange)
        let c2 = (0.03 * dataRange) * (0.03 * dataRange)
        let covarianceScale = Double(taps * taps) / Double(taps * taps - 1)
        let outputRows = height - 2 * radius, outputColumns = width - 2 * radius
        let rowsPerBlock = 32
        let blocks = (outputRows + rowsPerBlock - 1) / rowsPerBlock
        let partialSums = UnsafeMutableBufferPointer<Double>.allocate(capacity: blocks)
        defer { partialSums.deallocate() }
        let weights = ssimWeights

        pool.parallelFor(blocks) { blockRange in
            // The five vertically filtered moments of one row: x, y, x², y², xy.
            let mx = UnsafeMutablePointer<Double>.allocate(capacity: 5 * width)
            defer { mx.deallocate() }
            let my = mx + width, mxx = my + width, myy = mxx + width, mxy = myy + width
            weights.withUnsafeBufferPointer { w in
                for block in blockRange {
                    var blockSum = 0.0
                    let firstRow = block * rowsPerBlock
                    for outputRow in firstRow..<min(firstRow + rowsPerBlock, outputRows) {
                        mx.initialize(repeating: 0, count: 5 * width)
                        for tap in 0..<taps {
                            let weight = w[tap]
                            let rowStart = (outputRow + tap) * width
                            for column in 0..<width {
                                let a = Double(x[rowStart + column]), b = Double(y[rowStart + column])
                                mx[column] += weight * a
                                my[column] += weight * b
                                mxx[column] += weight * a * a
                                myy[column] += weight * b * b
                                mxy[column] += weight * a * b
                            }
                        }
                        for column in 0..<outputColumns {
                            let center = column + radius
                            var ux = w[radius] * mx[center], uy = w[radius] * my[center]
                            var uxx = w[radius] * mxx[center], uyy = w[radius] * myy[center]
                            var uxy = w[radius] * mxy[center]
                            for offset in 1...radius {
                                let weight = w[radius + offset] // the taps are symmetric
                                let left = center - offset, right = center + offset
                                ux += weight * (mx[left] + mx[right])
                                uy += weight * (my[left] + my[right])
                                uxx += weight * (mxx[left] + mxx[right])
                                uyy += weight * (myy[left] + myy[right])
                                uxy += weight * (mxy[left] + mxy[right])
                            }
                            let vx = covarianceScale * (uxx - ux * ux)
                            let vy = covarianceScale * (uyy - uy * uy)
                            let vxy = covarianceScale * (uxy - ux * uy)
                            let numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
                            let denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
                            blockSum += numerator / denominator
                        }
                    }
                    partialSums[block] = blockSum
                }
            }
        }
        return partialSums.reduce(0, +) / Double(outputRows * outputColumns)
    }
}

import Foundation

/// The inputs of a class-conditional generator (BigGAN) as pytorch-pretrained-biggan's
/// utilities make them, so that a seed gives the same image here as there:
/// - `truncated_noise_sample(batch_size, dim_z, truncation, seed)` draws
///   `scipy.stats.truncnorm.rvs(-2, 2, size=(batch_size, dim_z), random_state=np.random.RandomState(seed))`,
///   casts it to float32 and multiplies by the truncation (in float32). SciPy draws a
///   truncated normal by inversion: u from the generator's `uniform()` (a 53-bit double),
///   x = Φ⁻¹(Φ(−2) + u·(Φ(2) − Φ(−2))). NumPy's legacy `RandomState(seed)` is MT19937
///   seeded by `init_genrand(seed)`.
/// - `one_hot_from_int(class, batch_size)` is a one-hot row per image.
///
/// SciPy evaluates the same inverse in log space (`ndtri_exp` of a log-sum); here it is
/// evaluated directly in double precision with one Halley step on an initial rational
/// approximation. Both agree to a few units of the double's last place, far below the
/// float32 rounding of the result: a z element can differ only when the double lands
/// within that distance of a float32 rounding boundary (the test counts such cases; none
/// in its samples).
public enum GeneratorSampling {
    /// `truncation · truncnorm(−2, 2)` of shape [count, dimension], row-major, float32.
    public static func truncatedNoise(count: Int, dimension: Int, truncation: Float, seed: UInt32) -> [Float] {
        var generator = MersenneTwister(seed: seed)
        let lower = standardNormalCDF(-2), mass = 1 - 2 * standardNormalCDF(-2)
        return (0..<(count * dimension)).map { _ in
            let u = generator.nextDouble()
            let value = Float(inverseStandardNormalCDF(lower + u * mass))
            return truncation * value
        }
    }

    /// One-hot rows [count, classes] for `classIndex`.
    public static func oneHot(classIndex: Int, classes: Int, count: Int) -> [Float] {
        var rows = [Float](repeating: 0, count: count * classes)
        for row in 0..<count { rows[row * classes + classIndex] = 1 }
        return rows
    }

    /// Quantizes a generator image [3, H, W] in [−1, 1] to interleaved RGB bytes as the
    /// package's `convert_to_images` does: uint8(clip((x + 1) / 2 · 256, 0, 255)), truncating.
    public static func imageBytes(_ planes: ArraySlice<Float>, height: Int, width: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 3 * height * width)
        let plane = height * width
        let start = planes.startIndex
        for c in 0..<3 {
            for i in 0..<plane {
                let level = min(max((planes[start + c * plane + i] + 1) / 2 * 256, 0), 255)
                bytes[i * 3 + c] = level.isNaN ? 0 : UInt8(level)
            }
        }
        return bytes
    }

    /// Φ(x) = erfc(−x/√2)/2.
    static func standardNormalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation (relative error below
    /// 1.2e-9), refined by one Halley step on Φ(x) − p, which brings it to double precision.
    static func inverseStandardNormalCDF(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let error = standardNormalCDF(x) - p
        let u = error * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }
}

/// MT19937 as NumPy's legacy `RandomState(seed)` runs it for an integer seed
/// (`init_genrand`), with `random_sample`'s 53-bit doubles.
struct MersenneTwister {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    mutating func nextUInt32() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// (a·2²⁶ + b) / 2⁵³ with a, b the top 27 and 26 bits of two draws.
    mutating func nextDouble() -> Double {
        let a = Double(nextUInt32() >> 5), b = Double(nextUInt32() >> 6)
        return (a * 67_108_864 + b) / 9_007_199_254_740_992
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
        }
        index = 0
    }
}

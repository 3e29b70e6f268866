/// Keys' cubic convolution kernel (R. G. Keys, 1981), the cubic interpolation of ONNX's
/// Resize (any coefficient A) and GridSample (A = −0.75, as PyTorch's bicubic sampling).
enum CubicConvolution {
    /// The weights of the four samples at ⌊x⌋ − 1 … ⌊x⌋ + 2 around a point x = ⌊x⌋ + t
    /// (t in [0, 1)): the kernel at distances 1 + t, t, 1 − t and 2 − t.
    @inline(__always)
    static func coefficients(fraction t: Float, a: Float) -> SIMD4<Float> {
        func near(_ d: Float) -> Float { ((a + 2) * d - (a + 3)) * d * d + 1 }
        func far(_ d: Float) -> Float { ((a * d - 5 * a) * d + 8 * a) * d - 4 * a }
        return SIMD4(far(1 + t), near(t), near(1 - t), far(2 - t))
    }
}

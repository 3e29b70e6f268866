/// SplitMix64: a fixed-seed generator so every test sees the same "random" data.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Deterministic random floats in [-1, 1) (xorshift; a fixed seed per test), the values
/// of the random tensors the kernel and pass tests run on.
public func xorshiftFloats(count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E3779B97F4A7C15 | 1
    return (0..<count).map { _ -> Float in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}

/// How far `actual` is from `expected`: the max abs error (NaN once any difference is
/// NaN), and that error divided by the expected values' largest magnitude; both infinite
/// when the counts differ.
public func maxAbsAndRelativeError(_ actual: [Float], _ expected: [Float]) -> (maxAbs: Float, relative: Float) {
    guard actual.count == expected.count else { return (.infinity, .infinity) }
    var maxAbs: Float = 0
    var scale: Float = 0
    for (a, e) in zip(actual, expected) {
        // Equal infinities (an empty max is −∞) are no error; inf − inf alone would be NaN.
        let difference = a == e ? 0 : abs(a - e)
        maxAbs = difference.isNaN || maxAbs.isNaN ? .nan : max(maxAbs, difference)
        scale = max(scale, abs(e))
    }
    return (maxAbs, maxAbs / max(scale, 1e-12))
}

import Format

/// Random data shared by the rewrite-pass tests: deterministic floats in [-1, 1)
/// (xorshift, one fixed seed per tensor) and constants filled with them.
enum PassTestData {
    static func random(_ shape: [Int], seed: UInt64) -> [Float] {
        var state = seed &* 0x9E3779B97F4A7C15 | 1
        return (0..<shape.reduce(1, *)).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    /// A float constant of random values shifted by `offset` (e.g. 1 for a scale near 1).
    static func constant(_ name: String, _ shape: [Int], seed: UInt64, offset: Float = 0) -> ConstantTensor {
        ConstantTensor(name: name, shape: shape, floats: random(shape, seed: seed).map { $0 + offset })
    }
}

/// The backward pass of normalising rows of `size` elements, y = (x − μ)·r·γ + β with
/// r = 1/√(σ² + ε), shared by `layerNorm` (rows are the normalised trailing axes, γ per
/// position) and `instanceNorm` (rows are planes, γ per channel).
///
/// With x̂ = (x − μ)·r and ĝ = ∂L/∂y·γ:
///   ∂L/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),  ∂L/∂γ = Σ ∂L/∂y·x̂,  ∂L/∂β = Σ ∂L/∂y.
/// One pass over rows in parallel computes ∂L/∂x and keeps per row μ, r, Σ∂L/∂y and
/// Σ∂L/∂y·x̂ in scratch: for instance norm those row sums are the parameter gradients
/// already; layer norm sums them per position in a second pass (`positionSums`).
struct NormalizationGradient: Sendable {
    let rows: Int
    let size: Int
    let epsilon: Float

    /// Where γ comes from.
    enum Scale {
        /// One γ per row: `values[row % channels]` (instance norm).
        case perRow(UnsafePointer<Float>, channels: Int)
        /// One γ per position of a row (layer norm), nil for none (γ = 1).
        case perPosition(UnsafePointer<Float>?)
    }

    /// Floats of scratch per row: μ, r, Σ∂L/∂y, Σ∂L/∂y·x̂.
    static let statisticsPerRow = 4

    var scratchBytes: Int { Self.statisticsPerRow * rows * MemoryLayout<Float>.size }

    /// ∂L/∂x (when `target` is given) and the rows' statistics.
    func inputGradient(x: UnsafePointer<Float>, gradient: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>?,
                       statistics: UnsafeMutablePointer<Float>, scale: Scale, pool: ThreadPool) {
        let size = size, epsilon = epsilon
        pool.parallelFor(rows) { range in
            for row in range {
                let xs = x + row * size, gs = gradient + row * size
                let mean = Float(Self.sum(size) { xs.vector($0) } tail: { xs[$0] } / Double(size))
                let squares = Self.sum(size) { let d = xs.vector($0) - mean; return d * d } tail: { (xs[$0] - mean) * (xs[$0] - mean) }
                let r = Float(1 / (squares / Double(size) + Double(epsilon)).squareRoot())
                let sumGY = Self.sum(size) { gs.vector($0) } tail: { gs[$0] }
                let sumGYX = Self.sum(size) { gs.vector($0) * (xs.vector($0) - mean) } tail: { gs[$0] * (xs[$0] - mean) } * Double(r)
                let stats = statistics + Self.statisticsPerRow * row
                (stats[0], stats[1], stats[2], stats[3]) = (mean, r, Float(sumGY), Float(sumGYX))
                guard let target else { continue }
                let ts = target + row * size
                switch scale {
                case .perRow(let values, let channels):
                    let gamma = values[row % channels]
                    let meanG = gamma * Float(sumGY / Double(size)), meanGX = gamma * Float(sumGYX / Double(size))
                    for j in 0..<size { ts[j] += r * (gs[j] * gamma - meanG - (xs[j] - mean) * r * meanGX) }
                case .perPosition(let values):
                    guard let values else {
                        let meanG = Float(sumGY / Double(size)), meanGX = Float(sumGYX / Double(size))
                        for j in 0..<size { ts[j] += r * (gs[j] - meanG - (xs[j] - mean) * r * meanGX) }
                        continue
                    }
                    var sumG = 0.0, sumGX = 0.0
                    for j in 0..<size {
                        let g = gs[j] * values[j]
                        sumG += Double(g)
                        sumGX += Double(g * (xs[j] - mean) * r)
                    }
                    let meanG = Float(sumG / Double(size)), meanGX = Float(sumGX / Double(size))
                    for j in 0..<size { ts[j] += r * (gs[j] * values[j] - meanG - (xs[j] - mean) * r * meanGX) }
                }
            }
        }
    }

    /// Elements summed in float lanes before the block's sum joins the double total: the
    /// instance-norm forward's blocking, so rounding does not grow with the row.
    private static let block = 1024

    /// Σ term over 0..<count: `vector(i)` gives the 16 terms from element i on (i a
    /// multiple of 16), `tail(i)` one term past the last whole vector.
    @inline(__always)
    static func sum(_ count: Int, _ vector: (Int) -> SIMD16<Float>, tail: (Int) -> Float) -> Double {
        let whole = count / 16 * 16
        var total = 0.0
        var start = 0
        while start < whole {
            let end = Swift.min(start + block, whole)
            var lanes = SIMD16<Float>()
            var i = start
            while i < end {
                lanes += vector(i)
                i += 16
            }
            total += Double(lanes.sum())
            start = end
        }
        for i in whole..<count { total += Double(tail(i)) }
        return total
    }

    /// Per position j of a row: Σ over rows of ∂L/∂y·x̂ into `scaleSums[j]` and of ∂L/∂y
    /// into `biasSums[j]`; workers own disjoint ranges of positions.
    func positionSums(x: UnsafePointer<Float>, gradient: UnsafePointer<Float>, statistics: UnsafePointer<Float>,
                      scaleSums: UnsafeMutablePointer<Float>, biasSums: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let rows = rows, size = size
        pool.parallelFor(size, minimumChunk: 64) { range in
            for j in range {
                scaleSums[j] = 0
                biasSums[j] = 0
            }
            for row in 0..<rows {
                let stats = statistics + Self.statisticsPerRow * row
                let (mean, r) = (stats[0], stats[1])
                let xs = x + row * size, gs = gradient + row * size
                for j in range {
                    scaleSums[j] += gs[j] * (xs[j] - mean) * r
                    biasSums[j] += gs[j]
                }
            }
        }
    }
}

extension UnsafePointer<Float> {
    /// The 16 floats from `index` on, unaligned.
    @inline(__always)
    func vector(_ index: Int) -> SIMD16<Float> {
        UnsafeRawPointer(self + index).loadUnaligned(as: SIMD16<Float>.self)
    }
}

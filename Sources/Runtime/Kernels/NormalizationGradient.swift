/// The backward pass of normalising rows of `size` elements, y = (x − μ)·r·γ + β with
/// r = 1/√(σ² + ε), shared by `layerNorm` (rows are the normalised trailing axes, γ per
/// position) and `instanceNorm` (rows are planes, γ per channel).
///
/// With x̂ = (x − μ)·r and ĝ = ∂L/∂y·γ:
///   ∂L/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),  ∂L/∂γ = Σ ∂L/∂y·x̂,  ∂L/∂β = Σ ∂L/∂y.
/// Pass one runs over rows in parallel and keeps μ and r per row in scratch; pass two
/// sums the parameter gradients with workers owning disjoint parameters, so no two
/// threads add into the same element.
struct NormalizationGradient: Sendable {
    let rows: Int
    let size: Int
    let epsilon: Float

    /// Scratch floats: μ and r per row.
    var scratchBytes: Int { 2 * rows * MemoryLayout<Float>.size }

    /// Pass one: ∂L/∂x (when `target` is given) and the rows' statistics.
    /// `scale(row, j)` is γ for element j of a row.
    func inputGradient(x: UnsafePointer<Float>, gradient: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>?,
                       statistics: UnsafeMutablePointer<Float>, pool: ThreadPool,
                       scale: @escaping (Int, Int) -> Float) {
        pool.parallelFor(rows) { range in
            for row in range {
                let xs = x + row * size, gs = gradient + row * size
                var sum = 0.0
                for j in 0..<size { sum += Double(xs[j]) }
                let mean = Float(sum / Double(size))
                var squares = 0.0
                for j in 0..<size { squares += Double((xs[j] - mean) * (xs[j] - mean)) }
                let r = Float(1 / (squares / Double(size) + Double(epsilon)).squareRoot())
                statistics[2 * row] = mean
                statistics[2 * row + 1] = r
                guard let target else { continue }
                var sumG = 0.0, sumGX = 0.0
                for j in 0..<size {
                    let g = Double(gs[j] * scale(row, j))
                    sumG += g
                    sumGX += g * Double((xs[j] - mean) * r)
                }
                let meanG = Float(sumG / Double(size)), meanGX = Float(sumGX / Double(size))
                let ts = target + row * size
                for j in 0..<size {
                    let normalized = (xs[j] - mean) * r
                    ts[j] += r * (gs[j] * scale(row, j) - meanG - normalized * meanGX)
                }
            }
        }
    }

    /// Pass two: adds ∂L/∂γ and ∂L/∂β for `parameters` parameters, where element j of
    /// `row` uses parameter `parameterOf(row, j)`; `owner` lists, per parameter, the
    /// (row, j) pairs reading it, so each worker walks only its own parameters.
    func parameterGradients(x: UnsafePointer<Float>, gradient: UnsafePointer<Float>, statistics: UnsafePointer<Float>,
                            parameters: Int, scaleTarget: UnsafeMutablePointer<Float>?, biasTarget: UnsafeMutablePointer<Float>?,
                            pool: ThreadPool, elements: @escaping (Int, (Int, Int) -> Void) -> Void) {
        guard scaleTarget != nil || biasTarget != nil else { return }
        pool.parallelFor(parameters) { range in
            for parameter in range {
                var sumScale = 0.0, sumBias = 0.0
                elements(parameter) { row, j in
                    let index = row * size + j
                    let normalized = (x[index] - statistics[2 * row]) * statistics[2 * row + 1]
                    sumScale += Double(gradient[index] * normalized)
                    sumBias += Double(gradient[index])
                }
                scaleTarget?[parameter] += Float(sumScale)
                biasTarget?[parameter] += Float(sumBias)
            }
        }
    }
}

import CKernels
import Format

/// `layerNorm`: normalises X over axes [axis, rank) to zero mean and unit variance
/// (variance + epsilon), then multiplies by `scale` and adds `bias`, both optional and
/// broadcast over the normalised axes (ONNX LayerNormalization, output Y only). Not
/// `centered`, the mean is taken as 0: X / √(mean(X²) + epsilon) · scale (ONNX
/// RMSNormalization), in the same passes.
///
/// Mean and variance take two passes (mean first, then the mean of squared deviations)
/// rather than E[x²] − E[x]², which cancels catastrophically when the mean is large.
public struct LayerNormalization: Operator {
    let name: String
    let attributes: LayerNormAttributes

    /// The normalised trailing shape, after checking that scale and bias broadcast to it.
    private func normalizedShape(_ shape: [Int], scale: [Int]?, bias: [Int]?) throws -> [Int] {
        let normalized = Array(shape[try ShapeRules.axis(attributes.axis, rank: shape.count, node: name)...])
        for (label, parameter) in [("scale", scale), ("bias", bias)] {
            guard let parameter else { continue }
            guard try ShapeRules.broadcast(parameter, normalized, node: name) == normalized else {
                throw OpError.shape(node: name, "\(label) \(parameter) does not broadcast to the normalised shape \(normalized)")
            }
        }
        return normalized
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        guard x.dtype.isFloatingPoint else { throw OpError.shape(node: name, "layerNorm of \(x.dtype) elements") }
        _ = try normalizedShape(x.shape, scale: input(inputs, 1)?.shape, bias: input(inputs, 2)?.shape)
        return [ValueFact(dtype: .float32, shape: x.shape)]
    }

    private func input<T>(_ inputs: [T?], _ index: Int) -> T? {
        index < inputs.count ? inputs[index] : nil
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        let (scale, bias) = (input(inputs, 1), input(inputs, 2))
        let normalized = try normalizedShape(x.shape, scale: scale?.shape, bias: bias?.shape)
        let size = normalized.reduce(1, *)
        let scaleValues = scale.map { s in ShapeRules.broadcastSourceIndices(s.shape, to: normalized).map { s.floats[$0] } }
        let biasValues = bias.map { b in ShapeRules.broadcastSourceIndices(b.shape, to: normalized).map { b.floats[$0] } }
        let values = x.floats
        var result = [Float](repeating: 0, count: values.count)
        for row in 0..<(size == 0 ? 0 : values.count / size) {
            let elements = values[(row * size)..<((row + 1) * size)].map { Double($0) }
            let mean = attributes.centered ? elements.reduce(0, +) / Double(size) : 0
            let variance = elements.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(size)
            let inverseDeviation = 1 / (variance + Double(attributes.epsilon)).squareRoot()
            for j in 0..<size {
                var y = (elements[j] - mean) * inverseDeviation
                if let scaleValues { y *= Double(scaleValues[j]) }
                if let biasValues { y += Double(biasValues[j]) }
                result[row * size + j] = Float(y)
            }
        }
        return [HostTensor(shape: x.shape, floats: result)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (scale, bias) = (input(inputs, 1), input(inputs, 2))
        let normalized = try normalizedShape(x.shape, scale: scale?.shape, bias: bias?.shape)
        let size = normalized.reduce(1, *)
        /// Where each normalised position reads a parameter that does not cover the whole
        /// normalised shape (nil when it does, the usual case).
        func gatherIndices(_ parameter: ValueFact?) -> [Int]? {
            guard let parameter, parameter.count != size else { return nil }
            return ShapeRules.broadcastSourceIndices(parameter.shape, to: normalized)
        }
        return LayerNormalizationKernel(rows: size == 0 ? 0 : x.count / size, size: size, epsilon: attributes.epsilon,
                                        centered: attributes.centered, hasScale: scale != nil, hasBias: bias != nil,
                                        scaleIndices: gatherIndices(scale), biasIndices: gatherIndices(bias))
    }
}

/// The float kernel of `layerNorm`: rows of `size` contiguous elements split across
/// threads, each row normalised in three passes (mean, variance, write). On the AVX2 and
/// AVX-512 paths the rows go to the C kernel (layer_norm_avx2.c; the same roundings, the
/// double sums in another order) unless a parameter is gathered: this Swift code is
/// compiled for the x86-64 baseline, and its scalar double sums took 5 % of a ViT's time.
struct LayerNormalizationKernel: Kernel {
    let rows: Int
    let size: Int
    let epsilon: Float
    let centered: Bool
    let hasScale: Bool
    let hasBias: Bool
    let scaleIndices: [Int]?
    let biasIndices: [Int]?
    /// The CPU path (tests run every one the CPU supports).
    var cpu: CPULevel = CPUFeatures.level

    func run(_ io: KernelIO) {
        let (input, output) = (io.input(0), io.outputs[0])
        let scale = hasScale ? io.input(1) : nil
        let bias = hasBias ? io.input(2) : nil
        io.pool.parallelFor(rows, minimumChunk: Swift.max(1, (1 << 14) / Swift.max(size, 1))) { range in
            normalize(range, input, scale, bias, output)
        }
    }

    /// One thread's rows, out of line so both paths of `parallelFor` run the same
    /// compiled loops (see `BinaryKernel.compute`).
    @inline(never)
    private func normalize(_ rows: Range<Int>, _ input: UnsafePointer<Float>, _ scale: UnsafePointer<Float>?,
                           _ bias: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>) {
        if cpu >= .avx2 && scaleIndices == nil && biasIndices == nil {
            restore_layer_norm_rows_avx2(input + rows.lowerBound * size, output + rows.lowerBound * size, rows.count, size,
                                         epsilon, centered ? 1 : 0, scale, bias)
            return
        }
        for row in rows {
            let (x, y) = (input + row * size, output + row * size)
            // Sums in Double: rows of thousands of elements lose digits in Float.
            var mean: Float = 0
            if centered {
                var sum: Double = 0
                for j in 0..<size { sum += Double(x[j]) }
                mean = Float(sum / Double(size))
            }
            var squares: Double = 0
            for j in 0..<size {
                let deviation = Double(x[j] - mean)
                squares += deviation * deviation
            }
            let inverseDeviation = Float(1 / (squares / Double(size) + Double(epsilon)).squareRoot())
            for j in 0..<size { y[j] = (x[j] - mean) * inverseDeviation }
            if let scale {
                if let scaleIndices {
                    for j in 0..<size { y[j] *= scale[scaleIndices[j]] }
                } else {
                    for j in 0..<size { y[j] *= scale[j] }
                }
            }
            if let bias {
                if let biasIndices {
                    for j in 0..<size { y[j] += bias[biasIndices[j]] }
                } else {
                    for j in 0..<size { y[j] += bias[j] }
                }
            }
        }
    }
}

extension LayerNormalization: Differentiable {
    /// Reads X (its statistics are recomputed) and the scale.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        guard attributes.centered else {
            throw OpError.unsupported(node: name, "the gradient of RMS normalisation (layerNorm not centered)")
        }
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (scale, bias) = (input(inputs, 1), input(inputs, 2))
        let normalized = try normalizedShape(x.shape, scale: scale?.shape, bias: bias?.shape)
        let size = normalized.reduce(1, *)
        return LayerNormalizationBackward(
            rule: NormalizationGradient(rows: size == 0 ? 0 : x.count / size, size: size, epsilon: attributes.epsilon),
            scaleIndices: scale.map { ShapeRules.broadcastSourceIndices($0.shape, to: normalized) },
            biasIndices: bias.map { ShapeRules.broadcastSourceIndices($0.shape, to: normalized) })
    }
}

/// `NormalizationGradient` over rows of the normalised axes, γ and β per position (or
/// per element of a smaller shape broadcast to them: γ is gathered to every position
/// first, and the per-position sums are added back through the same indices).
struct LayerNormalizationBackward: BackwardKernel {
    let rule: NormalizationGradient
    /// The parameter element each position of a row reads.
    let scaleIndices: [Int]?, biasIndices: [Int]?

    private var statisticsBytes: Int { (rule.scratchBytes + 63) / 64 * 64 }
    private var rowBytes: Int { (rule.size * MemoryLayout<Float>.size + 63) / 64 * 64 }
    /// Statistics, then γ per position and the two per-position sums.
    var scratchBytes: Int { statisticsBytes + 3 * rowBytes }

    func run(_ io: BackwardIO) {
        guard let scratch = io.scratch else { preconditionFailure("layerNorm backward ran without scratch") }
        let statistics = scratch.assumingMemoryBound(to: Float.self)
        let gammas = (scratch + statisticsBytes).assumingMemoryBound(to: Float.self)
        let scaleSums = (scratch + statisticsBytes + rowBytes).assumingMemoryBound(to: Float.self)
        let biasSums = (scratch + statisticsBytes + 2 * rowBytes).assumingMemoryBound(to: Float.self)
        let (x, gradient) = (io.input(0), io.outputGradient)
        var gamma: UnsafePointer<Float>?
        if let scaleIndices {
            let scale = io.input(1)
            for j in 0..<rule.size { gammas[j] = scale[scaleIndices[j]] }
            gamma = UnsafePointer(gammas)
        }
        rule.inputGradient(x: x, gradient: gradient, target: io.inputGradient(0), statistics: statistics,
                           scale: .perPosition(gamma), pool: io.pool)
        let scaleTarget = scaleIndices == nil ? nil : io.inputGradient(1)
        let biasTarget = biasIndices == nil ? nil : io.inputGradient(2)
        guard scaleTarget != nil || biasTarget != nil else { return }
        rule.positionSums(x: x, gradient: gradient, statistics: statistics, scaleSums: scaleSums, biasSums: biasSums,
                          pool: io.pool)
        if let scaleTarget, let scaleIndices {
            for j in 0..<rule.size { scaleTarget[scaleIndices[j]] += scaleSums[j] }
        }
        if let biasTarget, let biasIndices {
            for j in 0..<rule.size { biasTarget[biasIndices[j]] += biasSums[j] }
        }
    }
}

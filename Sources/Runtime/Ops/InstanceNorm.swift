import Format

/// `instanceNorm`: normalises each (image, channel) plane to zero mean and unit variance
/// over its spatial axes, then scales and shifts per channel:
/// Y = (X − mean) / sqrt(var + epsilon) · scale[c] + bias[c].
public struct InstanceNormalization: Operator {
    let name: String
    let attributes: InstanceNormAttributes

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let scale = try ShapeRules.required(inputs, 1, node: name)
        let bias = try ShapeRules.required(inputs, 2, node: name)
        guard x.rank >= 3 else { throw OpError.shape(node: name, "instanceNorm needs X [N,C,spatial...], found \(x.shape)") }
        guard scale.shape == [x.shape[1]], bias.shape == [x.shape[1]] else {
            throw OpError.shape(node: name, "scale \(scale.shape) and bias \(bias.shape) should both be [\(x.shape[1])]")
        }
        return [ValueFact(dtype: .float32, shape: x.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let facts = inputs.map { $0.map { ValueFact(dtype: $0.dtype, shape: $0.shape) } }
        let shape = try outputs(for: facts)[0].shape
        guard let xTensor = inputs[0], let scale = inputs[1]?.floats, let bias = inputs[2]?.floats else {
            throw GraphError.missingInput(node: name, index: 0)
        }
        let x = xTensor.floats
        let channels = shape[1], planeSize = shape[2...].reduce(1, *)
        var y = [Float](repeating: 0, count: x.count)
        for plane in 0..<(shape[0] * channels) {
            let values = x[(plane * planeSize)..<((plane + 1) * planeSize)]
            // Two passes in double: the textbook definition, exact enough to be the oracle.
            let mean = values.reduce(0.0) { $0 + Double($1) } / Double(planeSize)
            let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(planeSize)
            let factor = Double(scale[plane % channels]) / (variance + Double(attributes.epsilon)).squareRoot()
            for index in values.indices {
                y[index] = Float((Double(x[index]) - mean) * factor + Double(bias[plane % channels]))
            }
        }
        return [HostTensor(shape: shape, floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let shape = outputs[0].shape
        return InstanceNormalizationKernel(planes: shape[0] * shape[1], channels: shape[1],
                                           planeSize: shape[2...].reduce(1, *), epsilon: attributes.epsilon)
    }
}

/// Instance normalisation plane by plane (planes spread over threads): two passes, the
/// mean first and then the squared deviations from it, which stays accurate when the mean
/// is large against the spread (a one-pass E[x²]−E[x]² loses all digits there).
/// Each pass sums 16 lanes in float over blocks of 1024 elements and the block sums in
/// double, so rounding error does not grow with the image size.
struct InstanceNormalizationKernel: Kernel {
    let planes: Int, channels: Int, planeSize: Int
    let epsilon: Float

    private static let block = 1024

    func run(_ io: KernelIO) {
        let x = io.input(0), scale = io.input(1), bias = io.input(2), y = io.outputs[0]
        io.pool.parallelFor(planes) { range in
            for plane in range {
                let input = x + plane * planeSize, output = y + plane * planeSize
                let mean = Float(sum(input) { $0 } / Double(planeSize))
                let variance = sum(input) { ($0 - mean) * ($0 - mean) } / Double(planeSize)
                let factor = scale[plane % channels] / Float((variance + Double(epsilon)).squareRoot())
                let shift = bias[plane % channels]
                // (x − mean)·factor, not x·factor + (bias − mean·factor): the latter cancels
                // digits when the mean is large.
                for i in 0..<planeSize { output[i] = (input[i] - mean) * factor + shift }
            }
        }
    }

    /// The sum of `term` over one plane, blocked as described on the type.
    @inline(__always)
    private func sum(_ input: UnsafePointer<Float>, _ term: (SIMD16<Float>) -> SIMD16<Float>) -> Double {
        let raw = UnsafeRawPointer(input)
        let vectors = planeSize / 16
        var total = 0.0
        var start = 0
        while start < vectors {
            let end = min(start + Self.block / 16, vectors)
            var lanes = SIMD16<Float>()
            for v in start..<end {
                lanes += term(raw.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self))
            }
            total += Double(lanes.sum())
            start = end
        }
        var tail = SIMD16<Float>()
        for i in (vectors * 16)..<planeSize { tail[i - vectors * 16] = input[i] }
        // Zero lanes of a partial vector must contribute nothing: mask the term.
        let tailTerms = term(tail)
        for lane in 0..<(planeSize - vectors * 16) { total += Double(tailTerms[lane]) }
        return total
    }
}

extension InstanceNormalization: Differentiable {
    /// Reads X (its statistics are recomputed) and the scale.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let shape = outputs[0].shape
        return InstanceNormalizationBackward(
            batch: shape[0], channels: shape[1],
            rule: NormalizationGradient(rows: shape[0] * shape[1], size: shape[2...].reduce(1, *), epsilon: attributes.epsilon))
    }
}

/// `NormalizationGradient` over planes; the per-plane sums it leaves are the γ and β
/// gradients of each plane's channel.
struct InstanceNormalizationBackward: BackwardKernel {
    let batch: Int, channels: Int
    let rule: NormalizationGradient

    var scratchBytes: Int { rule.scratchBytes }

    func run(_ io: BackwardIO) {
        guard let scratch = io.scratch else { preconditionFailure("instanceNorm backward ran without scratch") }
        let statistics = scratch.assumingMemoryBound(to: Float.self)
        rule.inputGradient(x: io.input(0), gradient: io.outputGradient, target: io.inputGradient(0), statistics: statistics,
                           scale: .perRow(io.input(1), channels: channels), pool: io.pool)
        let perRow = NormalizationGradient.statisticsPerRow
        for n in 0..<batch {
            for c in 0..<channels {
                let stats = statistics + perRow * (n * channels + c)
                io.inputGradient(1)?[c] += stats[3]
                io.inputGradient(2)?[c] += stats[2]
            }
        }
    }
}

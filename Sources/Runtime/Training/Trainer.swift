/// Trains a model's chosen weights: a `GradientPlan` for the inputs' shapes, the
/// writable copies of the weights and an optimizer that steps them after each pass.
public final class Trainer {
    public let plan: GradientPlan
    public let weights: TrainableWeights
    public let optimizer: Optimizer

    public init(model: Model, inputShapes: [[Int]], weights: TrainableWeights, optimizer: Optimizer,
                threads: Int) throws {
        plan = try GradientPlan(model: model, inputShapes: inputShapes, parameters: weights.names, threads: threads)
        self.weights = weights
        self.optimizer = optimizer
    }

    /// One optimisation step: forward, `loss` (given graph output 0, it writes ∂L/∂output
    /// and returns L), backward, and the optimizer's update. Returns L.
    @discardableResult
    public func step(inputs: [HostTensor],
                     loss: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws -> Float) rethrows -> Float {
        let value = try plan.run(inputs: inputs, parameters: weights.pointers, loss: loss)
        optimizer.step(values: weights.buffers, gradients: weights.names.indices.map { plan.parameterGradient($0) })
        return value
    }

    /// One optimisation step on a mini-batch, one sample at a time (graphs exported for
    /// batch 1 stay usable): the gradient is the mean of the samples' gradients, as for
    /// the mean of their losses. `loss(sample, output, ∂L/∂output)` returns the sample's L.
    /// Returns the mean L.
    @discardableResult
    public func step(batch: [[HostTensor]],
                     loss: (Int, UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws -> Float) rethrows -> Float {
        guard batch.count > 1 else {
            return try step(inputs: batch.first ?? []) { output, gradient in try loss(0, output, gradient) }
        }
        var sums = weights.sizes.map { [Float](repeating: 0, count: $0) }
        var total: Float = 0
        for (sample, inputs) in batch.enumerated() {
            total += try plan.run(inputs: inputs, parameters: weights.pointers) { output, gradient in
                try loss(sample, output, gradient)
            }
            for index in sums.indices {
                let gradient = plan.parameterGradient(index)
                sums[index].withUnsafeMutableBufferPointer { sum in
                    for i in 0..<sum.count { sum[i] += gradient[i] }
                }
            }
        }
        let scale = 1 / Float(batch.count)
        for index in sums.indices { sums[index] = sums[index].map { $0 * scale } }
        withBuffers(sums) { optimizer.step(values: weights.buffers, gradients: $0) }
        return total * scale
    }

    /// Graph output 0 with the current weights.
    public func output(inputs: [HostTensor]) -> HostTensor {
        plan.forward(inputs: inputs, parameters: weights.pointers)
    }
}

/// Calls `body` with read-only buffers of each array's elements.
private func withBuffers<Result>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) -> Result) -> Result {
    func nest(_ index: Int, _ buffers: [UnsafeBufferPointer<Float>]) -> Result {
        guard index < arrays.count else { return body(buffers) }
        return arrays[index].withUnsafeBufferPointer { nest(index + 1, buffers + [$0]) }
    }
    return nest(0, [])
}

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

    /// Graph output 0 with the current weights.
    public func output(inputs: [HostTensor]) -> HostTensor {
        plan.forward(inputs: inputs, parameters: weights.pointers)
    }
}

import Foundation

/// How an optimizer moves parameters along their gradients.
public enum OptimizerRule: Sendable, Equatable {
    /// Adam (Kingma & Ba, 2015) with bias-corrected moments; weight decay is decoupled
    /// (AdamW: w ← w − lr·decay·w beside the Adam step), so it does not pass through the
    /// moment estimates.
    case adam(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8)
    /// Stochastic gradient descent with (heavy-ball) momentum, as torch.optim.SGD:
    /// v ← μ·v + g, w ← w − lr·v; weight decay adds decay·w to g.
    case sgd(momentum: Float = 0.9)
}

/// The learning rate over steps, as a factor of each group's base rate.
public enum LearningRateSchedule: Sendable, Equatable {
    case constant
    /// × gamma every `every` steps.
    case step(every: Int, gamma: Float)
    /// × gamma each step.
    case exponential(gamma: Float)
    /// Half a cosine from 1 down to `floor` over `steps` steps, then `floor`.
    case cosine(steps: Int, floor: Float = 0)

    /// The factor at step `step` (0 for the first).
    public func factor(at step: Int) -> Float {
        switch self {
        case .constant: return 1
        case .step(let every, let gamma): return Foundation.pow(gamma, Float(step / max(every, 1)))
        case .exponential(let gamma): return Foundation.pow(gamma, Float(step))
        case .cosine(let steps, let floor):
            let progress = min(Float(step) / Float(max(steps, 1)), 1)
            return floor + (1 - floor) * 0.5 * (1 + Foundation.cos(Float.pi * progress))
        }
    }
}

/// Parameters trained with one learning rate and weight decay.
public struct ParameterGroup: Sendable, Equatable {
    /// Indices into the trained parameters (`TrainableWeights.names`).
    public var parameters: [Int]
    public var learningRate: Float
    public var weightDecay: Float

    public init(parameters: [Int], learningRate: Float, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}

/// Updates parameters in place from their gradients, keeping per-parameter state
/// (Adam's moments, SGD's velocity) between steps.
public final class Optimizer {
    public let rule: OptimizerRule
    public private(set) var groups: [ParameterGroup]
    public let schedule: LearningRateSchedule
    /// Steps taken so far.
    public private(set) var steps = 0
    /// Per parameter: first moment or velocity, and (Adam) second moment.
    private var first: [[Float]]
    private var second: [[Float]]

    /// `sizes` gives each parameter's element count; every parameter in a group must exist.
    public init(rule: OptimizerRule, groups: [ParameterGroup], schedule: LearningRateSchedule = .constant, sizes: [Int]) {
        self.rule = rule
        self.groups = groups
        self.schedule = schedule
        first = sizes.map { [Float](repeating: 0, count: $0) }
        if case .adam = rule {
            second = sizes.map { [Float](repeating: 0, count: $0) }
        } else {
            second = sizes.map { _ in [] }
        }
    }

    /// Sets the base learning rate of `group` from the next step on, keeping the state
    /// (as assigning a torch.optim param_group's "lr" does; 0 freezes its parameters).
    public func setLearningRate(_ rate: Float, of group: Int) { groups[group].learningRate = rate }

    /// The learning rate of `group` at the next step.
    public func learningRate(of group: Int) -> Float { groups[group].learningRate * schedule.factor(at: steps) }

    /// One step: `values[i]` moves along `gradients[i]` for every parameter of every group.
    public func step(values: [UnsafeMutableBufferPointer<Float>], gradients: [UnsafeBufferPointer<Float>]) {
        let t = Float(steps + 1)
        for (groupIndex, group) in groups.enumerated() {
            let rate = learningRate(of: groupIndex)
            let decay = group.weightDecay
            for index in group.parameters {
                let (w, g) = (values[index], gradients[index])
                precondition(w.count == g.count && w.count == first[index].count, "parameter \(index) changed size")
                switch rule {
                case .adam(let beta1, let beta2, let epsilon):
                    let correction1 = 1 - Foundation.pow(beta1, t), correction2 = 1 - Foundation.pow(beta2, t)
                    // w ← w − lr·m̂ / (√v̂ + ε), m̂ = m / (1 − β₁ᵗ), √v̂ = √v / √(1 − β₂ᵗ) (PyTorch's form).
                    let stepSize = rate / correction1
                    let inverseRootCorrection = 1 / correction2.squareRoot()
                    first[index].withUnsafeMutableBufferPointer { m in
                        second[index].withUnsafeMutableBufferPointer { v in
                            for i in 0..<w.count {
                                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                                w[i] -= rate * decay * w[i]
                                w[i] -= stepSize * m[i] / (v[i].squareRoot() * inverseRootCorrection + epsilon)
                            }
                        }
                    }
                case .sgd(let momentum):
                    first[index].withUnsafeMutableBufferPointer { velocity in
                        for i in 0..<w.count {
                            let gradient = g[i] + decay * w[i]
                            velocity[i] = steps == 0 ? gradient : momentum * velocity[i] + gradient
                            w[i] -= rate * velocity[i]
                        }
                    }
                }
            }
        }
        steps += 1
    }
}

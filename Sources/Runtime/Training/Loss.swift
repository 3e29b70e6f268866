/// A loss between a network's output and a target of the same shape, with its gradient.
public enum Loss: String, Sendable, CaseIterable {
    /// mean((output − target)²)
    case mse
    /// mean(|output − target|); the gradient at 0 is 0, as autograd's.
    case l1

    /// L over elements where `weights` (when given) is nonzero, weighting each element —
    /// a mask for inpainting — divided by the element count; writes ∂L/∂output.
    public func evaluate(output: UnsafeBufferPointer<Float>, target: UnsafeBufferPointer<Float>,
                         weights: UnsafeBufferPointer<Float>? = nil, gradient: UnsafeMutableBufferPointer<Float>) -> Float {
        precondition(output.count == target.count && gradient.count == output.count, "loss of tensors of different sizes")
        let scale = 1 / Float(max(output.count, 1))
        var total = 0.0
        for i in 0..<output.count {
            let weight = weights?[i] ?? 1
            let difference = output[i] - target[i]
            switch self {
            case .mse:
                total += Double(weight * difference * difference)
                gradient[i] = 2 * weight * difference * scale
            case .l1:
                total += Double(weight * abs(difference))
                gradient[i] = difference > 0 ? weight * scale : (difference < 0 ? -weight * scale : 0)
            }
        }
        return Float(total) * scale
    }
}

import CKernels
import Foundation
import Format

/// A `UnaryFunction` with its parameters: the activation fused into conv/linear and the
/// function of the `unary` op. One definition of the math serves both.
public struct Activation: Sendable, Equatable {
    public var function: UnaryFunction
    public var alpha: Float
    public var beta: Float
    public var min: Float
    public var max: Float

    public static let identity = Activation(function: .identity)

    public init(function: UnaryFunction, alpha: Float? = nil, beta: Float? = nil,
                min: Float = -.infinity, max: Float = .infinity) {
        self.function = function
        self.alpha = alpha ?? Activation.defaultAlpha(function)
        self.beta = beta ?? (function == .hardSigmoid ? 0.5 : 0)
        self.min = min
        self.max = max
    }

    /// Reads `functionKey` (default identity) and alpha/beta/min/max from a node.
    public init(node: Node, functionKey: String) throws {
        let function: UnaryFunction = try node.enumeration(functionKey, default: .identity)
        self.init(function: function,
                  alpha: try node.attributes["alpha"].map { _ in try node.float("alpha") },
                  beta: try node.attributes["beta"].map { _ in try node.float("beta") },
                  min: try node.float("min", default: -.infinity),
                  max: try node.float("max", default: .infinity))
    }

    /// The node attributes that describe this activation under `functionKey`.
    public func attributes(functionKey: String) -> [String: Attribute] {
        var result: [String: Attribute] = [functionKey: .string(function.rawValue)]
        if alpha != Activation.defaultAlpha(function) { result["alpha"] = .float(alpha) }
        if function == .hardSigmoid && beta != 0.5 { result["beta"] = .float(beta) }
        if min != -.infinity { result["min"] = .float(min) }
        if max != .infinity { result["max"] = .float(max) }
        return result
    }

    private static func defaultAlpha(_ function: UnaryFunction) -> Float {
        switch function {
        case .leakyRelu: 0.01
        case .elu: 1
        case .hardSigmoid: 0.2
        default: 0
        }
    }

    /// The function at one point (reference semantics, also used by fast kernels).
    @inlinable
    public func apply(_ x: Float) -> Float {
        switch function {
        case .identity: return x
        case .relu: return x > 0 ? x : 0
        case .leakyRelu: return x >= 0 ? x : alpha * x
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        case .clip: return Swift.min(Swift.max(x, min), max)
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .abs: return Swift.abs(x)
        case .neg: return -x
        case .reciprocal: return 1 / x
        case .floor: return x.rounded(.down)
        case .ceil: return x.rounded(.up)
        case .round: return x.rounded(.toNearestOrEven)
        case .erf: return Foundation.erf(x)
        case .sin: return Foundation.sin(x)
        case .cos: return Foundation.cos(x)
        case .not: return x == 0 ? 1 : 0
        case .gelu: return 0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752))
        case .geluTanh:
            return 0.5 * x * (1 + Foundation.tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)))
        case .silu: return x / (1 + Foundation.exp(-x))
        case .elu: return x >= 0 ? x : alpha * (Foundation.exp(x) - 1)
        case .hardSigmoid: return Swift.max(0, Swift.min(1, alpha * x + beta))
        case .softplus: return x > 20 ? x : Foundation.log1p(Foundation.exp(x))
        }
    }

    /// Applies the function in place to `count` floats.
    @inlinable
    public func apply(_ values: UnsafeMutablePointer<Float>, count: Int) {
        switch function {
        case .identity: return
        case .relu: for i in 0..<count where values[i] < 0 { values[i] = 0 }
        // 16 lanes at a time with glibc's vector erff (≤ 4 ulp from the scalar one).
        case .gelu where CPUFeatures.avx512: restore_gelu_avx512(values, count)
        default: for i in 0..<count { values[i] = apply(values[i]) }
        }
    }
}

import Foundation

/// A `UnaryFunction` with its parameters: the function of the `unary` op and the
/// activation fused into `conv`, `convTranspose` and `linear`. One definition of the
/// math serves the reference kernels, the fast kernels and constant folding.
public struct Activation: Hashable, Sendable {
    public var function: UnaryFunction
    public var alpha: Float
    public var beta: Float
    public var min: Float
    public var max: Float

    public static let identity = Activation(function: .identity)

    /// `alpha` and `beta` default per function (leakyRelu 0.01, elu 1, hardSigmoid 0.2
    /// and 0.5, otherwise 0); `min` and `max` (clip) to ±infinity.
    public init(function: UnaryFunction, alpha: Float? = nil, beta: Float? = nil,
                min: Float = -.infinity, max: Float = .infinity) {
        self.function = function
        self.alpha = alpha ?? function.defaultAlpha
        self.beta = beta ?? function.defaultBeta
        self.min = min
        self.max = max
    }

    /// Node attribute keys of the parameters, beside the key that names the function.
    static let parameterKeys = ["alpha", "beta", "min", "max"]

    /// Reads the function under `functionKey` (absent: identity) and its parameters.
    init(attributes: [String: Attribute], functionKey: String, node: String) throws {
        func read<Value: AttributeValue>(_ key: String, as type: Value.Type) throws -> Value? {
            try attributes[key].map { try Value.decoded($0, key: key, node: node) }
        }
        self.init(function: try read(functionKey, as: UnaryFunction.self) ?? .identity,
                  alpha: try read("alpha", as: Float.self), beta: try read("beta", as: Float.self),
                  min: try read("min", as: Float.self) ?? -.infinity, max: try read("max", as: Float.self) ?? .infinity)
    }

    /// The node attributes that describe this activation under `functionKey`; parameters
    /// at their defaults are left out, and so is the identity.
    func attributes(functionKey: String) -> [String: Attribute] {
        var result: [String: Attribute] = [:]
        for (key, value, defaultValue) in [("alpha", alpha, function.defaultAlpha), ("beta", beta, function.defaultBeta),
                                           ("min", min, -.infinity), ("max", max, .infinity)]
        where !value.isStoredAlike(defaultValue) {
            result[key] = .float(value)
        }
        if function != .identity || !result.isEmpty { result[functionKey] = function.attribute }
        return result
    }

    /// The function at one point: the reference semantics, also used by fast kernels.
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
        case .tan: return Foundation.tan(x)
        case .asin: return Foundation.asin(x)
        case .acos: return Foundation.acos(x)
        case .atan: return Foundation.atan(x)
        case .sinh: return Foundation.sinh(x)
        case .cosh: return Foundation.cosh(x)
        case .asinh: return Foundation.asinh(x)
        case .acosh: return Foundation.acosh(x)
        case .atanh: return Foundation.atanh(x)
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
}

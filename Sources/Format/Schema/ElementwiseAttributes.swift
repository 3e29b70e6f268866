extension UnaryFunction: NamedAttributeValue {
    /// Whether a conv, transposed conv or linear can apply this function to its result
    /// in the kernel (`Op.fusedActivation`): a pure map of one value whose fast
    /// kernel exists. Logic (`not`) and the rounding and math functions that exported
    /// networks use on shape arithmetic stay separate ops.
    public var isFusableActivation: Bool {
        switch self {
        case .relu, .leakyRelu, .sigmoid, .tanh, .clip, .gelu, .geluTanh, .silu, .elu, .hardSigmoid, .softplus: true
        case .identity, .exp, .log, .sqrt, .abs, .neg, .reciprocal, .floor, .ceil, .round, .erf, .sin, .cos, .not, .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh, .atanh: false
        }
    }

    /// The default of `Activation.alpha` for this function.
    public var defaultAlpha: Float {
        switch self {
        case .leakyRelu: 0.01
        case .elu: 1
        case .hardSigmoid: 0.2
        case .identity, .relu, .sigmoid, .tanh, .exp, .log, .sqrt, .abs, .neg, .reciprocal, .floor, .ceil, .round,
             .erf, .sin, .cos, .not, .clip, .gelu, .geluTanh, .silu, .softplus, .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh, .atanh: 0
        }
    }

    /// The default of `Activation.beta` for this function.
    public var defaultBeta: Float {
        switch self {
        case .hardSigmoid: 0.5
        case .identity, .relu, .leakyRelu, .sigmoid, .tanh, .exp, .log, .sqrt, .abs, .neg, .reciprocal, .floor, .ceil,
             .round, .erf, .sin, .cos, .not, .clip, .gelu, .geluTanh, .silu, .elu, .softplus, .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh, .atanh: 0
        }
    }
}

extension BinaryFunction: NamedAttributeValue {}

/// How `unary` is stored: its `Activation` under the key "function" (`Op.unary`
/// carries the activation itself).
struct UnaryAttributes: OpAttributes {
    var function = Activation.identity

    init() {}
    init(function: Activation) { self.function = function }

    static let fields: [AttributeField<Self>] = [.activation("function", \.function)]
}

/// How `binary` is stored: the function under "function", required
/// (`Op.binary` carries the function itself).
struct BinaryAttributes: OpAttributes {
    var function = BinaryFunction.add

    init() {}
    init(function: BinaryFunction) { self.function = function }

    static let fields: [AttributeField<Self>] = [.required("function", \.function)]
}

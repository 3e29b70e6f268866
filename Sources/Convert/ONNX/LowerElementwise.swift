import Format

/// Element-wise ONNX ops: `unary` with a function and its parameters, `binary` with a
/// function (variadic Max/Min/Sum as chains), `where`.
enum LowerElementwise {
    /// ONNX ops that are one unary function without parameters, with their since-versions
    /// (see `Lowering`); later versions only added element types.
    static let plainUnary: [String: (function: UnaryFunction, versions: [Int])] = [
        "Relu": (.relu, [6, 13, 14]), "Sigmoid": (.sigmoid, [6, 13]), "Tanh": (.tanh, [6, 13]),
        "Exp": (.exp, [6, 13]), "Log": (.log, [6, 13]), "Sqrt": (.sqrt, [6, 13]), "Abs": (.abs, [6, 13]),
        "Neg": (.neg, [6, 13]), "Reciprocal": (.reciprocal, [6, 13]), "Floor": (.floor, [6, 13]),
        "Ceil": (.ceil, [6, 13]), "Round": (.round, [11, 22]), "Erf": (.erf, [9, 13]), "Sin": (.sin, [7, 22]),
        "Cos": (.cos, [7, 22]), "Not": (.not, [1]), "Softplus": (.softplus, [1, 22]),
        "Tan": (.tan, [7, 22]), "Asin": (.asin, [7, 22]), "Acos": (.acos, [7, 22]), "Atan": (.atan, [7, 22]),
        "Sinh": (.sinh, [9, 22]), "Cosh": (.cosh, [9, 22]), "Asinh": (.asinh, [9, 22]), "Acosh": (.acosh, [9, 22]),
        "Atanh": (.atanh, [9, 22]),
    ]

    /// ONNX ops that are one binary function of two broadcast inputs, with their since-versions.
    static let plainBinary: [String: (function: BinaryFunction, versions: [Int])] = [
        "Add": (.add, [7, 13, 14]), "Sub": (.sub, [7, 13, 14]), "Mul": (.mul, [7, 13, 14]), "Div": (.div, [7, 13, 14]),
        "PRelu": (.prelu, [7, 9, 16]),
        "Equal": (.equal, [7, 11, 13, 19]), "Less": (.less, [7, 9, 13]), "Greater": (.greater, [7, 9, 13]),
        "LessOrEqual": (.lessOrEqual, [12, 16]), "GreaterOrEqual": (.greaterOrEqual, [12, 16]),
        "And": (.and, [7]), "Or": (.or, [7]), "Xor": (.xor, [7]),
    ]

    /// ONNX ops with any number of inputs, folded left to right, with their since-versions.
    static let variadic: [String: (function: BinaryFunction, versions: [Int])] = [
        "Max": (.max, [6, 8, 12, 13]), "Min": (.min, [6, 8, 12, 13]), "Sum": (.add, [6, 8, 13]),
    ]

    static func unary(_ function: UnaryFunction) -> LoweringRule {
        { context, node in
            try emitUnary(&context, node, Activation(function: function))
        }
    }

    static func binary(_ function: BinaryFunction) -> LoweringRule {
        { context, node in
            context.builder.emit(node.name, .binary(function), inputs: [try node.requiredInput(0), try node.requiredInput(1)],
                                 outputs: [try node.output()])
        }
    }

    /// Pow: the result has the base's type whatever the exponent's (from version 12 an
    /// integer exponent may raise a float base). An exponent known to be of another type
    /// than the base (a computed base counts as float32, as nearly all are) is cast like
    /// the base first; one of unknown type goes as it is (Restore's pow then requires both
    /// of one kind), so Pow(x, 2.0) stays one node for the fusions that look for it.
    static func pow(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let base = try node.requiredInput(0)
        var exponent = try node.requiredInput(1)
        if let exponentType = context.elementType(of: exponent), exponentType != context.elementType(of: base) ?? .float32 {
            exponent = context.builder.emitValue(named: "\(node.name)/exponent", .cast(CastAttributes()), inputs: [exponent, base])
        }
        context.builder.emit(node.name, .binary(.pow), inputs: [base, exponent], outputs: [try node.output()])
    }

    /// Max(a, b, c) = max(max(a, b), c); a single input is the value itself.
    static func chain(_ function: BinaryFunction) -> LoweringRule {
        { context, node in
            let inputs = node.inputs.filter { !$0.isEmpty }
            guard var accumulated = inputs.first else { throw LoweringFailure.invalid("needs at least one input") }
            let output = try node.output()
            guard inputs.count > 1 else {
                context.builder.alias(output, to: accumulated, node: node.name)
                return
            }
            for (index, next) in inputs.enumerated().dropFirst() {
                if index == inputs.count - 1 {
                    context.builder.emit(node.name, .binary(function), inputs: [accumulated, next], outputs: [output])
                } else {
                    accumulated = context.builder.binary(function, accumulated, next, name: "\(node.name)/\(index)")
                }
            }
        }
    }

    /// Mod: fmod=1 is C's fmod, A − trunc(A/B)·B, which Restore's `mod` computes for
    /// floats; Restore cannot run it on integers. fmod=0 is A − floor(A/B)·B, the result
    /// with B's sign: ONNX allows it for integers only before version 28 and for floats too
    /// from 28 on. Restore's `mod` gives it for integers, and fmod for floats, so unless both
    /// inputs are known integers it is lowered as r = fmod(A, B), then r + B where r and B
    /// have opposite signs (r·B < 0; r − r is a zero of r's type): this is ONNX's
    /// definition, including the ±infinity divisor cases, for floats and integers alike. A
    /// zero result keeps A's sign (ONNX 28 gives B's; the values compare equal).
    static func mod(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let inputs = [try node.requiredInput(0), try node.requiredInput(1)]
        let types = inputs.map { context.elementType(of: $0) }
        if try node.flag("fmod", default: false) {
            if types.contains(where: { $0?.isFloatingPoint == false }) { throw LoweringFailure.unsupported("fmod=1 on integers") }
            return try binary(.mod)(&context, node)
        }
        if types.allSatisfy({ $0?.isFloatingPoint == false }) { return try binary(.mod)(&context, node) }
        let remainder = context.builder.binary(.mod, inputs[0], inputs[1], name: "\(node.name)/fmod")
        let product = context.builder.binary(.mul, remainder, inputs[1], name: "\(node.name)/product")
        let zero = context.builder.binary(.sub, remainder, remainder, name: "\(node.name)/zero")
        let opposite = context.builder.binary(.less, product, zero, name: "\(node.name)/opposite")
        let shifted = context.builder.binary(.add, remainder, inputs[1], name: "\(node.name)/shifted")
        context.builder.emit(node.name, .where, inputs: [opposite, shifted, remainder], outputs: [try node.output()])
    }

    /// LeakyRelu, Elu and HardSigmoid: ONNX's defaults of alpha and beta are those of
    /// `Activation` (leakyRelu 0.01, elu 1, hardSigmoid 0.2 and 0.5).
    static func leakyRelu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try emitUnary(&context, node, Activation(function: .leakyRelu, alpha: try node.float("alpha")))
    }

    static func elu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try emitUnary(&context, node, Activation(function: .elu, alpha: try node.float("alpha")))
    }

    static func hardSigmoid(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try emitUnary(&context, node, Activation(function: .hardSigmoid, alpha: try node.float("alpha"), beta: try node.float("beta")))
    }

    /// HardSwish(x) = x·HardSigmoid(x) with alpha 1/6, beta 1/2.
    static func hardSwish(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let gate = context.builder.unary(Activation(function: .hardSigmoid, alpha: 1.0 / 6, beta: 0.5), input,
                                         name: "\(node.name)/gate")
        context.builder.emit(node.name, .binary(.mul), inputs: [input, gate], outputs: [try node.output()])
    }

    /// Gelu (opset 20): approximate "none" is the erf form, "tanh" the tanh form.
    static func gelu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let function = try node.named("approximate", default: .gelu, ["none": UnaryFunction.gelu, "tanh": .geluTanh])
        try emitUnary(&context, node, Activation(function: function))
    }

    /// Clip: bounds are attributes before opset 11 and optional inputs from 11 on, which
    /// must be constants because Restore's clip takes them as parameters.
    static func clip(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var activation = Activation(function: .clip)
        if context.opset < 11 {
            if let min = try node.float("min") { activation.min = min }
            if let max = try node.float("max") { activation.max = max }
        } else {
            for (index, role, bound) in [(1, "min", \Activation.min), (2, "max", \Activation.max)] {
                guard let values = try context.constantFloats(node, index, role: role) else { continue }
                guard values.count == 1 else { throw LoweringFailure.invalid("\(role) must be a scalar") }
                activation[keyPath: bound] = values[0]
            }
        }
        try emitUnary(&context, node, activation)
    }

    static func `where`(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        context.builder.emit(node.name, .where,
                             inputs: [try node.requiredInput(0), try node.requiredInput(1), try node.requiredInput(2)],
                             outputs: [try node.output()])
    }

    private static func emitUnary(_ context: inout LoweringContext, _ node: ONNXNode, _ activation: Activation) throws {
        context.builder.emit(node.name, .unary(activation), inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }
}

/// Element-wise ONNX ops written out as Restore's unary, binary and where ops.
extension LowerElementwise {
    /// Selu: gamma · elu(X, alpha); ONNX's defaults are SELU's constants.
    static func selu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let alpha = try node.float("alpha", default: 1.67326319217681884765625)
        let gamma = try node.float("gamma", default: 1.05070102214813232421875)
        let elu = context.builder.unary(Activation(function: .elu, alpha: alpha), try node.requiredInput(0), name: "\(node.name)/elu")
        let gammaName = context.builder.addConstant("\(node.name)/gamma", shape: [], floats: [gamma])
        context.builder.emit(node.name, .binary(.mul), inputs: [elu, gammaName], outputs: [try node.output()])
    }

    /// Celu: max(0, X) + min(0, alpha·(exp(X/alpha) − 1)) = alpha · elu(X/alpha, 1).
    static func celu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let alpha = context.builder.addConstant("\(node.name)/alpha", shape: [], floats: [try node.float("alpha", default: 1)])
        let scaled = context.builder.binary(.div, try node.requiredInput(0), alpha, name: "\(node.name)/scaled")
        let elu = context.builder.unary(Activation(function: .elu, alpha: 1), scaled, name: "\(node.name)/elu")
        context.builder.emit(node.name, .binary(.mul), inputs: [elu, alpha], outputs: [try node.output()])
    }

    /// ThresholdedRelu: X where X > alpha (default 1), else 0.
    static func thresholdedRelu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let alpha = context.builder.addConstant("\(node.name)/alpha", shape: [], floats: [try node.float("alpha", default: 1)])
        let zero = context.builder.addConstant("\(node.name)/zero", shape: [], floats: [0])
        let above = context.builder.binary(.greater, input, alpha, name: "\(node.name)/above")
        context.builder.emit(node.name, .where, inputs: [above, input, zero], outputs: [try node.output()])
    }

    /// Shrink: X + bias where X < −lambd, X − bias where X > lambd, else 0.
    static func shrink(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let lambd = try node.float("lambd", default: 0.5)
        let bias = context.builder.addConstant("\(node.name)/bias", shape: [], floats: [try node.float("bias", default: 0)])
        let lower = context.builder.addConstant("\(node.name)/lower", shape: [], floats: [-lambd])
        let upper = context.builder.addConstant("\(node.name)/upper", shape: [], floats: [lambd])
        let zero = context.builder.addConstant("\(node.name)/zero", shape: [], floats: [0])
        let below = context.builder.binary(.less, input, lower, name: "\(node.name)/below")
        let above = context.builder.binary(.greater, input, upper, name: "\(node.name)/above")
        let raised = context.builder.binary(.add, input, bias, name: "\(node.name)/raised")
        let lowered = context.builder.binary(.sub, input, bias, name: "\(node.name)/lowered")
        let upperPart = context.builder.emitValue(named: "\(node.name)/upper_part", .where, inputs: [above, lowered, zero])
        context.builder.emit(node.name, .where, inputs: [below, raised, upperPart], outputs: [try node.output()])
    }

    /// Softsign: X / (1 + |X|).
    static func softsign(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let one = context.builder.addConstant("\(node.name)/one", shape: [], floats: [1])
        let magnitude = context.builder.unary(Activation(function: .abs), input, name: "\(node.name)/abs")
        let denominator = context.builder.binary(.add, magnitude, one, name: "\(node.name)/denominator")
        context.builder.emit(node.name, .binary(.div), inputs: [input, denominator], outputs: [try node.output()])
    }

    /// Sign of a float input: 1, −1 or 0 (NaN gives 0 where ONNX's reference gives NaN).
    static func sign(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard context.elementType(of: input)?.isFloatingPoint != false else { throw LoweringFailure.unsupported("Sign of integers") }
        let zero = context.builder.addConstant("\(node.name)/zero", shape: [], floats: [0])
        let one = context.builder.addConstant("\(node.name)/one", shape: [], floats: [1])
        let minusOne = context.builder.addConstant("\(node.name)/minus_one", shape: [], floats: [-1])
        let positive = context.builder.binary(.greater, input, zero, name: "\(node.name)/positive")
        let negative = context.builder.binary(.less, input, zero, name: "\(node.name)/negative")
        let negativePart = context.builder.emitValue(named: "\(node.name)/negative_part", .where, inputs: [negative, minusOne, zero])
        context.builder.emit(node.name, .where, inputs: [positive, one, negativePart], outputs: [try node.output()])
    }

    /// Mean: the sum of the inputs (broadcast) divided by their count.
    static func mean(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let inputs = node.inputs.filter { !$0.isEmpty }
        guard var sum = inputs.first else { throw LoweringFailure.invalid("needs at least one input") }
        for (index, next) in inputs.enumerated().dropFirst() {
            sum = context.builder.binary(.add, sum, next, name: "\(node.name)/sum\(index)")
        }
        let count = context.builder.addConstant("\(node.name)/count", shape: [], floats: [Float(inputs.count)])
        context.builder.emit(node.name, .binary(.div), inputs: [sum, count], outputs: [try node.output()])
    }
}

extension LowerElementwise {
    /// Mish: X · tanh(softplus(X)).
    static func mish(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let softplus = context.builder.unary(Activation(function: .softplus), input, name: "\(node.name)/softplus")
        let gate = context.builder.unary(Activation(function: .tanh), softplus, name: "\(node.name)/tanh")
        context.builder.emit(node.name, .binary(.mul), inputs: [input, gate], outputs: [try node.output()])
    }

    /// Swish (24): X · sigmoid(alpha·X), alpha default 1 (SiLU, which the fusion passes recognise).
    static func swish(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let swished = swish(&context, try node.requiredInput(0), alpha: try node.float("alpha", default: 1), name: node.name)
        context.builder.emit(node.name, .binary(.mul), inputs: swished, outputs: [try node.output()])
    }

    /// x·sigmoid(alpha·x), but for its last multiplication: the two factors.
    private static func swish(_ context: inout LoweringContext, _ input: String, alpha: Float, name: String) -> [String] {
        var scaled = input
        if alpha != 1 {
            let alphaName = context.builder.addConstant("\(name)/alpha", shape: [], floats: [alpha])
            scaled = context.builder.binary(.mul, input, alphaName, name: "\(name)/scaled")
        }
        return [input, context.builder.unary(Activation(function: .sigmoid), scaled, name: "\(name)/sigmoid")]
    }

    /// SwiGLU (28): Swish_alpha(A)·B, A and B of the same shape.
    static func swiGLU(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let factors = swish(&context, try node.requiredInput(0), alpha: try node.float("alpha", default: 1), name: node.name)
        let gate = context.builder.binary(.mul, factors[0], factors[1], name: "\(node.name)/swish")
        context.builder.emit(node.name, .binary(.mul), inputs: [gate, try node.requiredInput(1)], outputs: [try node.output()])
    }
}

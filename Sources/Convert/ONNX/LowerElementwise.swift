import Format

/// Element-wise ONNX ops: `unary` with a function and its parameters, `binary` with a
/// function (variadic Max/Min/Sum as chains), `where`.
enum LowerElementwise {
    /// ONNX ops that are one unary function without parameters.
    static let plainUnary: [String: UnaryFunction] = [
        "Relu": .relu, "Sigmoid": .sigmoid, "Tanh": .tanh, "Exp": .exp, "Log": .log, "Sqrt": .sqrt,
        "Abs": .abs, "Neg": .neg, "Reciprocal": .reciprocal, "Floor": .floor, "Ceil": .ceil,
        "Round": .round, "Erf": .erf, "Sin": .sin, "Cos": .cos, "Not": .not, "Softplus": .softplus,
    ]

    /// ONNX ops that are one binary function of two broadcast inputs.
    static let plainBinary: [String: BinaryFunction] = [
        "Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Pow": .pow, "PRelu": .prelu,
        "Equal": .equal, "Less": .less, "Greater": .greater, "LessOrEqual": .lessOrEqual,
        "GreaterOrEqual": .greaterOrEqual, "And": .and, "Or": .or, "Xor": .xor,
    ]

    /// ONNX ops with any number of inputs, folded left to right.
    static let variadic: [String: BinaryFunction] = ["Max": .max, "Min": .min, "Sum": .add]

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

    /// Mod: fmod=0 is integer modulo with the divisor's sign, fmod=1 is C fmod (which
    /// ONNX requires for floats). Restore's `mod` does the former for integers and fmod
    /// for floats, which covers every valid use except fmod=1 on integers.
    static func mod(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        if try node.flag("fmod", default: false),
           [node.input(0), node.input(1)].contains(where: { $0.flatMap(context.builder.constant)?.dtype.isFloatingPoint == false }) {
            throw LoweringFailure.unsupported("fmod=1 on integers")
        }
        try binary(.mod)(&context, node)
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

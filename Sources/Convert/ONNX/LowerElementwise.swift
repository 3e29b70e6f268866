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
            try emitUnary(&context, node, function, parameters: [:])
        }
    }

    static func binary(_ function: BinaryFunction) -> LoweringRule {
        { context, node in
            try context.emit(node.name, .binary, inputs: [try node.requiredInput(0), try node.requiredInput(1)],
                         outputs: [try node.output()], attributes: ["function": .string(function.rawValue)])
        }
    }

    /// Max(a, b, c) = max(max(a, b), c); a single input is the value itself.
    static func chain(_ function: BinaryFunction) -> LoweringRule {
        { context, node in
            let inputs = node.inputs.filter { !$0.isEmpty }
            guard var accumulated = inputs.first else { throw LoweringFailure.invalid("needs at least one input") }
            let output = try node.output()
            guard inputs.count > 1 else {
                context.alias(output, to: accumulated, node: node.name)
                return
            }
            for (index, next) in inputs.enumerated().dropFirst() {
                let attributes: [String: Attribute] = ["function": .string(function.rawValue)]
                if index == inputs.count - 1 {
                    try context.emit(node.name, .binary, inputs: [accumulated, next], outputs: [output], attributes: attributes)
                } else {
                    accumulated = try context.emitIntermediate("\(node.name)/\(index)", .binary, inputs: [accumulated, next],
                                                           attributes: attributes)
                }
            }
        }
    }

    /// Mod: fmod=0 is integer modulo with the divisor's sign, fmod=1 is C fmod (which
    /// ONNX requires for floats). Restore's `mod` does the former for integers and fmod
    /// for floats, which covers every valid use except fmod=1 on integers.
    static func mod(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        if try node.int("fmod", default: 0) != 0,
           [node.input(0), node.input(1)].contains(where: { $0.flatMap(context.constant)?.dtype.isFloatingPoint == false }) {
            throw LoweringFailure.unsupported("fmod=1 on integers")
        }
        try binary(.mod)(&context, node)
    }

    static func leakyRelu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try emitUnary(&context, node, .leakyRelu, parameters: ["alpha": .float(try node.float("alpha", default: 0.01))])
    }

    static func elu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try emitUnary(&context, node, .elu, parameters: ["alpha": .float(try node.float("alpha", default: 1))])
    }

    static func hardSigmoid(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try emitUnary(&context, node, .hardSigmoid, parameters: [
            "alpha": .float(try node.float("alpha", default: 0.2)), "beta": .float(try node.float("beta", default: 0.5)),
        ])
    }

    /// HardSwish(x) = x·HardSigmoid(x) with alpha 1/6, beta 1/2.
    static func hardSwish(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let gate = try context.emitIntermediate("\(node.name)/gate", .unary, inputs: [input], attributes: [
            "function": .string(UnaryFunction.hardSigmoid.rawValue), "alpha": .float(1.0 / 6), "beta": .float(0.5),
        ])
        try context.emit(node.name, .binary, inputs: [input, gate], outputs: [try node.output()],
                     attributes: ["function": .string(BinaryFunction.mul.rawValue)])
    }

    /// Gelu (opset 20): approximate "none" is the erf form, "tanh" the tanh form.
    static func gelu(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        switch try node.string("approximate", default: "none") {
        case "none": try emitUnary(&context, node, .gelu, parameters: [:])
        case "tanh": try emitUnary(&context, node, .geluTanh, parameters: [:])
        case let other: throw LoweringFailure.invalid("approximate '\(other)' is not an ONNX value")
        }
    }

    /// Clip: bounds are attributes before opset 11 and optional inputs from 11 on, which
    /// must be constants because Restore's clip takes them as attributes.
    static func clip(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var parameters: [String: Attribute] = [:]
        if context.opset < 11 {
            parameters.set("min", try node.float("min"))
            parameters.set("max", try node.float("max"))
        } else {
            for (index, key) in [(1, "min"), (2, "max")] {
                guard let values = try context.constantFloats(node, index, role: key) else { continue }
                guard values.count == 1 else { throw LoweringFailure.invalid("\(key) must be a scalar") }
                parameters[key] = .float(values[0])
            }
        }
        try emitUnary(&context, node, .clip, parameters: parameters)
    }

    static func `where`(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.emit(node.name, .where,
                     inputs: [try node.requiredInput(0), try node.requiredInput(1), try node.requiredInput(2)],
                     outputs: [try node.output()])
    }

    private static func emitUnary(_ context: inout LoweringContext, _ node: ONNXNode, _ function: UnaryFunction,
                                  parameters: [String: Attribute]) throws {
        var attributes = parameters
        attributes["function"] = .string(function.rawValue)
        try context.emit(node.name, .unary, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: attributes)
    }
}

import Format

/// Shape arithmetic, constants and no-ops: Shape, Cast, ConstantOfShape, Constant,
/// Identity and Dropout.
enum LowerShapeArithmetic {
    static func shape(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let attributes = ShapeAttributes(start: try node.int("start", default: 0), end: try node.int("end"))
        context.builder.emit(node.name, .shape(attributes), inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }

    /// Cast: the ONNX target type as Restore stores it (double → f32, narrow integers → i32).
    static func cast(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let to = try node.int("to") else { throw LoweringFailure.invalid("attribute 'to' is required") }
        guard let onnxType = ONNXDataType(rawValue: Int32(truncatingIfNeeded: to)) else {
            throw LoweringFailure.invalid("'to' \(to) is not an ONNX type")
        }
        guard let type = onnxType.restoreType else { throw LoweringFailure.unsupported("cast to \(onnxType.name)") }
        context.builder.emit(node.name, .cast(CastAttributes(to: type)), inputs: [try node.requiredInput(0)],
                             outputs: [try node.output()])
    }

    /// ConstantOfShape: the one-element `value` tensor gives the fill value and the type (default f32 zero).
    static func constantOfShape(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var value: Float = 0
        var dtype = DType.float32
        if let tensor = try node.tensor("value") {
            guard tensor.elementCount == 1 else { throw LoweringFailure.invalid("'value' must hold one element") }
            value = tensor.floatValues()[0]
            dtype = tensor.dtype
        }
        context.builder.emit(node.name, .constantOfShape(ConstantOfShapeAttributes(value: value, dtype: dtype)),
                             inputs: [try node.requiredInput(0)], outputs: [try node.output()])
    }

    /// Constant nodes become constant tensors named after their output.
    static func constant(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let output = try node.output()
        var tensor: ConstantTensor
        if let value = try node.tensor("value") {
            tensor = value
            tensor.name = output
        } else if case .float(let value)? = node.attributes["value_float"] {
            tensor = ConstantTensor(name: output, shape: [], floats: [value])
        } else if let values = try node.floats("value_floats") {
            tensor = ConstantTensor(name: output, shape: [values.count], floats: values)
        } else if let value = try node.int("value_int") {
            tensor = ConstantTensor(name: output, shape: [], ints: [Int64(value)])
        } else if let values = try node.ints("value_ints") {
            tensor = ConstantTensor(name: output, shape: [values.count], ints: values.map { Int64($0) })
        } else {
            let kind = node.attributes.keys.sorted().joined(separator: ", ")
            throw LoweringFailure.unsupported("a constant given as \(kind.isEmpty ? "nothing" : kind)")
        }
        context.builder.addConstant(tensor)
    }

    /// Identity is only another name for its input.
    static func identity(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        context.builder.alias(try node.output(), to: try node.requiredInput(0), node: node.name)
    }

    /// Dropout at inference is the identity; its mask output is not computed.
    static func dropout(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.requireUnusedOutputs(node, from: 1, what: "mask")
        if let trainingMode = node.input(2), context.builder.constant(trainingMode)?.floatValues().first ?? 0 != 0 {
            throw LoweringFailure.unsupported("training_mode=true")
        }
        try identity(&context, node)
    }
}

extension LowerShapeArithmetic {
    /// CastLike: Cast to the element type of `target_type` — `to` when it is known at
    /// import (a constant or a graph input), else the target is cast's second input, whose
    /// dtype the planner knows (the functions ONNX expands ops into cast to computed values).
    static func castLike(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let target = try node.requiredInput(1)
        let inputs = [try node.requiredInput(0)]
        if let type = context.elementType(of: target) {
            context.builder.emit(node.name, .cast(CastAttributes(to: type)), inputs: inputs, outputs: [try node.output()])
        } else {
            context.builder.emit(node.name, .cast(CastAttributes()), inputs: inputs + [target], outputs: [try node.output()])
        }
    }

    /// Size: the element count as an i64 scalar, a constant when the model fixes the shape,
    /// else the product of the shape (plan-time arithmetic).
    static func size(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let output = try node.output()
        let dims = context.builder.constant(input).map { $0.shape.map(Dim.fixed) } ?? context.builder.shape(of: input)
        if let dims, case let sizes = dims.compactMap(\.fixedValue), sizes.count == dims.count {
            context.builder.addConstant(ConstantTensor(name: output, shape: [], ints: [Int64(sizes.reduce(1, *))]))
            return
        }
        let shape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        context.builder.emit(node.name, .reduce(ReduceAttributes(function: .prod, axes: [], keepDims: false)), inputs: [shape],
                             outputs: [output])
    }
}

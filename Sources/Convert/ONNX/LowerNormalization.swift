import Format

/// BatchNormalization, InstanceNormalization, LayerNormalization and Softmax.
enum LowerNormalization {
    /// Inference-mode BatchNormalization becomes a per-channel affine map,
    /// Y = X·s + t with s = scale/√(var+ε) and t = B − mean·s, as `binary mul` then
    /// `binary add` with [C,1,…] constants; a later pass folds both into the convolution.
    static func batchNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        if try node.int("training_mode", default: 0) != 0 {
            throw LoweringFailure.unsupported("training_mode=1")
        }
        try context.requireUnusedOutputs(node, from: 1, what: "running statistics")
        var parameters: [[Float]] = []
        for (index, role) in ["scale", "B", "input_mean", "input_var"].enumerated() {
            guard let tensor = context.builder.constant(try node.requiredInput(index + 1)) else {
                throw LoweringFailure.unsupported("input '\(role)' must be a constant")
            }
            parameters.append(tensor.floatValues())
        }
        let channels = parameters[0].count
        guard parameters.allSatisfy({ $0.count == channels }) else {
            throw LoweringFailure.invalid("scale, B, mean and var differ in length")
        }
        let epsilon = try node.float("epsilon", default: 1e-5)
        let scale = (0..<channels).map { parameters[0][$0] / (parameters[3][$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { parameters[1][$0] - parameters[2][$0] * scale[$0] }
        // Channels are axis 1: the constants get one trailing 1 per spatial axis. Without a
        // stated rank the input is taken as an NCHW image.
        let rank = context.builder.rank(of: input) ?? 4
        guard rank >= 2 else { throw LoweringFailure.invalid("input of rank \(rank) has no channel axis") }
        let shape = [channels] + [Int](repeating: 1, count: rank - 2)
        let scaleName = context.builder.addConstant("\(node.name)/scale", shape: shape, floats: scale)
        let shiftName = context.builder.addConstant("\(node.name)/shift", shape: shape, floats: shift)
        let scaled = context.builder.binary(.mul, input, scaleName, name: "\(node.name)/mul")
        context.builder.emit(node.name, .binary(.add), inputs: [scaled, shiftName], outputs: [try node.output()])
    }

    static func instanceNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let attributes = InstanceNormAttributes(epsilon: try node.float("epsilon", default: 1e-5))
        context.builder.emit(node.name, .instanceNorm(attributes),
                             inputs: [try node.requiredInput(0), try node.requiredInput(1), try node.requiredInput(2)],
                             outputs: [try node.output()])
    }

    static func layerNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.requireUnusedOutputs(node, from: 1, what: "mean or inverse standard deviation")
        let attributes = LayerNormAttributes(axis: try node.int("axis", default: -1), epsilon: try node.float("epsilon", default: 1e-5))
        context.builder.emit(node.name, .layerNorm(attributes),
                             inputs: [try node.requiredInput(0), node.input(1) ?? "", node.input(2) ?? ""],
                             outputs: [try node.output()])
    }

    /// Softmax from opset 13 normalises along `axis` (default -1). Before 13 it flattens
    /// the input to 2-D at `axis` (default 1) and normalises whole rows; that equals
    /// Restore's softmax only when `axis` is the last axis, otherwise it is lowered as
    /// flatten → softmax(-1) → reshape back to the input's shape.
    static func softmax(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let output = try node.output()
        if context.opset >= 13 {
            context.builder.emit(node.name, .softmax(SoftmaxAttributes(axis: try node.int("axis", default: -1))),
                                 inputs: [input], outputs: [output])
            return
        }
        let axis = try node.int("axis", default: 1)
        let rank = context.builder.rank(of: input)
        let lastAxis = Op.softmax(SoftmaxAttributes(axis: -1))
        if axis == -1 || (rank != nil && axis == (rank ?? 0) - 1) {
            context.builder.emit(node.name, lastAxis, inputs: [input], outputs: [output])
            return
        }
        let flat = context.builder.emitValue(named: "\(node.name)/flatten", .flatten(FlattenAttributes(axis: axis)), inputs: [input])
        let normalized = context.builder.emitValue(named: "\(node.name)/rows", lastAxis, inputs: [flat])
        let shape = context.builder.emitValue(named: "\(node.name)/shape", .shape(ShapeAttributes()), inputs: [input])
        context.builder.emit(node.name, .reshape(ReshapeAttributes()), inputs: [normalized, shape], outputs: [output])
    }
}

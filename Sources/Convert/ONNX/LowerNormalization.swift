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
            guard let tensor = context.constant(try node.requiredInput(index + 1)) else {
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
        let rank = context.rank(of: input) ?? 4
        guard rank >= 2 else { throw LoweringFailure.invalid("input of rank \(rank) has no channel axis") }
        let shape = [channels] + [Int](repeating: 1, count: rank - 2)
        let scaleName = context.addConstant("\(node.name)/scale", shape: shape, floats: scale)
        let shiftName = context.addConstant("\(node.name)/shift", shape: shape, floats: shift)
        let scaled = try context.emitIntermediate("\(node.name)/mul", .binary, inputs: [input, scaleName],
                                              attributes: ["function": .string(BinaryFunction.mul.rawValue)])
        try context.emit(node.name, .binary, inputs: [scaled, shiftName], outputs: [try node.output()],
                     attributes: ["function": .string(BinaryFunction.add.rawValue)])
    }

    static func instanceNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var attributes: [String: Attribute] = [:]
        attributes.set("epsilon", try node.float("epsilon"))
        try context.emit(node.name, .instanceNorm,
                     inputs: [try node.requiredInput(0), try node.requiredInput(1), try node.requiredInput(2)],
                     outputs: [try node.output()], attributes: attributes)
    }

    static func layerNormalization(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.requireUnusedOutputs(node, from: 1, what: "mean or inverse standard deviation")
        var attributes: [String: Attribute] = [:]
        attributes.set("axis", try node.int("axis"))
        attributes.set("epsilon", try node.float("epsilon"))
        try context.emit(node.name, .layerNorm,
                     inputs: [try node.requiredInput(0), node.input(1) ?? "", node.input(2) ?? ""],
                     outputs: [try node.output()], attributes: attributes)
    }

    /// Softmax from opset 13 normalises along `axis` (default -1). Before 13 it flattens
    /// the input to 2-D at `axis` (default 1) and normalises whole rows; that equals
    /// Restore's softmax only when `axis` is the last axis, otherwise it is lowered as
    /// flatten → softmax(-1) → reshape back to the input's shape.
    static func softmax(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let output = try node.output()
        if context.opset >= 13 {
            try context.emit(node.name, .softmax, inputs: [input], outputs: [output],
                         attributes: ["axis": .int(try node.int("axis", default: -1))])
            return
        }
        let axis = try node.int("axis", default: 1)
        let rank = context.rank(of: input)
        if axis == -1 || (rank != nil && axis == (rank ?? 0) - 1) {
            try context.emit(node.name, .softmax, inputs: [input], outputs: [output], attributes: ["axis": .int(-1)])
            return
        }
        let flat = try context.emitIntermediate("\(node.name)/flatten", .flatten, inputs: [input], attributes: ["axis": .int(axis)])
        let normalized = try context.emitIntermediate("\(node.name)/rows", .softmax, inputs: [flat], attributes: ["axis": .int(-1)])
        let shape = try context.emitIntermediate("\(node.name)/shape", .shape, inputs: [input])
        try context.emit(node.name, .reshape, inputs: [normalized, shape], outputs: [output])
    }
}

import Format

/// Layout and data-movement ops. Where ONNX moved an attribute to an input over the
/// opsets, the older form becomes a constant input (Restore's op takes the input) or the
/// newer constant input becomes an attribute (Restore's op takes the attribute).
enum LowerLayout {
    static func concat(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let axis = try node.int("axis") else { throw LoweringFailure.invalid("attribute 'axis' is required") }
        try context.emit(node.name, .concat, inputs: node.inputs.filter { !$0.isEmpty }, outputs: [try node.output()],
                     attributes: ["axis": .int(axis)])
    }

    /// Split: sizes from the `split` attribute (opset < 13) or input 1 (13+); without
    /// sizes the input is cut into one part per output (`num_outputs` of opset 18 names
    /// the same count).
    static func split(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        var inputs = [input]
        if context.opset < 13 {
            if let sizes = try node.ints("split") {
                inputs.append(context.addConstant("\(node.name)/split", shape: [sizes.count], ints: sizes))
            }
        } else if let sizes = node.input(1) {
            inputs.append(sizes)
        }
        if let declared = try node.int("num_outputs"), declared != node.outputs.count {
            throw LoweringFailure.invalid("num_outputs \(declared) differs from the \(node.outputs.count) outputs")
        }
        try context.emit(node.name, .split, inputs: inputs, outputs: node.outputs,
                     attributes: ["axis": .int(try node.int("axis", default: 0)), "numOutputs": .int(node.outputs.count)])
    }

    /// Slice: starts/ends/axes are attributes before opset 10, inputs after.
    static func slice(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        var inputs: [String]
        if context.opset < 10 {
            guard let starts = try node.ints("starts"), let ends = try node.ints("ends") else {
                throw LoweringFailure.invalid("attributes 'starts' and 'ends' are required")
            }
            inputs = [input,
                      context.addConstant("\(node.name)/starts", shape: [starts.count], ints: starts),
                      context.addConstant("\(node.name)/ends", shape: [ends.count], ints: ends)]
            if let axes = try node.ints("axes") {
                inputs.append(context.addConstant("\(node.name)/axes", shape: [axes.count], ints: axes))
            }
        } else {
            inputs = [input, try node.requiredInput(1), try node.requiredInput(2)]
            inputs += [node.input(3) ?? "", node.input(4) ?? ""]
            while inputs.last == "" { inputs.removeLast() }
        }
        try context.emit(node.name, .slice, inputs: inputs, outputs: [try node.output()])
    }

    static func reshape(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var attributes: [String: Attribute] = [:]
        if try node.int("allowzero", default: 0) != 0 { attributes["allowZero"] = .int(1) }
        try context.emit(node.name, .reshape, inputs: [try node.requiredInput(0), try node.requiredInput(1)],
                     outputs: [try node.output()], attributes: attributes)
    }

    static func transpose(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.emit(node.name, .transpose, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: ["perm": .ints(try node.ints("perm") ?? [])])
    }

    /// Squeeze: axes attribute before opset 13, optional constant input after; none = all size-1 axes.
    static func squeeze(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let axes = try axesOfSqueeze(context, node) ?? []
        try context.emit(node.name, .squeeze, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: ["axes": .ints(axes)])
    }

    static func unsqueeze(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let axes = try axesOfSqueeze(context, node) else { throw LoweringFailure.invalid("axes are required") }
        try context.emit(node.name, .unsqueeze, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: ["axes": .ints(axes)])
    }

    private static func axesOfSqueeze(_ context: LoweringContext, _ node: ONNXNode) throws -> [Int]? {
        context.opset < 13 ? try node.ints("axes") : try context.constantInts(node, 1, role: "axes")
    }

    static func flatten(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.emit(node.name, .flatten, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: ["axis": .int(try node.int("axis", default: 1))])
    }

    /// Pad: pads and value are attributes before opset 11 (made constant inputs), inputs
    /// from 11 on; `axes` (18) passes through. Mode "wrap" (19) has no Restore equivalent.
    static func pad(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let mode = try node.string("mode", default: "constant")
        guard ["constant", "reflect", "edge"].contains(mode) else {
            throw LoweringFailure.unsupported("mode '\(mode)'")
        }
        let input = try node.requiredInput(0)
        var inputs: [String]
        if context.opset < 11 {
            guard let pads = try node.ints("pads") else { throw LoweringFailure.invalid("attribute 'pads' is required") }
            inputs = [input, context.addConstant("\(node.name)/pads", shape: [pads.count], ints: pads)]
            if let value = try node.float("value"), value != 0 {
                inputs.append(context.addConstant("\(node.name)/value", shape: [], floats: [value]))
            }
        } else {
            inputs = [input, try node.requiredInput(1), node.input(2) ?? "", node.input(3) ?? ""]
            while inputs.last == "" { inputs.removeLast() }
        }
        try context.emit(node.name, .pad, inputs: inputs, outputs: [try node.output()],
                     attributes: ["mode": .string(mode)])
    }

    static func depthToSpace(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let blockSize = try node.int("blocksize") else { throw LoweringFailure.invalid("attribute 'blocksize' is required") }
        let mode = try node.string("mode", default: "DCR")
        guard mode == "DCR" || mode == "CRD" else { throw LoweringFailure.invalid("mode '\(mode)' is not an ONNX value") }
        try context.emit(node.name, .depthToSpace, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: ["blockSize": .int(blockSize), "mode": .string(mode)])
    }

    static func spaceToDepth(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let blockSize = try node.int("blocksize") else { throw LoweringFailure.invalid("attribute 'blocksize' is required") }
        try context.emit(node.name, .spaceToDepth, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: ["blockSize": .int(blockSize)])
    }

    static func gather(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.emit(node.name, .gather, inputs: [try node.requiredInput(0), try node.requiredInput(1)],
                     outputs: [try node.output()], attributes: ["axis": .int(try node.int("axis", default: 0))])
    }

    /// ScatterND: `reduction` (opset 16+; "none" before) is checked by the op itself.
    static func scatterND(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let inputs = try (0..<3).map { try node.requiredInput($0) }
        try context.emit(node.name, .scatterND, inputs: inputs, outputs: [try node.output()],
                     attributes: ["reduction": .string(try node.string("reduction", default: "none"))])
    }

    /// Ops whose inputs map one to one and that have no attributes (Expand, Tile, Range, MatMul …).
    static func direct(_ op: OpKind, inputCount: Int) -> LoweringRule {
        { context, node in
            let inputs = try (0..<inputCount).map { try node.requiredInput($0) }
            try context.emit(node.name, op, inputs: inputs, outputs: [try node.output()])
        }
    }
}

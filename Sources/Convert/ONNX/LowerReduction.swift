import Format

/// Pooling and reductions: global pools become `reduce` over the spatial axes.
enum LowerReduction {
    static func globalPool(_ function: String) -> LoweringRule {
        { context, node in
            let input = try node.requiredInput(0)
            // Spatial axes are 2…rank-1; without a stated rank the input is taken as NCHW.
            let rank = context.rank(of: input) ?? 4
            try context.emit(node.name, .reduce, inputs: [input], outputs: [try node.output()], attributes: [
                "function": .string(function), "axes": .ints(Array(2..<max(rank, 3))), "keepDims": .int(1),
            ])
        }
    }

    static func averagePool(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var attributes = try poolAttributes(node)
        attributes.set("countIncludePad", try node.int("count_include_pad"))
        try context.emit(node.name, .averagePool, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: attributes)
    }

    /// MaxPool's optional second output (flat indices) has no Restore equivalent.
    static func maxPool(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.requireUnusedOutputs(node, from: 1, what: "indices")
        try context.emit(node.name, .maxPool, inputs: [try node.requiredInput(0)], outputs: [try node.output()],
                     attributes: try poolAttributes(node))
    }

    private static func poolAttributes(_ node: ONNXNode) throws -> [String: Attribute] {
        guard let kernel = try node.ints("kernel_shape") else {
            throw LoweringFailure.invalid("attribute 'kernel_shape' is required")
        }
        guard kernel.count == 2 else { throw LoweringFailure.unsupported("\(kernel.count)-D pooling; only 2-D is supported") }
        var attributes = try LowerConvolution.windowAttributes(node)
        attributes["kernelShape"] = .ints(kernel)
        attributes.set("ceilMode", try node.int("ceil_mode"))
        return attributes
    }

    /// ReduceMean/Sum/Max/Min: axes are an attribute until the opset given by
    /// `axesInputFrom` (13 for ReduceSum, 18 for the others) and a constant input from
    /// then on. With no axes, noop_with_empty_axes=1 makes the node an identity.
    static func reduce(_ function: String, axesInputFrom: Int) -> LoweringRule {
        { context, node in
            let input = try node.requiredInput(0)
            let output = try node.output()
            let axes = context.opset < axesInputFrom
                ? try node.ints("axes")
                : try context.constantInts(node, 1, role: "axes")
            if (axes ?? []).isEmpty, try node.int("noop_with_empty_axes", default: 0) != 0 {
                context.alias(output, to: input, node: node.name)
                return
            }
            try context.emit(node.name, .reduce, inputs: [input], outputs: [output], attributes: [
                "function": .string(function), "axes": .ints(axes ?? []),
                "keepDims": .int(try node.int("keepdims", default: 1)),
            ])
        }
    }
}

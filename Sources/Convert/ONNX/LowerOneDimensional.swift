import Format

/// 1-D convolution and pooling on [N, C, L] run as their 2-D forms on [N, C, L, 1]: the
/// node's window attributes get a trailing unit axis (kernel 1, stride 1, dilation 1, no
/// padding), X (and the weight) an axis 3 of size 1, and the result is squeezed back. The
/// 2-D rule then reads the node as usual, so every attribute it handles holds in 1-D too.
enum LowerOneDimensional {
    static func wrapping(_ rule: @escaping LoweringRule, weighted: Bool) -> LoweringRule {
        { context, node in
            guard try isOneDimensional(context, node, weighted: weighted) else { return try rule(&context, node) }
            var planar = node
            for key in ["kernel_shape", "strides", "dilations", "output_padding"] {
                if case .ints(let values)? = node.attributes[key], values.count == 1 {
                    planar.attributes[key] = .ints(values + [key == "output_padding" ? 0 : 1])
                }
            }
            if case .ints(let pads)? = node.attributes["pads"], pads.count == 2 {
                planar.attributes["pads"] = .ints([pads[0], 0, pads[1], 0])
            }
            if node.attributes["output_shape"] != nil {
                throw LoweringFailure.unsupported("output_shape of a 1-D transposed convolution")
            }
            let widen = Op.unsqueeze(UnsqueezeAttributes(axes: [3]))
            planar.inputs[0] = context.builder.emitValue(named: "\(node.name)/planar_input", widen, inputs: [try node.requiredInput(0)])
            if weighted {
                planar.inputs[1] = context.builder.emitValue(named: "\(node.name)/planar_weight", widen, inputs: [try node.requiredInput(1)])
            }
            let output = try node.output()
            planar.outputs[0] = context.builder.freshName("\(node.name)/planar_output")
            try rule(&context, planar)
            context.builder.emit("\(node.name)/squeeze", .squeeze(SqueezeAttributes(axes: [3])), inputs: [planar.outputs[0]],
                                 outputs: [output])
        }
    }

    /// Whether the node works on one spatial axis: kernel_shape of one value, a weight of
    /// rank 3, or an input of rank 3.
    private static func isOneDimensional(_ context: LoweringContext, _ node: ONNXNode, weighted: Bool) throws -> Bool {
        if let kernel = try node.ints("kernel_shape") { return kernel.count == 1 }
        if weighted, let weight = node.input(1), let rank = context.builder.rank(of: weight) { return rank == 3 }
        return context.builder.rank(of: try node.requiredInput(0)) == 3
    }
}

import Format

/// 3-D Conv and ConvTranspose on [N, C, D, H, W] with a constant weight, lowered onto the
/// 2-D convolutions per depth slice: X is split into its D planes [N, C, H, W]; output
/// depth slice d is the sum, over the kernel depths kd that reach it, of the 2-D
/// convolution (or transposed convolution) of the input plane it reads with the weight's
/// plane kd, which has H and W's strides, pads, dilations, group and output padding; the
/// bias is added once, with the first term. The output planes are stacked back along D.
///
/// Every 2-D convolution is Restore's GEMM-based kernel, and the sum is the same products
/// in another order (exact to fp32 rounding). Each term is one node, so D must be fixed
/// when converting (video restoration networks take a fixed frame count); a plane that
/// no kernel depth reaches (padding, or a stride wider than the kernel) is the bias alone.
enum LowerVolumetricConvolution {
    /// The depth axis's part of the window: stride, padding before and after, dilation.
    struct DepthWindow {
        var stride = 1, padBefore = 0, padAfter = 0, dilation = 1, outputPadding = 0
    }

    /// Whether the node convolves three spatial axes, judged from kernel_shape or the weight's rank.
    static func isVolumetric(_ context: LoweringContext, _ node: ONNXNode) throws -> Bool {
        if let kernel = try node.ints("kernel_shape") { return kernel.count == 3 }
        return context.builder.rank(of: try node.requiredInput(1)) == 5
    }

    static func conv(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let (depthWindow, planar) = try windows(node)
        var attributes = ConvAttributes()
        attributes.window = planar
        attributes.group = try node.int("group", default: 1)
        let weight = try constantWeight(context, node)
        let input = try node.requiredInput(0)
        try emit(&context, name: node.name, input: input, depth: try fixedDepth(context, input), weight: weight,
                 bias: node.input(2), depthWindow: depthWindow, transposed: false, output: try node.output()) { .conv(attributes) }
    }

    static func convTranspose(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard try node.ints("output_shape") == nil else {
            throw LoweringFailure.unsupported("output_shape of a 3-D transposed convolution (give pads and output_padding)")
        }
        var (depthWindow, planar) = try windows(node)
        let outputPadding = try node.ints("output_padding") ?? [0, 0, 0]
        guard outputPadding.count == 3, outputPadding.allSatisfy({ $0 >= 0 }) else {
            throw LoweringFailure.invalid("output_padding \(outputPadding) needs 3 values >= 0")
        }
        depthWindow.outputPadding = outputPadding[0]
        var attributes = ConvTransposeAttributes()
        attributes.window = planar
        attributes.group = try node.int("group", default: 1)
        attributes.outputPadding = Array(outputPadding.suffix(2))
        let weight = try constantWeight(context, node)
        let input = try node.requiredInput(0)
        try emitTransposed(&context, name: node.name, input: input, depth: try fixedDepth(context, input), weight: weight,
                           bias: node.input(2), depthWindow: depthWindow, attributes: attributes, output: try node.output())
    }

    /// A 3-D transposed convolution of X [N, C, `depth`, H, W] with a weight
    /// [C, M/group, kD, kH, kW] (also Col2Im's).
    static func emitTransposed(_ context: inout LoweringContext, name: String, input: String, depth: Int,
                               weight: ConstantTensor, bias: String?, depthWindow: DepthWindow,
                               attributes: ConvTransposeAttributes, output: String) throws {
        try emit(&context, name: name, input: input, depth: depth, weight: weight, bias: bias, depthWindow: depthWindow,
                 transposed: true, output: output) { .convTranspose(attributes) }
    }

    private static func fixedDepth(_ context: LoweringContext, _ input: String) throws -> Int {
        guard let shape = context.builder.shape(of: input), shape.count == 5, case .fixed(let depth) = shape[2], depth > 0 else {
            throw LoweringFailure.unsupported("a 3-D convolution needs X [N, C, D, H, W] with a fixed depth D")
        }
        return depth
    }

    /// The depth part and the (H, W) part of the node's window; auto_pad is supported as
    /// NOTSET or VALID (SAME needs the depth's padding split, which no exporter writes).
    private static func windows(_ node: ONNXNode) throws -> (DepthWindow, SlidingWindow) {
        let window = try LowerConvolution.slidingWindow(node, spatialAxes: 3)
        guard window.autoPad == .notset || window.autoPad == .valid else {
            throw LoweringFailure.unsupported("auto_pad \(window.autoPad.rawValue) of a 3-D convolution")
        }
        let pads = window.autoPad == .valid ? [0, 0, 0, 0, 0, 0] : window.pads
        guard window.strides.allSatisfy({ $0 >= 1 }), window.dilations.allSatisfy({ $0 >= 1 }), pads.allSatisfy({ $0 >= 0 }) else {
            throw LoweringFailure.invalid("strides \(window.strides), dilations \(window.dilations) or pads \(pads) out of range")
        }
        let depth = DepthWindow(stride: window.strides[0], padBefore: pads[0], padAfter: pads[3], dilation: window.dilations[0])
        var planar = SlidingWindow()
        planar.strides = Array(window.strides.suffix(2))
        planar.dilations = Array(window.dilations.suffix(2))
        planar.pads = [pads[1], pads[2], pads[4], pads[5]]
        return (depth, planar)
    }

    private static func constantWeight(_ context: LoweringContext, _ node: ONNXNode) throws -> ConstantTensor {
        guard let weight = context.builder.constant(try node.requiredInput(1)) else {
            throw LoweringFailure.unsupported("a 3-D convolution's weight must be a constant")
        }
        guard weight.shape.count == 5, weight.shape.allSatisfy({ $0 > 0 }) else {
            throw LoweringFailure.invalid("a 3-D convolution needs a weight of rank 5, found \(weight.shape)")
        }
        return weight
    }

    /// Emits the per-slice sum. `transposed`: each input plane d spreads into output planes
    /// d·stride − padBefore + kd·dilation; otherwise output plane d reads input plane
    /// d·stride − padBefore + kd·dilation.
    private static func emit(_ context: inout LoweringContext, name: String, input: String, depth: Int,
                             weight: ConstantTensor, bias: String?, depthWindow w: DepthWindow, transposed: Bool,
                             output: String, planarOperation: () -> Op) throws {
        let kernelDepth = weight.shape[2]
        let extent = (kernelDepth - 1) * w.dilation + 1
        let sane = 0...(1 << 16)
        guard ([depth, kernelDepth, w.stride, w.dilation, w.padBefore, w.padAfter, w.outputPadding]).allSatisfy(sane.contains) else {
            throw LoweringFailure.invalid("depth, kernel depth, stride, dilation or pads out of range")
        }
        let outputDepth = transposed
            ? w.stride * (depth - 1) + w.outputPadding + extent - w.padBefore - w.padAfter
            : (depth + w.padBefore + w.padAfter - extent) / w.stride + 1
        guard outputDepth >= 1, transposed || depth + w.padBefore + w.padAfter >= extent else {
            throw LoweringFailure.invalid("the window does not fit the depth \(depth) (output depth \(outputDepth))")
        }
        // The weight's depth planes [M, C/group, kH, kW] (or [C, M/group, kH, kW]).
        let planeSize = weight.shape[3] * weight.shape[4]
        let values = weight.floatValues()
        let weightPlanes = (0..<kernelDepth).map { kd in
            var plane: [Float] = []
            plane.reserveCapacity(values.count / kernelDepth)
            for outer in 0..<(weight.shape[0] * weight.shape[1]) {
                let start = (outer * kernelDepth + kd) * planeSize
                plane += values[start..<(start + planeSize)]
            }
            return context.builder.addConstant("\(name)/weight_depth\(kd)", shape: [weight.shape[0], weight.shape[1]] + weight.shape.suffix(2),
                                               floats: plane)
        }
        let planes = context.builder.freshName("\(name)/planes")
        let planeNames = (0..<depth).map { context.builder.freshName("\(name)/plane\($0)_5d") }
        context.builder.emit(planes, .split(SplitAttributes(axis: 2, numOutputs: depth)), inputs: [input], outputs: planeNames)
        var squeezed: [Int: String] = [:]
        func plane(_ d: Int) -> String {
            if let name = squeezed[d] { return name }
            let value = context.builder.emitValue(named: "\(name)/plane\(d)", .squeeze(SqueezeAttributes(axes: [2])),
                                                  inputs: [planeNames[d]])
            squeezed[d] = value
            return value
        }

        var outputPlanes: [String] = []
        for od in 0..<outputDepth {
            // (input plane, kernel depth) pairs that meet at output plane od.
            var terms: [(input: Int, kernel: Int)] = []
            for kd in 0..<kernelDepth {
                if transposed {
                    let position = od + w.padBefore - kd * w.dilation
                    if position >= 0, position % w.stride == 0, position / w.stride < depth { terms.append((position / w.stride, kd)) }
                } else {
                    let position = od * w.stride - w.padBefore + kd * w.dilation
                    if (0..<depth).contains(position) { terms.append((position, kd)) }
                }
            }
            var sum: String?
            if terms.isEmpty {
                // No kernel depth reaches this plane: the bias alone, as a convolution with zero weights.
                let zeros = context.builder.addConstant("\(name)/zero_weight", shape: [weight.shape[0], weight.shape[1]] + weight.shape.suffix(2),
                                                        floats: [Float](repeating: 0, count: values.count / kernelDepth))
                sum = context.builder.emitValue(named: "\(name)/depth\(od)", planarOperation(), inputs: [plane(0), zeros] + optional(bias))
            }
            for (index, term) in terms.enumerated() {
                let inputs = [plane(term.input), weightPlanes[term.kernel]] + (index == 0 ? optional(bias) : [])
                let product = context.builder.emitValue(named: "\(name)/depth\(od)_k\(term.kernel)", planarOperation(), inputs: inputs)
                sum = sum.map { context.builder.binary(.add, $0, product, name: "\(name)/depth\(od)_sum") } ?? product
            }
            guard let sum else { continue }
            outputPlanes.append(context.builder.emitValue(named: "\(name)/depth\(od)_5d", .unsqueeze(UnsqueezeAttributes(axes: [2])),
                                                          inputs: [sum]))
        }
        context.builder.emit(name, .concat(ConcatAttributes(axis: 2)), inputs: outputPlanes, outputs: [output])
    }
}

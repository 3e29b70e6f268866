import Format

/// Pooling and reductions: global pools become `reduce` over the spatial axes.
enum LowerReduction {
    static func globalPool(_ function: ReduceAttributes.Function) -> LoweringRule {
        { context, node in
            let input = try node.requiredInput(0)
            // Spatial axes are 2…rank-1; without a stated rank the input is taken as NCHW.
            let rank = context.builder.rank(of: input) ?? 4
            let attributes = ReduceAttributes(function: function, axes: Array(2..<max(rank, 3)), keepDims: true)
            context.builder.emit(node.name, .reduce(attributes), inputs: [input], outputs: [try node.output()])
        }
    }

    static func averagePool(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let countIncludePad = try node.flag("count_include_pad", default: false)
        try pool(&context, node, input: try node.requiredInput(0), output: try node.output()) { attributes in
            var attributes = attributes
            attributes.countIncludePad = countIncludePad
            return .averagePool(attributes)
        }
    }

    /// MaxPool's optional second output (flat indices) has no Restore equivalent.
    static func maxPool(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        try context.requireUnusedOutputs(node, from: 1, what: "indices")
        try pool(&context, node, input: try node.requiredInput(0), output: try node.output()) { .maxPool($0) }
    }

    /// MaxUnpool (2-D): the window attributes, the indices and the optional output shape
    /// as they are (9, 11 and 22 differ only in the types they accept).
    static func maxUnpool(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        guard let kernel = try node.ints("kernel_shape") else {
            throw LoweringFailure.invalid("attribute 'kernel_shape' is required")
        }
        guard kernel.count == 2 else { throw LoweringFailure.unsupported("\(kernel.count)-D unpooling; only 2-D is supported") }
        let window = try LowerConvolution.slidingWindow(node)
        let attributes = MaxUnpoolAttributes(kernelShape: kernel, strides: window.strides, pads: window.pads)
        let inputs = [try node.requiredInput(0), try node.requiredInput(1)] + (node.input(2).map { [$0] } ?? [])
        context.builder.emit(node.name, .maxUnpool(attributes), inputs: inputs, outputs: [try node.output()])
    }

    /// Emits a pooling node as Restore's 2-D pools, writing `output` (a fresh value when
    /// nil), and returns the value written.
    ///
    /// A 3-D pool over [N,C,D,H,W] is two 2-D pools: over (H, W), each depth slice a
    /// plane, then over D, moved last by a transpose. That is exact because every 3-D
    /// window is a box, the product of its windows along each axis, on all three counts:
    /// the maximum of a box is the maximum over D of the maxima over (H, W); the number of
    /// pixels (or, counting padding, of positions) a box averages is the product of the
    /// per-axis counts, so its mean is the mean over D of the means over (H, W); and each
    /// axis keeps its own output size, padding, auto_pad and ceil_mode rule.
    @discardableResult
    static func pool(_ context: inout LoweringContext, _ node: ONNXNode, input: String, output: String?,
                     _ operation: (PoolAttributes) -> Op) throws -> String {
        guard let kernel = try node.ints("kernel_shape") else {
            throw LoweringFailure.invalid("attribute 'kernel_shape' is required")
        }
        guard kernel.count == 2 || kernel.count == 3 else {
            throw LoweringFailure.unsupported("\(kernel.count)-D pooling; only 2-D and 3-D are supported")
        }
        let window = try LowerConvolution.slidingWindow(node, spatialAxes: kernel.count)
        let ceilMode = try node.flag("ceil_mode", default: false)
        /// The 2-D pool over two of the node's axes; nil is an added unit axis.
        func planar(_ first: Int?, _ second: Int?) -> PoolAttributes {
            var attributes = PoolAttributes()
            let axes = [first, second]
            attributes.kernelShape = axes.map { $0.map { kernel[$0] } ?? 1 }
            attributes.window.strides = axes.map { $0.map { window.strides[$0] } ?? 1 }
            attributes.window.dilations = axes.map { $0.map { window.dilations[$0] } ?? 1 }
            attributes.window.pads = axes.map { $0.map { window.pads[$0] } ?? 0 }
                + axes.map { $0.map { window.pads[kernel.count + $0] } ?? 0 }
            attributes.window.autoPad = window.autoPad
            attributes.ceilMode = ceilMode
            return attributes
        }
        /// Emits one step, as the node's output when it is the last one.
        func step(_ suffix: String, _ operation: Op, _ input: String, last: Bool) -> String {
            guard last, let output else { return context.builder.emitValue(named: "\(node.name)/\(suffix)", operation, inputs: [input]) }
            context.builder.emit(node.name, operation, inputs: [input], outputs: [output])
            return output
        }
        if kernel.count == 2 { return step("pool", operation(planar(0, 1)), input, last: true) }
        if let rank = context.builder.rank(of: input), rank != 5 {
            throw LoweringFailure.invalid("a 3-D kernel_shape needs X [N,C,D,H,W], found rank \(rank)")
        }
        let heightWidth = step("height_width", operation(planar(1, 2)), input, last: false)
        let depthLast = step("depth_last", .transpose(TransposeAttributes(perm: [0, 1, 3, 4, 2])), heightWidth, last: false)
        let depth = step("depth", operation(planar(nil, 0)), depthLast, last: false)
        return step("depth_back", .transpose(TransposeAttributes(perm: [0, 1, 4, 2, 3])), depth, last: true)
    }

    /// ReduceMean/Sum/Max/Min/Prod: axes are an attribute until the opset given by
    /// `axesInputFrom` (13 for ReduceSum, 18 for the others) and an input from then on —
    /// a constant, or computed from shapes (reduce's plan-time second input). With no
    /// axes, noop_with_empty_axes=1 makes the node an identity.
    static func reduce(_ function: ReduceAttributes.Function, axesInputFrom: Int) -> LoweringRule {
        { context, node in
            let input = try node.requiredInput(0)
            let output = try node.output()
            let keepDims = try node.flag("keepdims", default: true)
            if context.opset >= axesInputFrom, let axes = node.input(1), context.builder.constant(axes) == nil {
                if try node.flag("noop_with_empty_axes", default: false) {
                    throw LoweringFailure.unsupported("noop_with_empty_axes=1 with axes the graph computes "
                                                      + "(whether they are empty, and nothing is reduced, is known only when planning)")
                }
                context.builder.emit(node.name, .reduce(ReduceAttributes(function: function, axes: [], keepDims: keepDims)),
                                     inputs: [input, axes], outputs: [output])
                return
            }
            let axes = context.opset < axesInputFrom
                ? try node.ints("axes")
                : try context.constantInts(node, 1, role: "axes")
            if (axes ?? []).isEmpty, try node.flag("noop_with_empty_axes", default: false) {
                context.builder.alias(output, to: input, node: node.name)
                return
            }
            let attributes = ReduceAttributes(function: function, axes: axes ?? [], keepDims: keepDims)
            context.builder.emit(node.name, .reduce(attributes), inputs: [input], outputs: [output])
        }
    }
}

extension LowerReduction {
    /// Reductions that are a sum between element-wise steps: ReduceL1 = Σ|X|,
    /// ReduceL2 = √ΣX², ReduceSumSquare = ΣX², ReduceLogSum = log ΣX and
    /// ReduceLogSumExp = m + log Σ exp(X − m) with m the maximum (so large inputs do not
    /// overflow). With no axes and noop_with_empty_axes=1 nothing is summed and only the
    /// element-wise steps remain, as ONNX's reference computes it.
    enum Composite {
        case l1, l2, sumSquare, logSum, logSumExp
    }

    static func reduce(_ composite: Composite) -> LoweringRule {
        { context, node in
            let input = try node.requiredInput(0)
            let output = try node.output()
            let axes = (node.version < 18 ? try node.ints("axes") : try context.constantInts(node, 1, role: "axes")) ?? []
            let keepDims = try node.flag("keepdims", default: true)
            let noop = try node.flag("noop_with_empty_axes", default: false)
            let summed = !(axes.isEmpty && noop)
            func sum(_ value: String, keepDims: Bool) -> String {
                guard summed else { return value }
                return context.builder.emitValue(named: "\(node.name)/sum",
                                                 .reduce(ReduceAttributes(function: .sum, axes: axes, keepDims: keepDims)), inputs: [value])
            }
            let result: String
            switch composite {
            case .l1:
                result = sum(context.builder.unary(Activation(function: .abs), input, name: "\(node.name)/abs"), keepDims: keepDims)
            case .l2:
                let squared = context.builder.binary(.mul, input, input, name: "\(node.name)/squared")
                result = context.builder.unary(Activation(function: .sqrt), sum(squared, keepDims: keepDims), name: "\(node.name)/sqrt")
            case .sumSquare:
                result = sum(context.builder.binary(.mul, input, input, name: "\(node.name)/squared"), keepDims: keepDims)
            case .logSum:
                result = context.builder.unary(Activation(function: .log), sum(input, keepDims: keepDims), name: "\(node.name)/log")
            case .logSumExp:
                guard summed else {
                    result = context.builder.unary(Activation(function: .log),
                                                   context.builder.unary(Activation(function: .exp), input, name: "\(node.name)/exp"),
                                                   name: "\(node.name)/log")
                    break
                }
                let maximum = context.builder.emitValue(named: "\(node.name)/max",
                                                        .reduce(ReduceAttributes(function: .max, axes: axes, keepDims: true)), inputs: [input])
                let shifted = context.builder.binary(.sub, input, maximum, name: "\(node.name)/shifted")
                let exponentials = context.builder.unary(Activation(function: .exp), shifted, name: "\(node.name)/exp")
                let logSum = context.builder.unary(Activation(function: .log), sum(exponentials, keepDims: true), name: "\(node.name)/log")
                let kept = context.builder.binary(.add, logSum, maximum, name: "\(node.name)/kept")
                if keepDims {
                    result = kept
                } else {
                    // Drop the reduced axes (all of them when none are named).
                    let squeeze = SqueezeAttributes(axes: axes.isEmpty ? [] : axes)
                    result = context.builder.emitValue(named: "\(node.name)/squeeze", .squeeze(squeeze), inputs: [kept])
                }
            }
            context.builder.alias(output, to: result, node: node.name)
        }
    }
}

extension LowerReduction {
    /// LpPool: (Σ over the window of |X|^p)^(1/p). Padding contributes zeros to the sum,
    /// so the sum is an average pool that counts the padding, times the window's size.
    /// With ceil_mode a last window may reach past the padding, where that identity fails:
    /// refused.
    static func lpPool(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        if try node.flag("ceil_mode", default: false) { throw LoweringFailure.unsupported("ceil_mode=1") }
        let p = Float(try node.int("p", default: 2))
        guard p >= 1 else { throw LoweringFailure.invalid("p must be at least 1") }
        guard let kernel = try node.ints("kernel_shape") else {
            throw LoweringFailure.invalid("attribute 'kernel_shape' is required")
        }
        let windowSize = context.builder.addConstant("\(node.name)/window_size", shape: [],
                                                     floats: [Float(kernel.reduce(1, *))])
        let powered: String
        if p == 2 {
            powered = context.builder.binary(.mul, input, input, name: "\(node.name)/squared")
        } else {
            let magnitude = context.builder.unary(Activation(function: .abs), input, name: "\(node.name)/abs")
            let exponent = context.builder.addConstant("\(node.name)/p", shape: [], floats: [p])
            powered = context.builder.binary(.pow, magnitude, exponent, name: "\(node.name)/powered")
        }
        let mean = try pool(&context, node, input: powered, output: nil) { attributes in
            var attributes = attributes
            attributes.countIncludePad = true
            return .averagePool(attributes)
        }
        let sum = context.builder.binary(.mul, mean, windowSize, name: "\(node.name)/sum")
        if p == 2 {
            context.builder.emit(node.name, .unary(Activation(function: .sqrt)), inputs: [sum], outputs: [try node.output()])
        } else {
            let root = context.builder.addConstant("\(node.name)/inverse_p", shape: [], floats: [1 / p])
            context.builder.emit(node.name, .binary(.pow), inputs: [sum, root], outputs: [try node.output()])
        }
    }
}

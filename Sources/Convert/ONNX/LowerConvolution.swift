import Format

/// Conv, ConvTranspose, Gemm and MatMul. Restore's convolutions take NCHW: 1-D ones run
/// as 2-D (`LowerOneDimensional`), 3-D ones as 2-D per depth slice
/// (`LowerVolumetricConvolution`); activations stay identity here, fusion passes set them later.
enum LowerConvolution {
    static func conv(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        if try LowerVolumetricConvolution.isVolumetric(context, node) { return try LowerVolumetricConvolution.conv(&context, node) }
        let weight = try node.requiredInput(1)
        try requireTwoSpatialDims(node, weight: weight, context: context)
        var attributes = ConvAttributes()
        attributes.window = try slidingWindow(node)
        attributes.group = try node.int("group", default: 1)
        context.builder.emit(node.name, .conv(attributes), inputs: [try node.requiredInput(0), weight] + optional(node.input(2)),
                             outputs: [try node.output()])
    }

    static func convTranspose(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        if try LowerVolumetricConvolution.isVolumetric(context, node) {
            return try LowerVolumetricConvolution.convTranspose(&context, node)
        }
        let input = try node.requiredInput(0)
        let weight = try node.requiredInput(1)
        try requireTwoSpatialDims(node, weight: weight, context: context)
        var attributes = ConvTransposeAttributes()
        attributes.window = try slidingWindow(node)
        attributes.group = try node.int("group", default: 1)
        attributes.outputPadding = try node.ints("output_padding") ?? [0, 0]
        if let outputShape = try node.ints("output_shape") {
            (attributes.window.pads, attributes.outputPadding) = try padsForOutputShape(
                Array(outputShape.suffix(2)), node: node, attributes: attributes, input: input, weight: weight, context: context)
            attributes.window.autoPad = .notset
        }
        context.builder.emit(node.name, .convTranspose(attributes), inputs: [input, weight] + optional(node.input(2)),
                             outputs: [try node.output()])
    }

    /// Pads and output padding that make ConvTranspose produce `outputShape` (ONNX: the
    /// total padding is split evenly, the odd pixel going to the end for SAME_UPPER, else
    /// to the begin). An output larger than the full result by less than a stride (a
    /// negative total) grows at the end, as output_padding does: that is what ONNX's
    /// reference and onnxruntime compute; onnxruntime refuses a stride or more, and so does
    /// Restore. It needs the input's spatial size, so only static input sizes are supported.
    private static func padsForOutputShape(_ outputShape: [Int], node: ONNXNode, attributes: ConvTransposeAttributes,
                                           input: String, weight: String,
                                           context: LoweringContext) throws -> (pads: [Int], outputPadding: [Int]) {
        guard outputShape.count == 2,
              let inputShape = context.builder.shape(of: input), inputShape.count == 4,
              case .fixed(let height) = inputShape[2], case .fixed(let width) = inputShape[3] else {
            throw LoweringFailure.unsupported("output_shape needs a static input height and width")
        }
        let kernel = try node.ints("kernel_shape") ?? context.builder.shape(of: weight).map { dims in
            dims.suffix(2).compactMap { if case .fixed(let size) = $0 { size } else { nil } }
        } ?? []
        guard kernel.count == 2 else { throw LoweringFailure.unsupported("output_shape needs a known kernel size") }
        let (strides, dilations, outputPadding) = (attributes.window.strides, attributes.window.dilations, attributes.outputPadding)
        guard outputPadding.count == 2 else { throw LoweringFailure.invalid("output_padding needs 2 values") }
        // Bounds keep the arithmetic below from overflowing on hostile values.
        let sane = 0...(1 << 24)
        guard (kernel + strides + dilations + outputPadding + outputShape + [height, width]).allSatisfy(sane.contains) else {
            throw LoweringFailure.invalid("kernel, strides, dilations, output_padding or output_shape out of range")
        }
        let upper = attributes.window.autoPad == .sameUpper
        var begins: [Int] = []
        var ends: [Int] = []
        var grown = outputPadding
        for (axis, inputSize) in [height, width].enumerated() {
            let total = strides[axis] * (inputSize - 1) + outputPadding[axis]
                + (kernel[axis] - 1) * dilations[axis] + 1 - outputShape[axis]
            guard total >= 0 else {
                grown[axis] -= total
                guard grown[axis] < strides[axis] else {
                    throw LoweringFailure.invalid("output_shape \(outputShape) is larger than the input, strides and kernel "
                                                  + "can give (by a stride or more along axis \(axis + 2))")
                }
                begins.append(0)
                ends.append(0)
                continue
            }
            begins.append(upper ? total / 2 : total - total / 2)
            ends.append(upper ? total - total / 2 : total / 2)
        }
        return (begins + ends, grown)
    }

    /// Gemm: Y = alpha·A'·B' + beta·C. With a constant B it becomes `linear` with
    /// W = (transB ? B : Bᵀ)·alpha and bias beta·C when C is a constant vector; otherwise
    /// matMul (with transposes) plus element-wise scaling and addition.
    static func gemm(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        var a = try node.requiredInput(0)
        let b = try node.requiredInput(1)
        let output = try node.output()
        let alpha = try node.float("alpha", default: 1)
        let beta = try node.float("beta", default: 1)
        let transposeB = try node.flag("transB", default: false)
        if try node.flag("transA", default: false) {
            a = context.builder.emitValue(named: "\(node.name)/transposeA", .transpose(TransposeAttributes(perm: [1, 0])), inputs: [a])
        }
        let c = beta == 0 ? nil : node.input(2)

        guard let bTensor = context.builder.constant(b), bTensor.shape.count == 2 else {
            try gemmByMatMul(&context, node, a: a, b: b, c: c, transposeB: transposeB, alpha: alpha, beta: beta)
            return
        }

        let weight = linearWeight(&context, node, b: bTensor, transposeB: transposeB, alpha: alpha)
        let outFeatures = bTensor.shape[transposeB ? 0 : 1]
        let linear = Op.linear(LinearAttributes())
        guard let c else {
            context.builder.emit(node.name, linear, inputs: [a, weight], outputs: [output])
            return
        }
        if let cTensor = context.builder.constant(c), let bias = biasVector(cTensor, outFeatures: outFeatures, beta: beta) {
            let biasName = context.builder.addConstant("\(node.name)/bias", shape: [outFeatures], floats: bias)
            context.builder.emit(node.name, linear, inputs: [a, weight, biasName], outputs: [output])
            return
        }
        // A full [M,N] or computed C: linear, then add beta·C.
        let addend = scaledAddend(&context, node, c: c, beta: beta)
        let product = context.builder.linear(a, weight: weight, name: "\(node.name)/linear")
        context.builder.emit(node.name, .binary(.add), inputs: [product, addend], outputs: [output])
    }

    /// beta·C as a value (C itself when beta is 1).
    private static func scaledAddend(_ context: inout LoweringContext, _ node: ONNXNode, c: String, beta: Float) -> String {
        guard beta != 1 else { return c }
        let scale = context.builder.addConstant("\(node.name)/beta", shape: [], floats: [beta])
        return context.builder.binary(.mul, c, scale, name: "\(node.name)/scaleC")
    }

    /// The [N,K] weight of `linear`: B as stored when transB (and alpha is 1), else a copy.
    private static func linearWeight(_ context: inout LoweringContext, _ node: ONNXNode, b: ConstantTensor,
                                     transposeB: Bool, alpha: Float) -> String {
        if transposeB && alpha == 1 { return b.name }
        let values = b.floatValues()
        let (rows, columns) = (b.shape[0], b.shape[1])
        let outFeatures = transposeB ? rows : columns
        let inFeatures = transposeB ? columns : rows
        var weight = [Float](repeating: 0, count: values.count)
        for n in 0..<outFeatures {
            for k in 0..<inFeatures {
                weight[n * inFeatures + k] = alpha * (transposeB ? values[n * columns + k] : values[k * columns + n])
            }
        }
        return context.builder.addConstant("\(node.name)/weight", shape: [outFeatures, inFeatures], floats: weight)
    }

    /// beta·C as an [N] bias when C is a scalar, [N] or [1,N]; nil for a full [M,N] addend.
    private static func biasVector(_ c: ConstantTensor, outFeatures: Int, beta: Float) -> [Float]? {
        let values = c.floatValues().map { $0 * beta }
        if values.count == 1 { return [Float](repeating: values[0], count: outFeatures) }
        let rowVector = c.shape == [outFeatures] || c.shape == [1, outFeatures]
        return rowVector ? values : nil
    }

    /// Gemm with a computed B: matMul(A', B') · alpha + beta·C, each step only when needed,
    /// the last one writing the node's output.
    private static func gemmByMatMul(_ context: inout LoweringContext, _ node: ONNXNode, a: String, b: String,
                                     c: String?, transposeB: Bool, alpha: Float, beta: Float) throws {
        let output = try node.output()
        var right = b
        if transposeB {
            right = context.builder.emitValue(named: "\(node.name)/transposeB", .transpose(TransposeAttributes(perm: [1, 0])),
                                              inputs: [b])
        }
        var steps: [(operation: Op, inputs: [String])] = [(.matMul, [a, right])]
        if alpha != 1 {
            steps.append((.binary(.mul), [context.builder.addConstant("\(node.name)/alpha", shape: [], floats: [alpha])]))
        }
        if let c {
            steps.append((.binary(.add), [scaledAddend(&context, node, c: c, beta: beta)]))
        }
        var previous: String?
        for (index, step) in steps.enumerated() {
            let inputs = optional(previous) + step.inputs
            if index == steps.count - 1 {
                context.builder.emit(node.name, step.operation, inputs: inputs, outputs: [output])
            } else {
                previous = context.builder.emitValue(named: "\(node.name)/\(step.operation.kind.rawValue)", step.operation,
                                                     inputs: inputs)
            }
        }
    }

    /// ONNX's auto_pad values ("" is taken for NOTSET, as onnxruntime does).
    static let autoPadNames: [String: AutoPad] = [
        "NOTSET": .notset, "": .notset, "SAME_UPPER": .sameUpper, "SAME_LOWER": .sameLower, "VALID": .valid,
    ]

    /// strides, pads, dilations and auto_pad over `spatialAxes` axes, shared by
    /// convolutions and pools; absent ones take ONNX's defaults (stride and dilation 1, no
    /// padding).
    static func slidingWindow(_ node: ONNXNode, spatialAxes: Int = 2) throws -> SlidingWindow {
        var window = SlidingWindow()
        func values(_ key: String, count: Int) throws -> [Int]? {
            guard let values = try node.ints(key) else { return nil }
            guard values.count == count else { throw LoweringFailure.unsupported("\(key) \(values) is not \(spatialAxes)-D") }
            return values
        }
        window.strides = try values("strides", count: spatialAxes) ?? Array(repeating: 1, count: spatialAxes)
        window.pads = try values("pads", count: 2 * spatialAxes) ?? Array(repeating: 0, count: 2 * spatialAxes)
        window.dilations = try values("dilations", count: spatialAxes) ?? Array(repeating: 1, count: spatialAxes)
        window.autoPad = try node.named("auto_pad", default: .notset, autoPadNames)
        return window
    }

    /// Refuses convolutions of other than 2 spatial axes (1-D and 3-D are lowered before),
    /// judged from kernel_shape or the weight's rank.
    private static func requireTwoSpatialDims(_ node: ONNXNode, weight: String, context: LoweringContext) throws {
        let spatialDims = try node.ints("kernel_shape")?.count ?? context.builder.rank(of: weight).map { $0 - 2 }
        if let spatialDims, spatialDims != 2 {
            throw LoweringFailure.unsupported("\(spatialDims)-D convolution; only 1-D, 2-D and 3-D are supported")
        }
    }
}

import Format

/// Conv, ConvTranspose, Gemm and MatMul. Convolutions are 2-D only (Restore's conv
/// takes NCHW); activations stay identity here, fusion passes set them later.
enum LowerConvolution {
    static func conv(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let weight = try node.requiredInput(1)
        try requireTwoSpatialDims(node, weight: weight, context: context)
        try context.emit(node.name, .conv, inputs: [try node.requiredInput(0), weight] + optional(node.input(2)),
                     outputs: [try node.output()], attributes: try windowAttributes(node))
    }

    static func convTranspose(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        let weight = try node.requiredInput(1)
        try requireTwoSpatialDims(node, weight: weight, context: context)
        var attributes = try windowAttributes(node)
        attributes.set("outputPadding", try node.ints("output_padding"))
        if let outputShape = try node.ints("output_shape") {
            attributes["pads"] = .ints(try padsForOutputShape(Array(outputShape.suffix(2)), node: node,
                                                              input: input, weight: weight, context: context))
            attributes["autoPad"] = nil
        }
        try context.emit(node.name, .convTranspose, inputs: [input, weight] + optional(node.input(2)),
                     outputs: [try node.output()], attributes: attributes)
    }

    /// Pads that make ConvTranspose produce `outputShape` (ONNX: the total padding is
    /// split evenly, the odd pixel going to the end for SAME_UPPER, else to the begin).
    /// It needs the input's spatial size, so only static input sizes are supported.
    private static func padsForOutputShape(_ outputShape: [Int], node: ONNXNode, input: String, weight: String,
                                           context: LoweringContext) throws -> [Int] {
        guard outputShape.count == 2,
              let inputShape = context.shape(of: input), inputShape.count == 4,
              case .fixed(let height) = inputShape[2], case .fixed(let width) = inputShape[3] else {
            throw LoweringFailure.unsupported("output_shape needs a static input height and width")
        }
        let kernel = try node.ints("kernel_shape") ?? context.shape(of: weight).map { dims in
            dims.suffix(2).compactMap { if case .fixed(let size) = $0 { size } else { nil } }
        } ?? []
        guard kernel.count == 2 else { throw LoweringFailure.unsupported("output_shape needs a known kernel size") }
        let strides = try node.ints("strides") ?? [1, 1]
        let dilations = try node.ints("dilations") ?? [1, 1]
        let outputPadding = try node.ints("output_padding") ?? [0, 0]
        guard strides.count == 2, dilations.count == 2, outputPadding.count == 2 else {
            throw LoweringFailure.invalid("strides, dilations and output_padding need 2 values each")
        }
        // Bounds keep the arithmetic below from overflowing on hostile values.
        let sane = 0...(1 << 24)
        guard (kernel + strides + dilations + outputPadding + outputShape + [height, width]).allSatisfy(sane.contains) else {
            throw LoweringFailure.invalid("kernel, strides, dilations, output_padding or output_shape out of range")
        }
        let upper = try node.string("auto_pad", default: "NOTSET") == "SAME_UPPER"
        var begins: [Int] = []
        var ends: [Int] = []
        for (axis, inputSize) in [height, width].enumerated() {
            let total = strides[axis] * (inputSize - 1) + outputPadding[axis]
                + (kernel[axis] - 1) * dilations[axis] + 1 - outputShape[axis]
            guard total >= 0 else {
                throw LoweringFailure.unsupported("output_shape \(outputShape) would need negative padding")
            }
            begins.append(upper ? total / 2 : total - total / 2)
            ends.append(upper ? total - total / 2 : total / 2)
        }
        return begins + ends
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
        let transposeB = try node.int("transB", default: 0) != 0
        if try node.int("transA", default: 0) != 0 {
            a = try context.emitIntermediate("\(node.name)/transposeA", .transpose, inputs: [a], attributes: ["perm": .ints([1, 0])])
        }
        let c = beta == 0 ? nil : node.input(2)

        guard let bTensor = context.constant(b), bTensor.shape.count == 2 else {
            try gemmByMatMul(&context, node, a: a, b: b, c: c, transposeB: transposeB, alpha: alpha, beta: beta)
            return
        }

        let weight = linearWeight(&context, node, b: bTensor, transposeB: transposeB, alpha: alpha)
        let outFeatures = bTensor.shape[transposeB ? 0 : 1]
        guard let c else {
            try context.emit(node.name, .linear, inputs: [a, weight], outputs: [output])
            return
        }
        if let cTensor = context.constant(c), let bias = biasVector(cTensor, outFeatures: outFeatures, beta: beta) {
            let biasName = context.addConstant("\(node.name)/bias", shape: [outFeatures], floats: bias)
            try context.emit(node.name, .linear, inputs: [a, weight, biasName], outputs: [output])
            return
        }
        // A full [M,N] or computed C: linear, then add beta·C.
        let addend = try scaledAddend(&context, node, c: c, beta: beta)
        let product = try context.emitIntermediate("\(node.name)/linear", .linear, inputs: [a, weight])
        try context.emit(node.name, .binary, inputs: [product, addend], outputs: [output],
                     attributes: ["function": .string(BinaryFunction.add.rawValue)])
    }

    /// beta·C as a value (C itself when beta is 1).
    private static func scaledAddend(_ context: inout LoweringContext, _ node: ONNXNode, c: String, beta: Float) throws -> String {
        guard beta != 1 else { return c }
        let scale = context.addConstant("\(node.name)/beta", shape: [], floats: [beta])
        return try context.emitIntermediate("\(node.name)/scaleC", .binary, inputs: [c, scale],
                                        attributes: ["function": .string(BinaryFunction.mul.rawValue)])
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
        return context.addConstant("\(node.name)/weight", shape: [outFeatures, inFeatures], floats: weight)
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
            right = try context.emitIntermediate("\(node.name)/transposeB", .transpose, inputs: [b], attributes: ["perm": .ints([1, 0])])
        }
        var steps: [(op: OpKind, inputs: [String], function: BinaryFunction?)] = [(.matMul, [a, right], nil)]
        if alpha != 1 {
            steps.append((.binary, [context.addConstant("\(node.name)/alpha", shape: [], floats: [alpha])], .mul))
        }
        if let c {
            steps.append((.binary, [try scaledAddend(&context, node, c: c, beta: beta)], .add))
        }
        var previous: String?
        for (index, step) in steps.enumerated() {
            let attributes: [String: Attribute] = step.function.map { ["function": .string($0.rawValue)] } ?? [:]
            let inputs = optional(previous) + step.inputs
            if index == steps.count - 1 {
                try context.emit(node.name, step.op, inputs: inputs, outputs: [output], attributes: attributes)
            } else {
                previous = try context.emitIntermediate("\(node.name)/\(step.op.rawValue)", step.op, inputs: inputs,
                                                    attributes: attributes)
            }
        }
    }

    /// strides, pads, dilations, group and autoPad, shared by convolutions and pools.
    static func windowAttributes(_ node: ONNXNode) throws -> [String: Attribute] {
        var attributes: [String: Attribute] = [:]
        for (onnxName, restoreName, count) in [("strides", "strides", 2), ("pads", "pads", 4), ("dilations", "dilations", 2)] {
            guard let values = try node.ints(onnxName) else { continue }
            guard values.count == count else {
                throw LoweringFailure.unsupported("\(onnxName) \(values) is not 2-D")
            }
            attributes[restoreName] = .ints(values)
        }
        attributes.set("group", try node.int("group"))
        let autoPad = try node.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET", "": break
        case "SAME_UPPER", "SAME_LOWER", "VALID": attributes["autoPad"] = .string(autoPad.lowercased())
        default: throw LoweringFailure.invalid("auto_pad '\(autoPad)' is not an ONNX value")
        }
        return attributes
    }

    /// Refuses 1-D and 3-D convolutions, judged from kernel_shape or the weight's rank.
    private static func requireTwoSpatialDims(_ node: ONNXNode, weight: String, context: LoweringContext) throws {
        let spatialDims = try node.ints("kernel_shape")?.count ?? context.rank(of: weight).map { $0 - 2 }
        if let spatialDims, spatialDims != 2 {
            throw LoweringFailure.unsupported("\(spatialDims)-D convolution; only 2-D is supported")
        }
    }
}

/// An optional input as a list of zero or one names.
func optional(_ name: String?) -> [String] { name.map { [$0] } ?? [] }

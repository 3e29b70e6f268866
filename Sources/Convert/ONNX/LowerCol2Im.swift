import Format

/// Col2Im (opset 18): the inverse of im2col — each column of X [N, C·kH·kW, L] is one
/// block position's patch, added into the image [N, C, H, W] where the block sat (or the
/// volume [N, C, D, H, W]).
///
/// That is a transposed convolution: X reshaped to [N, C·kH·kW, L_h, L_w] (the block
/// positions, row-major), with C groups of kH·kW input channels and a one-hot weight
/// [C·kH·kW, 1, kH, kW] whose input channel c·kH·kW + t carries tap t, so each patch value
/// lands at its tap, with Col2Im's strides, dilations and pads. An image size the last
/// block does not reach (the remainder of the stride) is output padding. 3-D blocks are
/// the same with one more axis, through the 3-D transposed convolution
/// (`LowerVolumetricConvolution`).
enum LowerCol2Im {
    static func col2Im(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard let image = try context.constantInts(node, 1, role: "image_shape"),
              let block = try context.constantInts(node, 2, role: "block_shape") else {
            throw LoweringFailure.invalid("inputs 'image_shape' and 'block_shape' are required")
        }
        guard image.count == block.count else {
            throw LoweringFailure.invalid("image_shape \(image) and block_shape \(block) differ in length")
        }
        let dims = image.count
        guard dims == 2 || dims == 3 else { throw LoweringFailure.unsupported("\(dims)-D Col2Im; only 2-D and 3-D are supported") }
        var window = try LowerConvolution.slidingWindow(node, spatialAxes: dims)
        window.autoPad = .notset
        let sane = 1...(1 << 16)
        guard (image + block + window.strides + window.dilations).allSatisfy(sane.contains),
              window.pads.allSatisfy((0...(1 << 16)).contains) else {
            throw LoweringFailure.invalid("image_shape, block_shape, strides, dilations or pads out of range")
        }
        let taps = block.reduce(1, *)
        guard let shape = context.builder.shape(of: input), shape.count == 3, case .fixed(let columns) = shape[1] else {
            throw LoweringFailure.unsupported("input needs a known [N, C·kH·kW, L] shape")
        }
        guard columns % taps == 0, columns > 0 else {
            throw LoweringFailure.invalid("input has \(columns) rows, not a multiple of the block's \(taps) positions")
        }
        let channels = columns / taps

        // Block positions along each axis, and the image rows/columns past the last block.
        var positions: [Int] = []
        var outputPadding: [Int] = []
        for axis in 0..<dims {
            let extent = (block[axis] - 1) * window.dilations[axis] + 1
            let span = image[axis] + window.pads[axis] + window.pads[axis + dims] - extent
            guard span >= 0 else {
                throw LoweringFailure.invalid("block_shape \(block) does not fit image_shape \(image) with pads \(window.pads)")
            }
            positions.append(span / window.strides[axis] + 1)
            outputPadding.append(span % window.strides[axis])
        }
        if case .fixed(let count) = shape[2], count != positions.reduce(1, *) {
            throw LoweringFailure.invalid("input has \(count) blocks; image_shape, block_shape, strides, dilations and pads "
                                          + "give \(positions.map(String.init).joined(separator: "×"))")
        }

        var weight = [Float](repeating: 0, count: columns * taps)
        for row in 0..<columns { weight[row * taps + row % taps] = 1 }
        let oneHot = ConstantTensor(name: context.builder.freshName("\(node.name)/one_hot_taps"), shape: [columns, 1] + block,
                                    floats: weight)
        let blocksShape = context.builder.addConstant("\(node.name)/blocks_shape", shape: [2 + dims], ints: [0, columns] + positions)
        let blocks = context.builder.emitValue(named: "\(node.name)/blocks", .reshape(ReshapeAttributes()), inputs: [input, blocksShape])
        var attributes = ConvTransposeAttributes()
        attributes.group = channels
        attributes.outputPadding = Array(outputPadding.suffix(2))
        attributes.window.strides = Array(window.strides.suffix(2))
        attributes.window.dilations = Array(window.dilations.suffix(2))
        attributes.window.pads = [window.pads[dims - 2], window.pads[dims - 1], window.pads[2 * dims - 2], window.pads[2 * dims - 1]]
        guard dims == 3 else {
            context.builder.addConstant(oneHot)
            context.builder.emit(node.name, .convTranspose(attributes), inputs: [blocks, oneHot.name], outputs: [try node.output()])
            return
        }
        let depthWindow = LowerVolumetricConvolution.DepthWindow(
            stride: window.strides[0], padBefore: window.pads[0], padAfter: window.pads[3], dilation: window.dilations[0],
            outputPadding: outputPadding[0])
        try LowerVolumetricConvolution.emitTransposed(&context, name: node.name, input: blocks, depth: positions[0],
                                                      weight: oneHot, bias: nil, depthWindow: depthWindow,
                                                      attributes: attributes, output: try node.output())
    }
}

import Format

/// ONNX DeformConv (19, 22), the deformable convolution of video and burst restoration
/// networks (EDVR, BasicVSR++): each output pixel's kernel taps are moved by learned
/// offsets and sampled bilinearly (zero outside the image), optionally weighted by a mask,
/// then combined by the weights. Lowered onto `gridSample` and a 1×1 `conv`:
///
/// 1. the offsets [N, G·K·2, oH, oW] (per offset group and tap, dy then dx) are added to
///    each tap's base position (i·stride − pad + a·dilation, likewise for x), and mapped
///    to GridSample's −1…1 with align_corners, x first: the grid [N·G, K·oH, oW, 2];
/// 2. `gridSample` (bilinear, zero padding, align_corners) of X viewed as [N·G, C/G, H, W]
///    gives every tap's samples, [N·G, C/G, K·oH, oW], weighted by the mask;
/// 3. viewed as [N, C·K, oH, oW] (channel-major, tap-minor, the order of the flattened
///    weights), a 1×1 convolution with the weights [M, C/group·K, 1, 1] and the bias.
///
/// It needs the weight as a constant and X's channels, height and width fixed in the
/// model (the tap positions are constants), and a height and width above 1.
enum LowerDeformConv {
    static func deformConv(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let input = try node.requiredInput(0)
        guard let weight = context.builder.constant(try node.requiredInput(1)), weight.shape.count == 4 else {
            throw LoweringFailure.unsupported("a weight that is not a constant of rank 4 (only 2-D deformable convolution)")
        }
        guard let dims = context.builder.shape(of: input), dims.count == 4,
              let channels = dims[1].fixedValue, let height = dims[2].fixedValue, let width = dims[3].fixedValue else {
            throw LoweringFailure.unsupported("X's channels, height and width must be fixed in the model")
        }
        guard height > 1, width > 1 else { throw LoweringFailure.unsupported("an input of height or width 1") }
        let (outChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[2], weight.shape[3])
        if let kernel = try node.ints("kernel_shape"), kernel != [kernelH, kernelW] {
            throw LoweringFailure.invalid("kernel_shape \(kernel) differs from the weight's \([kernelH, kernelW])")
        }
        let strides = try node.ints("strides") ?? [1, 1]
        let dilations = try node.ints("dilations") ?? [1, 1]
        let pads = try node.ints("pads") ?? [0, 0, 0, 0]
        guard strides.count == 2, dilations.count == 2, pads.count == 4,
              (strides + dilations).allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else {
            throw LoweringFailure.invalid("strides, dilations and pads must be 2, 2 and 4 values in range")
        }
        let group = try node.int("group", default: 1)
        let offsetGroups = try node.int("offset_group", default: 1)
        guard group >= 1, offsetGroups >= 1, channels % group == 0, channels % offsetGroups == 0, outChannels % group == 0,
              weight.shape[1] == channels / group else {
            throw LoweringFailure.invalid("group \(group) and offset_group \(offsetGroups) do not divide the channels")
        }
        let outH = (height + pads[0] + pads[2] - dilations[0] * (kernelH - 1) - 1) / strides[0] + 1
        let outW = (width + pads[1] + pads[3] - dilations[1] * (kernelW - 1) - 1) / strides[1] + 1
        guard outH >= 1, outW >= 1 else { throw LoweringFailure.invalid("the output would be empty") }
        let taps = kernelH * kernelW
        let name = node.name

        // 1. The sampling grid.
        func constantInts(_ hint: String, _ values: [Int]) -> String {
            context.builder.addConstant("\(name)/\(hint)", shape: [values.count], ints: values)
        }
        let offsets = context.builder.emitValue(
            named: "\(name)/offsets", .reshape(ReshapeAttributes()),
            inputs: [try node.requiredInput(2), constantInts("offsets_shape", [0, offsetGroups * taps, 2, outH, outW])])
        let swapped = context.builder.emitValue(named: "\(name)/offsets_xy", .gather(GatherAttributes(axis: 2)),
                                                inputs: [offsets, constantInts("xy", [1, 0])])
        let lastAxis = context.builder.emitValue(named: "\(name)/offsets_last", .transpose(TransposeAttributes(perm: [0, 1, 3, 4, 2])),
                                                 inputs: [swapped])
        var base: [Float] = []
        base.reserveCapacity(offsetGroups * taps * outH * outW * 2)
        for _ in 0..<offsetGroups {
            for tap in 0..<taps {
                let (a, b) = (tap / kernelW, tap % kernelW)
                for i in 0..<outH {
                    for j in 0..<outW {
                        base.append(Float(j * strides[1] - pads[1] + b * dilations[1]))
                        base.append(Float(i * strides[0] - pads[0] + a * dilations[0]))
                    }
                }
            }
        }
        let baseName = context.builder.addConstant("\(name)/tap_positions", shape: [offsetGroups * taps, outH, outW, 2], floats: base)
        let positions = context.builder.binary(.add, lastAxis, baseName, name: "\(name)/positions")
        let scale = context.builder.addConstant("\(name)/to_unit", shape: [2], floats: [2 / Float(width - 1), 2 / Float(height - 1)])
        let one = context.builder.addConstant("\(name)/one", shape: [], floats: [1])
        let scaled = context.builder.binary(.mul, positions, scale, name: "\(name)/scaled")
        let unit = context.builder.binary(.sub, scaled, one, name: "\(name)/unit")
        let grid = context.builder.emitValue(named: "\(name)/grid", .reshape(ReshapeAttributes()),
                                             inputs: [unit, constantInts("grid_shape", [-1, taps * outH, outW, 2])])

        // 2. The samples of every tap, weighted by the mask.
        let groupedInput = context.builder.emitValue(
            named: "\(name)/input_groups", .reshape(ReshapeAttributes()),
            inputs: [input, constantInts("input_groups_shape", [-1, channels / offsetGroups, height, width])])
        let sampling = GridSampleAttributes(mode: .linear, paddingMode: .zeros, alignCorners: true)
        let samples = context.builder.emitValue(named: "\(name)/samples", .gridSample(sampling), inputs: [groupedInput, grid])
        let perTapShape = [-1, offsetGroups, channels / offsetGroups, taps, outH, outW]
        var taped = context.builder.emitValue(named: "\(name)/samples_per_tap", .reshape(ReshapeAttributes()),
                                              inputs: [samples, constantInts("per_tap_shape", perTapShape)])
        if let mask = node.input(4) {
            let maskShape = constantInts("mask_shape", [-1, offsetGroups, 1, taps, outH, outW])
            let groupedMask = context.builder.emitValue(named: "\(name)/mask", .reshape(ReshapeAttributes()), inputs: [mask, maskShape])
            taped = context.builder.binary(.mul, taped, groupedMask, name: "\(name)/masked")
        }
        let columns = context.builder.emitValue(named: "\(name)/columns", .reshape(ReshapeAttributes()),
                                                inputs: [taped, constantInts("columns_shape", [-1, channels * taps, outH, outW])])

        // 3. The weights as a 1×1 convolution over the taps.
        let flatWeight = ConstantTensor(name: context.builder.freshName("\(name)/weight_1x1"),
                                        shape: [outChannels, weight.shape[1] * taps, 1, 1], floats: weight.floatValues())
        context.builder.addConstant(flatWeight)
        var attributes = ConvAttributes()
        attributes.group = group
        context.builder.emit(name, .conv(attributes), inputs: [columns, flatWeight.name] + optional(node.input(3)),
                             outputs: [try node.output()])
    }
}

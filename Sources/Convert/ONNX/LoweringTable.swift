import Format

/// The ONNX ops of the default domain Restore imports, each with the rule that lowers it
/// to Restore's op set (Sources/Format/OpKind.swift). Adding an op adds one entry here.
enum LoweringTable {
    static let rules: [String: LoweringRule] = {
        var rules: [String: LoweringRule] = [
            "Conv": LowerConvolution.conv,
            "ConvTranspose": LowerConvolution.convTranspose,
            "Gemm": LowerConvolution.gemm,
            "MatMul": LowerLayout.direct(.matMul, inputCount: 2),
            "Einsum": LowerEinsum.einsum,

            "BatchNormalization": LowerNormalization.batchNormalization,
            "InstanceNormalization": LowerNormalization.instanceNormalization,
            "LayerNormalization": LowerNormalization.layerNormalization,
            "Softmax": LowerNormalization.softmax,

            "LeakyRelu": LowerElementwise.leakyRelu,
            "Elu": LowerElementwise.elu,
            "HardSigmoid": LowerElementwise.hardSigmoid,
            "HardSwish": LowerElementwise.hardSwish,
            "Gelu": LowerElementwise.gelu,
            "Clip": LowerElementwise.clip,
            "Mod": LowerElementwise.mod,
            "Where": LowerElementwise.where,

            "Concat": LowerLayout.concat,
            "Split": LowerLayout.split,
            "Slice": LowerLayout.slice,
            "Reshape": LowerLayout.reshape,
            "Transpose": LowerLayout.transpose,
            "Squeeze": LowerLayout.squeeze,
            "Unsqueeze": LowerLayout.unsqueeze,
            "Flatten": LowerLayout.flatten,
            "Pad": LowerLayout.pad,
            "DepthToSpace": LowerLayout.depthToSpace,
            "SpaceToDepth": LowerLayout.spaceToDepth,
            "Gather": LowerLayout.gather,
            "ScatterND": LowerLayout.scatterND,
            "Expand": LowerLayout.direct(.expand, inputCount: 2),
            "Tile": LowerLayout.direct(.tile, inputCount: 2),
            "Range": LowerLayout.direct(.range, inputCount: 3),
            "Resize": LowerResize.resize,
            "Upsample": LowerResize.upsample,
            "GridSample": LowerResize.gridSample,

            "GlobalAveragePool": LowerReduction.globalPool(.mean),
            "GlobalMaxPool": LowerReduction.globalPool(.max),
            "AveragePool": LowerReduction.averagePool,
            "MaxPool": LowerReduction.maxPool,
            "ReduceMean": LowerReduction.reduce(.mean, axesInputFrom: 18),
            "ReduceMax": LowerReduction.reduce(.max, axesInputFrom: 18),
            "ReduceMin": LowerReduction.reduce(.min, axesInputFrom: 18),
            "ReduceSum": LowerReduction.reduce(.sum, axesInputFrom: 13),

            "Shape": LowerShapeArithmetic.shape,
            "Cast": LowerShapeArithmetic.cast,
            "ConstantOfShape": LowerShapeArithmetic.constantOfShape,
            "Constant": LowerShapeArithmetic.constant,
            "Identity": LowerShapeArithmetic.identity,
            "Dropout": LowerShapeArithmetic.dropout,
        ]
        for (opType, function) in LowerElementwise.plainUnary { rules[opType] = LowerElementwise.unary(function) }
        for (opType, function) in LowerElementwise.plainBinary { rules[opType] = LowerElementwise.binary(function) }
        for (opType, function) in LowerElementwise.variadic { rules[opType] = LowerElementwise.chain(function) }
        return rules
    }()
}

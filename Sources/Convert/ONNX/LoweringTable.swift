import Format

/// How one ONNX op is lowered, and the versions of the op whose semantics the rule implements.
///
/// `versions` lists the op's since-versions (ONNX's `since_version` facts, checked against
/// the onnx package by scripts/conformance/check_versions.py) from the one in force at
/// opset 7 up to the newest opset Restore reads, `ONNXImporter.supportedOpsets`: a node's
/// version is the largest of these not above the model's opset, and each version holds
/// until the next. A since-version in `refused` is known but not implemented; a node of it
/// is refused by name with both versions, never run with another version's semantics.
struct Lowering {
    let rule: LoweringRule
    let versions: [Int]
    /// Since-versions of the op the rule does not implement, with why.
    let refused: [Int: String]

    init(_ rule: @escaping LoweringRule, versions: [Int], refused: [Int: String] = [:]) {
        self.rule = rule
        self.versions = versions
        self.refused = refused
    }

    /// The op's version in force at `opset`: the largest since-version not above it (nil
    /// when the op did not exist yet).
    func version(atOpset opset: Int) -> Int? {
        (versions + refused.keys).filter { $0 <= opset }.max()
    }
}

/// The ONNX ops of the default domain Restore imports, each with the rule that lowers it
/// to Restore's op set (Sources/Format/OpKind.swift) and the op versions it implements.
/// Adding an op adds one entry here.
enum LoweringTable {
    static let rules: [String: Lowering] = {
        var rules: [String: Lowering] = [
            "Conv": Lowering(LowerOneDimensional.wrapping(LowerConvolution.conv, weighted: true), versions: [1, 11, 22]),
            "DeformConv": Lowering(LowerDeformConv.deformConv, versions: [19, 22]),
            "ConvTranspose": Lowering(LowerOneDimensional.wrapping(LowerConvolution.convTranspose, weighted: true), versions: [1, 11, 22]),
            "Gemm": Lowering(LowerConvolution.gemm, versions: [7, 9, 11, 13]),
            "MatMul": Lowering(LowerLayout.direct(.matMul, inputCount: 2), versions: [1, 9, 13]),
            "Einsum": Lowering(LowerEinsum.einsum, versions: [12, 28]),
            "Attention": Lowering(LowerAttention.attention, versions: [23, 24, 25]),

            "BatchNormalization": Lowering(LowerNormalization.batchNormalization, versions: [7, 9, 14, 15]),
            "InstanceNormalization": Lowering(LowerNormalization.instanceNormalization, versions: [6, 22]),
            "LayerNormalization": Lowering(LowerNormalization.layerNormalization, versions: [17]),
            "Softmax": Lowering(LowerNormalization.softmax, versions: [1, 11, 13]),
            "LogSoftmax": Lowering(LowerNormalization.logSoftmax, versions: [1, 11, 13]),
            "Hardmax": Lowering(LowerNormalization.hardmax, versions: [1, 11, 13]),
            "RMSNormalization": Lowering(LowerNormalization.rmsNormalization, versions: [23]),
            "GroupNormalization": Lowering(LowerNormalization.groupNormalization, versions: [18, 21]),
            "LpNormalization": Lowering(LowerNormalization.lpNormalization, versions: [1, 22]),
            "LRN": Lowering(LowerNormalization.lrn, versions: [1, 13]),

            "LeakyRelu": Lowering(LowerElementwise.leakyRelu, versions: [6, 16]),
            "Elu": Lowering(LowerElementwise.elu, versions: [6, 22]),
            "HardSigmoid": Lowering(LowerElementwise.hardSigmoid, versions: [6, 22]),
            "HardSwish": Lowering(LowerElementwise.hardSwish, versions: [14, 22]),
            "Gelu": Lowering(LowerElementwise.gelu, versions: [20]),
            "Clip": Lowering(LowerElementwise.clip, versions: [6, 11, 12, 13]),
            "Pow": Lowering(LowerElementwise.pow, versions: [7, 12, 13, 15]),
            "Mod": Lowering(LowerElementwise.mod, versions: [10, 13, 28]),
            "Where": Lowering(LowerElementwise.where, versions: [9, 16]),
            "Selu": Lowering(LowerElementwise.selu, versions: [6, 22]),
            "Celu": Lowering(LowerElementwise.celu, versions: [12, 28]),
            "ThresholdedRelu": Lowering(LowerElementwise.thresholdedRelu, versions: [10, 22]),
            "Shrink": Lowering(LowerElementwise.shrink, versions: [9]),
            "Softsign": Lowering(LowerElementwise.softsign, versions: [1, 22]),
            "Sign": Lowering(LowerElementwise.sign, versions: [9, 13]),
            "Mean": Lowering(LowerElementwise.mean, versions: [6, 8, 13]),
            "Mish": Lowering(LowerElementwise.mish, versions: [18, 22]),
            "Swish": Lowering(LowerElementwise.swish, versions: [24]),
            "SwiGLU": Lowering(LowerElementwise.swiGLU, versions: [28]),
            "MeanVarianceNormalization": Lowering(LowerNormalization.meanVarianceNormalization, versions: [9, 13]),
            "Det": Lowering(LowerLayout.direct(.det, inputCount: 1), versions: [11, 22]),

            "Concat": Lowering(LowerLayout.concat, versions: [4, 11, 13]),
            "Split": Lowering(LowerLayout.split, versions: [2, 11, 13, 18]),
            "Slice": Lowering(LowerLayout.slice, versions: [1, 10, 11, 13]),
            "Reshape": Lowering(LowerLayout.reshape, versions: [5, 13, 14, 19, 21, 23, 24, 25]),
            "Transpose": Lowering(LowerLayout.transpose, versions: [1, 13, 21, 23, 24, 25]),
            "Squeeze": Lowering(LowerLayout.squeeze, versions: [1, 11, 13, 21, 23, 24, 25]),
            "Unsqueeze": Lowering(LowerLayout.unsqueeze, versions: [1, 11, 13, 21, 23, 24, 25]),
            "Flatten": Lowering(LowerLayout.flatten, versions: [1, 9, 11, 13, 21, 23, 24, 25]),
            "Pad": Lowering(LowerLayout.pad, versions: [2, 11, 13, 18, 19, 21, 23, 24, 25]),
            "DepthToSpace": Lowering(LowerLayout.depthToSpace, versions: [1, 11, 13, 28]),
            "SpaceToDepth": Lowering(LowerLayout.spaceToDepth, versions: [1, 13, 28]),
            "Gather": Lowering(LowerLayout.gather, versions: [1, 11, 13]),
            "ScatterND": Lowering(LowerLayout.scatterND, versions: [11, 13, 16, 18]),
            "GatherElements": Lowering(LowerLayout.gatherElements, versions: [11, 13]),
            "ScatterElements": Lowering(LowerLayout.scatterElements, versions: [11, 13, 16, 18]),
            "Scatter": Lowering(LowerLayout.scatterElements, versions: [9, 11]),
            "GatherND": Lowering(LowerLayout.gatherND, versions: [11, 12, 13]),
            "ReverseSequence": Lowering(LowerLayout.reverseSequence, versions: [10, 28]),
            "OneHot": Lowering(LowerLayout.oneHot, versions: [9, 11, 28]),
            "Expand": Lowering(LowerLayout.direct(.expand, inputCount: 2), versions: [8, 13]),
            "Tile": Lowering(LowerLayout.direct(.tile, inputCount: 2), versions: [6, 13]),
            "Range": Lowering(LowerLayout.direct(.range, inputCount: 3), versions: [11, 27]),
            "CenterCropPad": Lowering(LowerLayout.centerCropPad, versions: [18]),
            "Resize": Lowering(LowerResize.resize, versions: [11, 13, 18, 19],
                               refused: [10: "its coordinate rules predate coordinate_transformation_mode; re-export with opset 11 or newer"]),
            "Upsample": Lowering(LowerResize.upsample, versions: [7, 9],
                                 refused: [10: "Upsample is deprecated from opset 10; export Resize instead"]),
            "GridSample": Lowering(LowerResize.gridSample, versions: [16, 20, 22]),
            "AffineGrid": Lowering(LowerAffineGrid.affineGrid, versions: [20]),
            "Col2Im": Lowering(LowerCol2Im.col2Im, versions: [18]),

            "GlobalAveragePool": Lowering(LowerReduction.globalPool(.mean), versions: [1, 22]),
            "GlobalMaxPool": Lowering(LowerReduction.globalPool(.max), versions: [1, 22]),
            "AveragePool": Lowering(LowerOneDimensional.wrapping(LowerReduction.averagePool, weighted: false), versions: [7, 10, 11, 19, 22]),
            "LpPool": Lowering(LowerOneDimensional.wrapping(LowerReduction.lpPool, weighted: false), versions: [2, 11, 18, 22]),
            "MaxPool": Lowering(LowerOneDimensional.wrapping(LowerReduction.maxPool, weighted: false), versions: [1, 8, 10, 11, 12, 22]),
            "MaxUnpool": Lowering(LowerReduction.maxUnpool, versions: [9, 11, 22]),
            "ReduceMean": Lowering(LowerReduction.reduce(.mean, axesInputFrom: 18), versions: [1, 11, 13, 18]),
            "ReduceMax": Lowering(LowerReduction.reduce(.max, axesInputFrom: 18), versions: [1, 11, 12, 13, 18, 20]),
            "ReduceMin": Lowering(LowerReduction.reduce(.min, axesInputFrom: 18), versions: [1, 11, 12, 13, 18, 20]),
            "ReduceSum": Lowering(LowerReduction.reduce(.sum, axesInputFrom: 13), versions: [1, 11, 13]),
            "ReduceProd": Lowering(LowerReduction.reduce(.prod, axesInputFrom: 18), versions: [1, 11, 13, 18]),
            "ReduceL1": Lowering(LowerReduction.reduce(.l1), versions: [1, 11, 13, 18]),
            "ReduceL2": Lowering(LowerReduction.reduce(.l2), versions: [1, 11, 13, 18]),
            "ReduceSumSquare": Lowering(LowerReduction.reduce(.sumSquare), versions: [1, 11, 13, 18]),
            "ReduceLogSum": Lowering(LowerReduction.reduce(.logSum), versions: [1, 11, 13, 18, 28]),
            "ReduceLogSumExp": Lowering(LowerReduction.reduce(.logSumExp), versions: [1, 11, 13, 18, 28]),

            "Shape": Lowering(LowerShapeArithmetic.shape, versions: [1, 13, 15, 19, 21, 23, 24, 25]),
            "Cast": Lowering(LowerShapeArithmetic.cast, versions: [6, 9, 13, 19, 21, 23, 24, 25, 28]),
            "CastLike": Lowering(LowerShapeArithmetic.castLike, versions: [15, 19, 21, 23, 24, 25]),
            "Size": Lowering(LowerShapeArithmetic.size, versions: [1, 13, 19, 21, 23, 24, 25]),
            "ConstantOfShape": Lowering(LowerShapeArithmetic.constantOfShape, versions: [9, 20, 21, 23, 24, 25]),
            "Constant": Lowering(LowerShapeArithmetic.constant, versions: [1, 9, 11, 12, 13, 19, 21, 23, 24, 25]),
            "Identity": Lowering(LowerShapeArithmetic.identity, versions: [1, 13, 14, 16, 19, 21, 23, 24, 25]),
            "Dropout": Lowering(LowerShapeArithmetic.dropout, versions: [7, 10, 12, 13, 22]),
            "If": Lowering(LowerIf.inlineTakenBranch, versions: [1, 11, 13, 16, 19, 21, 23, 24, 25]),
        ]
        for (opType, entry) in LowerElementwise.plainUnary {
            rules[opType] = Lowering(LowerElementwise.unary(entry.function), versions: entry.versions)
        }
        for (opType, entry) in LowerElementwise.plainBinary {
            rules[opType] = Lowering(LowerElementwise.binary(entry.function), versions: entry.versions)
        }
        for (opType, entry) in LowerElementwise.variadic {
            rules[opType] = Lowering(LowerElementwise.chain(entry.function), versions: entry.versions)
        }
        return rules
    }()
}

import Format

extension OpKind {
    /// The operator that implements this kind: one file per op under `Runtime/Ops`.
    public var operatorType: any Operator.Type {
        switch self {
        case .conv: Convolution.self
        case .convTranspose: TransposedConvolution.self
        case .linear: Linear.self
        case .matMul: MatrixMultiply.self
        case .attention: ScaledDotProductAttention.self
        case .windowAttention: WindowAttention.self
        case .instanceNorm: InstanceNormalization.self
        case .layerNorm: LayerNormalization.self
        case .softmax: Softmax.self
        case .unary: ElementwiseUnary.self
        case .binary: ElementwiseBinary.self
        case .where: Select.self
        case .reduce: Reduction.self
        case .averagePool: AveragePool.self
        case .maxPool: MaxPool.self
        case .concat: Concatenation.self
        case .split: Split.self
        case .slice: Slice.self
        case .transpose: Transpose.self
        case .reshape: Reshape.self
        case .squeeze: Squeeze.self
        case .unsqueeze: Unsqueeze.self
        case .flatten: Flatten.self
        case .pad: Pad.self
        case .resize: Resize.self
        case .gridSample: GridSample.self
        case .depthToSpace: DepthToSpace.self
        case .spaceToDepth: SpaceToDepth.self
        case .expand: Expand.self
        case .tile: Tile.self
        case .gather: Gather.self
        case .scatterND: ScatterND.self
        case .shape: ShapeOf.self
        case .cast: Cast.self
        case .range: ArithmeticRange.self
        case .constantOfShape: ConstantOfShape.self
        }
    }

    /// Parses a node into its operator.
    public static func makeOperator(_ node: Node) throws -> any Operator {
        try node.op.operatorType.init(node: node)
    }
}

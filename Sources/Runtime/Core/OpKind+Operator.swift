import Format

extension OpKind {
    /// The operator that implements a node, given its typed attributes: one file per op
    /// under `Runtime/Ops`. Throws, naming the node, where an op refuses attributes the
    /// schema allows (a cast to f16, a split whose `numOutputs` differs from its outputs).
    public static func makeOperator(_ node: Node) throws -> any Operator {
        let name = node.name
        return switch node.operation {
        case .conv(let attributes): Convolution(name: name, attributes: attributes)
        case .convTranspose(let attributes): TransposedConvolution(name: name, attributes: attributes)
        case .linear(let attributes): Linear(name: name, attributes: attributes)
        case .matMul: MatrixMultiply(name: name)
        case .attention(let attributes): ScaledDotProductAttention(name: name, attributes: attributes)
        case .windowAttention(let attributes): WindowAttention(name: name, attributes: attributes)
        case .deformableAttention(let attributes): DeformableAttention(name: name, attributes: attributes)
        case .instanceNorm(let attributes): InstanceNormalization(name: name, attributes: attributes)
        case .layerNorm(let attributes): LayerNormalization(name: name, attributes: attributes)
        case .softmax(let attributes): Softmax(name: name, attributes: attributes)
        case .unary(let activation): ElementwiseUnary(name: name, activation: activation)
        case .binary(let function): ElementwiseBinary(name: name, function: function)
        case .where: Select(name: name)
        case .reduce(let attributes): Reduction(name: name, attributes: attributes)
        case .averagePool(let attributes): AveragePool(name: name, attributes: attributes)
        case .maxPool(let attributes): MaxPool(name: name, attributes: attributes)
        case .concat(let attributes): Concatenation(name: name, attributes: attributes)
        case .split(let attributes): try Split(name: name, attributes: attributes, outputCount: node.outputs.count)
        case .slice: Slice(name: name)
        case .transpose(let attributes): Transpose(name: name, attributes: attributes)
        case .reshape(let attributes): Reshape(name: name, attributes: attributes)
        case .squeeze(let attributes): Squeeze(name: name, attributes: attributes)
        case .unsqueeze(let attributes): Unsqueeze(name: name, attributes: attributes)
        case .flatten(let attributes): Flatten(name: name, attributes: attributes)
        case .pad(let attributes): Pad(name: name, attributes: attributes)
        case .resize(let attributes): Resize(name: name, attributes: attributes)
        case .gridSample(let attributes): GridSample(name: name, attributes: attributes)
        case .depthToSpace(let attributes): DepthToSpace(name: name, attributes: attributes)
        case .spaceToDepth(let attributes): SpaceToDepth(name: name, attributes: attributes)
        case .expand: Expand(name: name)
        case .tile: Tile(name: name)
        case .gather(let attributes): Gather(name: name, attributes: attributes)
        case .scatterND(let attributes): ScatterND(name: name, attributes: attributes)
        case .gatherElements(let attributes): GatherElements(name: name, attributes: attributes)
        case .scatterElements(let attributes): ScatterElements(name: name, attributes: attributes)
        case .gatherND(let attributes): GatherND(name: name, attributes: attributes)
        case .reverseSequence(let attributes): ReverseSequence(name: name, attributes: attributes)
        case .maxUnpool(let attributes): MaxUnpool(name: name, attributes: attributes)
        case .det: Det(name: name)
        case .shape(let attributes): ShapeOf(name: name, attributes: attributes)
        case .cast(let attributes): try Cast(name: name, attributes: attributes)
        case .range: ArithmeticRange(name: name)
        case .constantOfShape(let attributes): try ConstantOfShape(name: name, attributes: attributes)
        }
    }
}

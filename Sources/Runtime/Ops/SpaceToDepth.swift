import Format

/// `spaceToDepth`: the inverse of DCR depthToSpace, [N, C, H·b, W·b] → [N, C·b², H, W];
/// output channel (i·b + j)·C + c holds pixel (i, j) of each block of channel c.
public struct SpaceToDepth: Operator {
    let name: String
    let blockSize: Int

    public init(node: Node) throws {
        guard case .spaceToDepth(let attributes) = node.operation else { throw OpError.wrongOp(node: node.name, expected: .spaceToDepth, found: node.op) }
        name = node.name
        blockSize = attributes.blockSize
    }

    func shuffle(_ input: [Int]) throws -> BlockShuffle {
        guard input.count == 4, input[2] % blockSize == 0, input[3] % blockSize == 0 else {
            throw OpError.shape(node: name, "spaceToDepth needs X [N,C,H,W] with H and W multiples of \(blockSize), found \(input)")
        }
        return BlockShuffle(batch: input[0], channels: input[1], height: input[2] / blockSize,
                            width: input[3] / blockSize, block: blockSize, columnRowDepth: false)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        return [ValueFact(dtype: x.dtype, shape: try shuffle(x.shape).deepShape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        return [try shuffle(x.shape).reference(x, toWide: false)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        return BlockShuffleKernel(shuffle: try shuffle(x.shape), toWide: false)
    }
}

import Format

/// `spaceToDepth`: the inverse of depthToSpace of the same mode, [N, C, H·b, W·b] →
/// [N, C·b², H, W]; pixel (i, j) of each block of channel c goes to output channel
/// (i·b + j)·C + c (DCR, ONNX's only order before SpaceToDepth 28) or c·b² + i·b + j (CRD).
public struct SpaceToDepth: Operator {
    let name: String
    let attributes: SpaceToDepthAttributes

    func shuffle(_ input: [Int]) throws -> BlockShuffle {
        let block = attributes.blockSize
        guard input.count == 4, input[2] % block == 0, input[3] % block == 0 else {
            throw OpError.shape(node: name, "spaceToDepth needs X [N,C,H,W] with H and W multiples of \(block), found \(input)")
        }
        return BlockShuffle(batch: input[0], channels: input[1], height: input[2] / block,
                            width: input[3] / block, block: block, columnRowDepth: attributes.mode == .columnRowDepth)
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

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension SpaceToDepth: MovesElements {}

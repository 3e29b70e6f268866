import Format

/// `depthToSpace`: moves blocks of channels into blockSize×blockSize pixel blocks,
/// [N, C·b², H, W] → [N, C, H·b, W·b]. DCR (depth-column-row) takes the block offset from
/// the outer channel index, CRD from the inner one.
public struct DepthToSpace: Operator {
    let name: String
    let attributes: DepthToSpaceAttributes

    func shuffle(_ input: [Int]) throws -> BlockShuffle {
        let block = attributes.blockSize
        guard input.count == 4, input[1] % (block * block) == 0 else {
            throw OpError.shape(node: name, "depthToSpace needs X [N,C,H,W] with C a multiple of \(block * block), found \(input)")
        }
        return BlockShuffle(batch: input[0], channels: input[1] / (block * block), height: input[2],
                            width: input[3], block: block, columnRowDepth: attributes.mode == .columnRowDepth)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        return [ValueFact(dtype: x.dtype, shape: try shuffle(x.shape).wideShape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        return [try shuffle(x.shape).reference(x, toWide: true)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        return BlockShuffleKernel(shuffle: try shuffle(x.shape), toWide: true)
    }
}

/// The element correspondence between a deep tensor [N, C·b², H, W] and a wide one
/// [N, C, H·b, W·b]: wide[n, c, h·b+i, w·b+j] = deep[n, deepChannel(c, i, j), h, w].
/// Shared by depthToSpace (deep → wide) and spaceToDepth (wide → deep, DCR order).
struct BlockShuffle: Sendable {
    var batch: Int, channels: Int, height: Int, width: Int, block: Int
    var columnRowDepth: Bool

    var deepShape: [Int] { [batch, channels * block * block, height, width] }
    var wideShape: [Int] { [batch, channels, height * block, width * block] }

    @inline(__always)
    func deepChannel(_ c: Int, _ i: Int, _ j: Int) -> Int {
        columnRowDepth ? (c * block + i) * block + j : (i * block + j) * channels + c
    }

    /// Element by element, for any element type (constant folding of index tensors).
    func reference(_ source: HostTensor, toWide: Bool) -> HostTensor {
        func move<T>(_ values: [T]) -> [T] {
            var result = values
            for n in 0..<batch {
                for c in 0..<channels {
                    for h in 0..<(height * block) {
                        for w in 0..<(width * block) {
                            let wide = ((n * channels + c) * height * block + h) * width * block + w
                            let channel = deepChannel(c, h % block, w % block)
                            let deep = ((n * channels * block * block + channel) * height + h / block) * width + w / block
                            if toWide { result[wide] = values[deep] } else { result[deep] = values[wide] }
                        }
                    }
                }
            }
            return result
        }
        var result = source
        result.shape = toWide ? wideShape : deepShape
        switch source.elements {
        case .float(let values): result.elements = .float(move(values))
        case .int(let values): result.elements = .int(move(values))
        }
        return result
    }
}

/// The block shuffle as strided row copies, one wide channel per work item.
struct BlockShuffleKernel: Kernel {
    let shuffle: BlockShuffle
    let toWide: Bool

    func run(_ io: KernelIO) {
        let s = shuffle, b = s.block
        let source = io.input(0), destination = io.outputs[0]
        let wideRow = s.width * b
        io.pool.parallelFor(s.batch * s.channels) { range in
            for item in range {
                let n = item / s.channels, c = item % s.channels
                let widePlane = item * s.height * b * wideRow
                for i in 0..<b {
                    for j in 0..<b {
                        let deepPlane = (n * s.channels * b * b + s.deepChannel(c, i, j)) * s.height * s.width
                        for h in 0..<s.height {
                            let deep = deepPlane + h * s.width
                            let wide = widePlane + (h * b + i) * wideRow + j
                            if toWide {
                                for w in 0..<s.width { destination[wide + w * b] = source[deep + w] }
                            } else {
                                for w in 0..<s.width { destination[deep + w] = source[wide + w * b] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension DepthToSpace: MovesElements {}

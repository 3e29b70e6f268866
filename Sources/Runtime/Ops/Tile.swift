import Format

/// Repeats input 0 along each axis by the plan-time counts of input 1 (ONNX Tile).
///
/// The fast kernel sees the output as [r0, d0, r1, d1, …] (repeat, then input position,
/// per axis) and reads the input with stride 0 on the repeat axes: one strided copy.
public struct Tile: Operator {
    let name: String

    func repeats(_ tensor: HostTensor, rank: Int) throws -> [Int] {
        let repeats = try LayoutIndexing.integers(tensor, input: 1, node: name)
        guard repeats.count == rank, repeats.allSatisfy({ $0 >= 0 }) else {
            throw OpError.shape(node: name, "repeats \(repeats) must be \(rank) non-negative counts, one per input axis")
        }
        return repeats
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let repeats = try repeats(ShapeRules.planTimeValue(inputs, 1, node: name), rank: input.rank)
        // Hostile counts (found by the plan fuzzer) must not overflow the output's size.
        let shape = try zip(input.shape, repeats).map { size, count in
            let (product, overflow) = size.multipliedReportingOverflow(by: count)
            guard !overflow else { throw OpError.shape(node: name, "repeats \(repeats) of shape \(input.shape) overflow the output's size") }
            return product
        }
        return [ValueFact(dtype: input.dtype, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        let repeats = try repeats(LayoutIndexing.required(inputs, 1, node: name), rank: input.rank)
        let shape = zip(input.shape, repeats).map { $0 * $1 }
        let strides = ShapeRules.strides(input.shape)
        var indices: [Int] = []
        LayoutIndexing.forEachIndex(shape) { index in
            indices.append((0..<shape.count).reduce(0) { $0 + index[$1] % input.shape[$1] * strides[$1] })
        }
        return [input.picking(indices, shape: shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let repeats = try repeats(ShapeRules.planTimeValue(inputs, 1, node: name), rank: input.rank)
        let inputStrides = ShapeRules.strides(input.shape)
        let outputStrides = ShapeRules.strides(outputs[0].shape)
        var shape: [Int] = []
        var sourceStrides: [Int] = []
        var destinationStrides: [Int] = []
        for axis in 0..<input.rank {
            shape += [repeats[axis], input.shape[axis]]
            sourceStrides += [0, inputStrides[axis]]
            destinationStrides += [input.shape[axis] * outputStrides[axis], outputStrides[axis]]
        }
        return StridedCopyKernel(StridedCopy(shape: shape, sourceStrides: sourceStrides, destinationStrides: destinationStrides))
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Tile: MovesElements {}

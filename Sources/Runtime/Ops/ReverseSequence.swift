import Format

/// Reverses the first sequenceLengths[b] time steps of each batch entry b (ONNX
/// ReverseSequence); the steps after them stay in place. X is [T, B, …] (timeAxis 0,
/// batchAxis 1) or [B, T, …]; the lengths (plan-time, one per batch entry, each 0…T)
/// fix every element's source when planning.
public struct ReverseSequence: Operator {
    let name: String
    let attributes: ReverseSequenceAttributes

    /// The flat offset of each [axis 0, axis 1] row's source in X, in output order, and
    /// the row length (the elements of the axes after the first two).
    func rows(shape: [Int], lengths tensor: HostTensor) throws -> (offsets: [Int], inner: Int) {
        guard shape.count >= 2 else { throw OpError.shape(node: name, "reverseSequence needs X of rank ≥ 2, found \(shape)") }
        let (batch, steps) = (shape[attributes.batchAxis], shape[attributes.timeAxis])
        let lengths = try LayoutIndexing.integers(tensor, input: 1, node: name)
        guard tensor.shape == [batch] else {
            throw OpError.shape(node: name, "sequence lengths of shape \(tensor.shape) do not fit \(batch) batch entries")
        }
        if let bad = lengths.first(where: { $0 < 0 || $0 > steps }) {
            throw OpError.shape(node: name, "sequence length \(bad) is outside 0…\(steps)")
        }
        let inner = shape[2...].reduce(1, *)
        var offsets: [Int] = []
        offsets.reserveCapacity(batch * steps)
        for first in 0..<shape[0] {
            for second in 0..<shape[1] {
                let (b, t) = attributes.batchAxis == 0 ? (first, second) : (second, first)
                let source = t < lengths[b] ? lengths[b] - 1 - t : t
                let (row0, row1) = attributes.batchAxis == 0 ? (b, source) : (source, b)
                offsets.append((row0 * shape[1] + row1) * inner)
            }
        }
        return (offsets, inner)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        _ = try rows(shape: x.shape, lengths: ShapeRules.planTimeValue(inputs, 1, node: name))
        return [ValueFact(dtype: x.dtype, shape: x.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let x = try LayoutIndexing.required(inputs, 0, node: name)
        let rows = try rows(shape: x.shape, lengths: LayoutIndexing.required(inputs, 1, node: name))
        return [x.picking(rows.offsets.flatMap { offset in (0..<rows.inner).map { offset + $0 } }, shape: x.shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let rows = try rows(shape: x.shape, lengths: ShapeRules.planTimeValue(inputs, 1, node: name))
        return BlockGatherKernel(offsets: rows.offsets, inner: rows.inner)
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension ReverseSequence: MovesElements {}

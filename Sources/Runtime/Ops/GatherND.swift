import Format

/// Picks one slice of input 0 per index tuple of input 1 (ONNX GatherND).
///
/// With b = `batchDims`, data is [B₁…B_b, D₁…D_r] and indices [B₁…B_b, M…, k]: each
/// tuple of k indices (negative ones count from the end) addresses, within its batch
/// entry, the slice data[batch, i₁…i_k, …] of shape D_{k+1}…D_r. Y is
/// [B₁…B_b, M…] + D_{k+1}…D_r. Indices are plan-time values, so every slice's place is
/// worked out once when planning.
public struct GatherND: Operator {
    let name: String
    let attributes: GatherNDAttributes

    /// Where each slice starts in data, in output order, and the slice length.
    struct Layout {
        var shape: [Int]
        var offsets: [Int]
        var inner: Int
    }

    func layout(dataShape: [Int], indices: HostTensor) throws -> Layout {
        let batch = attributes.batchDims
        guard let depth = indices.shape.last, indices.shape.count > batch, batch + depth <= dataShape.count,
              Array(indices.shape.prefix(batch)) == Array(dataShape.prefix(batch)) else {
            throw OpError.shape(node: name, "indices of shape \(indices.shape) do not index data of shape \(dataShape) with \(batch) batch axes")
        }
        let values = try LayoutIndexing.integers(indices, input: 1, node: name)
        let strides = ShapeRules.strides(dataShape)
        let batchCount = dataShape.prefix(batch).reduce(1, *)
        let batchStride = dataShape[batch...].reduce(1, *)
        let tuplesPerBatch = indices.shape[batch..<(indices.shape.count - 1)].reduce(1, *)
        var offsets: [Int] = []
        offsets.reserveCapacity(batchCount * tuplesPerBatch)
        for entry in 0..<batchCount {
            for tuple in 0..<tuplesPerBatch {
                var offset = entry * batchStride
                for position in 0..<depth {
                    let axis = batch + position
                    let size = dataShape[axis]
                    let index = values[(entry * tuplesPerBatch + tuple) * depth + position]
                    guard index >= -size && index < size else {
                        throw OpError.shape(node: name, "index \(index) is out of range for axis \(axis) of size \(size)")
                    }
                    offset += (index < 0 ? index + size : index) * strides[axis]
                }
                offsets.append(offset)
            }
        }
        return Layout(shape: Array(indices.shape.dropLast()) + dataShape[(batch + depth)...], offsets: offsets,
                      inner: dataShape[(batch + depth)...].reduce(1, *))
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let layout = try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name))
        return [ValueFact(dtype: data.dtype, shape: layout.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let data = try LayoutIndexing.required(inputs, 0, node: name)
        let layout = try layout(dataShape: data.shape, indices: LayoutIndexing.required(inputs, 1, node: name))
        let sources = layout.offsets.flatMap { offset in (0..<layout.inner).map { offset + $0 } }
        return [data.picking(sources, shape: layout.shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let layout = try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name))
        return BlockGatherKernel(offsets: layout.offsets, inner: layout.inner)
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension GatherND: MovesElements {}

/// Copies block i of `inner` contiguous input elements, starting at offsets[i], to
/// output position i·inner: gatherND's slices, gatherElements' and reverseSequence's
/// elements, all placed when planning.
struct BlockGatherKernel: Kernel {
    let offsets: [Int]
    let inner: Int

    func run(_ io: KernelIO) {
        let (data, output) = (io.input(0), io.outputs[0])
        let inner = inner
        let offsets = offsets
        // Chunks of at least ~16K elements, so small gathers stay on one thread.
        io.pool.parallelFor(offsets.count, minimumChunk: max(1, 16_384 / max(inner, 1))) { blocks in
            if inner == 1 {
                for block in blocks { output[block] = data[offsets[block]] }
            } else {
                for block in blocks { (output + block * inner).update(from: data + offsets[block], count: inner) }
            }
        }
    }
}

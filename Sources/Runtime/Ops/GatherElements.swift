import Format

/// Picks one element of input 0 per element of input 1 along `axis` (ONNX GatherElements):
/// Y has the indices' shape and Y[i] = data[i with i[axis] replaced by indices[i]];
/// negative indices count from the end. Indices are plan-time values (the class targets
/// of an expanded NegativeLogLikelihoodLoss, say), so each output element's source is
/// worked out once when planning. Data may be runtime floats (the fast kernel) or
/// plan-time integers (the reference kernel).
public struct GatherElements: Operator {
    let name: String
    let attributes: GatherAttributes

    /// The flat offset into data of the element each index addresses along `axis`, in
    /// the indices' row-major order; scatterElements addresses its targets the same way.
    static func elementOffsets(dataShape: [Int], indices: HostTensor, axis requested: Int, node: String) throws -> [Int] {
        let axis = try ShapeRules.axis(requested, rank: dataShape.count, node: node)
        let fits = indices.shape.count == dataShape.count
            && indices.shape.indices.allSatisfy { $0 == axis || indices.shape[$0] <= dataShape[$0] }
        guard fits else {
            throw OpError.shape(node: node, "indices of shape \(indices.shape) do not fit data of shape \(dataShape) (same rank, no larger off axis \(axis))")
        }
        let values = try LayoutIndexing.integers(indices, input: 1, node: node)
        let strides = ShapeRules.strides(dataShape)
        let size = dataShape[axis]
        var offsets: [Int] = []
        offsets.reserveCapacity(values.count)
        var position = 0
        var failure: OpError?
        LayoutIndexing.forEachIndex(indices.shape) { index in
            let value = values[position]
            position += 1
            guard value >= -size && value < size else {
                failure = failure ?? OpError.shape(node: node, "index \(value) is out of range for axis \(axis) of size \(size)")
                return
            }
            var offset = (value < 0 ? value + size : value) * strides[axis]
            for other in index.indices where other != axis { offset += index[other] * strides[other] }
            offsets.append(offset)
        }
        if let failure { throw failure }
        return offsets
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let indices = try ShapeRules.planTimeValue(inputs, 1, node: name)
        _ = try Self.elementOffsets(dataShape: data.shape, indices: indices, axis: attributes.axis, node: name)
        return [ValueFact(dtype: data.dtype, shape: indices.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let data = try LayoutIndexing.required(inputs, 0, node: name)
        let indices = try LayoutIndexing.required(inputs, 1, node: name)
        let offsets = try Self.elementOffsets(dataShape: data.shape, indices: indices, axis: attributes.axis, node: name)
        return [data.picking(offsets, shape: indices.shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let indices = try ShapeRules.planTimeValue(inputs, 1, node: name)
        return BlockGatherKernel(
            offsets: try Self.elementOffsets(dataShape: data.shape, indices: indices, axis: attributes.axis, node: name), inner: 1)
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension GatherElements: MovesElements {}

import Format

/// Permutes axes (ONNX Transpose): output axis `i` is input axis `perm[i]`; an empty
/// `perm` reverses the axes.
///
/// The fast kernel is a `StridedCopy`, whose axis merging gives the fast paths: an
/// identity permutation becomes one contiguous copy, a permutation that keeps the last
/// axis becomes row copies, and NCHW↔NHWC (after merging, a batch of 2-D transposes)
/// runs tiled over the two axes that are contiguous on either side. A permutation that
/// moves only axes of size 1 copies nothing: it is a view (`isView(at:)`).
public struct Transpose: Operator {
    let name: String
    let attributes: TransposeAttributes

    /// The permutation for an input of `rank`, checked to be one.
    func permutation(rank: Int) throws -> [Int] {
        if attributes.perm.isEmpty { return Array((0..<rank).reversed()) }
        guard attributes.perm.count == rank else {
            throw OpError.shape(node: name, "perm \(attributes.perm) has \(attributes.perm.count) axes, input has rank \(rank)")
        }
        let axes = try attributes.perm.map { try ShapeRules.axis($0, rank: rank, node: name) }
        guard Set(axes).count == rank else {
            throw OpError.shape(node: name, "perm \(attributes.perm) is not a permutation of 0..<\(rank)")
        }
        return axes
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let axes = try permutation(rank: input.rank)
        return [ValueFact(dtype: input.dtype, shape: axes.map { input.shape[$0] })]
    }

    /// A permutation that keeps the axes longer than 1 in their order leaves every element
    /// where it was (nn.MultiheadAttention's [1, L, E] ↔ [L, 1, E] with one image): the
    /// output is the input under another shape, and the planner aliases it.
    public func isView(at inputs: [ValueFact?]) -> Bool {
        guard let input = inputs.first ?? nil, let axes = try? permutation(rank: input.rank) else { return false }
        let moved = axes.filter { input.shape[$0] != 1 }
        return zip(moved, moved.dropFirst()).allSatisfy { $0 < $1 }
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        let axes = try permutation(rank: input.rank)
        let inputStrides = ShapeRules.strides(input.shape)
        let shape = axes.map { input.shape[$0] }
        let indices = LayoutIndexing.stridedIndices(shape: shape, strides: axes.map { inputStrides[$0] })
        return [input.picking(indices, shape: shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let axes = try permutation(rank: input.rank)
        let inputStrides = ShapeRules.strides(input.shape)
        return StridedCopyKernel(StridedCopy(shape: outputs[0].shape, sourceStrides: axes.map { inputStrides[$0] },
                                             destinationStrides: ShapeRules.strides(outputs[0].shape)))
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Transpose: MovesElements {}

import Format

/// Writes each element of `updates` into a copy of `data` at the place its index gives
/// along `axis` (ONNX ScatterElements, and the deprecated Scatter): updates[i] goes to
/// data[i with i[axis] replaced by indices[i]], negative indices counting from the end,
/// replacing the element or combined with it by `reduction`. Updates apply in the
/// indices' row-major order, so with a repeated target the last write wins (ONNX leaves
/// that order open; onnxruntime applies in order too). Indices are plan-time values: each
/// target is addressed as gatherElements addresses its sources, and the scatter itself is
/// scatterND's with single-element slices.
public struct ScatterElements: PlanTimeScatter {
    let name: String
    let attributes: ScatterElementsAttributes

    func layout(dataShape: [Int], indices: HostTensor, updatesShape: [Int]) throws -> ScatterND.Layout {
        guard updatesShape == indices.shape else {
            throw OpError.shape(node: name, "updates have shape \(updatesShape), but the indices have shape \(indices.shape)")
        }
        let offsets = try GatherElements.elementOffsets(dataShape: dataShape, indices: indices, axis: attributes.axis, node: name)
        return ScatterND.Layout(offsets: offsets, inner: 1)
    }

    var reduction: ScatterND.Reduction { attributes.reduction }
}

import Format

/// Writes each element of `updates` into a copy of `data` at the place its index gives
/// along `axis` (ONNX ScatterElements, and the deprecated Scatter): updates[i] goes to
/// data[i with i[axis] replaced by indices[i]], negative indices counting from the end,
/// replacing the element or combined with it by `reduction`. Updates apply in the
/// indices' row-major order, so with a repeated target the last write wins (ONNX leaves
/// that order open; onnxruntime applies in order too). Indices are plan-time values: each
/// target is addressed as gatherElements addresses its sources, and the scatter itself is
/// scatterND's with single-element slices.
public struct ScatterElements: Operator {
    let name: String
    let attributes: ScatterElementsAttributes

    func layout(dataShape: [Int], indices: HostTensor, updatesShape: [Int]) throws -> ScatterND.Layout {
        guard updatesShape == indices.shape else {
            throw OpError.shape(node: name, "updates have shape \(updatesShape), but the indices have shape \(indices.shape)")
        }
        let offsets = try GatherElements.elementOffsets(dataShape: dataShape, indices: indices, axis: attributes.axis, node: name)
        return ScatterND.Layout(offsets: offsets, inner: 1)
    }

    private func checkTypes(_ data: DType, _ updates: DType) throws {
        guard data.isFloatingPoint == updates.isFloatingPoint else {
            throw OpError.shape(node: name, "updates of type \(updates) do not fit data of type \(data)")
        }
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let updates = try ShapeRules.required(inputs, 2, node: name)
        try checkTypes(data.dtype, updates.dtype)
        _ = try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name), updatesShape: updates.shape)
        return [ValueFact(dtype: data.dtype, shape: data.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let data = try LayoutIndexing.required(inputs, 0, node: name)
        let updates = try LayoutIndexing.required(inputs, 2, node: name)
        try checkTypes(data.dtype, updates.dtype)
        let layout = try layout(dataShape: data.shape, indices: LayoutIndexing.required(inputs, 1, node: name),
                                updatesShape: updates.shape)
        return [try ScatterND.scatter(updates, into: data, layout, reduction: attributes.reduction, node: name)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let updates = try ShapeRules.required(inputs, 2, node: name)
        return ScatterNDKernel(
            layout: try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name),
                               updatesShape: updates.shape),
            reduction: attributes.reduction, count: data.count)
    }
}

extension ScatterElements: Differentiable {
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    /// scatterND's rule over single-element slices: writes and additions, by name otherwise refused.
    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let updates = try ShapeRules.required(inputs, 2, node: name)
        let layout = try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name),
                                updatesShape: updates.shape)
        return try ScatterNDBackward(layout: layout, count: data.count, reduction: attributes.reduction, node: name)
    }
}

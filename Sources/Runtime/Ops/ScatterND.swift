import Format

/// Writes `updates` into a copy of `data` at plan-time index tuples (ONNX ScatterND).
///
/// `indices` has shape [..., k]: each index tuple addresses the slice of `data` over its
/// first k axes (negative entries count from the end), `data[k...]` contiguous elements;
/// `updates` holds one such slice per tuple. Slices are applied in index order, so with
/// a repeated tuple the last update wins (ONNX leaves that order open; onnxruntime also
/// applies in order). Data may be runtime floats (the fast kernel) or plan-time integers
/// and masks (the reference kernel): PyTorch exports `mask[:, a:b, c:d] = value` on a
/// tensor built from shapes — the shift masks of older Swin exports — this way.
public struct ScatterND: PlanTimeScatter {
    /// How an update combines with the element it lands on.
    public typealias Reduction = ScatterNDAttributes.Reduction

    let name: String
    let attributes: ScatterNDAttributes

    /// Where each update slice goes: its first element's offset in the output, and the
    /// slice length.
    struct Layout {
        var offsets: [Int]
        var inner: Int
    }

    func layout(dataShape: [Int], indices: HostTensor, updatesShape: [Int]) throws -> Layout {
        guard let depth = indices.shape.last, depth <= dataShape.count else {
            throw OpError.shape(node: name, "indices of shape \(indices.shape) do not index data of rank \(dataShape.count)")
        }
        let tupleShape = Array(indices.shape.dropLast())
        let expected = tupleShape + dataShape[depth...]
        guard updatesShape == expected else {
            throw OpError.shape(node: name, "updates have shape \(updatesShape), but indices \(indices.shape) into data \(dataShape) need \(expected)")
        }
        let inner = dataShape[depth...].reduce(1, *)
        let values = try LayoutIndexing.integers(indices, input: 1, node: name)
        let offsets = try (0..<tupleShape.reduce(1, *)).map { tuple in
            var offset = 0
            for axis in 0..<depth {
                let size = dataShape[axis]
                let index = values[tuple * depth + axis]
                guard index >= -size && index < size else {
                    throw OpError.shape(node: name, "index \(index) is out of range for axis \(axis) of size \(size)")
                }
                offset = offset * size + (index < 0 ? index + size : index)
            }
            return offset * inner
        }
        return Layout(offsets: offsets, inner: inner)
    }

    /// Data with the update slices applied one after another in `layout`'s order (the
    /// reference of scatterND and scatterElements).
    static func scatter(_ updates: HostTensor, into data: HostTensor, _ layout: Layout, reduction: Reduction,
                        node: String) throws -> HostTensor {
        var result = data
        switch (data.elements, updates.elements) {
        case (.float(var output), .float(let values)):
            apply(&output, values, layout, reduction, add: +, multiply: *)
            result.elements = .float(output)
        case (.int(var output), .int(let values)):
            // Integer arithmetic wraps, as in `binary`, instead of trapping on hostile input.
            apply(&output, values, layout, reduction, add: &+, multiply: &*)
            result.elements = .int(output)
        default:
            throw OpError.shape(node: node, "updates of type \(updates.dtype) do not fit data of type \(data.dtype)")
        }
        return result
    }

    private static func apply<T: Comparable>(_ output: inout [T], _ updates: [T], _ layout: Layout, _ reduction: Reduction,
                                             add: (T, T) -> T, multiply: (T, T) -> T) {
        for (slice, offset) in layout.offsets.enumerated() {
            for element in 0..<layout.inner {
                let (old, new) = (output[offset + element], updates[slice * layout.inner + element])
                output[offset + element] = switch reduction {
                case .none: new
                case .add: add(old, new)
                case .mul: multiply(old, new)
                case .max: Swift.max(old, new)
                case .min: Swift.min(old, new)
                }
            }
        }
    }
}

/// Copies the data in parallel, then applies the update slices one after another: with
/// repeated index tuples the order decides the result, and the updates are normally a
/// small part of the tensor (a band of a mask, a few rows), so they are not split.
struct ScatterNDKernel: Kernel {
    let layout: ScatterND.Layout
    let reduction: ScatterND.Reduction
    let count: Int

    func run(_ io: KernelIO) {
        let (data, updates, output) = (io.input(0), io.input(2), io.outputs[0])
        io.pool.parallelFor(count, minimumChunk: 1 << 16) { range in
            (output + range.lowerBound).update(from: data + range.lowerBound, count: range.count)
        }
        let inner = layout.inner
        for (slice, offset) in layout.offsets.enumerated() {
            let (source, destination) = (updates + slice * inner, output + offset)
            switch reduction {
            case .none: destination.update(from: source, count: inner)
            case .add: for i in 0..<inner { destination[i] += source[i] }
            case .mul: for i in 0..<inner { destination[i] *= source[i] }
            case .max: for i in 0..<inner { destination[i] = Swift.max(destination[i], source[i]) }
            case .min: for i in 0..<inner { destination[i] = Swift.min(destination[i], source[i]) }
            }
        }
    }
}

/// A scatter whose update places are plan-time values (scatterND's slices,
/// scatterElements' single elements): the shape rule, reference, kernel and backward
/// rule are the same for both once `layout` has placed the updates.
protocol PlanTimeScatter: Differentiable {
    var name: String { get }
    var reduction: ScatterND.Reduction { get }
    func layout(dataShape: [Int], indices: HostTensor, updatesShape: [Int]) throws -> ScatterND.Layout
}

extension PlanTimeScatter {
    private func checkTypes(_ data: DType, _ updates: DType) throws {
        guard data.isFloatingPoint == updates.isFloatingPoint else {
            throw OpError.shape(node: name, "updates of type \(updates) do not fit data of type \(data)")
        }
    }

    /// The layout for these input facts (indices must be a plan-time value).
    private func plannedLayout(_ inputs: [ValueFact?]) throws -> (layout: ScatterND.Layout, data: ValueFact) {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let updates = try ShapeRules.required(inputs, 2, node: name)
        try checkTypes(data.dtype, updates.dtype)
        let layout = try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name),
                                updatesShape: updates.shape)
        return (layout, data)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let data = try plannedLayout(inputs).data
        return [ValueFact(dtype: data.dtype, shape: data.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let data = try LayoutIndexing.required(inputs, 0, node: name)
        let updates = try LayoutIndexing.required(inputs, 2, node: name)
        try checkTypes(data.dtype, updates.dtype)
        let layout = try layout(dataShape: data.shape, indices: LayoutIndexing.required(inputs, 1, node: name),
                                updatesShape: updates.shape)
        return [try ScatterND.scatter(updates, into: data, layout, reduction: reduction, node: name)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let (layout, data) = try plannedLayout(inputs)
        return ScatterNDKernel(layout: layout, reduction: reduction, count: data.count)
    }

    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    /// Indices are plan-time values, so the rule knows where every update landed.
    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let (layout, data) = try plannedLayout(inputs)
        return try ScatterNDBackward(layout: layout, count: data.count, reduction: reduction, node: name)
    }
}

extension ScatterND {
    var reduction: Reduction { attributes.reduction }
}

/// ScatterND's backward rule: ∂L/∂data is ∂L/∂y except where an update overwrote the
/// element; ∂L/∂updates gathers ∂L/∂y at each slice's place (zero for a slice a later one
/// overwrote).
struct ScatterNDBackward: BackwardKernel {
    let layout: ScatterND.Layout
    let count: Int
    let reaches: [Bool]
    /// Elements a plain write replaced; nil for an adding scatter.
    let overwritten: [Bool]?

    /// The rule for updates placed by `layout` into data of `count` elements (scatterND's
    /// slices, scatterElements' single elements). Writes and additions have gradients; a
    /// multiplying, max or min scatter is refused.
    init(layout: ScatterND.Layout, count: Int, reduction: ScatterND.Reduction, node: String) throws {
        guard reduction == .none || reduction == .add else {
            throw OpError.unsupported(node: node, "gradient of a scatter with reduction \(reduction.rawValue)")
        }
        // Which update slices reach the output: with plain writes, only the last slice
        // written to an element (the order the kernel applies them in).
        var reaches = [Bool](repeating: true, count: layout.offsets.count)
        var overwritten = [Bool](repeating: false, count: count)
        if reduction == .none {
            for slice in layout.offsets.indices.reversed() {
                let offset = layout.offsets[slice]
                reaches[slice] = !overwritten[offset]
                for element in 0..<layout.inner { overwritten[offset + element] = true }
            }
        }
        self.layout = layout
        self.count = count
        self.reaches = reaches
        self.overwritten = reduction == .none ? overwritten : nil
    }

    func run(_ io: BackwardIO) {
        let gradient = io.outputGradient
        if let target = io.inputGradient(0) {
            if let overwritten {
                for i in 0..<count where !overwritten[i] { target[i] += gradient[i] }
            } else {
                for i in 0..<count { target[i] += gradient[i] }
            }
        }
        if let target = io.inputGradient(2) {
            let inner = layout.inner
            for (slice, offset) in layout.offsets.enumerated() where reaches[slice] {
                for element in 0..<inner { target[slice * inner + element] += gradient[offset + element] }
            }
        }
    }
}

import Format

/// Takes a strided window of input 0 (ONNX Slice): plan-time inputs starts, ends and
/// optional axes (default 0..<count) and steps (default 1). Negative starts and ends
/// count from the end; both are clamped per ONNX, so ends of ±INT64_MAX mean "to the
/// end" in either direction.
public struct Slice: Operator {
    let name: String

    /// Per input axis: first element read and step, plus the output shape.
    struct Window {
        var starts: [Int]
        var steps: [Int]
        var shape: [Int]
    }

    /// Resolves the window for an input of `shape` from the slice parameters.
    func window(shape: [Int], starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?) throws -> Window {
        let rank = shape.count
        let axes = try (axes ?? Array(0..<starts.count)).map { try ShapeRules.axis($0, rank: rank, node: name) }
        let steps = steps ?? Array(repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw OpError.shape(node: name, "starts, ends, axes and steps have \(starts.count), \(ends.count), \(axes.count) and \(steps.count) elements")
        }
        guard Set(axes).count == axes.count else {
            throw OpError.shape(node: name, "axes \(axes) repeat an axis")
        }
        var window = Window(starts: Array(repeating: 0, count: rank), steps: Array(repeating: 1, count: rank), shape: shape)
        for (i, axis) in axes.enumerated() {
            let size = shape[axis]
            let step = steps[i]
            guard step != 0 else { throw OpError.shape(node: name, "step of axis \(axis) is 0") }
            // Negative positions count from the end (INT64_MIN stays far below any size);
            // a positive step clamps to [0, size], a negative one to [-1, size-1].
            let start = starts[i] < 0 ? starts[i] &+ size : starts[i]
            let end = ends[i] < 0 ? ends[i] &+ size : ends[i]
            let clampedStart = step > 0 ? min(max(start, 0), size) : min(max(start, 0), size - 1)
            let clampedEnd = step > 0 ? min(max(end, 0), size) : min(max(end, -1), size - 1)
            // ceil(span / step) elements when span and step share a sign, written so
            // that steps near ±INT64_MAX cannot overflow.
            let span = clampedEnd - clampedStart
            let length = step > 0 ? (span > 0 ? (span - 1) / step + 1 : 0) : (span < 0 ? (span + 1) / step + 1 : 0)
            window.starts[axis] = clampedStart
            window.steps[axis] = step
            window.shape[axis] = length
        }
        return window
    }

    /// The window from the plan-time inputs 1...4, given as integer arrays (nil = absent).
    func window(shape: [Int], parameters: [Int: [Int]]) throws -> Window {
        guard let starts = parameters[1] else { throw GraphError.missingInput(node: name, index: 1) }
        guard let ends = parameters[2] else { throw GraphError.missingInput(node: name, index: 2) }
        return try window(shape: shape, starts: starts, ends: ends, axes: parameters[3], steps: parameters[4])
    }

    /// Source strides and offset of the window in a row-major input of `shape`. An axis the
    /// window keeps at most one element of never moves by its step, whose product with the
    /// stride could overflow (a step near ±INT64_MAX, found by the plan fuzzer): its stride is
    /// the input's own. Every other step is below the axis size, so the product stays within
    /// the input's element count.
    func view(of window: Window, shape: [Int]) -> (strides: [Int], offset: Int) {
        let strides = ShapeRules.strides(shape)
        let offset = zip(window.starts, strides).reduce(0) { $0 + $1.0 * $1.1 }
        return (zip(zip(strides, window.steps), window.shape).map { $1 <= 1 ? $0.0 : $0.0 * $0.1 }, offset)
    }

    func planTimeParameters(_ inputs: [ValueFact?]) throws -> [Int: [Int]] {
        var parameters: [Int: [Int]] = [:]
        // starts and ends are required; axes and steps only when present.
        for index in 1...4 where index < 3 || (index < inputs.count && inputs[index] != nil) {
            parameters[index] = try LayoutIndexing.integers(ShapeRules.planTimeValue(inputs, index, node: name), input: index, node: name)
        }
        return parameters
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let window = try window(shape: input.shape, parameters: planTimeParameters(inputs))
        return [ValueFact(dtype: input.dtype, shape: window.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        var parameters: [Int: [Int]] = [:]
        for index in 1...4 {
            let tensor = index < 3 ? try LayoutIndexing.required(inputs, index, node: name)
                                   : index < inputs.count ? inputs[index] : nil
            parameters[index] = try tensor.map { try LayoutIndexing.integers($0, input: index, node: name) }
        }
        let window = try window(shape: input.shape, parameters: parameters)
        let (strides, offset) = view(of: window, shape: input.shape)
        let indices = LayoutIndexing.stridedIndices(shape: window.shape, strides: strides, offset: offset)
        return [input.picking(indices, shape: window.shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let window = try window(shape: input.shape, parameters: planTimeParameters(inputs))
        let (strides, offset) = view(of: window, shape: input.shape)
        return StridedCopyKernel(StridedCopy(shape: window.shape, sourceStrides: strides, sourceOffset: offset,
                                             destinationStrides: ShapeRules.strides(window.shape)))
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Slice: MovesElements {}

import Format

/// `pad`: grows (or with negative pads crops) each axis, filling new elements with a
/// constant, a mirror image without the edge element (reflect), or the edge element.
/// Inputs: X, pads (plan-time, ONNX order: all begins then all ends), value? (scalar,
/// default 0), axes? (plan-time, default all axes).
public struct Pad: Operator {
    let name: String
    let attributes: PadAttributes

    /// Begin and end padding of every axis of an input of `shape`.
    struct Layout: Sendable {
        var inputShape: [Int], begins: [Int], ends: [Int]
        var outputShape: [Int] { (0..<inputShape.count).map { inputShape[$0] + begins[$0] + ends[$0] } }
    }

    func layout(_ shape: [Int], pads: [Int64], axes: [Int64]?) throws -> Layout {
        let rank = shape.count
        guard rank >= 1 else { throw OpError.shape(node: name, "pad needs a tensor of rank >= 1") }
        let axisList = try (axes.map { $0.map(Int.init) } ?? Array(0..<rank)).map { try ShapeRules.axis($0, rank: rank, node: name) }
        guard pads.count == 2 * axisList.count, Set(axisList).count == axisList.count else {
            throw OpError.shape(node: name, "\(pads.count) pads for \(axisList.count) distinct axes; expected two per axis")
        }
        var result = Layout(inputShape: shape, begins: Array(repeating: 0, count: rank), ends: Array(repeating: 0, count: rank))
        for (index, axis) in axisList.enumerated() {
            result.begins[axis] = Int(pads[index])
            result.ends[axis] = Int(pads[index + axisList.count])
        }
        for axis in 0..<rank {
            // Pads come from the file: their sum with the extent must not overflow.
            let (grown, growOverflow) = shape[axis].addingReportingOverflow(result.begins[axis])
            let (output, overflow) = grown.addingReportingOverflow(result.ends[axis])
            guard !growOverflow, !overflow else {
                throw OpError.shape(node: name, "pads \(result.begins[axis]), \(result.ends[axis]) overflow axis \(axis)")
            }
            guard output >= 0 else { throw OpError.shape(node: name, "pads crop axis \(axis) of \(shape) below zero") }
            let grows = result.begins[axis] > 0 || result.ends[axis] > 0
            if attributes.mode != .constant && grows && shape[axis] == 0 {
                throw OpError.shape(node: name, "\(attributes.mode.rawValue) padding of empty axis \(axis)")
            }
        }
        return result
    }

    /// The input index that output position `o` of an axis reads, or nil for the constant.
    @inline(__always)
    func source(_ o: Int, begin: Int, size: Int) -> Int? {
        let i = o - begin
        if i >= 0 && i < size { return i }
        switch attributes.mode {
        case .constant: return nil
        case .edge: return min(max(i, 0), size - 1)
        case .reflect:
            // Mirror without repeating the edge; the pattern has period 2·(size − 1).
            guard size > 1 else { return 0 }
            let period = 2 * (size - 1)
            let folded = ((i % period) + period) % period
            return folded < size ? folded : period - folded
        }
    }

    private func layout(_ inputs: [ValueFact?]) throws -> Layout {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let pads = try ShapeRules.planTimeValue(inputs, 1, node: name).ints
        let axes = inputs.count > 3 && inputs[3] != nil ? try ShapeRules.planTimeValue(inputs, 3, node: name).ints : nil
        return try layout(x.shape, pads: pads, axes: axes)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        if inputs.count > 2, let value = inputs[2], value.count != 1 {
            throw OpError.shape(node: name, "value should be a scalar, found shape \(value.shape)")
        }
        return [ValueFact(dtype: x.dtype, shape: try layout(inputs).outputShape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        let l = try layout(inputs.map { $0.map(ValueFact.init) })
        let value = inputs.count > 2 ? inputs[2] : nil
        let outputShape = l.outputShape
        let inputStrides = ShapeRules.strides(x.shape)
        func pad<T>(_ values: [T], fill: T) -> [T] {
            var result = [T](repeating: fill, count: outputShape.reduce(1, *))
            for index in result.indices {
                var remainder = index, offset = 0, inside = true
                for axis in stride(from: outputShape.count - 1, through: 0, by: -1) {
                    let o = remainder % outputShape[axis]
                    remainder /= outputShape[axis]
                    guard let i = source(o, begin: l.begins[axis], size: x.shape[axis]) else { inside = false; break }
                    offset += i * inputStrides[axis]
                }
                if inside { result[index] = values[offset] }
            }
            return result
        }
        var result = x
        result.shape = outputShape
        switch x.elements {
        case .float(let values): result.elements = .float(pad(values, fill: value?.floats.first ?? 0))
        case .int(let values): result.elements = .int(pad(values, fill: value?.ints.first ?? 0))
        }
        return [result]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let l = try layout(inputs)
        let rank = l.inputShape.count
        let sources = (0..<rank).map { axis in
            (0..<l.outputShape[axis]).map { source($0, begin: l.begins[axis], size: l.inputShape[axis]) ?? -1 }
        }
        // The output columns that copy a contiguous run of the input row.
        let last = rank - 1
        let copied = WindowGeometry.validRange(count: l.outputShape[last], stride: 1,
                                               offset: -l.begins[last], limit: l.inputShape[last])
        return PadKernel(outputShape: l.outputShape, inputStrides: ShapeRules.strides(l.inputShape),
                         sources: sources, copiedColumns: copied,
                         hasValue: inputs.count > 2 && inputs[2] != nil)
    }
}

/// Padding row by row along the last axis (rows spread over threads): each output row
/// reads one input row (or none, in constant padding), copies its in-range middle and
/// fills or gathers the margins from per-axis source tables.
struct PadKernel: Kernel {
    let outputShape: [Int]
    let inputStrides: [Int]
    /// Per axis, the input index each output position reads, −1 for the constant.
    let sources: [[Int]]
    let copiedColumns: Range<Int>
    let hasValue: Bool

    func run(_ io: KernelIO) {
        let x = io.input(0), y = io.outputs[0]
        let value = hasValue ? io.input(2).pointee : 0
        let last = outputShape.count - 1
        let width = outputShape[last]
        let rows = outputShape[..<last].reduce(1, *)
        let columnSources = sources[last]
        io.pool.parallelFor(rows, minimumChunk: 64) { range in
            for row in range {
                let output = y + row * width
                var remainder = row, offset = 0, inside = true
                for axis in stride(from: last - 1, through: 0, by: -1) {
                    let i = sources[axis][remainder % outputShape[axis]]
                    remainder /= outputShape[axis]
                    if i < 0 { inside = false; break }
                    offset += i * inputStrides[axis]
                }
                guard inside else {
                    output.update(repeating: value, count: width)
                    continue
                }
                let input = x + offset
                for o in 0..<copiedColumns.lowerBound {
                    let i = columnSources[o]
                    output[o] = i < 0 ? value : input[i]
                }
                if !copiedColumns.isEmpty {
                    (output + copiedColumns.lowerBound).update(from: input + columnSources[copiedColumns.lowerBound],
                                                               count: copiedColumns.count)
                }
                for o in copiedColumns.upperBound..<width {
                    let i = columnSources[o]
                    output[o] = i < 0 ? value : input[i]
                }
            }
        }
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Pad: MovesElements {}

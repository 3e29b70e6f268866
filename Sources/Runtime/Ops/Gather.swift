import Format

/// Picks slices of input 0 along `axis` at the plan-time indices of input 1 (ONNX
/// Gather; negative indices count from the end). The output shape is
/// data[..<axis] + indices + data[axis+1...]. Data may be runtime floats (the fast
/// kernel) or plan-time integers (shape arithmetic, the reference kernel).
public struct Gather: Operator {
    let name: String
    let attributes: GatherAttributes

    /// How output elements map to input elements: blocks of `inner` contiguous elements.
    struct Layout {
        var shape: [Int]
        var outer: Int
        var inner: Int
        var axisSize: Int
        /// Indices into the gathered axis, made non-negative.
        var positions: [Int]
    }

    func layout(dataShape: [Int], indices tensor: HostTensor) throws -> Layout {
        let axis = try ShapeRules.axis(attributes.axis, rank: dataShape.count, node: name)
        let axisSize = dataShape[axis]
        let positions = try LayoutIndexing.integers(tensor, input: 1, node: name).map { index in
            guard index >= -axisSize && index < axisSize else {
                throw OpError.shape(node: name, "index \(index) is out of range for axis \(axis) of size \(axisSize)")
            }
            return index < 0 ? index + axisSize : index
        }
        return Layout(shape: Array(dataShape[..<axis]) + tensor.shape + Array(dataShape[(axis + 1)...]),
                      outer: dataShape[..<axis].reduce(1, *), inner: dataShape[(axis + 1)...].reduce(1, *),
                      axisSize: axisSize, positions: positions)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let data = try ShapeRules.required(inputs, 0, node: name)
        let layout = try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name))
        return [ValueFact(dtype: data.dtype, shape: layout.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let data = try LayoutIndexing.required(inputs, 0, node: name)
        let layout = try layout(dataShape: data.shape, indices: LayoutIndexing.required(inputs, 1, node: name))
        var indices: [Int] = []
        for block in 0..<layout.outer {
            for position in layout.positions {
                for element in 0..<layout.inner {
                    indices.append((block * layout.axisSize + position) * layout.inner + element)
                }
            }
        }
        return [data.picking(indices, shape: layout.shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let data = try ShapeRules.required(inputs, 0, node: name)
        return GatherKernel(layout: try layout(dataShape: data.shape, indices: ShapeRules.planTimeValue(inputs, 1, node: name)))
    }
}

/// Copies one contiguous block of `inner` elements per (outer block, index) pair.
struct GatherKernel: Kernel {
    let layout: Gather.Layout

    func run(_ io: KernelIO) {
        let data = io.input(0)
        let output = io.outputs[0]
        let inner = layout.inner
        let positions = layout.positions
        // Blocks of at least ~16K elements per chunk, so tiny gathers stay on one thread.
        io.pool.parallelFor(layout.outer * positions.count, minimumChunk: max(1, 16_384 / max(inner, 1))) { blocks in
            for block in blocks {
                let (outer, slot) = block.quotientAndRemainder(dividingBy: positions.count)
                let source = data + (outer * layout.axisSize + positions[slot]) * inner
                (output + block * inner).update(from: source, count: inner)
            }
        }
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Gather: MovesElements {}

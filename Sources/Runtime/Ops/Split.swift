import Format

/// Cuts input 0 along `axis` into one consecutive part per node output (ONNX Split).
/// Part sizes come from the plan-time input 1 when present; otherwise each part has
/// ceil(size / parts) elements, the last one fewer when the size does not divide (the
/// ONNX 18 rule). `numOutputs`, when given, must equal the node's output count.
public struct Split: Operator {
    let name: String
    let axis: Int
    /// The node's output count: the number of parts.
    let parts: Int

    /// `outputCount` is the node's number of outputs, which `numOutputs` (when given) must match.
    init(name: String, attributes: SplitAttributes, outputCount: Int) throws {
        self.name = name
        axis = attributes.axis
        parts = outputCount
        let numOutputs = attributes.numOutputs ?? parts
        guard parts >= 1, numOutputs == parts else {
            throw GraphError.badAttribute(node: name, attribute: "numOutputs", expected: "the node's \(parts) outputs",
                                          found: String(numOutputs))
        }
    }

    /// The normalized axis and each part's size for an input of `shape`.
    func layout(shape: [Int], sizes: [Int]?) throws -> (axis: Int, sizes: [Int]) {
        let axis = try ShapeRules.axis(self.axis, rank: shape.count, node: name)
        let length = shape[axis]
        if let sizes {
            // Each size is checked against the axis first, so that huge sizes from the file
            // cannot overflow the sum.
            guard sizes.count == parts, sizes.allSatisfy({ $0 >= 0 && $0 <= length }), sizes.reduce(0, +) == length else {
                throw OpError.shape(node: name, "split sizes \(sizes) are not \(parts) parts adding up to \(length), the size of axis \(axis)")
            }
            return (axis, sizes)
        }
        let chunk = (length + parts - 1) / parts
        return (axis, (0..<parts).map { max(0, min(chunk, length - $0 * chunk)) })
    }

    func outputShapes(_ shape: [Int], axis: Int, sizes: [Int]) -> [[Int]] {
        sizes.map { size in
            var part = shape
            part[axis] = size
            return part
        }
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let (axis, sizes) = try layout(shape: input.shape, sizes: try planTimeSizes(inputs))
        return outputShapes(input.shape, axis: axis, sizes: sizes).map { ValueFact(dtype: input.dtype, shape: $0) }
    }

    func planTimeSizes(_ inputs: [ValueFact?]) throws -> [Int]? {
        guard inputs.count > 1, inputs[1] != nil else { return nil }
        return try LayoutIndexing.integers(ShapeRules.planTimeValue(inputs, 1, node: name), input: 1, node: name)
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        let sizes = try inputs.count > 1 ? inputs[1].map { try LayoutIndexing.integers($0, input: 1, node: name) } : nil
        let (axis, partSizes) = try layout(shape: input.shape, sizes: sizes)
        let strides = ShapeRules.strides(input.shape)
        var start = 0
        return outputShapes(input.shape, axis: axis, sizes: partSizes).map { shape in
            defer { start += shape[axis] }
            let indices = LayoutIndexing.stridedIndices(shape: shape, strides: strides, offset: start * strides[axis])
            return input.picking(indices, shape: shape)
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let (axis, sizes) = try layout(shape: input.shape, sizes: try planTimeSizes(inputs))
        let strides = ShapeRules.strides(input.shape)
        var start = 0
        let moves = outputShapes(input.shape, axis: axis, sizes: sizes).enumerated().map { index, shape in
            defer { start += shape[axis] }
            return StridedMove(input: 0, output: index, copy: StridedCopy(
                shape: shape, sourceStrides: strides, sourceOffset: start * strides[axis],
                destinationStrides: ShapeRules.strides(shape)))
        }
        return StridedCopyKernel(moves)
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Split: MovesElements {}

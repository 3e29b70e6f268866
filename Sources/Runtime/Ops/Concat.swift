import Format

/// Joins inputs along `axis` (ONNX Concat). Inputs share rank, dtype and every other
/// dimension; inputs of size zero along the axis (or at all) contribute nothing.
public struct Concatenation: Operator {
    let name: String
    let attributes: ConcatAttributes

    /// The normalized axis and the output shape for inputs of these shapes and dtypes.
    func layout(shapes: [[Int]], dtypes: [DType]) throws -> (axis: Int, shape: [Int]) {
        guard let first = shapes.first, let dtype = dtypes.first else {
            throw GraphError.missingInput(node: name, index: 0)
        }
        let axis = try ShapeRules.axis(attributes.axis, rank: first.count, node: name)
        var shape = first
        shape[axis] = 0
        for (index, (inputShape, inputType)) in zip(shapes, dtypes).enumerated() {
            guard inputType == dtype else {
                throw OpError.shape(node: name, "input \(index) is \(inputType), input 0 is \(dtype)")
            }
            guard inputShape.count == first.count,
                  inputShape.indices.allSatisfy({ $0 == axis || inputShape[$0] == first[$0] }) else {
                throw OpError.shape(node: name, "input \(index) has shape \(inputShape), which does not concatenate with \(first) on axis \(axis)")
            }
            shape[axis] += inputShape[axis]
        }
        return (axis, shape)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let facts = try inputs.indices.map { try ShapeRules.required(inputs, $0, node: name) }
        let (_, shape) = try layout(shapes: facts.map(\.shape), dtypes: facts.map(\.dtype))
        return [ValueFact(dtype: facts[0].dtype, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let tensors = try inputs.indices.map { try LayoutIndexing.required(inputs, $0, node: name) }
        let (axis, shape) = try layout(shapes: tensors.map(\.shape), dtypes: tensors.map(\.dtype))
        // Read from all inputs laid end to end: input i's element j is joined element start_i + j.
        var joined = tensors[0]
        joined.shape = [tensors.reduce(0) { $0 + $1.count }]
        switch joined.elements {
        case .float: joined.elements = .float(tensors.flatMap(\.floats))
        case .int: joined.elements = .int(tensors.flatMap(\.ints))
        }
        var indices: [Int] = []
        indices.reserveCapacity(joined.count)
        let outer = shape[..<axis].reduce(1, *)
        var starts: [Int] = []
        var start = 0
        for tensor in tensors {
            starts.append(start)
            start += tensor.count
        }
        for block in 0..<outer {
            for (tensor, inputStart) in zip(tensors, starts) {
                let chunk = tensor.shape[axis...].reduce(1, *)
                indices.append(contentsOf: (0..<chunk).map { inputStart + block * chunk + $0 })
            }
        }
        return [joined.picking(indices, shape: shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let facts = try inputs.indices.map { try ShapeRules.required(inputs, $0, node: name) }
        let (axis, shape) = try layout(shapes: facts.map(\.shape), dtypes: facts.map(\.dtype))
        let outputStrides = ShapeRules.strides(shape)
        var moves: [StridedMove] = []
        var offset = 0
        for (index, fact) in facts.enumerated() {
            if fact.count > 0 {
                moves.append(StridedMove(input: index, output: 0, copy: StridedCopy(
                    shape: fact.shape, sourceStrides: ShapeRules.strides(fact.shape),
                    destinationStrides: outputStrides, destinationOffset: offset * outputStrides[axis])))
            }
            offset += fact.shape[axis]
        }
        return StridedCopyKernel(moves)
    }
}

extension Concatenation: Differentiable {
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let facts = try inputs.indices.map { try ShapeRules.required(inputs, $0, node: name) }
        let (axis, shape) = try layout(shapes: facts.map(\.shape), dtypes: facts.map(\.dtype))
        let inner = shape[(axis + 1)...].reduce(1, *)
        return ConcatenationBackward(blocks: shape[..<axis].reduce(1, *), outputChunk: shape[axis] * inner,
                                     chunks: facts.map { $0.shape[axis] * inner })
    }
}

/// ∂L/∂(input i) += its slab of ∂L/∂y: per block of the axes before the concatenation
/// axis, input i's chunk starts after the chunks of the inputs before it.
struct ConcatenationBackward: BackwardKernel {
    let blocks: Int
    let outputChunk: Int
    let chunks: [Int]

    func run(_ io: BackwardIO) {
        let gradient = io.outputGradient
        var offset = 0
        for (index, chunk) in chunks.enumerated() {
            defer { offset += chunk }
            guard let target = io.inputGradient(index), chunk > 0 else { continue }
            let (blocks, outputChunk, start) = (blocks, outputChunk, offset)
            io.pool.parallelFor(blocks * chunk, minimumChunk: 1 << 14) { range in
                // Element e of the input is block e / chunk, position e % chunk within it.
                var e = range.lowerBound
                while e < range.upperBound {
                    let block = e / chunk, within = e % chunk
                    let length = Swift.min(chunk - within, range.upperBound - e)
                    let source = gradient + block * outputChunk + start + within, destination = target + e
                    for i in 0..<length { destination[i] += source[i] }
                    e += length
                }
            }
        }
    }
}

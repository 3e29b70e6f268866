import Format

/// `where`: X where the condition is true (nonzero), else Y, all three broadcast.
///
/// The condition is bool, or 0/1 floats where a graph computed a mask in float. X and Y
/// are both floats or both integers.
public struct Select: Operator {
    let name: String

    /// The output type for these X and Y types, or throws when they cannot be combined.
    private func outputType(_ x: DType, _ y: DType) throws -> DType {
        guard x.isFloatingPoint == y.isFloatingPoint else {
            throw OpError.shape(node: name, "where mixes \(x) and \(y) values; insert a cast")
        }
        if x.isFloatingPoint { return .float32 }
        return x == y ? x : .int64
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let facts = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name) }
        let shape = try ShapeRules.broadcast(ShapeRules.broadcast(facts[0].shape, facts[1].shape, node: name),
                                             facts[2].shape, node: name)
        return [ValueFact(dtype: try outputType(facts[1].dtype, facts[2].dtype), shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let tensors = try (0..<3).map { index -> HostTensor in
            guard index < inputs.count, let tensor = inputs[index] else {
                throw GraphError.missingInput(node: name, index: index)
            }
            return tensor
        }
        let (condition, x, y) = (tensors[0], tensors[1], tensors[2])
        let dtype = try outputType(x.dtype, y.dtype)
        let shape = try ShapeRules.broadcast(ShapeRules.broadcast(condition.shape, x.shape, node: name),
                                             y.shape, node: name)
        let chosen = condition.floats
        let (c, ix, iy) = (ShapeRules.broadcastSourceIndices(condition.shape, to: shape),
                           ShapeRules.broadcastSourceIndices(x.shape, to: shape),
                           ShapeRules.broadcastSourceIndices(y.shape, to: shape))
        let positions = shape.reduce(1, *)
        switch (x.elements, y.elements) {
        case (.int(let xs), .int(let ys)):
            let values = (0..<positions).map { chosen[c[$0]] != 0 ? xs[ix[$0]] : ys[iy[$0]] }
            return [HostTensor(shape: shape, ints: values, dtype: dtype)]
        default:
            let (xs, ys) = (x.floats, y.floats)
            let values = (0..<positions).map { chosen[c[$0]] != 0 ? xs[ix[$0]] : ys[iy[$0]] }
            return [HostTensor(shape: shape, floats: values)]
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let shapes = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name).shape }
        return SelectKernel(layout: BroadcastLayout(output: outputs[0].shape, inputs: shapes))
    }
}

/// The float kernel of `where` over the broadcast layout's runs, specialised for all
/// inputs contiguous and for a scalar X or Y (masking with a constant).
struct SelectKernel: Kernel {
    let layout: BroadcastLayout
    /// Below 32K elements a second thread costs more than it saves.
    static let minimumChunk = 1 << 15

    func run(_ io: KernelIO) {
        let (condition, x, y, output) = (io.input(0), io.input(1), io.input(2), io.outputs[0])
        io.pool.parallelFor(layout.count, minimumChunk: Self.minimumChunk) { range in
            compute(range, condition, x, y, output)
        }
    }

    /// One thread's share, out of line so both paths of `parallelFor` run the same
    /// compiled loops (see `BinaryKernel.compute`).
    @inline(never)
    private func compute(_ range: Range<Int>, _ condition: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                         _ y: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        let strides = (layout.innerStride(0), layout.innerStride(1), layout.innerStride(2))
        layout.forEachRun(in: range) { outputOffset, offsets, length in
            let (c, a, b, z) = (condition + offsets[0], x + offsets[1], y + offsets[2], output + outputOffset)
            switch strides {
            case (1, 1, 1): for i in 0..<length { z[i] = c[i] != 0 ? a[i] : b[i] }
            case (1, 1, 0): let scalar = b[0]; for i in 0..<length { z[i] = c[i] != 0 ? a[i] : scalar }
            case (1, 0, 1): let scalar = a[0]; for i in 0..<length { z[i] = c[i] != 0 ? scalar : b[i] }
            default: for i in 0..<length { z[i] = c[i * strides.0] != 0 ? a[i * strides.1] : b[i * strides.2] }
            }
        }
    }
}

extension Select: Differentiable {
    /// Reads the condition: the gradient goes to X where it held, to Y elsewhere.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let shapes = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name).shape }
        let shape = outputs[0].shape
        return SelectBackward(shape: shape, xShape: shapes[1], yShape: shapes[2],
                              conditionIndices: shapes[0] == shape ? nil : ShapeRules.broadcastSourceIndices(shapes[0], to: shape))
    }
}

/// `where`'s backward rule: ∂L/∂y masked by the condition (X's share) or by its negation
/// (Y's) into scratch, then summed over the axes X or Y was broadcast along.
struct SelectBackward: BackwardKernel {
    let shape: [Int], xShape: [Int], yShape: [Int]
    /// The condition element of each output element, when the condition was broadcast.
    let conditionIndices: [Int]?

    private var count: Int { shape.reduce(1, *) }
    var scratchBytes: Int { count * MemoryLayout<Float>.stride }

    func run(_ io: BackwardIO) {
        guard let scratch = io.scratch else { preconditionFailure("where backward ran without scratch") }
        let masked = scratch.bindMemory(to: Float.self, capacity: count)
        let condition = io.input(0), gradient = io.outputGradient
        for index in 1...2 {
            guard let target = io.inputGradient(index) else { continue }
            let whereTrue = index == 1
            io.pool.parallelFor(count, minimumChunk: 1 << 15) { range in
                for i in range {
                    let holds = condition[conditionIndices?[i] ?? i] != 0
                    masked[i] = holds == whereTrue ? gradient[i] : 0
                }
            }
            accumulateBroadcastGradient(masked, shape: shape, into: target, inputShape: index == 1 ? xShape : yShape)
        }
    }
}

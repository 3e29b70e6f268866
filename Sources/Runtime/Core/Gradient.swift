import Format

/// An operator with a backward rule: given ∂L/∂(its outputs) it adds ∂L/∂(its inputs).
/// Each rule lives in its op's file, beside the forward kernel; `OpKind.traits` says
/// `.hasGradient` exactly for the ops whose operator conforms (checked by a test).
///
/// A rule declares which forward values it reads (`saved`), so that a `GradientPlan`
/// keeps only those alive until the backward pass and lets the arena reuse the rest.
/// Values known while planning (slice starts, resize scales) are not saved: the rule
/// reads them from its `ValueFact`s when its kernel is made.
protocol Differentiable: Operator {
    /// Which of the forward inputs and outputs the backward kernel reads.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues

    /// The backward kernel for these concrete shapes. `wanted[i]` is true when the
    /// gradient of input `i` is asked for (a float runtime value on a path to the loss).
    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel
}

/// The forward values a backward rule reads, by input and output index.
public struct SavedValues: Sendable, Equatable {
    public var inputs: Set<Int>
    public var outputs: Set<Int>

    public init(inputs: Set<Int> = [], outputs: Set<Int> = []) {
        self.inputs = inputs
        self.outputs = outputs
    }

    public static let nothing = SavedValues()
}

/// A backward kernel bound to concrete shapes. Like `Kernel`, it must not allocate in
/// `run`; `scratchBytes` of scratch memory are set aside for it.
public protocol BackwardKernel: Sendable {
    var scratchBytes: Int { get }
    func run(_ io: BackwardIO)
}

extension BackwardKernel {
    public var scratchBytes: Int { 0 }
}

/// The buffers of one backward step. Gradients are *added* into `inputGradients`
/// (a value read by several nodes receives the sum of their contributions); the planner
/// zeroes each gradient buffer before its first contribution.
public struct BackwardIO {
    /// Forward inputs the rule saved (and plan-time inputs); nil otherwise.
    public var inputs: [UnsafePointer<Float>?]
    /// Forward outputs the rule saved; nil otherwise.
    public var outputs: [UnsafePointer<Float>?]
    /// ∂L/∂output; nil for an output no gradient reaches (it counts as zero).
    public var outputGradients: [UnsafePointer<Float>?]
    /// Where to add ∂L/∂input; nil for inputs whose gradient is not wanted.
    public var inputGradients: [UnsafeMutablePointer<Float>?]
    /// `scratchBytes` bytes, 64-byte aligned, or nil when the kernel asked for none.
    public var scratch: UnsafeMutableRawPointer?
    public var pool: ThreadPool

    public init(inputs: [UnsafePointer<Float>?], outputs: [UnsafePointer<Float>?],
                outputGradients: [UnsafePointer<Float>?], inputGradients: [UnsafeMutablePointer<Float>?],
                scratch: UnsafeMutableRawPointer?, pool: ThreadPool) {
        self.inputs = inputs
        self.outputs = outputs
        self.outputGradients = outputGradients
        self.inputGradients = inputGradients
        self.scratch = scratch
        self.pool = pool
    }

    /// Saved forward input `index`, which the rule declared.
    public func input(_ index: Int) -> UnsafePointer<Float> {
        guard let pointer = inputs[index] else { preconditionFailure("backward input \(index) was not saved") }
        return pointer
    }

    /// Saved forward output `index`, which the rule declared.
    public func output(_ index: Int) -> UnsafePointer<Float> {
        guard let pointer = outputs[index] else { preconditionFailure("backward output \(index) was not saved") }
        return pointer
    }

    /// Gradient of input `index` when wanted.
    public func inputGradient(_ index: Int) -> UnsafeMutablePointer<Float>? {
        index < inputGradients.count ? inputGradients[index] : nil
    }

    /// ∂L/∂output 0: a step runs only when some gradient reaches its outputs, and
    /// single-output ops have only this one.
    public var outputGradient: UnsafePointer<Float> {
        guard let pointer = outputGradients[0] else { preconditionFailure("backward step ran without an output gradient") }
        return pointer
    }
}

/// The backward rule of ops whose every output element is a copy of one input element or
/// a constant (transpose, slice, concat, split, pad, tile, expand, gather with plan-time
/// indices, depth/space rearrangements, nearest resize): ∂L/∂x is ∂L/∂y scattered back
/// along the same map.
///
/// The map is not derived by hand per op: the op's own reference kernel is run on the
/// element indices (each runtime input's elements numbered 1, 2, … after those of the
/// inputs before it), twice with the numbers shifted by the total count. An output that
/// moved by exactly that shift is a copy of the numbered element; any other output is a
/// constant (a pad value) and passes no gradient. So the rule is right by construction
/// wherever the reference kernel is.
struct ElementMapGradient: BackwardKernel {
    /// Per output, per element: the index into the concatenated input gradients, or -1.
    let sources: [[Int32]]
    /// Element offset of each input's gradient within the concatenation (nil: not wanted
    /// or not a runtime value).
    let inputOffsets: [Int?]
    let inputCounts: [Int]

    /// Elements numbered this way stay exact in Float arithmetic up to 2²⁴.
    static let exactLimit = 1 << 24

    init(_ op: some Operator, name: String, inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws {
        var offsets: [Int?] = []
        var total = 0
        for (index, fact) in inputs.enumerated() {
            if let fact, fact.value == nil, index < wanted.count, wanted[index] {
                offsets.append(total)
                total += fact.count
            } else {
                offsets.append(nil)
            }
        }
        guard 2 * total + 2 < Self.exactLimit else {
            throw OpError.unsupported(node: name, "gradient of \(total) moved elements (at most \(Self.exactLimit / 2 - 1))")
        }
        func numbered(shift: Int) -> [HostTensor?] {
            inputs.enumerated().map { index, fact in
                guard let fact else { return nil }
                if let value = fact.value { return value }
                guard let offset = offsets[index] else {
                    return HostTensor(shape: fact.shape, floats: [Float](repeating: 0, count: fact.count))
                }
                let base = offset + shift + 1
                return HostTensor(shape: fact.shape, floats: (0..<fact.count).map { Float(base + $0) })
            }
        }
        let first = try op.reference(numbered(shift: 0))
        let second = try op.reference(numbered(shift: total))
        var sources: [[Int32]] = []
        for (a, b) in zip(first, second) {
            let fa = a.floats, fb = b.floats
            sources.append((0..<fa.count).map { i in
                fb[i] - fa[i] == Float(total) && fa[i] >= 1 && total > 0 ? Int32(fa[i]) - 1 : -1
            })
        }
        self.sources = sources
        inputOffsets = offsets
        inputCounts = inputs.map { $0?.count ?? 0 }
    }

    func run(_ io: BackwardIO) {
        // Resolve each concatenated index to its input once per element: inputs are few.
        let targets: [(range: Range<Int>, pointer: UnsafeMutablePointer<Float>)] = inputOffsets.enumerated().compactMap {
            index, offset in
            guard let offset, let pointer = io.inputGradient(index) else { return nil }
            return (offset..<(offset + inputCounts[index]), pointer)
        }
        for (output, map) in sources.enumerated() {
            guard let gradient = io.outputGradients[output] else { continue }
            if targets.count == 1 {
                let target = targets[0]
                map.withUnsafeBufferPointer { map in
                    for i in 0..<map.count where map[i] >= 0 {
                        target.pointer[Int(map[i]) &- target.range.lowerBound] += gradient[i]
                    }
                }
                continue
            }
            for i in 0..<map.count where map[i] >= 0 {
                let source = Int(map[i])
                guard let target = targets.first(where: { $0.range.contains(source) }) else { continue }
                target.pointer[source - target.range.lowerBound] += gradient[i]
            }
        }
    }
}

/// The backward rule of a view (reshape, squeeze, unsqueeze, flatten): the same elements
/// under another shape, so ∂L/∂x is ∂L/∂y as it is.
struct ViewGradient: BackwardKernel {
    let count: Int

    func run(_ io: BackwardIO) {
        guard let target = io.inputGradient(0) else { return }
        let gradient = io.outputGradient
        io.pool.parallelFor(count, minimumChunk: 1 << 16) { range in
            for i in range { target[i] += gradient[i] }
        }
    }
}

/// Sums a gradient of `shape` over the axes a broadcast input of `inputShape` was
/// stretched along, adding the result into `target`.
func accumulateBroadcastGradient(_ gradient: UnsafePointer<Float>, shape: [Int], into target: UnsafeMutablePointer<Float>,
                                 inputShape: [Int]) {
    let count = shape.reduce(1, *)
    if inputShape.reduce(1, *) == count {
        for i in 0..<count { target[i] += gradient[i] }
        return
    }
    let strides = ShapeRules.broadcastStrides(inputShape, to: shape)
    let rank = shape.count
    // Row-major walk over the output with the input's (possibly zero) strides.
    var index = [Int](repeating: 0, count: rank)
    var source = 0
    let inner = shape.last ?? 1, innerStride = strides.last ?? 0
    var position = 0
    while position < count {
        if innerStride == 0 {
            var sum: Float = 0
            for i in 0..<inner { sum += gradient[position + i] }
            target[source] += sum
        } else {
            for i in 0..<inner { target[source + i] += gradient[position + i] }
        }
        position += inner
        // Advance the multi-index over all but the last axis.
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            source += strides[axis]
            if index[axis] < shape[axis] { break }
            source -= strides[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

/// Ops whose outputs are copies of input elements or constants: their backward rule is
/// `ElementMapGradient`, derived from their reference kernel. An op declares it in its
/// own file (`extension Transpose: MovesElements {}`).
protocol MovesElements: Differentiable {
    var name: String { get }
}

extension MovesElements {
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        try ElementMapGradient(self, name: name, inputs: inputs, outputs: outputs, wanted: wanted)
    }
}

import Format

/// `unary`: one `UnaryFunction` applied to every element, its math from `Activation`.
///
/// Floats take every function. Integers (shape arithmetic) take the functions that are
/// exact on them: identity, abs, neg, floor and ceil; `not` takes bool, and identity
/// takes anything.
public struct ElementwiseUnary: Operator {
    let name: String
    let activation: Activation

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        try checkType(x.dtype)
        return [ValueFact(dtype: x.dtype, shape: x.shape)]
    }

    /// Throws unless the function is defined on elements of `dtype`.
    private func checkType(_ dtype: DType) throws {
        let accepted: Bool
        switch activation.function {
        case .identity: accepted = true
        case .not: accepted = dtype == .bool
        case .abs, .neg, .floor, .ceil: accepted = dtype != .bool
        default: accepted = dtype.isFloatingPoint
        }
        guard accepted else {
            throw OpError.shape(node: name, "\(activation.function.rawValue) is not defined on \(dtype) elements")
        }
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        try checkType(x.dtype)
        switch x.elements {
        case .float(let values):
            return [HostTensor(shape: x.shape, floats: values.map { activation.apply($0) })]
        case .int(let values):
            let results: [Int64] = values.map { value in
                switch activation.function {
                case .not: value == 0 ? 1 : 0
                case .abs: Swift.abs(value)
                case .neg: -value
                default: value  // identity, floor, ceil: integers are their own floor and ceiling
                }
            }
            return [HostTensor(shape: x.shape, ints: results, dtype: x.dtype)]
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        UnaryKernel(activation: activation, count: outputs[0].count)
    }
}

/// Copies a block of the input to the output and applies the function there in place,
/// so each element is read from memory once and transformed while in cache.
struct UnaryKernel: Kernel {
    let activation: Activation
    let count: Int
    /// 16 KB per block: small enough to stay in L1 between the copy and the transform.
    static let blockSize = 4096

    func run(_ io: KernelIO) {
        let source = io.input(0)
        let destination = io.outputs[0]
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        io.pool.parallelFor(blocks, minimumChunk: 16) { range in
            for block in range {
                let start = block * Self.blockSize
                let length = Swift.min(Self.blockSize, count - start)
                (destination + start).update(from: source + start, count: length)
                activation.apply(destination + start, count: length)
            }
        }
    }
}

extension ElementwiseUnary: Differentiable {
    /// Keeps the output where the derivative follows from it (relu, sigmoid, tanh), else
    /// the input.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues {
        activation.isDifferentiableFromOutput ? SavedValues(outputs: [0]) : SavedValues(inputs: [0])
    }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        UnaryBackward(activation: activation, count: outputs[0].count)
    }
}

/// ∂L/∂x = ∂L/∂y · f′: in one pass where the activation has one (`addBackward`), else a
/// block at a time through a small stack buffer.
struct UnaryBackward: BackwardKernel {
    let activation: Activation
    let count: Int

    func run(_ io: BackwardIO) {
        guard let target = io.inputGradient(0) else { return }
        let gradient = io.outputGradient
        let fromOutput = activation.isDifferentiableFromOutput
        let values = fromOutput ? io.output(0) : io.input(0)
        if activation.addsBackwardInOnePass(fromOutputs: fromOutput) {
            io.pool.parallelFor(count, minimumChunk: 1 << 14) { range in
                activation.addBackward(gradient + range.lowerBound, values: values + range.lowerBound, count: range.count,
                                       valuesAreOutputs: fromOutput, into: target + range.lowerBound)
            }
            return
        }
        let blocks = (count + UnaryKernel.blockSize - 1) / UnaryKernel.blockSize
        io.pool.parallelFor(blocks, minimumChunk: 16) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: UnaryKernel.blockSize) { buffer in
                guard let block = buffer.baseAddress else { return }
                for index in range {
                    let start = index * UnaryKernel.blockSize
                    let length = Swift.min(UnaryKernel.blockSize, count - start)
                    block.update(from: gradient + start, count: length)
                    activation.backward(block, values: values + start, count: length, valuesAreOutputs: fromOutput)
                    for i in 0..<length { target[start + i] += block[i] }
                }
            }
        }
    }
}

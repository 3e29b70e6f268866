import Format

/// `reduce`: mean, sum, max, min or product over `axes` (empty = all), keeping reduced axes as
/// size 1 when `keepDims` is 1. Floats and integers (integer mean truncates toward zero).
/// A second input, when given, holds the axes instead (plan-time i64: ONNX's axes input
/// computed from shapes, as expanded functions do). An axis of size 0 reduces to the
/// function's identity (0, 1, −∞, +∞), as ONNX defines it; its mean is refused.
public struct Reduction: Operator {
    let name: String
    let attributes: ReduceAttributes

    /// The reduced axes: the second input's values when given, else the attribute.
    func axes(_ inputs: [ValueFact?]) throws -> [Int] {
        guard inputs.count > 1, inputs[1] != nil else { return attributes.axes }
        return try ShapeRules.planTimeValue(inputs, 1, node: name).ints.map { Int($0) }
    }

    /// Which axes of a `shape` are reduced, or throws for a bad or repeated axis.
    private func reducedAxes(_ shape: [Int], axes: [Int]) throws -> [Bool] {
        if axes.isEmpty { return Array(repeating: true, count: shape.count) }
        var reduced = Array(repeating: false, count: shape.count)
        for axis in axes {
            let normalized = try ShapeRules.axis(axis, rank: shape.count, node: name)
            guard !reduced[normalized] else { throw OpError.shape(node: name, "axis \(axis) is reduced twice") }
            reduced[normalized] = true
        }
        return reduced
    }

    /// The output shape with reduced axes kept as 1, and the number of elements each
    /// output element reduces.
    private func keptShape(_ shape: [Int], axes: [Int]) throws -> (shape: [Int], reducedCount: Int) {
        let reduced = try reducedAxes(shape, axes: axes)
        let kept = shape.indices.map { reduced[$0] ? 1 : shape[$0] }
        let reducedCount = shape.indices.reduce(1) { reduced[$1] ? $0 * shape[$1] : $0 }
        guard reducedCount > 0 || attributes.function != .mean else {
            throw OpError.shape(node: name, "takes the mean of no elements (axes \(axes) of \(shape))")
        }
        return (kept, reducedCount)
    }

    /// What an empty reduction gives, the function's identity: 0 for sum, 1 for prod, −∞
    /// for max, +∞ for min (mean has none and is refused).
    var identity: Double {
        switch attributes.function {
        case .max: -.infinity
        case .min: .infinity
        case .prod: 1
        case .mean, .sum: 0
        }
    }

    private func outputShape(_ shape: [Int], axes: [Int]) throws -> [Int] {
        let reduced = try reducedAxes(shape, axes: axes)
        return attributes.keepDims ? try keptShape(shape, axes: axes).shape : shape.indices.filter { !reduced[$0] }.map { shape[$0] }
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        return [ValueFact(dtype: x.dtype, shape: try outputShape(x.shape, axes: try axes(inputs)))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        let axes = try axes(inputs.map { $0.map(ValueFact.init) })
        let (kept, reducedCount) = try keptShape(x.shape, axes: axes)
        let shape = try outputShape(x.shape, axes: axes)
        // Input element i accumulates into output element destinations[i].
        let destinations = ShapeRules.broadcastSourceIndices(kept, to: x.shape)
        let outputCount = kept.reduce(1, *)
        switch x.elements {
        case .float(let values):
            // Double accumulation keeps the reference exact enough to judge fast kernels by.
            var accumulators = [Double](repeating: identity, count: outputCount)
            for (value, destination) in zip(values, destinations) {
                accumulators[destination] = combine(accumulators[destination], Double(value))
            }
            let scale = attributes.function == .mean ? 1 / Double(reducedCount) : 1
            return [HostTensor(shape: shape, floats: accumulators.map { Float($0 * scale) })]
        case .int(let values):
            let start: Int64 = attributes.function == .max ? .min : attributes.function == .min ? .max
                : attributes.function == .prod ? 1 : 0
            var accumulators = [Int64](repeating: start, count: outputCount)
            for (value, destination) in zip(values, destinations) {
                // Integer products wrap on overflow (as two's-complement arithmetic does) rather than trap.
                accumulators[destination] = attributes.function == .prod
                    ? accumulators[destination] &* value : combine(accumulators[destination], value)
            }
            if attributes.function == .mean { accumulators = accumulators.map { $0 / Int64(reducedCount) } }
            return [HostTensor(shape: shape, ints: accumulators, dtype: x.dtype)]
        }
    }

    /// One step of the reduction: the sum for mean and sum, the product, or the max or min.
    @inline(__always)
    private func combine<T: Numeric & Comparable>(_ accumulator: T, _ value: T) -> T {
        switch attributes.function {
        case .mean, .sum: accumulator + value
        case .prod: accumulator * value
        case .max: Swift.max(accumulator, value)
        case .min: Swift.min(accumulator, value)
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (kept, reducedCount) = try keptShape(x.shape, axes: try axes(inputs))
        if x.count == 0 { return IdentityFill(value: Float(identity), count: outputs[0].count) }
        return ReductionKernel(reduction: self, reducedCount: reducedCount, integerInputs: !x.dtype.isFloatingPoint,
                               layout: BroadcastLayout(output: x.shape, inputs: [kept]))
    }

    /// The float kernel: walks the input in memory order, accumulating each run into the
    /// output, which the layout reads like a broadcast operand (stride 0 on reduced axes).
    /// A run reduced along its length becomes one sum or extreme; a run over kept
    /// elements updates as many outputs.
    struct ReductionKernel: Kernel {
        let reduction: Reduction
        let reducedCount: Int
        /// Integer tensors computed at run time arrive as floats; their mean still
        /// truncates toward zero, as the reference's does.
        let integerInputs: Bool
        let layout: BroadcastLayout
        /// Threads split the outermost merged axis when it is kept, so each writes its
        /// own outputs; a reduction over the outermost axis runs on one thread (outer 1).
        let outer: Int
        let inputPerOuter: Int
        let outputPerOuter: Int

        init(reduction: Reduction, reducedCount: Int, integerInputs: Bool, layout: BroadcastLayout) {
            self.reduction = reduction
            self.reducedCount = reducedCount
            self.integerInputs = integerInputs
            self.layout = layout
            let outermostKept = layout.strides[0][0] != 0
            outer = outermostKept ? layout.shape[0] : 1
            // A kept empty outermost axis leaves nothing to reduce (and no outer to divide by).
            inputPerOuter = outer > 0 ? layout.count / outer : 0
            outputPerOuter = outermostKept ? layout.strides[0][0] : layout.count / Swift.max(reducedCount, 1)
        }

        func run(_ io: KernelIO) {
            let (input, output) = (io.input(0), io.outputs[0])
            io.pool.parallelFor(outer, minimumChunk: Swift.max(1, (1 << 15) / Swift.max(inputPerOuter, 1))) { range in
                reduce(range, input, output)
            }
        }

        /// Reduces the input elements of outer indices `outers` into their outputs.
        /// Out of line so both paths of `parallelFor` run the same compiled loops (see
        /// `BinaryKernel.compute`).
        @inline(never)
        private func reduce(_ outers: Range<Int>, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
            let function = reduction.attributes.function
            let (outputs, count) = (output + outers.lowerBound * outputPerOuter, outers.count * outputPerOuter)
            outputs.update(repeating: function == .max ? -.infinity : function == .min ? .infinity : function == .prod ? 1 : 0,
                           count: count)
            let innerOutputStride = layout.innerStride(0)
            layout.forEachRun(in: outers.lowerBound * inputPerOuter..<outers.upperBound * inputPerOuter) { inputOffset, offsets, length in
                let (x, y) = (input + inputOffset, output + offsets[0])
                if innerOutputStride == 0 {
                    y[0] = reduction.combine(y[0], reduceRun(x, length))
                } else {
                    for i in 0..<length { y[i] = reduction.combine(y[i], x[i]) }
                }
            }
            if function == .mean {
                if integerInputs {
                    // Divide rather than multiply by 1/n: -7 · (1/7) is -0.99999994, which truncates to 0.
                    let divisor = Float(reducedCount)
                    for i in 0..<count { outputs[i] = (outputs[i] / divisor).rounded(.towardZero) }
                } else {
                    let scale = 1 / Float(reducedCount)
                    for i in 0..<count { outputs[i] *= scale }
                }
            }
        }

        /// The sum (accumulated in Double, as long rows lose digits in Float) or extreme
        /// of `count` contiguous floats.
        @inline(__always)
        private func reduceRun(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
            switch reduction.attributes.function {
            case .mean, .sum:
                var sum: Double = 0
                for i in 0..<count { sum += Double(x[i]) }
                return Float(sum)
            case .prod:
                var product: Double = 1
                for i in 0..<count { product *= Double(x[i]) }
                return Float(product)
            case .max, .min:
                var extreme = x[0]
                for i in 1..<count { extreme = reduction.combine(extreme, x[i]) }
                return extreme
            }
        }
    }
}

extension Reduction: Differentiable {
    /// Mean and sum need nothing; max and min compare X with the result.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues {
        switch attributes.function {
        case .mean, .sum: .nothing
        case .max, .min, .prod: SavedValues(inputs: [0], outputs: [0])
        }
    }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (kept, reducedCount) = try keptShape(x.shape, axes: try axes(inputs))
        switch attributes.function {
        case .mean, .sum, .max, .min: break
        case .prod: throw OpError.unsupported(node: name, "the gradient of a product reduction")
        }
        return ReductionBackward(function: attributes.function, reducedCount: reducedCount,
                                 layout: BroadcastLayout(output: x.shape, inputs: [kept]), outputCount: kept.reduce(1, *))
    }
}

/// ∂L/∂x[i] = ∂L/∂y[r(i)] times 1 (sum), 1/n (mean), or, for max and min, 1/t where x[i]
/// equals the result and t elements tie for it (autograd's amax/amin share), else 0.
/// X is walked as the broadcast of the kept shape onto it, so each run of X knows its
/// result element; one thread, as runs of many X elements meet in one result.
struct ReductionBackward: BackwardKernel {
    let function: ReduceAttributes.Function
    let reducedCount: Int
    let layout: BroadcastLayout
    let outputCount: Int

    var scratchBytes: Int { function == .max || function == .min ? outputCount * MemoryLayout<Float>.size : 0 }

    func run(_ io: BackwardIO) {
        guard let target = io.inputGradient(0) else { return }
        let gradient = io.outputGradient
        let stride = layout.innerStride(0)
        switch function {
        case .sum, .mean, .prod:
            let scale: Float = function == .mean ? 1 / Float(reducedCount) : 1
            layout.forEachRun(in: 0..<layout.count) { offset, offsets, length in
                for j in 0..<length { target[offset + j] += scale * gradient[offsets[0] + j * stride] }
            }
        case .max, .min:
            guard let ties = io.scratch?.assumingMemoryBound(to: Float.self) else {
                preconditionFailure("reduce backward ran without scratch")
            }
            let (x, y) = (io.input(0), io.output(0))
            ties.update(repeating: 0, count: outputCount)
            layout.forEachRun(in: 0..<layout.count) { offset, offsets, length in
                for j in 0..<length where x[offset + j] == y[offsets[0] + j * stride] { ties[offsets[0] + j * stride] += 1 }
            }
            layout.forEachRun(in: 0..<layout.count) { offset, offsets, length in
                for j in 0..<length {
                    let r = offsets[0] + j * stride
                    if x[offset + j] == y[r] { target[offset + j] += gradient[r] / ties[r] }
                }
            }
        }
    }
}

/// The result of reducing an empty input: every output element is the function's identity.
struct IdentityFill: Kernel {
    let value: Float
    let count: Int

    func run(_ io: KernelIO) { io.outputs[0].update(repeating: value, count: count) }
}

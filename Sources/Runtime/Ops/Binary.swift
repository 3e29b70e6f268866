import Foundation
import Format

/// `binary`: a `BinaryFunction` of two inputs under NumPy broadcasting.
///
/// Both inputs are floats, or both integers (shape arithmetic, with ONNX's integer
/// semantics: division truncates toward zero, `mod` takes the divisor's sign); mixing
/// them is an error. Comparisons and logic produce bool; `and`/`or`/`xor` read any nonzero
/// element as true, whatever its type.
public struct ElementwiseBinary: Operator {
    let name: String
    let function: BinaryFunction

    /// Whether the function yields bool (comparisons and logic).
    var producesBool: Bool {
        switch function {
        case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor: true
        case .add, .sub, .mul, .div, .pow, .max, .min, .mod, .prelu: false
        }
    }

    /// The output type for inputs of these types, or throws when they cannot be combined.
    func outputType(_ a: DType, _ b: DType) throws -> DType {
        if function == .and || function == .or || function == .xor { return .bool }
        guard a.isFloatingPoint == b.isFloatingPoint else {
            throw OpError.shape(node: name, "\(function.rawValue) mixes \(a) and \(b) inputs; insert a cast")
        }
        if producesBool { return .bool }
        if a.isFloatingPoint { return .float32 }
        return a == b ? a : .int64
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let a = try ShapeRules.required(inputs, 0, node: name)
        let b = try ShapeRules.required(inputs, 1, node: name)
        return [ValueFact(dtype: try outputType(a.dtype, b.dtype),
                          shape: try ShapeRules.broadcast(a.shape, b.shape, node: name))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let a = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        guard inputs.count > 1, let b = inputs[1] else { throw GraphError.missingInput(node: name, index: 1) }
        let dtype = try outputType(a.dtype, b.dtype)
        let shape = try ShapeRules.broadcast(a.shape, b.shape, node: name)
        let aIndices = ShapeRules.broadcastSourceIndices(a.shape, to: shape)
        let bIndices = ShapeRules.broadcastSourceIndices(b.shape, to: shape)
        if case .int(let x) = a.elements, case .int(let y) = b.elements {
            let results = try zip(aIndices, bIndices).map { try integerResult(x[$0], y[$1]) }
            return [HostTensor(shape: shape, ints: results, dtype: dtype)]
        }
        // Floats, or a logic function over mixed types (where only zero/nonzero matters).
        let (x, y) = (a.floats, b.floats)
        let results = zip(aIndices, bIndices).map { Self.floatResult(function, x[$0], y[$1]) }
        return [dtype == .bool ? HostTensor(shape: shape, ints: results.map { Int64($0) }, dtype: .bool)
                               : HostTensor(shape: shape, floats: results)]
    }

    /// The function on two floats; bool results are 1 or 0.
    @inline(__always)
    static func floatResult(_ function: BinaryFunction, _ a: Float, _ b: Float) -> Float {
        switch function {
        case .add: a + b
        case .sub: a - b
        case .mul: a * b
        case .div: a / b
        case .pow: Foundation.pow(a, b)
        case .max: Swift.max(a, b)
        case .min: Swift.min(a, b)
        case .mod: Foundation.fmod(a, b)
        case .prelu: a >= 0 ? a : a * b
        case .equal: a == b ? 1 : 0
        case .less: a < b ? 1 : 0
        case .greater: a > b ? 1 : 0
        case .lessOrEqual: a <= b ? 1 : 0
        case .greaterOrEqual: a >= b ? 1 : 0
        case .and: a != 0 && b != 0 ? 1 : 0
        case .or: a != 0 || b != 0 ? 1 : 0
        case .xor: (a != 0) != (b != 0) ? 1 : 0
        }
    }

    /// The function on two integers with ONNX's integer semantics; bool results are 1 or 0.
    /// Arithmetic wraps on overflow (as ONNX runtimes do) rather than trapping.
    func integerResult(_ a: Int64, _ b: Int64) throws -> Int64 {
        switch function {
        case .add: return a &+ b
        case .sub: return a &- b
        case .mul: return a &* b
        case .div, .mod:
            guard b != 0 else { throw OpError.shape(node: name, "integer \(function.rawValue) by zero") }
            if function == .div { return a.dividedReportingOverflow(by: b).partialValue }
            return Self.withDivisorSign(a.remainderReportingOverflow(dividingBy: b).partialValue, divisor: b)
        case .pow:
            let power = Foundation.pow(Double(a), Double(b))
            guard power.isFinite, Swift.abs(power) < 0x1p63 else {
                throw OpError.shape(node: name, "integer pow(\(a), \(b)) does not fit in 64 bits")
            }
            return Int64(power)
        case .max: return Swift.max(a, b)
        case .min: return Swift.min(a, b)
        case .prelu: return a >= 0 ? a : a &* b
        case .equal: return a == b ? 1 : 0
        case .less: return a < b ? 1 : 0
        case .greater: return a > b ? 1 : 0
        case .lessOrEqual: return a <= b ? 1 : 0
        case .greaterOrEqual: return a >= b ? 1 : 0
        case .and: return a != 0 && b != 0 ? 1 : 0
        case .or: return a != 0 || b != 0 ? 1 : 0
        case .xor: return (a != 0) != (b != 0) ? 1 : 0
        }
    }

    /// Turns a truncated remainder (sign of the dividend) into ONNX integer Mod's
    /// (sign of the divisor).
    @inline(__always)
    static func withDivisorSign<T: SignedNumeric & Comparable>(_ remainder: T, divisor: T) -> T {
        remainder != 0 && (remainder < 0) != (divisor < 0) ? remainder + divisor : remainder
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let a = try ShapeRules.required(inputs, 0, node: name)
        let b = try ShapeRules.required(inputs, 1, node: name)
        let layout = BroadcastLayout(output: outputs[0].shape, inputs: [a.shape, b.shape])
        return BinaryKernel(function: function, integerInputs: !a.dtype.isFloatingPoint && !b.dtype.isFloatingPoint,
                            layout: layout, blocks: BroadcastBlocks(layout))
    }
}

/// The float kernel of `binary`: the broadcast layout's runs, with the innermost loop
/// specialised for both inputs contiguous, either one constant along the run (scalar,
/// per-channel and column broadcasting), or general strides; or, when the runs are short,
/// its blocks (`BroadcastBlocks`).
struct BinaryKernel: Kernel {
    let function: BinaryFunction
    /// Integer tensors computed at run time arrive as floats; div and mod then keep
    /// their integer meaning (exact while the values fit in 24 bits).
    let integerInputs: Bool
    let layout: BroadcastLayout
    var blocks: BroadcastBlocks? = nil
    /// Below 32K elements a second thread costs more than it saves.
    static let minimumChunk = 1 << 15

    func run(_ io: KernelIO) {
        let (a, b, output) = (io.input(0), io.input(1), io.outputs[0])
        let (items, itemSize) = blocks.map { ($0.count, $0.size) } ?? (layout.count, 1)
        io.pool.parallelFor(items, minimumChunk: Swift.max(1, Self.minimumChunk / itemSize)) { range in
            compute(range, a, b, output)
        }
    }

    /// One thread's share of the output elements, or of the blocks. Kept out of line so that the single-thread and multi-thread
    /// paths of `parallelFor` run the same compiled loops (inlined into the caller, the
    /// broadcast loops compiled 10× slower on one thread).
    @inline(never)
    private func compute(_ range: Range<Int>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                         _ output: UnsafeMutablePointer<Float>) {
        // Each case passes a constant function, so the inlined math folds to one
        // operation and the inner loops are compiled per function.
        switch function {
        case .div where integerInputs: runs(range, a, b, output) { ($0 / $1).rounded(.towardZero) }
        case .mod where integerInputs:
            runs(range, a, b, output) { ElementwiseBinary.withDivisorSign(Foundation.fmod($0, $1), divisor: $1) }
        case .add: runs(range, a, b, output) { ElementwiseBinary.floatResult(.add, $0, $1) }
        case .sub: runs(range, a, b, output) { ElementwiseBinary.floatResult(.sub, $0, $1) }
        case .mul: runs(range, a, b, output) { ElementwiseBinary.floatResult(.mul, $0, $1) }
        case .div: runs(range, a, b, output) { ElementwiseBinary.floatResult(.div, $0, $1) }
        case .pow: runs(range, a, b, output) { ElementwiseBinary.floatResult(.pow, $0, $1) }
        case .max: runs(range, a, b, output) { ElementwiseBinary.floatResult(.max, $0, $1) }
        case .min: runs(range, a, b, output) { ElementwiseBinary.floatResult(.min, $0, $1) }
        case .mod: runs(range, a, b, output) { ElementwiseBinary.floatResult(.mod, $0, $1) }
        case .prelu: runs(range, a, b, output) { ElementwiseBinary.floatResult(.prelu, $0, $1) }
        case .equal: runs(range, a, b, output) { ElementwiseBinary.floatResult(.equal, $0, $1) }
        case .less: runs(range, a, b, output) { ElementwiseBinary.floatResult(.less, $0, $1) }
        case .greater: runs(range, a, b, output) { ElementwiseBinary.floatResult(.greater, $0, $1) }
        case .lessOrEqual: runs(range, a, b, output) { ElementwiseBinary.floatResult(.lessOrEqual, $0, $1) }
        case .greaterOrEqual: runs(range, a, b, output) { ElementwiseBinary.floatResult(.greaterOrEqual, $0, $1) }
        case .and: runs(range, a, b, output) { ElementwiseBinary.floatResult(.and, $0, $1) }
        case .or: runs(range, a, b, output) { ElementwiseBinary.floatResult(.or, $0, $1) }
        case .xor: runs(range, a, b, output) { ElementwiseBinary.floatResult(.xor, $0, $1) }
        }
    }

    @inline(__always)
    private func runs(_ range: Range<Int>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                      _ output: UnsafeMutablePointer<Float>, _ operation: (Float, Float) -> Float) {
        if let blocks {
            let size = blocks.size
            blocks.offsets[0].withUnsafeBufferPointer { offsetsA in
                blocks.offsets[1].withUnsafeBufferPointer { offsetsB in
                    for block in range {
                        let (x, y) = (a + blocks.start(of: block, input: 0), b + blocks.start(of: block, input: 1))
                        let z = output + block * size
                        for i in 0..<size { z[i] = operation(x[offsetsA[i]], y[offsetsB[i]]) }
                    }
                }
            }
            return
        }
        let (strideA, strideB) = (layout.innerStride(0), layout.innerStride(1))
        layout.forEachRun(in: range) { outputOffset, offsets, length in
            let (x, y, z) = (a + offsets[0], b + offsets[1], output + outputOffset)
            switch (strideA, strideB) {
            case (1, 1): for i in 0..<length { z[i] = operation(x[i], y[i]) }
            case (1, 0): let scalar = y[0]; for i in 0..<length { z[i] = operation(x[i], scalar) }
            case (0, 1): let scalar = x[0]; for i in 0..<length { z[i] = operation(scalar, y[i]) }
            default: for i in 0..<length { z[i] = operation(x[i * strideA], y[i * strideB]) }
            }
        }
    }
}

extension ElementwiseBinary: Differentiable {
    /// Add and sub pass the gradient through; the others read both inputs.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues {
        switch function {
        case .add, .sub: .nothing
        default: SavedValues(inputs: [0, 1])
        }
    }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let a = try ShapeRules.required(inputs, 0, node: name)
        let b = try ShapeRules.required(inputs, 1, node: name)
        switch function {
        case .add, .sub, .mul, .div, .pow, .max, .min, .mod, .prelu: break
        case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor:
            throw OpError.unsupported(node: name, "\(function.rawValue) has a bool result and no gradient")
        }
        return BinaryBackward(function: function, layout: BroadcastLayout(output: outputs[0].shape, inputs: [a.shape, b.shape]))
    }

    /// ∂y/∂a and ∂y/∂b at one element. Ties of max and min share the gradient equally,
    /// as autograd does.
    @inline(__always)
    static func partials(_ function: BinaryFunction, _ a: Float, _ b: Float) -> (Float, Float) {
        switch function {
        case .add: (1, 1)
        case .sub: (1, -1)
        case .mul: (b, a)
        case .div: (1 / b, -a / (b * b))
        case .pow: (b * Foundation.pow(a, b - 1), a > 0 ? Foundation.pow(a, b) * Foundation.log(a) : 0)
        case .max: a > b ? (1, 0) : (a < b ? (0, 1) : (0.5, 0.5))
        case .min: a < b ? (1, 0) : (a > b ? (0, 1) : (0.5, 0.5))
        case .mod: (1, -(a / b).rounded(.towardZero))
        case .prelu: a >= 0 ? (1, 0) : (b, a)
        case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor: (0, 0)
        }
    }
}

/// Adds ∂L/∂y · ∂y/∂a into ∂L/∂a and likewise for b, summing over the axes each input
/// was broadcast along. One thread: with a broadcast input, elements of many output
/// runs add into the same gradient element.
struct BinaryBackward: BackwardKernel {
    let function: BinaryFunction
    let layout: BroadcastLayout

    func run(_ io: BackwardIO) {
        let gradient = io.outputGradient
        let (targetA, targetB) = (io.inputGradient(0), io.inputGradient(1))
        let (strideA, strideB) = (layout.innerStride(0), layout.innerStride(1))
        let passThrough = function == .add || function == .sub
        let (a, b) = passThrough ? (nil, nil) : (io.inputs[0], io.inputs[1])
        let signB: Float = function == .sub ? -1 : 1
        layout.forEachRun(in: 0..<layout.count) { outputOffset, offsets, length in
            let g = gradient + outputOffset
            if let a, let b {
                for j in 0..<length {
                    let (da, db) = ElementwiseBinary.partials(function, a[offsets[0] + j * strideA], b[offsets[1] + j * strideB])
                    targetA?[offsets[0] + j * strideA] += g[j] * da
                    targetB?[offsets[1] + j * strideB] += g[j] * db
                }
            } else {
                if let targetA { for j in 0..<length { targetA[offsets[0] + j * strideA] += g[j] } }
                if let targetB { for j in 0..<length { targetB[offsets[1] + j * strideB] += signB * g[j] } }
            }
        }
    }
}

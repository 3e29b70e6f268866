import CKernels
import Foundation
import Format

/// `softmax` along one axis (ONNX opset 13 semantics): exp(x - max) / Σ exp(x - max).
/// Subtracting the maximum keeps exp from overflowing and changes nothing mathematically.
public struct Softmax: Operator {
    let name: String
    let attributes: SoftmaxAttributes

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        guard x.dtype.isFloatingPoint else { throw OpError.shape(node: name, "softmax of \(x.dtype) elements") }
        _ = try ShapeRules.axis(attributes.axis, rank: x.rank, node: name)
        return [ValueFact(dtype: .float32, shape: x.shape)]
    }

    /// The tensor seen as [outer, axis length, inner].
    private func extents(_ shape: [Int]) throws -> (outer: Int, length: Int, inner: Int) {
        let axis = try ShapeRules.axis(attributes.axis, rank: shape.count, node: name)
        return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        guard x.isFloat else { throw OpError.shape(node: name, "softmax of \(x.dtype) elements") }
        let (outer, length, inner) = try extents(x.shape)
        let values = x.floats
        var result = [Float](repeating: 0, count: values.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let index = { (k: Int) in (o * length + k) * inner + i }
                let maximum = (0..<length).map { Double(values[index($0)]) }.max() ?? 0
                let exponentials = (0..<length).map { Foundation.exp(Double(values[index($0)]) - maximum) }
                let sum = exponentials.reduce(0, +)
                for k in 0..<length { result[index(k)] = Float(exponentials[k] / sum) }
            }
        }
        return [HostTensor(shape: x.shape, floats: result)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let (outer, length, inner) = try extents(outputs[0].shape)
        return SoftmaxKernel(outer: outer, length: length, inner: inner)
    }
}

/// The float kernel of `softmax`.
///
/// With the axis innermost (attention rows) each row is max, exp-and-sum, scale in
/// place, threads splitting the rows. Otherwise the axis has stride `inner`: the
/// [length, inner] block of each outer index is cut into strips of `stripWidth` columns,
/// and each strip's passes (max, exp and sum, scale) sweep its rows in memory order
/// instead of striding down one column at a time. Threads split the strips, so a single
/// image ([1, C, H, W], softmax over C) still uses every thread.
struct SoftmaxKernel: Kernel {
    let outer: Int
    let length: Int
    let inner: Int
    /// Columns per strip: the strip's max and sum (2 KB) stay on the stack and in L1,
    /// and a row segment of 256 floats is long enough to stream.
    static let stripWidth = 256

    func run(_ io: KernelIO) {
        let (input, output) = (io.input(0), io.outputs[0])
        let slice = length * inner
        guard slice > 0 else { return }
        if inner == 1 {
            io.pool.parallelFor(outer, minimumChunk: Swift.max(1, (1 << 14) / slice)) { range in
                for o in range { Self.softmaxRow(input + o * slice, output + o * slice, length: length) }
            }
            return
        }
        let strips = (inner + Self.stripWidth - 1) / Self.stripWidth
        let stripElements = length * Swift.min(inner, Self.stripWidth)
        io.pool.parallelFor(outer * strips, minimumChunk: Swift.max(1, (1 << 14) / stripElements)) { range in
            for task in range {
                let (o, strip) = task.quotientAndRemainder(dividingBy: strips)
                let columns = strip * Self.stripWidth..<Swift.min(inner, (strip + 1) * Self.stripWidth)
                let offset = o * slice + columns.lowerBound
                softmaxColumns(input + offset, output + offset, width: columns.count)
            }
        }
    }

    // The row and strip functions stay out of line so both paths of `parallelFor` run
    // the same compiled loops (see `BinaryKernel.compute`).
    // `attention` normalises its score rows with it too; x and y may be the same row.
    // `cpu` picks the path (tests run every one the CPU supports).
    @inline(never)
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, length: Int,
                           cpu: CPULevel = CPUFeatures.level) {
        // 16 or 8 lanes with glibc's vector expf: attention's rows of 49–64 keys spent most
        // of their time in scalar expf (28% of a windowed-attention Swin's run).
        switch cpu {
        case .avx512: return restore_softmax_row_avx512(x, y, length)
        case .avx2: return restore_softmax_row_avx2(x, y, length)
        case .portable: break
        }
        var maximum = -Float.infinity
        for k in 0..<length { maximum = Swift.max(maximum, x[k]) }
        var sum: Float = 0
        for k in 0..<length {
            let e = Foundation.exp(x[k] - maximum)
            y[k] = e
            sum += e
        }
        let scale = 1 / sum
        for k in 0..<length { y[k] *= scale }
    }

    /// Softmax down each of `width` columns of a [length, inner]-strided block.
    @inline(never)
    private func softmaxColumns(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, width: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * Self.stripWidth) { buffer in
            let maximum = UnsafeMutableBufferPointer(rebasing: buffer[..<width])
            let sum = UnsafeMutableBufferPointer(rebasing: buffer[Self.stripWidth..<(Self.stripWidth + width)])
            for i in 0..<width { maximum[i] = x[i]; sum[i] = 0 }
            for k in 1..<length {
                let row = x + k * inner
                for i in 0..<width { maximum[i] = Swift.max(maximum[i], row[i]) }
            }
            for k in 0..<length {
                let (row, out) = (x + k * inner, y + k * inner)
                for i in 0..<width {
                    let e = Foundation.exp(row[i] - maximum[i])
                    out[i] = e
                    sum[i] += e
                }
            }
            for i in 0..<width { sum[i] = 1 / sum[i] }
            for k in 0..<length {
                let out = y + k * inner
                for i in 0..<width { out[i] *= sum[i] }
            }
        }
    }
}

extension Softmax: Differentiable {
    /// ∂L/∂x = y ⊙ (∂L/∂y − Σ ∂L/∂y ⊙ y) along the axis: only the output is needed.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(outputs: [0]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let (outer, length, inner) = try extents(outputs[0].shape)
        return SoftmaxBackward(outer: outer, length: length, inner: inner)
    }
}

/// Softmax's backward rule, one (outer, inner) line along the axis at a time.
struct SoftmaxBackward: BackwardKernel {
    let outer: Int, length: Int, inner: Int

    func run(_ io: BackwardIO) {
        guard let target = io.inputGradient(0) else { return }
        let (y, gradient) = (io.output(0), io.outputGradient)
        let (length, inner) = (length, inner)
        io.pool.parallelFor(outer * inner, minimumChunk: Swift.max(1, (1 << 12) / Swift.max(length, 1))) { range in
            for line in range {
                let (o, i) = line.quotientAndRemainder(dividingBy: inner)
                let start = o * length * inner + i
                var dot: Float = 0
                for k in 0..<length { dot += gradient[start + k * inner] * y[start + k * inner] }
                for k in 0..<length {
                    let index = start + k * inner
                    target[index] += y[index] * (gradient[index] - dot)
                }
            }
        }
    }
}

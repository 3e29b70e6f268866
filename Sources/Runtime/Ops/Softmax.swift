import Foundation
import Format

/// `softmax` along one axis (ONNX opset 13 semantics): exp(x - max) / Σ exp(x - max).
/// Subtracting the maximum keeps exp from overflowing and changes nothing mathematically.
public struct Softmax: Operator {
    let name: String
    let axis: Int

    public init(node: Node) throws {
        name = node.name
        axis = try node.int("axis", default: -1)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        guard x.dtype.isFloatingPoint else { throw OpError.shape(node: name, "softmax of \(x.dtype) elements") }
        _ = try ShapeRules.axis(axis, rank: x.rank, node: name)
        return [ValueFact(dtype: .float32, shape: x.shape)]
    }

    /// The tensor seen as [outer, axis length, inner].
    private func extents(_ shape: [Int]) throws -> (outer: Int, length: Int, inner: Int) {
        let axis = try ShapeRules.axis(axis, rank: shape.count, node: name)
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

/// The float kernel of `softmax`, threads splitting the outer extent.
///
/// With the axis innermost (attention rows) each row is max, exp-and-sum, scale in
/// place. Otherwise the axis has stride `inner`: the passes run over whole contiguous
/// [inner] slices (running max, then exp and running sum, then scale), so memory is
/// read in order instead of striding down one column at a time.
struct SoftmaxKernel: Kernel {
    let outer: Int
    let length: Int
    let inner: Int

    func run(_ io: KernelIO) {
        let (input, output) = (io.input(0), io.outputs[0])
        let slice = length * inner
        guard slice > 0 else { return }
        io.pool.parallelFor(outer, minimumChunk: Swift.max(1, (1 << 14) / Swift.max(slice, 1))) { range in
            for o in range {
                let (x, y) = (input + o * slice, output + o * slice)
                if inner == 1 {
                    softmaxRow(x, y)
                } else {
                    softmaxColumns(x, y)
                }
            }
        }
    }

    private func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
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

    /// Softmax down each of `inner` columns of a [length, inner] block; the per-column
    /// max and sum are kept in a temporary (stack) buffer of 2·inner floats.
    private func softmaxColumns(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * inner) { buffer in
            let maximum = UnsafeMutableBufferPointer(rebasing: buffer[..<inner])
            let sum = UnsafeMutableBufferPointer(rebasing: buffer[inner...])
            for i in 0..<inner { maximum[i] = x[i]; sum[i] = 0 }
            for k in 1..<length {
                let row = x + k * inner
                for i in 0..<inner { maximum[i] = Swift.max(maximum[i], row[i]) }
            }
            for k in 0..<length {
                let (row, out) = (x + k * inner, y + k * inner)
                for i in 0..<inner {
                    let e = Foundation.exp(row[i] - maximum[i])
                    out[i] = e
                    sum[i] += e
                }
            }
            for i in 0..<inner { sum[i] = 1 / sum[i] }
            for k in 0..<length {
                let out = y + k * inner
                for i in 0..<inner { out[i] *= sum[i] }
            }
        }
    }
}

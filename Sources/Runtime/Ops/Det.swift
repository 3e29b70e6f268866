import Format

/// The determinant of each square matrix in the last two axes of X (ONNX Det):
/// X [..., M, M] → Y [...]. Computed by Gaussian elimination with partial pivoting in
/// Double (the product of the pivots, negated per row swap), so a float32 result keeps
/// its precision even when the pivots cancel a little; a singular matrix gives 0.
/// No backward rule: no network Restore targets differentiates through a determinant.
public struct Det: Operator {
    let name: String

    func matrices(_ shape: [Int]) throws -> (count: Int, size: Int) {
        guard shape.count >= 2, shape[shape.count - 1] == shape[shape.count - 2] else {
            throw OpError.shape(node: name, "det needs X [..., M, M], found \(shape)")
        }
        let size = shape[shape.count - 1]
        return (shape.dropLast(2).reduce(1, *), size)
    }

    /// The determinant of the `size`×`size` row-major matrix at `matrix`.
    static func determinant(_ matrix: UnsafePointer<Float>, size: Int) -> Float {
        var a = (0..<(size * size)).map { Double(matrix[$0]) }
        var product = 1.0
        for column in 0..<size {
            // The row with the largest pivot keeps the elimination stable.
            var pivot = column
            for row in (column + 1)..<size where abs(a[row * size + column]) > abs(a[pivot * size + column]) {
                pivot = row
            }
            if a[pivot * size + column] == 0 { return 0 }
            if pivot != column {
                for k in 0..<size { a.swapAt(pivot * size + k, column * size + k) }
                product = -product
            }
            let diagonal = a[column * size + column]
            product *= diagonal
            for row in (column + 1)..<size {
                let factor = a[row * size + column] / diagonal
                if factor == 0 { continue }
                for k in (column + 1)..<size { a[row * size + k] -= factor * a[column * size + k] }
            }
        }
        return Float(product)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        _ = try matrices(x.shape)
        guard x.dtype == .float32 else { throw OpError.shape(node: name, "det needs float32 X, found \(x.dtype)") }
        return [ValueFact(dtype: .float32, shape: Array(x.shape.dropLast(2)))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let x = try LayoutIndexing.required(inputs, 0, node: name)
        let (count, size) = try matrices(x.shape)
        let values = x.floats
        let y = values.withUnsafeBufferPointer { buffer in
            (0..<count).map { Self.determinant(buffer.baseAddress! + $0 * size * size, size: size) }
        }
        return [HostTensor(shape: Array(x.shape.dropLast(2)), floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (count, size) = try matrices(x.shape)
        return DeterminantKernel(count: count, size: size)
    }
}

/// One determinant per matrix, matrices spread over the threads.
struct DeterminantKernel: Kernel {
    let count: Int
    let size: Int

    func run(_ io: KernelIO) {
        let (x, y) = (io.input(0), io.outputs[0])
        let size = size
        io.pool.parallelFor(count, minimumChunk: max(1, 4096 / max(size * size * size, 1))) { matrices in
            for matrix in matrices { y[matrix] = Det.determinant(x + matrix * size * size, size: size) }
        }
    }
}

import Format

/// `matMul` with NumPy semantics: A [..., M, K] · B [..., K, N] → [..., M, N], batch axes
/// broadcast; a 1-D A is a [1, K] row and a 1-D B a [K, 1] column, the added axis
/// removed from the result.
public struct MatrixMultiply: Operator {
    let name: String

    /// The problem the shapes describe: batch shape, matrix sizes and output shape.
    struct Geometry {
        var batch: [Int]
        var aBatch: [Int]
        var bBatch: [Int]
        var m: Int, k: Int, n: Int
        var output: [Int]
    }

    func geometry(_ a: [Int], _ b: [Int]) throws -> Geometry {
        guard !a.isEmpty, !b.isEmpty else {
            throw OpError.shape(node: name, "matMul of a scalar (shapes \(a) and \(b))")
        }
        let a2 = a.count == 1 ? [1] + a : a
        let b2 = b.count == 1 ? b + [1] : b
        let (m, k, bk, n) = (a2[a2.count - 2], a2[a2.count - 1], b2[b2.count - 2], b2[b2.count - 1])
        guard k == bk else {
            throw OpError.shape(node: name, "inner dimensions differ: A \(a) has \(k) columns, B \(b) has \(bk) rows")
        }
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let batch = try ShapeRules.broadcast(aBatch, bBatch, node: name)
        var output = batch
        if a.count > 1 { output.append(m) }
        if b.count > 1 { output.append(n) }
        return Geometry(batch: batch, aBatch: aBatch, bBatch: bBatch, m: m, k: k, n: n, output: output)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let a = try ShapeRules.required(inputs, 0, node: name)
        let b = try ShapeRules.required(inputs, 1, node: name)
        guard a.dtype.isFloatingPoint && b.dtype.isFloatingPoint else {
            throw OpError.unsupported(node: name, "matMul of \(a.dtype) and \(b.dtype)")
        }
        return [ValueFact(dtype: .float32, shape: try geometry(a.shape, b.shape).output)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let a = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        guard inputs.count > 1, let b = inputs[1] else { throw GraphError.missingInput(node: name, index: 1) }
        guard a.isFloat && b.isFloat else { throw OpError.unsupported(node: name, "matMul of \(a.dtype) and \(b.dtype)") }
        let g = try geometry(a.shape, b.shape)
        let (x, y) = (a.floats, b.floats)
        let aMatrices = ShapeRules.broadcastSourceIndices(g.aBatch, to: g.batch)
        let bMatrices = ShapeRules.broadcastSourceIndices(g.bBatch, to: g.batch)
        var result = [Float](repeating: 0, count: g.output.reduce(1, *))
        for batch in aMatrices.indices {
            let (aBase, bBase, cBase) = (aMatrices[batch] * g.m * g.k, bMatrices[batch] * g.k * g.n, batch * g.m * g.n)
            for i in 0..<g.m {
                for j in 0..<g.n {
                    var sum: Double = 0
                    for p in 0..<g.k { sum += Double(x[aBase + i * g.k + p]) * Double(y[bBase + p * g.n + j]) }
                    result[cBase + i * g.n + j] = Float(sum)
                }
            }
        }
        return [HostTensor(shape: g.output, floats: result)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let a = try ShapeRules.required(inputs, 0, node: name)
        let b = try ShapeRules.required(inputs, 1, node: name)
        let g = try geometry(a.shape, b.shape)
        let aMatrices = ShapeRules.broadcastSourceIndices(g.aBatch, to: g.batch)
        let bMatrices = ShapeRules.broadcastSourceIndices(g.bBatch, to: g.batch)
        // One B for every batch, and A's matrices stored back to back: the batch is one
        // tall product of (batch·M) rows, which GEMM runs far better than many small ones.
        if bMatrices.allSatisfy({ $0 == 0 }) && aMatrices.elementsAreIota {
            return MatrixMultiplyKernel(m: aMatrices.count * g.m, k: g.k, n: g.n, aOffsets: [0], bOffsets: [0])
        }
        return MatrixMultiplyKernel(m: g.m, k: g.k, n: g.n,
                                    aOffsets: aMatrices.map { $0 * g.m * g.k }, bOffsets: bMatrices.map { $0 * g.k * g.n })
    }
}

private extension Array where Element == Int {
    /// Whether the elements are 0, 1, 2, … in order.
    var elementsAreIota: Bool { enumerated().allSatisfy { $0.offset == $0.element } }
}

/// The float kernel of `matMul`: one GEMM per batch matrix, with each matrix cut into
/// blocks when there are fewer matrices than threads, so every thread has work: blocks of
/// rows, or of columns when there are fewer rows than columns. B is packed per call, and
/// each block packs the part of B it reads: cut by rows, every block packs all of B (for
/// Mask2Former's mask products, 100 queries × a 256×4480 B, as much work as the product);
/// cut by columns, each packs its own columns.
struct MatrixMultiplyKernel: Kernel {
    let m: Int, k: Int, n: Int
    /// Element offsets of each batch's A and B matrix.
    let aOffsets: [Int]
    let bOffsets: [Int]
    /// Products smaller than this many multiply-adds run on one thread: waking a second
    /// one costs several microseconds.
    static let minimumParallelWork = 1 << 18

    func run(_ io: KernelIO) {
        let (a, b, c) = (io.input(0), io.input(1), io.outputs[0])
        let batches = aOffsets.count
        let work = batches * m * n * k
        let blocks = work < Self.minimumParallelWork || batches >= io.pool.threads
            ? 1 : (io.pool.threads + batches - 1) / batches
        // Column blocks are whole multiples of 48, the widest kernel panel, so that no
        // block but the last packs zero-padded columns.
        let columnUnits = (n + Self.columnUnit - 1) / Self.columnUnit
        let splitsColumns = blocks > 1 && m < n && columnUnits >= blocks
        let blocksPerMatrix = Swift.min(blocks, splitsColumns ? columnUnits : m)
        let tasks = batches * blocksPerMatrix
        guard k > 0 else {
            // An empty sum: GEMM is not asked to define it.
            c.update(repeating: 0, count: batches * m * n)
            return
        }
        io.pool.parallelFor(tasks, minimumChunk: work < Self.minimumParallelWork ? tasks : 1) { range in
            for task in range {
                let (batch, block) = task.quotientAndRemainder(dividingBy: blocksPerMatrix)
                var rows = 0..<m, columns = 0..<n
                if splitsColumns {
                    columns = Swift.min(n, columnUnits * block / blocksPerMatrix * Self.columnUnit)
                        ..< Swift.min(n, columnUnits * (block + 1) / blocksPerMatrix * Self.columnUnit)
                } else {
                    rows = (m * block / blocksPerMatrix)..<(m * (block + 1) / blocksPerMatrix)
                }
                guard !rows.isEmpty, !columns.isEmpty else { continue }
                GEMM.multiply(m: rows.count, n: columns.count, k: k,
                              a: a + aOffsets[batch] + rows.lowerBound * k, lda: k,
                              b: b + bOffsets[batch] + columns.lowerBound, ldb: Swift.max(n, 1),
                              c: c + (batch * m + rows.lowerBound) * n + columns.lowerBound, ldc: Swift.max(n, 1))
            }
        }
    }

    /// Columns of B a column block holds a multiple of.
    static let columnUnit = 48
}

extension MatrixMultiply: Differentiable {
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let a = try ShapeRules.required(inputs, 0, node: name)
        let b = try ShapeRules.required(inputs, 1, node: name)
        let g = try geometry(a.shape, b.shape)
        return MatrixMultiplyBackward(m: g.m, k: g.k, n: g.n,
                                      aMatrices: ShapeRules.broadcastSourceIndices(g.aBatch, to: g.batch),
                                      bMatrices: ShapeRules.broadcastSourceIndices(g.bBatch, to: g.batch))
    }
}

/// Per batch matrix: ∂A += ∂C·Bᵀ, ∂B += Aᵀ·∂C. A matrix broadcast over batches receives
/// the sum; batches are split over workers only by the matrices they write (the
/// gradients of A, then of B), so no two workers add into one.
struct MatrixMultiplyBackward: BackwardKernel {
    let m: Int, k: Int, n: Int
    /// For each output batch, the index of the A and B matrix it read.
    let aMatrices: [Int], bMatrices: [Int]

    func run(_ io: BackwardIO) {
        let (a, b, gradient) = (io.input(0), io.input(1), io.outputGradient)
        let (m, k, n) = (m, k, n)
        guard m > 0, k > 0, n > 0 else { return }
        for (target, matrices, isA) in [(io.inputGradient(0), aMatrices, true), (io.inputGradient(1), bMatrices, false)] {
            guard let target else { continue }
            let count = (matrices.max() ?? -1) + 1
            io.pool.parallelFor(count) { range in
                for matrix in range {
                    for batch in matrices.indices where matrices[batch] == matrix {
                        let c = gradient + batch * m * n
                        if isA {
                            GEMM.multiply(m: m, n: k, k: n, a: c, lda: n, b: b + bMatrices[batch] * k * n, ldb: n,
                                          transposeB: true, c: target + matrix * m * k, ldc: k, beta: 1)
                        } else {
                            GEMM.multiply(m: k, n: n, k: m, a: a + aMatrices[batch] * m * k, lda: k, transposeA: true,
                                          b: c, ldb: n, c: target + matrix * k * n, ldc: n, beta: 1)
                        }
                    }
                }
            }
        }
    }
}

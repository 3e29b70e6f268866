import Foundation
import Format

/// `attention`: Y [..., Lq, Dv] = softmax(scale · Q·Kᵀ + bias) · V, the softmax over the
/// keys. Q [..., Lq, D], K [..., Lk, D] and V [..., Lk, Dv] share their leading (batch,
/// head) dims; the optional bias (a mask or relative-position bias) broadcasts to the
/// score shape [..., Lq, Lk], typically over batch or heads.
public struct ScaledDotProductAttention: Operator {
    let name: String
    let attributes: AttentionAttributes

    /// Sizes of one attention problem, after checking the inputs agree.
    struct Geometry {
        /// Product of the leading dims: independent (batch, head) problems.
        var batch: Int
        var queries: Int, keys: Int, depth: Int, valueDepth: Int
        /// Problems stored side by side in each token row: the heads when they are
        /// interleaved, else 1 (each problem's rows contiguous).
        var heads = 1
        var scoreShape: [Int]
        var outputShape: [Int]

        /// Offset of the first row of problem `b` in an operand of `rows` rows of `width`
        /// floats per problem: (outer · rows · heads + head) · width.
        func start(_ b: Int, rows: Int, width: Int) -> Int {
            let (outer, head) = b.quotientAndRemainder(dividingBy: heads)
            return (outer * rows * heads + head) * width
        }
    }

    func geometry(query: [Int], key: [Int], value: [Int], bias: [Int]?) throws -> Geometry {
        // With interleaved heads the head axis sits after the token axis: move it back in
        // front for the checks, so both layouts share them.
        let interleaved = attributes.headsInterleaved
        func logical(_ shape: [Int]) -> [Int] {
            interleaved && shape.count >= 3 ? shape.dropLast(3) + [shape[shape.count - 2], shape[shape.count - 3], shape[shape.count - 1]] : shape
        }
        let (q, k, v) = (logical(query), logical(key), logical(value))
        let rank = query.count
        guard rank >= (interleaved ? 3 : 2), key.count == rank, value.count == rank else {
            throw OpError.shape(node: name, "Q \(query), K \(key) and V \(value) should have one rank ≥ \(interleaved ? 3 : 2)")
        }
        let leading = Array(q.dropLast(2))
        guard Array(k.dropLast(2)) == leading, Array(v.dropLast(2)) == leading,
              k[rank - 1] == q[rank - 1], v[rank - 2] == k[rank - 2] else {
            throw OpError.shape(node: name, interleaved
                ? "Q \(query), K \(key) and V \(value) should be [..., Lq, H, D], [..., Lk, H, D], [..., Lk, H, Dv]"
                : "Q \(query), K \(key) and V \(value) should be [..., Lq, D], [..., Lk, D], [..., Lk, Dv]")
        }
        guard k[rank - 2] > 0 else { throw OpError.shape(node: name, "attention over no keys (K \(key))") }
        let scoreShape = leading + [q[rank - 2], k[rank - 2]]
        if let bias {
            guard bias.count <= rank, try ShapeRules.broadcast(bias, scoreShape, node: name) == scoreShape else {
                throw OpError.shape(node: name, "bias \(bias) does not broadcast to the scores \(scoreShape)")
            }
        }
        let output = leading + [q[rank - 2], v[rank - 1]]
        return Geometry(batch: leading.reduce(1, *), queries: q[rank - 2], keys: k[rank - 2],
                        depth: q[rank - 1], valueDepth: v[rank - 1], heads: interleaved ? leading[leading.count - 1] : 1,
                        scoreShape: scoreShape, outputShape: interleaved ? logical(output) : output)
    }

    private func input<T>(_ inputs: [T?], _ index: Int) -> T? {
        index < inputs.count ? inputs[index] : nil
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let facts = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name) } + [input(inputs, 3)].compactMap { $0 }
        guard facts.allSatisfy({ $0.dtype.isFloatingPoint }) else {
            throw OpError.unsupported(node: name, "attention of integer tensors")
        }
        let shape = try geometry(query: facts[0].shape, key: facts[1].shape, value: facts[2].shape,
                                 bias: input(inputs, 3)?.shape).outputShape
        return [ValueFact(dtype: .float32, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let tensors = try (0..<3).map { index -> HostTensor in
            guard let tensor = input(inputs, index) else { throw GraphError.missingInput(node: name, index: index) }
            return tensor
        }
        let bias = input(inputs, 3)
        let g = try geometry(query: tensors[0].shape, key: tensors[1].shape, value: tensors[2].shape, bias: bias?.shape)
        let (q, k, v) = (tensors[0].floats, tensors[1].floats, tensors[2].floats)
        let layout = bias.map { BiasLayout(shape: $0.shape, scores: g.scoreShape) }
        let biasValues = bias?.floats
        var result = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
        for b in 0..<g.batch {
            for i in 0..<g.queries {
                var scores = (0..<g.keys).map { j -> Double in
                    var dot = 0.0
                    for p in 0..<g.depth {
                        dot += Double(q[g.start(b, rows: g.queries, width: g.depth) + i * g.heads * g.depth + p])
                            * Double(k[g.start(b, rows: g.keys, width: g.depth) + j * g.heads * g.depth + p])
                    }
                    let shift = layout.map { Double(biasValues?[$0.offset(batch: b, row: i, column: j)] ?? 0) } ?? 0
                    return Double(attributes.scale) * dot + shift
                }
                let maximum = scores.max() ?? 0
                scores = scores.map { Foundation.exp($0 - maximum) }
                let sum = scores.reduce(0, +)
                let valueStart = g.start(b, rows: g.keys, width: g.valueDepth)
                for c in 0..<g.valueDepth {
                    var total = 0.0
                    for j in 0..<g.keys { total += scores[j] * Double(v[valueStart + j * g.heads * g.valueDepth + c]) }
                    result[g.start(b, rows: g.queries, width: g.valueDepth) + i * g.heads * g.valueDepth + c] = Float(total / sum)
                }
            }
        }
        return [HostTensor(shape: g.outputShape, floats: result)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let facts = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name) }
        let bias = input(inputs, 3)
        let g = try geometry(query: facts[0].shape, key: facts[1].shape, value: facts[2].shape, bias: bias?.shape)
        return AttentionKernel(geometry: g, scale: attributes.scale, bias: bias.map { BiasLayout(shape: $0.shape, scores: g.scoreShape) })
    }
}

/// Where the bias element added to score (batch, row, column) lives: broadcast axes
/// have stride 0, so one bias shared by all heads is read in place, never expanded.
struct BiasLayout {
    /// Offset of each flattened leading (batch, head) index.
    let batchOffsets: [Int]
    let rowStride: Int
    let columnStride: Int

    init(shape: [Int], scores: [Int]) {
        let strides = ShapeRules.broadcastStrides(shape, to: scores)
        let rank = scores.count
        var offsets = [0]
        for axis in 0..<(rank - 2) {
            offsets = offsets.flatMap { base in (0..<scores[axis]).map { base + $0 * strides[axis] } }
        }
        batchOffsets = offsets
        rowStride = strides[rank - 2]
        columnStride = strides[rank - 1]
    }

    func offset(batch: Int, row: Int, column: Int) -> Int {
        batchOffsets[batch] + row * rowStride + column * columnStride
    }
}

/// The float kernel of `attention`. Work is cut into blocks of query rows of one (batch,
/// head) problem; for each block one GEMM makes its scores, the bias is added and the
/// rows are normalised in place, and a second GEMM multiplies them by V into the output.
/// Only one block of scores per worker exists at a time, so memory stays bounded by the
/// block size however long the sequence (the full score matrix is Lq·Lk per head).
///
/// On the AVX2 and AVX-512 paths a worker packs a problem's K (as Bᵀ) and V into GEMM
/// panels once and multiplies every block of that problem's rows it takes against them:
/// the unpacked products repacked both for each block of 64 rows, which cost a third of the
/// Q·Kᵀ product's time on ViT shapes (64×197×64: 56 → 74 GFLOP/s packed once, one AVX2
/// thread). The scale then multiplies the packed K once per problem (Lk·D products, not
/// Lq·Lk: the separate pass over every block of scores was 0.5 % of the ViT restorer's
/// time), and not at all when it is 1 (SAGAN/BigGAN attention). Scaling by a power of two
/// is exact (transformers' ViT: 1/8), so the scores are the floats the unpacked kernel's
/// alpha gives; another scale (nn.MultiheadAttention's export: √(1/8)² = 0.12499999)
/// rounds s·k once per element, at most ½ ulp of each term of the dot product, within the
/// product's own rounding bound.
struct AttentionKernel: Kernel {
    let geometry: ScaledDotProductAttention.Geometry
    let scale: Float
    let bias: BiasLayout?
    /// Scratch holds this many workers' blocks; the thread pool spreads the workers over
    /// its threads (8 covers the pool sizes Restore runs with).
    static let workers = 8
    /// The GEMM kernels' CPU path (tests run every one the CPU supports).
    var cpu: CPULevel = CPUFeatures.level
    /// Whether K and V are packed once per problem: on the AVX2 and AVX-512 paths.
    var packsKeysAndValues: Bool { GEMM.packs(cpu: cpu) }

    /// Query rows per block: up to 64 rows (the unpacked GEMM amortises packing K over them), fewer
    /// for long key sequences so a block of scores stays within ~128 KB (L2) between the
    /// two GEMMs that write and read it.
    var rowsPerBlock: Int {
        Swift.max(1, Swift.min(geometry.queries, 64, (1 << 15) / geometry.keys))
    }

    /// Floats of one worker's scratch, each part a whole number of 64-byte lines: the
    /// block of scores, then (when packing) K and V in GEMM panels.
    private var scoreFloats: Int { (rowsPerBlock * geometry.keys + 15) / 16 * 16 }
    private var packedKeyFloats: Int {
        packsKeysAndValues ? (GEMM.packedCount(k: geometry.depth, n: geometry.keys, cpu: cpu) + 15) / 16 * 16 : 0
    }
    private var packedValueFloats: Int {
        packsKeysAndValues ? (GEMM.packedCount(k: geometry.keys, n: geometry.valueDepth, cpu: cpu) + 15) / 16 * 16 : 0
    }
    private var workerFloats: Int { scoreFloats + packedKeyFloats + packedValueFloats }

    var scratchBytes: Int { Self.workers * workerFloats * MemoryLayout<Float>.stride }

    func run(_ io: KernelIO) {
        let g = geometry
        guard g.batch * g.queries * g.valueDepth > 0, let scratch = io.scratch else { return }
        let workerFloats = workerFloats
        let floats = scratch.bindMemory(to: Float.self, capacity: Self.workers * workerFloats)
        let blocks = (g.queries + rowsPerBlock - 1) / rowsPerBlock
        let tasks = g.batch * blocks
        // One worker per thread, each with consecutive tasks, so that a worker meets each
        // problem's blocks one after another and packs its K and V once.
        let workers = Swift.min(Self.workers, io.pool.threads, tasks)
        // Small problems stay on one thread: waking threads costs more than ~64K multiply-adds.
        let work = g.batch * g.queries * g.keys * (g.depth + g.valueDepth)
        io.pool.parallelFor(workers, minimumChunk: work < (1 << 16) ? workers : 1) { range in
            for worker in range {
                let memory = floats + worker * workerFloats
                var packedProblem = -1
                for task in (tasks * worker / workers)..<(tasks * (worker + 1) / workers) {
                    let (b, rowBlock) = task.quotientAndRemainder(dividingBy: blocks)
                    if packsKeysAndValues && b != packedProblem {
                        pack(batch: b, io: io, into: memory + scoreFloats)
                        packedProblem = b
                    }
                    compute(batch: b, rows: rowBlock * rowsPerBlock..<Swift.min(g.queries, (rowBlock + 1) * rowsPerBlock),
                            io: io, scores: memory, packed: packsKeysAndValues ? memory + scoreFloats : nil)
                }
            }
        }
    }

    /// Packs problem `b`'s K as Bᵀ [depth × keys], times the scale, and V [keys ×
    /// valueDepth] into GEMM panels: K first, then V after `packedKeyFloats`.
    @inline(never)
    private func pack(batch b: Int, io: KernelIO, into packed: UnsafeMutablePointer<Float>) {
        let g = geometry
        if g.depth > 0 {
            GEMM.pack(k: g.depth, n: g.keys, b: io.input(1) + g.start(b, rows: g.keys, width: g.depth),
                      ldb: g.heads * g.depth, transposed: true, into: packed, cpu: cpu)
            if scale != 1 {
                for index in 0..<GEMM.packedCount(k: g.depth, n: g.keys, cpu: cpu) { packed[index] *= scale }
            }
        }
        GEMM.pack(k: g.keys, n: g.valueDepth, b: io.input(2) + g.start(b, rows: g.keys, width: g.valueDepth),
                  ldb: g.heads * g.valueDepth, transposed: false, into: packed + packedKeyFloats, cpu: cpu)
    }

    /// One block of query rows of one (batch, head) problem, against K and V packed by
    /// `pack` when `packed` is given, else read in place. Out of line so both paths of
    /// `parallelFor` run the same compiled loops (see `BinaryKernel.compute`).
    @inline(never)
    private func compute(batch b: Int, rows: Range<Int>, io: KernelIO, scores: UnsafeMutablePointer<Float>,
                         packed: UnsafeMutablePointer<Float>?) {
        let g = geometry
        let (queryStride, valueStride) = (g.heads * g.depth, g.heads * g.valueDepth)
        let query = io.input(0) + g.start(b, rows: g.queries, width: g.depth) + rows.lowerBound * queryStride
        let key = io.input(1) + g.start(b, rows: g.keys, width: g.depth)
        let value = io.input(2) + g.start(b, rows: g.keys, width: g.valueDepth)
        let output = io.outputs[0] + g.start(b, rows: g.queries, width: g.valueDepth) + rows.lowerBound * valueStride
        if g.depth == 0 {
            scores.update(repeating: 0, count: rows.count * g.keys)
        } else if let packed {
            GEMM.multiply(m: rows.count, n: g.keys, k: g.depth, a: query, lda: queryStride,
                          packedB: packed, c: scores, ldc: g.keys, cpu: cpu)
        } else {
            GEMM.multiply(m: rows.count, n: g.keys, k: g.depth, a: query, lda: queryStride,
                          b: key, ldb: queryStride, transposeB: true, c: scores, ldc: g.keys, alpha: scale, cpu: cpu)
        }
        for (r, i) in rows.enumerated() {
            let row = scores + r * g.keys
            if let bias, let values = io.inputs[3] {
                let source = values + bias.offset(batch: b, row: i, column: 0)
                for j in 0..<g.keys { row[j] += source[j * bias.columnStride] }
            }
            SoftmaxKernel.softmaxRow(row, row, length: g.keys)
        }
        if let packed {
            GEMM.multiply(m: rows.count, n: g.valueDepth, k: g.keys, a: scores, lda: g.keys,
                          packedB: packed + packedKeyFloats, c: output, ldc: valueStride, cpu: cpu)
        } else {
            GEMM.multiply(m: rows.count, n: g.valueDepth, k: g.keys, a: scores, lda: g.keys,
                          b: value, ldb: valueStride, c: output, ldc: valueStride, cpu: cpu)
        }
    }
}

extension ScaledDotProductAttention: Differentiable {
    /// Reads Q, K, V and the bias: the attention weights are recomputed, not kept (they
    /// are Lq × Lk per head, the largest value of a transformer block).
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1, 2, 3]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let facts = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name) }
        let bias = input(inputs, 3)
        let g = try geometry(query: facts[0].shape, key: facts[1].shape, value: facts[2].shape, bias: bias?.shape)
        return AttentionBackward(geometry: g, scale: attributes.scale,
                                 bias: bias.map { BiasLayout(shape: $0.shape, scores: g.scoreShape) })
    }
}

/// Attention's backward rule per (batch, head) problem, with P = softmax(S),
/// S = scale·Q·Kᵀ + bias recomputed in scratch:
///   ∂V += Pᵀ·∂Y,  ∂P = ∂Y·Vᵀ,  ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)),
///   ∂Q += scale·∂S·K,  ∂K += scale·∂Sᵀ·Q,  ∂bias += ∂S (summed where it was broadcast).
/// Problems are spread over workers, each with its own P and ∂P in scratch. When the
/// bias's gradient is wanted and one bias element serves several problems (a bias
/// broadcast over batches or heads), the problems run on one worker so that no two add
/// into the same element at once.
struct AttentionBackward: BackwardKernel {
    let geometry: ScaledDotProductAttention.Geometry
    let scale: Float
    let bias: BiasLayout?
    /// Runs the problems one after another when a shared bias element receives gradients.
    private let serialPool = ThreadPool(threads: 1)

    init(geometry: ScaledDotProductAttention.Geometry, scale: Float, bias: BiasLayout?) {
        self.geometry = geometry
        self.scale = scale
        self.bias = bias
    }

    private var problemBytes: Int { (2 * geometry.queries * geometry.keys * MemoryLayout<Float>.size + 63) / 64 * 64 }
    var scratchBytes: Int { ScratchSlots.slotCount * problemBytes }

    /// Whether two problems read the same bias element (its gradient would be added twice at once).
    private var biasShared: Bool {
        guard let bias else { return false }
        return Set(bias.batchOffsets).count < bias.batchOffsets.count
    }

    func run(_ io: BackwardIO) {
        guard let scratch = io.scratch else { preconditionFailure("attention backward ran without scratch") }
        let g = geometry
        let (q, k, v, dy) = (io.input(0), io.input(1), io.input(2), io.outputGradient)
        let biasValues = bias == nil ? nil : io.inputs[3]
        let (dq, dk, dv) = (io.inputGradient(0), io.inputGradient(1), io.inputGradient(2))
        let dBias = bias == nil ? nil : io.inputGradient(3)
        let pool = dBias != nil && biasShared ? serialPool : io.pool
        let (lq, lk, d, dvDepth) = (g.queries, g.keys, g.depth, g.valueDepth)
        ScratchSlots.run(items: g.batch, pool: pool) { slot, b in
            let p = (scratch + slot * problemBytes).assumingMemoryBound(to: Float.self)
            let (qStart, kStart) = (g.start(b, rows: lq, width: d), g.start(b, rows: lk, width: d))
            let (vStart, yStart) = (g.start(b, rows: lk, width: dvDepth), g.start(b, rows: lq, width: dvDepth))
            Self.problem(q: q + qStart, k: k + kStart, v: v + vStart, dy: dy + yStart,
                         queries: lq, keys: lk, depth: d, valueDepth: dvDepth, heads: g.heads, scale: scale,
                         bias: bias.map { ($0, b) }, biasValues: biasValues, dBias: dBias, scratch: p,
                         dq: dq.map { $0 + qStart }, dk: dk.map { $0 + kStart }, dv: dv.map { $0 + vStart })
        }
    }

    /// One (batch, head) problem on row-major Q [lq, d], K [lk, d], V and ∂Y [·, valueDepth],
    /// whose rows are `heads` problems apart (1: contiguous; more for interleaved heads);
    /// gradients are added into ∂Q, ∂K, ∂V (same layouts) and, at the bias elements of
    /// batch index `bias.batch`, into ∂bias. `scratch` holds 2·lq·lk floats (contiguous).
    /// Shared with `windowAttention`, whose windows are such problems once gathered.
    static func problem(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                        queries lq: Int, keys lk: Int, depth d: Int, valueDepth dvDepth: Int, heads: Int = 1, scale: Float,
                        bias: (layout: BiasLayout, batch: Int)?, biasValues: UnsafePointer<Float>?,
                        dBias: UnsafeMutablePointer<Float>?, scratch p: UnsafeMutablePointer<Float>,
                        dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?) {
        let dp = p + lq * lk
        let (ld, ldv) = (heads * d, heads * dvDepth)
        GEMM.multiply(m: lq, n: lk, k: d, a: q, lda: ld, b: k, ldb: ld, transposeB: true, c: p, ldc: lk, alpha: scale)
        for i in 0..<lq {
            let row = p + i * lk
            if let bias, let biasValues {
                for j in 0..<lk { row[j] += biasValues[bias.layout.offset(batch: bias.batch, row: i, column: j)] }
            }
            var maximum = -Float.infinity
            for j in 0..<lk { maximum = Swift.max(maximum, row[j]) }
            var sum: Float = 0
            for j in 0..<lk {
                row[j] = Foundation.exp(row[j] - maximum)
                sum += row[j]
            }
            for j in 0..<lk { row[j] /= sum }
        }
        if let dv {
            GEMM.multiply(m: lk, n: dvDepth, k: lq, a: p, lda: lk, transposeA: true, b: dy, ldb: ldv,
                          c: dv, ldc: ldv, beta: 1)
        }
        guard dq != nil || dk != nil || dBias != nil else { return }
        GEMM.multiply(m: lq, n: lk, k: dvDepth, a: dy, lda: ldv, b: v, ldb: ldv, transposeB: true, c: dp, ldc: lk)
        for i in 0..<lq {
            let (row, gradient) = (p + i * lk, dp + i * lk)
            var dot: Float = 0
            for j in 0..<lk { dot += gradient[j] * row[j] }
            for j in 0..<lk { gradient[j] = row[j] * (gradient[j] - dot) }
            if let bias, let dBias {
                for j in 0..<lk { dBias[bias.layout.offset(batch: bias.batch, row: i, column: j)] += gradient[j] }
            }
        }
        if let dq {
            GEMM.multiply(m: lq, n: d, k: lk, a: dp, lda: lk, b: k, ldb: ld, c: dq, ldc: ld, alpha: scale, beta: 1)
        }
        if let dk {
            GEMM.multiply(m: lk, n: d, k: lq, a: dp, lda: lk, transposeA: true, b: q, ldb: ld, c: dk, ldc: ld,
                          alpha: scale, beta: 1)
        }
    }
}

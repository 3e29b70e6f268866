import Format

/// `linear`: Y [..., N] = act(X [..., K] · Wᵀ + B), W [N, K], B [N] optional, with the
/// node's fused `activation`.
public struct Linear: Operator {
    let name: String
    let attributes: LinearAttributes

    /// The output shape, after checking X, W and B agree.
    private func outputShape(x: [Int], weight: [Int], bias: [Int]?) throws -> [Int] {
        guard let k = x.last else { throw OpError.shape(node: name, "linear of a scalar") }
        guard weight.count == 2, weight[1] == k else {
            throw OpError.shape(node: name, "weight \(weight) should be [N, \(k)] for input \(x)")
        }
        if let bias, bias != [weight[0]] {
            throw OpError.shape(node: name, "bias \(bias) should be [\(weight[0])]")
        }
        return x.dropLast() + [weight[0]]
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let weight = try ShapeRules.required(inputs, 1, node: name)
        let bias = inputs.count > 2 ? inputs[2] : nil
        guard [x, weight, bias].compactMap({ $0 }).allSatisfy({ $0.dtype.isFloatingPoint }) else {
            throw OpError.unsupported(node: name, "linear of integer tensors")
        }
        return [ValueFact(dtype: .float32, shape: try outputShape(x: x.shape, weight: weight.shape, bias: bias?.shape))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let x = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        guard inputs.count > 1, let weight = inputs[1] else { throw GraphError.missingInput(node: name, index: 1) }
        let bias = inputs.count > 2 ? inputs[2] : nil
        let shape = try outputShape(x: x.shape, weight: weight.shape, bias: bias?.shape)
        let (n, k) = (weight.shape[0], weight.shape[1])
        let (xs, ws, bs) = (x.floats, weight.floats, bias?.floats)
        let rows = shape.reduce(1, *) / Swift.max(n, 1)
        var result = [Float](repeating: 0, count: rows * n)
        for row in 0..<rows {
            for j in 0..<n {
                var sum = Double(bs?[j] ?? 0)
                for p in 0..<k { sum += Double(xs[row * k + p]) * Double(ws[j * k + p]) }
                result[row * n + j] = attributes.activation.apply(Float(sum))
            }
        }
        return [HostTensor(shape: shape, floats: result)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        try kernel(inputs: inputs, outputs: outputs, constants: .none)
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact], constants: ConstantInputs) throws -> any Kernel {
        let weight = try ShapeRules.required(inputs, 1, node: name)
        let (n, k) = (weight.shape[0], weight.shape[1])
        let hasBias = inputs.count > 2 && inputs[2] != nil
        // An int8 weight (convert --weights int8) runs the int8 GEMM on every CPU path.
        if let int8Weight = constants.int8Weights(1) {
            return LinearKernel(rows: outputs[0].count / Swift.max(n, 1), n: n, k: k, hasBias: hasBias,
                                activation: attributes.activation, int8Weight: int8Weight)
        }
        // GEMM's AVX-512 and AVX2 kernels take B = Wᵀ packed in 48- or 16-column panels; a
        // constant W is packed once per model, unless padding its N columns to whole panels
        // would more than double it (a hostile [1, 10⁸] weight would take 48×). Otherwise
        // GEMM reads W transposed in place (OpenBLAS on the generic path).
        let packedCount = GEMM.packedCount(k: k, n: n)
        let packedWeight = GEMM.packs() && packedCount <= 2 * n * k
            ? constants.prepared(1, as: GEMM.packedLayout, count: packedCount) { w, packed in
                GEMM.pack(k: k, n: n, b: w, ldb: k, transposed: true, into: packed)
            }
            : nil
        return LinearKernel(rows: outputs[0].count / Swift.max(n, 1), n: n, k: k,
                            hasBias: hasBias, activation: attributes.activation, packedWeight: packedWeight)
    }
}

/// The float kernel of `linear`: all leading axes are one tall GEMM of `rows` rows,
/// split across threads. With packed weights and an activation the packed product
/// computes (identity, ReLU, GELU), the bias and activation are its epilogue, applied to
/// each tile in registers; otherwise each thread works in blocks of rows and adds the bias
/// and applies the activation to a block right after GEMM wrote it, while it is in cache.
struct LinearKernel: Kernel {
    let rows: Int, n: Int, k: Int
    let hasBias: Bool
    let activation: Activation
    /// Wᵀ packed for GEMM's AVX-512 or AVX2 kernel once per model from a constant W; nil to read
    /// W [N, K] transposed.
    var packedWeight: PreparedWeights? = nil
    /// An int8 W packed for `Int8GEMM`: X is quantised per row (per token) into scratch,
    /// block by block, and W's f32 input is not read.
    var int8Weight: Int8Weights? = nil
    /// Rows of Y per block: about 256 KB of output, which stays in L2 until the bias
    /// and activation pass, yet at least 256 rows: OpenBLAS runs short blocks well below
    /// its speed (ViT-S/16's 197 tokens cut into 42-row blocks for its 1536-wide MLP took
    /// 125 ms instead of 113 ms single-threaded), and the bias pass costs little from L3.
    var rowsPerBlock: Int { Swift.max(256, (1 << 16) / Swift.max(n, 1)) }
    /// Products smaller than this many multiply-adds run on one thread.
    static let minimumParallelWork = 1 << 18

    /// Rows per int8 block: `rowsPerBlock`, or fewer so that every worker gets a block.
    private var int8BlockRows: Int {
        Swift.max(8, Swift.min(rowsPerBlock, (rows + ScratchSlots.slotCount - 1) / ScratchSlots.slotCount))
    }

    /// One block's quantised rows and their scales, 64-byte aligned.
    private var int8SlotBytes: Int { (int8BlockRows * (Int8GEMM.rowBytes(k: k) + 4) + 63) / 64 * 64 }

    var scratchBytes: Int { int8Weight == nil ? 0 : ScratchSlots.slotCount * int8SlotBytes }

    /// W is not read when it was packed (or quantised) once per model: its bytes in the file
    /// are then never touched, nor verified (`Planner`).
    func reads(input index: Int) -> Bool { index != 1 || (int8Weight == nil && packedWeight == nil) }

    func run(_ io: KernelIO) {
        let bias = hasBias ? io.input(2) : nil
        if let int8Weight {
            runInt8(io, int8Weight, bias)
            return
        }
        let (x, weight, y) = (io.input(0), io.inputs[1], io.outputs[0])
        if let packedWeight, let width = columnSplitPanelWidth(threads: io.pool.threads) {
            let panels = (n + width - 1) / width
            io.pool.parallelFor(panels) { range in
                let first = range.lowerBound * width, end = Swift.min(n, range.upperBound * width)
                GEMM.multiply(m: rows, n: end - first, k: k, a: x, lda: k, packedB: packedWeight.pointer + first * k,
                              bias: bias.map { $0 + first }, activation: activation, c: y + first, ldc: n)
            }
            return
        }
        let minimumRows = Swift.max(1, Self.minimumParallelWork / Swift.max(n * k, 1))
        io.pool.parallelFor(rows, minimumChunk: minimumRows) { range in
            compute(range, x, weight, bias, y)
        }
    }

    /// The panel width when threads should split the output's columns rather than its
    /// rows, else nil. Split by rows, every thread streams all of the packed W and a share
    /// of X; split by columns, a share of W and all of X. A transformer's token count is
    /// about its width (ViT-S/16: 197 tokens, 384–1536 columns), so for its linear layers
    /// the column split reads W once instead of once per thread, and cuts whole panels
    /// instead of row tiles that end half-empty (98 rows are 13 tiles of 8, 104 rows of work).
    /// Only for the packed product whose epilogue adds the bias and activation per tile, and
    /// only when every thread gets at least two panels.
    func columnSplitPanelWidth(threads: Int) -> Int? {
        guard threads > 1, k > 0, rows <= n, rows * n * k >= Self.minimumParallelWork,
              GEMM.epilogue(for: activation) != nil, GEMM.packs(),
              case .gemmPanels(let width, _) = GEMM.packedLayout,
              (n + width - 1) / width >= 2 * threads else { return nil }
        return width
    }

    private func runInt8(_ io: KernelIO, _ weight: Int8Weights, _ bias: UnsafePointer<Float>?) {
        let (x, y) = (io.input(0), io.outputs[0])
        guard let scratch = io.scratch else { preconditionFailure("int8 linear kernel ran without scratch") }
        let blockRows = int8BlockRows, rowBytes = Int8GEMM.rowBytes(k: k)
        ScratchSlots.run(items: (rows + blockRows - 1) / blockRows, pool: io.pool) { slot, block in
            let start = block * blockRows, count = Swift.min(blockRows, rows - start)
            let q = (scratch + slot * int8SlotBytes).assumingMemoryBound(to: Int8.self)
            let scales = (scratch + slot * int8SlotBytes + blockRows * rowBytes).assumingMemoryBound(to: Float.self)
            Int8GEMM.quantizeRows(m: count, k: k, x: x + start * k, ldx: k, into: q, scales: scales)
            let out = y + start * n
            Int8GEMM.multiply(m: count, n: n, k: k, a: q, aScales: scales, packedB: weight.packed,
                              bScales: weight.scales, c: out, ldc: n)
            for row in 0..<count {
                let values = out + row * n
                if let bias { for j in 0..<n { values[j] += bias[j] } }
                activation.apply(values, count: n)
            }
        }
    }

    /// One thread's rows, block by block. Out of line so both paths of `parallelFor`
    /// run the same compiled loops (see `BinaryKernel.compute`).
    @inline(never)
    private func compute(_ rows: Range<Int>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?,
                         _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>) {
        let fusesEpilogue = k > 0 && packedWeight != nil && GEMM.epilogue(for: activation) != nil
        var start = rows.lowerBound
        while start < rows.upperBound {
            let count = Swift.min(rowsPerBlock, rows.upperBound - start)
            let block = y + start * n
            if k > 0, let packedWeight {
                GEMM.multiply(m: count, n: n, k: k, a: x + start * k, lda: k, packedB: packedWeight.pointer,
                              bias: fusesEpilogue ? bias : nil, activation: fusesEpilogue ? activation : .identity,
                              c: block, ldc: Swift.max(n, 1))
            } else if k > 0 {
                guard let weight else { preconditionFailure("linear kernel ran without W or its packed form") }
                GEMM.multiply(m: count, n: n, k: k, a: x + start * k, lda: k,
                              b: weight, ldb: k, transposeB: true, c: block, ldc: Swift.max(n, 1))
            } else {
                block.update(repeating: 0, count: count * n)
            }
            if !fusesEpilogue {
                for row in 0..<count {
                    let values = block + row * n
                    if let bias { for j in 0..<n { values[j] += bias[j] } }
                    activation.apply(values, count: n)
                }
            }
            start += count
        }
    }
}

extension Linear: Differentiable {
    /// Reads X, W and B (to recompute the pre-activation), or the output when the
    /// activation's derivative follows from it.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues {
        let activation = attributes.activation
        return activation.function != .identity && activation.isDifferentiableFromOutput
            ? SavedValues(inputs: [0, 1], outputs: [0]) : SavedValues(inputs: [0, 1, 2])
    }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let weight = try ShapeRules.required(inputs, 1, node: name)
        let (n, k) = (weight.shape[0], weight.shape[1])
        return LinearBackward(rows: n == 0 ? 0 : outputs[0].count / n, n: n, k: k,
                              hasBias: inputs.count > 2 && inputs[2] != nil, activation: attributes.activation)
    }
}

/// Linear's backward rule: G = ∂L/∂y · act′ (in scratch unless the activation is the
/// identity; the pre-activation is recomputed when act′ needs it), then three products
/// ∂L/∂X += G·W, ∂L/∂W += Gᵀ·X, ∂L/∂B += column sums of G, each split over workers by
/// the rows it writes.
struct LinearBackward: BackwardKernel {
    let rows: Int, n: Int, k: Int
    let hasBias: Bool
    let activation: Activation

    var scratchBytes: Int { activation.function == .identity ? 0 : rows * n * MemoryLayout<Float>.size }

    func run(_ io: BackwardIO) {
        let (x, weight) = (io.input(0), io.input(1))
        let (rows, n, k) = (rows, n, k)
        let g: UnsafePointer<Float>
        if activation.function == .identity {
            g = io.outputGradient
        } else {
            guard let scratch = io.scratch?.assumingMemoryBound(to: Float.self) else {
                preconditionFailure("linear backward ran without scratch")
            }
            let fromOutput = activation.isDifferentiableFromOutput
            let bias = hasBias ? io.inputs[2] : nil
            let gradient = io.outputGradient
            let y = fromOutput ? io.output(0) : nil
            io.pool.parallelFor(rows, minimumChunk: 64) { range in
                guard !range.isEmpty else { return }
                let block = scratch + range.lowerBound * n
                if let y {
                    activationGradient(block, gradient + range.lowerBound * n, values: y + range.lowerBound * n,
                                       count: range.count * n, fromOutput: true)
                    return
                }
                // The pre-activation X·Wᵀ + B, then the derivative there, in place.
                GEMM.multiply(m: range.count, n: n, k: k, a: x + range.lowerBound * k, lda: k,
                              b: weight, ldb: k, transposeB: true, c: block, ldc: n)
                for row in 0..<range.count {
                    let values = block + row * n, g = gradient + (range.lowerBound + row) * n
                    for j in 0..<n { values[j] = g[j] * activation.derivative(values[j] + (bias?[j] ?? 0)) }
                }
            }
            g = UnsafePointer(scratch)
        }
        if let target = io.inputGradient(0), n > 0 {
            io.pool.parallelFor(rows, minimumChunk: 64) { range in
                guard !range.isEmpty else { return }
                GEMM.multiply(m: range.count, n: k, k: n, a: g + range.lowerBound * n, lda: n,
                              b: weight, ldb: k, c: target + range.lowerBound * k, ldc: k, beta: 1)
            }
        }
        if let target = io.inputGradient(1), rows > 0 {
            io.pool.parallelFor(n, minimumChunk: 8) { range in
                guard !range.isEmpty else { return }
                GEMM.multiply(m: range.count, n: k, k: rows, a: g + range.lowerBound, lda: n, transposeA: true,
                              b: x, ldb: k, c: target + range.lowerBound * k, ldc: k, beta: 1)
            }
        }
        if hasBias, let target = io.inputGradient(2) {
            io.pool.parallelFor(n, minimumChunk: 64) { range in
                for j in range {
                    var sum: Float = 0
                    for row in 0..<rows { sum += g[row * n + j] }
                    target[j] += sum
                }
            }
        }
    }

    private func activationGradient(_ destination: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                                    values: UnsafePointer<Float>, count: Int, fromOutput: Bool) {
        destination.update(from: gradient, count: count)
        activation.backward(destination, values: values, count: count, valuesAreOutputs: fromOutput)
    }
}

import Foundation
import Format

/// `windowAttention`: Swin's (shifted) window multi-head self-attention on a token grid,
/// without materialising the shifted grid or the windows.
///
/// The input holds each token's query, key and value, QKV [B, H, W, 3·C] (channels
/// `q | k | v`, each `heads` × C/heads); H and W are multiples of the window size `ws`.
/// Per Swin: the grid is rolled by −shift on H and W (token (y, x) moves to
/// ((y − shift) mod H, (x − shift) mod W)), cut into ws × ws windows numbered row-major,
/// window g = b·nW + wy·(W/ws) + wx with nW = (H/ws)·(W/ws); inside each window the
/// N = ws² tokens, numbered row-major, attend to each other per head:
/// softmax(scale·q·kᵀ + bias[g, head]) · v. The optional bias broadcasts to
/// [B·nW, heads, N, N] (relative-position bias plus shift mask). Results go back to the
/// tokens they came from: Y [B, H, W, C], the inverse partition and roll.
public struct WindowAttention: Operator {
    let name: String
    let attributes: WindowAttentionAttributes

    /// Sizes of one window-attention problem, after checking the inputs agree.
    struct Geometry {
        var batch: Int, height: Int, width: Int
        /// Channels of the output (one of q, k, v); `depth` = channels / heads.
        var channels: Int, heads: Int, depth: Int
        var windowSize: Int, shift: Int
        var windowsAcross: Int, windowsPerImage: Int
        /// Tokens per window, ws².
        var tokens: Int
        var scoreShape: [Int]
        var outputShape: [Int]

        /// Offset in tokens of window `window`'s token `token` in the [B, H, W] grid: the
        /// roll by −shift read backwards, (y + shift) mod H.
        func gridIndex(window: Int, token: Int) -> Int {
            let (b, w) = window.quotientAndRemainder(dividingBy: windowsPerImage)
            let (wy, wx) = w.quotientAndRemainder(dividingBy: windowsAcross)
            let (iy, ix) = token.quotientAndRemainder(dividingBy: windowSize)
            let y = (wy * windowSize + iy + shift) % height
            let x = (wx * windowSize + ix + shift) % width
            return (b * height + y) * width + x
        }
    }

    func geometry(_ qkv: [Int], bias: [Int]?) throws -> Geometry {
        guard qkv.count == 4 else { throw OpError.shape(node: name, "QKV \(qkv) should be [B, H, W, 3·C]") }
        let (batch, height, width, packed) = (qkv[0], qkv[1], qkv[2], qkv[3])
        let (windowSize, heads) = (attributes.windowSize, attributes.heads)
        guard packed % (3 * heads) == 0 else {
            throw OpError.shape(node: name, "QKV \(qkv): last dim should be 3 × channels with channels a multiple of \(heads) heads")
        }
        guard height % windowSize == 0, width % windowSize == 0 else {
            throw OpError.shape(node: name, "QKV \(qkv): H and W should be multiples of the window size \(windowSize)")
        }
        let channels = packed / 3
        let windowsPerImage = (height / windowSize) * (width / windowSize)
        let tokens = windowSize * windowSize
        let scoreShape = [batch * windowsPerImage, heads, tokens, tokens]
        if let bias {
            guard bias.count <= 4, try ShapeRules.broadcast(bias, scoreShape, node: name) == scoreShape else {
                throw OpError.shape(node: name, "bias \(bias) does not broadcast to the window scores \(scoreShape)")
            }
        }
        return Geometry(batch: batch, height: height, width: width, channels: channels, heads: heads,
                        depth: channels / heads, windowSize: windowSize, shift: attributes.shift,
                        windowsAcross: width / windowSize, windowsPerImage: windowsPerImage, tokens: tokens,
                        scoreShape: scoreShape, outputShape: [batch, height, width, channels])
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let qkv = try ShapeRules.required(inputs, 0, node: name)
        let bias = inputs.count > 1 ? inputs[1] : nil
        guard qkv.dtype.isFloatingPoint, bias?.dtype.isFloatingPoint ?? true else {
            throw OpError.unsupported(node: name, "window attention of integer tensors")
        }
        return [ValueFact(dtype: .float32, shape: try geometry(qkv.shape, bias: bias?.shape).outputShape)]
    }

    /// Literally Swin's steps: roll, partition into [B·nW, heads, N, depth] tensors, the
    /// `attention` reference per window, then reverse and roll back.
    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let qkv = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        let bias = inputs.count > 1 ? inputs[1] : nil
        let g = try geometry(qkv.shape, bias: bias?.shape)
        let values = qkv.floats
        let windows = g.batch * g.windowsPerImage
        let partitionedShape = [windows, g.heads, g.tokens, g.depth]
        // part 0, 1, 2: q, k, v partitioned.
        let partitioned = (0..<3).map { part -> HostTensor in
            var result = [Float](repeating: 0, count: partitionedShape.reduce(1, *))
            for window in 0..<windows {
                let (b, w) = window.quotientAndRemainder(dividingBy: g.windowsPerImage)
                let (wy, wx) = w.quotientAndRemainder(dividingBy: g.windowsAcross)
                for iy in 0..<g.windowSize {
                    for ix in 0..<g.windowSize {
                        // The rolled grid's (wy·ws + iy, wx·ws + ix) holds the input's
                        // ((… + shift) mod H, (… + shift) mod W).
                        let y = (wy * g.windowSize + iy + g.shift) % g.height
                        let x = (wx * g.windowSize + ix + g.shift) % g.width
                        for head in 0..<g.heads {
                            for j in 0..<g.depth {
                                let source = ((b * g.height + y) * g.width + x) * 3 * g.channels + part * g.channels + head * g.depth + j
                                result[((window * g.heads + head) * g.tokens + iy * g.windowSize + ix) * g.depth + j] = values[source]
                            }
                        }
                    }
                }
            }
            return HostTensor(shape: partitionedShape, floats: result)
        }
        let attention = ScaledDotProductAttention(name: name, attributes: AttentionAttributes(scale: attributes.scale))
        let attended = try attention.reference(partitioned.map { Optional($0) } + [bias])[0].floats
        var result = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
        for window in 0..<windows {
            for token in 0..<g.tokens {
                let cell = g.gridIndex(window: window, token: token)
                for head in 0..<g.heads {
                    for j in 0..<g.depth {
                        result[cell * g.channels + head * g.depth + j] = attended[((window * g.heads + head) * g.tokens + token) * g.depth + j]
                    }
                }
            }
        }
        return [HostTensor(shape: g.outputShape, floats: result)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let qkv = try ShapeRules.required(inputs, 0, node: name)
        let bias = inputs.count > 1 ? inputs[1] : nil
        let g = try geometry(qkv.shape, bias: bias?.shape)
        return WindowAttentionKernel(geometry: g, scale: attributes.scale, bias: bias.map { BiasLayout(shape: $0.shape, scores: g.scoreShape) })
    }
}

/// The float kernel of `windowAttention`. One work item is a group of heads of one window
/// (all heads unless there are too few windows to keep every worker busy): each token's
/// q, k and v channels of those heads are gathered from the grid by index arithmetic into a
/// private slot (three row copies per token, the rows the GEMMs then read with a stride),
/// per head one GEMM makes the N × N scores on top of the bias (beta = 1, so the GEMM adds
/// it), the rows are normalised in place and a second GEMM multiplies them by v, and each
/// token's result row is scattered back to its cell. The rolled and partitioned copies of
/// the whole grid that the exported graph made never exist.
///
/// Measured on Swin-T's encoder at 384², 10 runs (perf samples outside OpenBLAS, whose
/// frames it cannot attribute): gathering per head (3·heads copies of 32 floats per token)
/// spent 165 of 1135 kernel samples in memmove, more than the unfused graph's transposes
/// and concats took (251 for all its copies); gathering a window's heads at once, 120 of
/// 1021. The rest is softmax (~780, exp-bound), as in `attention`.
struct WindowAttentionKernel: Kernel {
    let geometry: WindowAttention.Geometry
    let scale: Float
    let bias: BiasLayout?

    /// Heads per work item: all of them, or fewer when the windows alone give each slot
    /// less than two items (Swin's last stage has 1–4 windows of 24 heads).
    var headsPerItem: Int {
        let g = geometry
        let windows = g.batch * g.windowsPerImage
        let groups = Swift.min(g.heads, Swift.max(1, (2 * ScratchSlots.slotCount + windows - 1) / Swift.max(windows, 1)))
        return (g.heads + groups - 1) / groups
    }

    /// Gathered q | k | v (N × 3·group channels), the result (N × group channels), scores.
    var slotFloats: Int {
        let g = geometry
        return 4 * g.tokens * headsPerItem * g.depth + g.tokens * g.tokens
    }

    var scratchBytes: Int { ScratchSlots.slotCount * slotFloats * MemoryLayout<Float>.stride }

    func run(_ io: KernelIO) {
        let g = geometry
        guard g.batch * g.windowsPerImage * g.channels > 0, let scratch = io.scratch else { return }
        let slots = scratch.bindMemory(to: Float.self, capacity: ScratchSlots.slotCount * slotFloats)
        let group = headsPerItem
        let groups = (g.heads + group - 1) / group
        ScratchSlots.run(items: g.batch * g.windowsPerImage * groups, pool: io.pool) { slot, item in
            let (window, index) = item.quotientAndRemainder(dividingBy: groups)
            compute(window: window, heads: index * group..<Swift.min(g.heads, (index + 1) * group), io: io,
                    slot: slots + slot * slotFloats)
        }
    }

    /// Some heads of one window. Out of line so both paths of `parallelFor` run the same
    /// compiled loops (see `BinaryKernel.compute`).
    @inline(never)
    private func compute(window: Int, heads: Range<Int>, io: KernelIO, slot: UnsafeMutablePointer<Float>) {
        let g = geometry
        let (n, d, c) = (g.tokens, g.depth, g.channels)
        let width = heads.count * d
        let gathered = slot, output = slot + 3 * n * width, scores = slot + 4 * n * width
        let qkv = io.input(0)
        let first = heads.lowerBound * d
        for token in 0..<n {
            let source = qkv + g.gridIndex(window: window, token: token) * 3 * c + first
            let row = gathered + token * 3 * width
            row.update(from: source, count: width)
            (row + width).update(from: source + c, count: width)
            (row + 2 * width).update(from: source + 2 * c, count: width)
        }
        for (offset, head) in heads.enumerated() {
            let query = gathered + offset * d, key = query + width, value = query + 2 * width
            var beta: Float = 0
            if let bias, let values = io.inputs[1] {
                for i in 0..<n {
                    let source = values + bias.offset(batch: window * g.heads + head, row: i, column: 0)
                    let row = scores + i * n
                    for j in 0..<n { row[j] = source[j * bias.columnStride] }
                }
                beta = 1
            }
            GEMM.multiply(m: n, n: n, k: d, a: query, lda: 3 * width, b: key, ldb: 3 * width, transposeB: true,
                          c: scores, ldc: n, alpha: scale, beta: beta)
            for i in 0..<n { SoftmaxKernel.softmaxRow(scores + i * n, scores + i * n, length: n) }
            GEMM.multiply(m: n, n: d, k: n, a: scores, lda: n, b: value, ldb: 3 * width, c: output + offset * d, ldc: width)
        }
        let destination = io.outputs[0] + first
        for token in 0..<n {
            (destination + g.gridIndex(window: window, token: token) * c).update(from: output + token * width, count: width)
        }
    }
}

extension WindowAttention: Differentiable {
    /// Reads QKV and the bias; each window's attention weights are recomputed.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let qkv = try ShapeRules.required(inputs, 0, node: name)
        let bias = inputs.count > 1 ? inputs[1] : nil
        let g = try geometry(qkv.shape, bias: bias?.shape)
        return WindowAttentionBackward(geometry: g, scale: attributes.scale,
                                       bias: bias.map { BiasLayout(shape: $0.shape, scores: g.scoreShape) })
    }
}

/// Window attention's backward rule: per (window, head), that head's q, k, v and ∂Y rows
/// are gathered from the grid by the forward's index arithmetic, `AttentionBackward.problem`
/// makes their gradients, and those are added back to the tokens' cells. Every (window,
/// head) owns its cells' channels, so problems run in parallel, except when the bias's
/// gradient is wanted and one bias element serves several windows (a bias broadcast over
/// the batch): then they run on one worker, as in `AttentionBackward`.
struct WindowAttentionBackward: BackwardKernel {
    let geometry: WindowAttention.Geometry
    let scale: Float
    let bias: BiasLayout?
    private let serialPool = ThreadPool(threads: 1)

    init(geometry: WindowAttention.Geometry, scale: Float, bias: BiasLayout?) {
        self.geometry = geometry
        self.scale = scale
        self.bias = bias
    }

    /// q, k, v, ∂Y, ∂q, ∂k, ∂v (N × depth each), then P and ∂P (N × N each).
    private var slotFloats: Int { 7 * geometry.tokens * geometry.depth + 2 * geometry.tokens * geometry.tokens }
    var scratchBytes: Int { ScratchSlots.slotCount * slotFloats * MemoryLayout<Float>.stride }

    func run(_ io: BackwardIO) {
        let g = geometry
        guard g.batch * g.windowsPerImage * g.channels > 0 else { return }
        guard let scratch = io.scratch else { preconditionFailure("window attention backward ran without scratch") }
        let slots = scratch.bindMemory(to: Float.self, capacity: ScratchSlots.slotCount * slotFloats)
        let dQKV = io.inputGradient(0)
        let dBias = bias == nil ? nil : io.inputGradient(1)
        let biasValues = bias == nil ? nil : io.inputs[1]
        let shared = bias.map { Set($0.batchOffsets).count < $0.batchOffsets.count } ?? false
        guard dQKV != nil || dBias != nil else { return }
        let (n, d, c) = (g.tokens, g.depth, g.channels)
        let qkv = io.input(0), dy = io.outputGradient
        ScratchSlots.run(items: g.batch * g.windowsPerImage * g.heads, pool: dBias != nil && shared ? serialPool : io.pool) {
            slot, item in
            let (window, head) = item.quotientAndRemainder(dividingBy: g.heads)
            let base = slots + slot * slotFloats
            let (q, k, v, dyRows) = (base, base + n * d, base + 2 * n * d, base + 3 * n * d)
            let (dq, dk, dv) = (base + 4 * n * d, base + 5 * n * d, base + 6 * n * d)
            for token in 0..<n {
                let cell = g.gridIndex(window: window, token: token)
                let source = qkv + cell * 3 * c + head * d
                (q + token * d).update(from: source, count: d)
                (k + token * d).update(from: source + c, count: d)
                (v + token * d).update(from: source + 2 * c, count: d)
                (dyRows + token * d).update(from: dy + cell * c + head * d, count: d)
            }
            dq.update(repeating: 0, count: 3 * n * d)
            AttentionBackward.problem(q: q, k: k, v: v, dy: dyRows, queries: n, keys: n, depth: d, valueDepth: d, scale: scale,
                                      bias: bias.map { ($0, window * g.heads + head) }, biasValues: biasValues, dBias: dBias,
                                      scratch: base + 7 * n * d, dq: dQKV == nil ? nil : dq, dk: dQKV == nil ? nil : dk,
                                      dv: dQKV == nil ? nil : dv)
            guard let dQKV else { return }
            for token in 0..<n {
                let target = dQKV + g.gridIndex(window: window, token: token) * 3 * c + head * d
                for part in 0..<3 {
                    let row = dq + (part * n + token) * d, destination = target + part * c
                    for j in 0..<d { destination[j] += row[j] }
                }
            }
        }
    }
}

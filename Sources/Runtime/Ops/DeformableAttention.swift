import CKernels
import Format

/// `deformableAttention`: multi-scale deformable attention's sampling and weighting
/// (Deformable DETR; Mask2Former's pixel decoder, ViT-Adapter's injector and extractor).
/// For each batch b, query q and head m:
/// Y[b, q, m·D + c] = Σₗ Σₚ weights[b, q, m, l, p] · sample(level l of value[b, :, m, c], grid[b, q, m, l, p]),
/// each sample read as `gridSample` reads its input (the attributes' mode, padding and
/// alignment). The exported form splits the value per level, transposes each part into a
/// map [B·heads, D, h, w], transposes the grid per level, runs one gridSample per level,
/// stacks the samples [B·heads, D, Q, L·P], multiplies by the weights and sums; this op
/// does all of it in one pass over the value, materialising none of those tensors.
public struct DeformableAttention: Operator {
    let name: String
    let attributes: DeformableAttentionAttributes

    init(name: String, attributes: DeformableAttentionAttributes) {
        self.name = name
        self.attributes = attributes
    }

    /// Sizes of one evaluation, checked against each other.
    struct Geometry: Sendable {
        var batch: Int, tokens: Int, queries: Int
        var heads: Int, headWidth: Int, points: Int
        var levels: [(height: Int, width: Int)]
        /// Where each level's tokens start in the value.
        var levelStarts: [Int]

        var channels: Int { heads * headWidth }
    }

    /// The levels' sizes: the `levelShapes` attribute (fixed when the graph was exported at
    /// one size), or input 3, a plan-time i64 [L, 2] of (h, w) rows that a graph built for
    /// any input size computes from that size. Exactly one of the two is given.
    func levels(_ sizes: HostTensor?) throws -> [(height: Int, width: Int)] {
        switch (attributes.levelShapes.isEmpty, sizes) {
        case (false, nil):
            return attributes.levels
        case (true, let sizes?):
            let values = sizes.ints
            guard sizes.shape.count == 2, sizes.shape[1] == 2, !values.isEmpty, values.allSatisfy({ $0 >= 1 }) else {
                throw OpError.shape(node: name, "deformableAttention's input 3 must be the levels' sizes, i64 [L, 2] of "
                    + "(h, w) ≥ 1, found \(sizes.shape) \(values)")
            }
            return stride(from: 0, to: values.count, by: 2).map { (Int(values[$0]), Int(values[$0 + 1])) }
        case (false, _?):
            throw OpError.shape(node: name, "deformableAttention takes the levels' sizes from the levelShapes attribute "
                + "or from input 3, not both")
        case (true, nil):
            throw OpError.shape(node: name, "deformableAttention needs the levels' sizes: the levelShapes attribute or input 3")
        }
    }

    /// The levels' sizes of a plan: input 3's plan-time value when the node has one.
    func levels(_ inputs: [ValueFact?]) throws -> [(height: Int, width: Int)] {
        try levels(inputs.count > 3 && inputs[3] != nil ? try ShapeRules.planTimeValue(inputs, 3, node: name) : nil)
    }

    func geometry(value: [Int], grid: [Int], weights: [Int], levels: [(height: Int, width: Int)]) throws -> Geometry {
        func fail(_ problem: String) -> OpError {
            OpError.shape(node: name, "deformableAttention needs value [B, S, heads·D], grid [B, Q, heads, L, P, 2] and "
                + "weights [B, Q, heads, L, P]: \(problem) (value \(value), grid \(grid), weights \(weights))")
        }
        let heads = attributes.heads
        guard value.count >= 3, grid.count >= 3, weights.count >= 3 else { throw fail("each needs rank 3 or more") }
        let tokens = levels.reduce(0) { $0 + $1.height * $1.width }
        guard value[1] == tokens else { throw fail("S must be the levels' \(tokens) tokens") }
        let channels = value[2...].reduce(1, *)
        guard channels % heads == 0, channels > 0 else { throw fail("value channels must be a multiple of \(heads) heads") }
        guard grid[0] == value[0], weights[0] == value[0], weights[1] == grid[1] else { throw fail("B and Q must agree") }
        let samples = weights[2...].reduce(1, *)
        guard samples > 0, samples % (heads * levels.count) == 0 else {
            throw fail("weights must hold heads × \(levels.count) levels × points per query")
        }
        guard grid[2...].reduce(1, *) == 2 * samples, grid.last == 2 else { throw fail("grid must hold an (x, y) per weight") }
        var starts: [Int] = [], start = 0
        for level in levels {
            starts.append(start)
            start += level.height * level.width
        }
        return Geometry(batch: value[0], tokens: tokens, queries: grid[1], heads: heads, headWidth: channels / heads,
                        points: samples / (heads * levels.count), levels: levels, levelStarts: starts)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let shapes = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name).shape }
        let g = try geometry(value: shapes[0], grid: shapes[1], weights: shapes[2], levels: try levels(inputs))
        return [ValueFact(dtype: .float32, shape: [g.batch, g.queries, g.channels])]
    }

    /// The definition as the export computes it: per level, the value's part as maps
    /// [B·heads, D, h, w] and the grid's as [B·heads, Q, P, 2], sampled by gridSample's
    /// reference kernel; then the weighted sum over levels and points.
    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard inputs.count > 2, let valueTensor = inputs[0], let gridTensor = inputs[1], let weightTensor = inputs[2] else {
            throw GraphError.missingInput(node: name, index: inputs.prefix(3).firstIndex { $0 == nil } ?? inputs.count)
        }
        let g = try geometry(value: valueTensor.shape, grid: gridTensor.shape, weights: weightTensor.shape,
                             levels: try levels(inputs.count > 3 ? inputs[3] : nil))
        let value = valueTensor.floats, grid = gridTensor.floats, weights = weightTensor.floats
        let (heads, width, points, levelCount) = (g.heads, g.headWidth, g.points, g.levels.count)
        let sampler = GridSample(name: name, attributes: attributes.sampling)
        var y = [Float](repeating: 0, count: g.batch * g.queries * g.channels)
        for (l, level) in g.levels.enumerated() {
            let pixels = level.height * level.width
            var maps = [Float](repeating: 0, count: g.batch * heads * width * pixels)
            var levelGrid = [Float](repeating: 0, count: g.batch * heads * g.queries * points * 2)
            for b in 0..<g.batch {
                for m in 0..<heads {
                    for c in 0..<width {
                        for s in 0..<pixels {
                            maps[((b * heads + m) * width + c) * pixels + s] =
                                value[((b * g.tokens + g.levelStarts[l] + s) * heads + m) * width + c]
                        }
                    }
                    for q in 0..<g.queries {
                        for p in 0..<points {
                            for axis in 0..<2 {
                                levelGrid[(((b * heads + m) * g.queries + q) * points + p) * 2 + axis] =
                                    grid[((((b * g.queries + q) * heads + m) * levelCount + l) * points + p) * 2 + axis]
                            }
                        }
                    }
                }
            }
            let sampled = try sampler.reference([
                HostTensor(shape: [g.batch * heads, width, level.height, level.width], floats: maps),
                HostTensor(shape: [g.batch * heads, g.queries, points, 2], floats: levelGrid),
            ])[0].floats
            for b in 0..<g.batch {
                for q in 0..<g.queries {
                    for m in 0..<heads {
                        for p in 0..<points {
                            let weight = weights[(((b * g.queries + q) * heads + m) * levelCount + l) * points + p]
                            for c in 0..<width {
                                y[((b * g.queries + q) * heads + m) * width + c] +=
                                    weight * sampled[(((b * heads + m) * width + c) * g.queries + q) * points + p]
                            }
                        }
                    }
                }
            }
        }
        return [HostTensor(shape: [g.batch, g.queries, g.channels], floats: y)]
    }

    /// The geometry of a plan and one sampler per level.
    func samplers(_ inputs: [ValueFact?]) throws -> (geometry: Geometry, samplers: [GridSampler]) {
        let shapes = try (0..<3).map { try ShapeRules.required(inputs, $0, node: name).shape }
        let g = try geometry(value: shapes[0], grid: shapes[1], weights: shapes[2], levels: try levels(inputs))
        let samplers = g.levels.map {
            GridSampler(options: GridSampler.Options(mode: attributes.sampling.mode, padding: attributes.sampling.paddingMode,
                                                     alignCorners: attributes.sampling.alignCorners),
                        batch: 1, channels: g.headWidth, inputHeight: $0.height, inputWidth: $0.width,
                        outputHeight: g.queries, outputWidth: g.points)
        }
        return (g, samplers)
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let (g, samplers) = try samplers(inputs)
        return DeformableAttentionKernel(geometry: g, samplers: samplers)
    }
}

/// One work item is one (batch, query, head): its D outputs are the weighted sum of the
/// value tokens' head channels over every point's four taps (weight × bilinear weight,
/// read in place: a token's head channels are contiguous). The taps are listed first, then
/// summed by `restore_weighted_row_sum` with the row in registers (the Swift loop before
/// it added each tap into the row in memory: Mask2Former's six layers took 97 ms of one
/// thread, now 54–60 ms, on a loaded machine, session 8). Bilinear sampling with zero
/// padding, the models' own, lists its taps in C as well (`restore_deformable_bilinear_row`,
/// the same floats); other modes and paddings take GridSampler's taps.
struct DeformableAttentionKernel: Kernel {
    let geometry: DeformableAttention.Geometry
    let samplers: [GridSampler]
    var cpu = CPUFeatures.level
    /// Whether bilinear sampling with zero padding lists its taps in C; false takes
    /// GridSampler's taps in every mode (tests compare the two).
    var listsBilinearTapsInC = true

    /// Each level's height, width and first token, for `restore_deformable_bilinear_row`.
    private var levelShapes: [Int] {
        zip(geometry.levels, geometry.levelStarts).flatMap { [$0.height, $0.width, $1] }
    }

    func run(_ io: KernelIO) {
        let g = geometry
        let value = io.input(0), grid = io.input(1), weights = io.input(2), y = io.outputs[0]
        let (heads, width, points, levelCount) = (g.heads, g.headWidth, g.points, g.levels.count)
        let tokenStride = g.channels, level = CPUFeatures.cValue(of: cpu)
        let tapCapacity = levelCount * points * 4
        let options = samplers.first?.options
        let bilinearZeros = listsBilinearTapsInC && options.map { $0.mode == .linear && $0.padding == .zeros } ?? false
        let levelShapes = self.levelShapes
        io.pool.parallelFor(g.batch * g.queries * heads, minimumChunk: 16) { items in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: tapCapacity) { offsets in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: tapCapacity) { scales in
                    for item in items {
                        let (bq, m) = item.quotientAndRemainder(dividingBy: heads)
                        let b = bq / g.queries
                        // Offsets from the head's channels of the batch's first token.
                        let head = value + b * g.tokens * tokenStride + m * width
                        if bilinearZeros {
                            let samples = item * levelCount * points
                            restore_deformable_bilinear_row(level, y + item * width, width, head, tokenStride,
                                                            levelCount, points, levelShapes,
                                                            options?.alignCorners == true ? 1 : 0, grid + samples * 2,
                                                            weights + samples, offsets.baseAddress, scales.baseAddress)
                            continue
                        }
                        var taps = 0
                        for l in 0..<levelCount {
                            let sampler = samplers[l]
                            let first = (item * levelCount + l) * points
                            for p in 0..<points {
                                let weight = weights[first + p]
                                let (corners, bilinear) = sampler.taps(column: grid[(first + p) * 2],
                                                                       row: grid[(first + p) * 2 + 1])
                                for corner in 0..<4 {
                                    let scale = weight * bilinear[corner]
                                    guard scale != 0 else { continue }
                                    offsets[taps] = (g.levelStarts[l] + Int(corners[corner])) * tokenStride
                                    scales[taps] = scale
                                    taps += 1
                                }
                            }
                        }
                        restore_weighted_row_sum(level, y + item * width, width, head, offsets.baseAddress,
                                                 scales.baseAddress, taps)
                    }
                }
            }
        }
    }
}

extension DeformableAttention: Differentiable {
    /// Reads the value, the grid and the weights (the levels' sizes are plan-time).
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1, 2]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        if wanted.count > 1 && wanted[1] && attributes.sampling.paddingMode == .reflection && attributes.sampling.mode == .linear {
            throw OpError.unsupported(node: name, "gradient of the grid with reflection padding")
        }
        let (g, samplers) = try samplers(inputs)
        return DeformableAttentionBackward(geometry: g, samplers: samplers)
    }
}

/// deformableAttention's backward rule, per (batch, query, head), level and point with
/// weight a and the forward's sample s_c = Σₜ cornerₜ·value[tokenₜ, c]:
///   ∂value[tokenₜ, c] += a·cornerₜ·∂Y_c (padding resolved as the forward read it);
///   ∂a += Σ_c ∂Y_c·s_c;
///   ∂grid += a·Σ_c ∂Y_c·∂s_c/∂grid, with the slopes `GridSampler.gridSlopes` gives
///   (bilinear; zero for nearest, as PyTorch's grid_sample, whose fused form this op is).
/// Every query of one (batch, head) adds into that head's channels of the value's tokens,
/// so workers take whole (batch, head) pairs; the grid's and weights' gradients are per
/// query and point.
struct DeformableAttentionBackward: BackwardKernel {
    let geometry: DeformableAttention.Geometry
    let samplers: [GridSampler]

    func run(_ io: BackwardIO) {
        let g = geometry
        let value = io.input(0), grid = io.input(1), weights = io.input(2), dy = io.outputGradient
        let dValue = io.inputGradient(0), dGrid = io.inputGradient(1), dWeights = io.inputGradient(2)
        let (heads, width, points, levelCount) = (g.heads, g.headWidth, g.points, g.levels.count)
        let tokenStride = g.channels
        /// Σ_c upstream[c]·token[c] over the head's channels.
        @inline(__always) func dot(_ upstream: UnsafePointer<Float>, _ token: UnsafePointer<Float>) -> Float {
            var sum: Float = 0
            for c in 0..<width { sum += upstream[c] * token[c] }
            return sum
        }
        io.pool.parallelFor(g.batch * heads) { pairs in
            for pair in pairs {
                let (b, m) = pair.quotientAndRemainder(dividingBy: heads)
                for q in 0..<g.queries {
                    let item = (b * g.queries + q) * heads + m
                    let upstream = dy + item * width
                    for l in 0..<levelCount {
                        let sampler = samplers[l]
                        let levelOffset = (b * g.tokens + g.levelStarts[l]) * tokenStride + m * width
                        let levelValue = value + levelOffset
                        let first = (item * levelCount + l) * points
                        for p in 0..<points {
                            let weight = weights[first + p]
                            let (gx, gy) = (grid[(first + p) * 2], grid[(first + p) * 2 + 1])
                            if dValue != nil || dWeights != nil {
                                let (offsets, corners) = sampler.taps(column: gx, row: gy)
                                var sampled: Float = 0
                                for t in 0..<4 where corners[t] != 0 {
                                    let token = Int(offsets[t]) * tokenStride
                                    if dWeights != nil { sampled += corners[t] * dot(upstream, levelValue + token) }
                                    if let dValue {
                                        let target = dValue + levelOffset + token, scale = weight * corners[t]
                                        for c in 0..<width { target[c] += scale * upstream[c] }
                                    }
                                }
                                dWeights?[first + p] += sampled
                            }
                            guard let dGrid else { continue }
                            let (offsets, alongX, alongY) = sampler.gridSlopes(column: gx, row: gy)
                            var slope = SIMD2<Float>.zero
                            for t in 0..<4 where alongX[t] != 0 || alongY[t] != 0 {
                                slope += SIMD2(alongX[t], alongY[t]) * dot(upstream, levelValue + Int(offsets[t]) * tokenStride)
                            }
                            dGrid[(first + p) * 2] += weight * slope.x
                            dGrid[(first + p) * 2 + 1] += weight * slope.y
                        }
                    }
                }
            }
        }
    }
}

import Format
import Foundation

/// ViT-Adapter (Chen et al., ICLR 2023) + UperNet under the official code's names, as its
/// mmseg checkpoints hold them under `state_dict` (a .pth converted by
/// scripts/pth_to_safetensors.py, or any safetensors file of the same state dict):
/// `backbone.patch_embed.proj`, `backbone.pos_embed`, `backbone.blocks.N.{norm1, attn.qkv,
/// attn.proj, norm2, mlp.fc1, mlp.fc2, gamma1, gamma2}`, `backbone.level_embed`,
/// `backbone.spm.{stem, conv2, conv3, conv4, fc1…fc4}`, `backbone.interactions.N.{injector,
/// extractor, extra_extractors.M}` (`query_norm`, `feat_norm`, `attn.{sampling_offsets,
/// attention_weights, value_proj, output_proj}`, the injector's `gamma`, the extractors'
/// `ffn.{fc1, dwconv.dwconv, fc2}` and `ffn_norm`), `backbone.up`, `backbone.norm1…4`, and
/// mmseg's `UPerHead` (`decode_head.*`, `conv_seg`). Input `pixel_values`, output `logits`
/// at the input's size (mmseg's EncoderDecoder resizes them so).
///
/// Hyper-parameters come from the shapes (widths, depth, the number of interactions, the
/// deformable value width and ConvFFN width, the spatial prior's width, the position
/// table's grid, layer scale present or not) and, where shapes cannot tell, from the
/// official defaults, which config.json beside the checkpoint overrides with the official
/// keyword names: `num_heads` (ViT heads; default embed/64, the official 64-channel heads),
/// `deform_num_heads` (6) and `n_points` (4) — their product must match the attention
/// weights' rows, so one of them given fixes the other —, `interaction_indexes` (default:
/// the blocks split evenly over the interactions, [[0, 2], [3, 5], [6, 8], [9, 11]] for 12),
/// `add_vit_feature` (true), `pool_scales` (1, 2, 3, 6). `window_attn` with any block true
/// is refused: the template builds global attention only.
///
/// The graph emits the ONNX path's fused ops: `attention` per ViT block, one
/// `deformableAttention` per injector and extractor (its levels' sizes, reference points and
/// offset normalisers computed from the input's size at plan time), `layerNorm`s, `linear`s
/// (GELU fused), `conv`s with BatchNorm folded; layer scales and the injector's γ are folded
/// into the output projections. Any H, W that are multiples of 32 run (the `restore.multiple`
/// recorded; rrun pads to it).
struct ViTAdapterUperNetTemplate: ArchitectureTemplate {
    var name: String { "vit-adapter-upernet" }
    var summary: String {
        "ViT-Adapter + UperNet, the official code's names (an mmseg .pth's state_dict saved as safetensors; "
            + "config.json optional; pixel_values → logits)"
    }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains("backbone.interactions.0.injector.attn.sampling_offsets.weight") && names.contains("backbone.spm.stem.0.weight")
            && names.contains("decode_head.conv_seg.weight")
    }

    /// The auxiliary FCN head only feeds a training loss; `num_batches_tracked` counts steps.
    func isTrainingOnly(_ name: String) -> Bool {
        name.hasPrefix("auxiliary_head.") || name.hasSuffix(".num_batches_tracked")
    }

    /// config.json: the official `ViTAdapter` keyword arguments shapes do not determine.
    struct Settings: Decodable {
        var numHeads: Int?
        var deformNumHeads: Int?
        var points: Int?
        var interactionIndexes: [[Int]]?
        var addViTFeature: Bool?
        var windowAttention: [Bool]?
        var poolScales: [Int]?
        enum CodingKeys: String, CodingKey {
            case numHeads = "num_heads", deformNumHeads = "deform_num_heads", points = "n_points"
            case interactionIndexes = "interaction_indexes", addViTFeature = "add_vit_feature", windowAttention = "window_attn"
            case poolScales = "pool_scales"
        }
    }

    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph {
        if options.truncation != nil {
            throw CheckpointError.badOption(file: weights.checkpoint.source, option: "--truncation",
                                            detail: "only BigGAN's templates take a truncation")
        }
        let settings = try config.decode(Settings.self)
        var builder = try ViTAdapterBuilder(weights: weights, settings: settings, configFile: config.file ?? "config.json")
        let graph = try builder.build()
        weights = builder.weights
        return graph
    }
}

/// Builds ViT-Adapter + UperNet on token sequences [1, T, C] (ViT tokens at 1/16; the
/// spatial prior `c` as its 1/8, 1/16 and 1/32 levels one after another) and maps [1, C, h, w].
struct ViTAdapterBuilder {
    var weights: CheckpointWeights
    var graph = GraphBuilder()
    let configFile: String
    let width: Int
    let depth: Int
    let heads: Int
    let positionGrid: Int
    /// Whether `pos_embed` keeps a (unused) class-token slot first.
    let positionTableHasClassSlot: Bool
    let groups: [ClosedRange<Int>]
    let deformableHeads: Int
    let points: Int
    let valueWidth: Int
    let priorWidth: Int
    let addViTFeature: Bool
    let poolScales: [Int]
    static let epsilon: Float = 1e-6
    static let patch = 16
    static let multiple = 32

    init(weights: CheckpointWeights, settings: ViTAdapterUperNetTemplate.Settings, configFile: String) throws {
        self.weights = weights
        self.configFile = configFile
        let file = weights.checkpoint.source
        let projection = "backbone.patch_embed.proj.weight"
        let embedding = try weights.shape(of: projection)
        guard embedding.count == 4, embedding[1] == 3, embedding[2] == Self.patch, embedding[3] == Self.patch else {
            throw CheckpointError.shapeMismatch(file: file, tensor: projection, expected: [-1, 3, Self.patch, Self.patch], found: embedding,
                                                why: "ViT-Adapter's 16×16 patches, whose grid is the spatial prior's 1/16 level")
        }
        width = embedding[0]
        var depth = 0
        while weights.has("backbone.blocks.\(depth).norm1.weight") { depth += 1 }
        guard depth > 0 else { throw CheckpointError.missingTensor(file: file, tensor: "backbone.blocks.0.norm1.weight") }
        self.depth = depth
        if let windows = settings.windowAttention, windows.contains(true) {
            throw CheckpointError.badConfig(file: configFile, detail: "window_attn: the template builds global attention in every block")
        }
        guard let heads = settings.numHeads ?? (width % 64 == 0 ? width / 64 : nil), heads >= 1, width % heads == 0 else {
            throw CheckpointError.badConfig(file: configFile, detail: "num_heads \(settings.numHeads.map(String.init) ?? "not given"): the "
                                            + "ViT's \(width) channels need a head count that divides them (default: 64-channel heads)")
        }
        self.heads = heads
        let table = try weights.shape(of: "backbone.pos_embed")
        let tokens = table.count == 3 && table[0] == 1 && table[2] == width ? table[1] : -1
        let withSlot = Int(Double(max(tokens - 1, 0)).squareRoot().rounded()), without = Int(Double(max(tokens, 0)).squareRoot().rounded())
        if tokens > 1, withSlot * withSlot == tokens - 1 {
            (positionGrid, positionTableHasClassSlot) = (withSlot, true)
        } else if tokens > 0, without * without == tokens {
            (positionGrid, positionTableHasClassSlot) = (without, false)
        } else {
            throw CheckpointError.shapeMismatch(file: file, tensor: "backbone.pos_embed", expected: [1, -1, width], found: table,
                                                why: "a square grid of position embeddings, after an optional class-token slot")
        }
        var interactions = 0
        while weights.has("backbone.interactions.\(interactions).injector.attn.sampling_offsets.weight") { interactions += 1 }
        let indexes = settings.interactionIndexes
            ?? (depth % interactions == 0 ? (0..<interactions).map { [$0 * depth / interactions, ($0 + 1) * depth / interactions - 1] } : [])
        var next = 0
        var groups: [ClosedRange<Int>] = []
        for index in indexes {
            guard index.count == 2, index[0] == next, index[1] >= index[0] else { break }
            groups.append(index[0]...index[1])
            next = index[1] + 1
        }
        guard groups.count == interactions, next == depth else {
            throw CheckpointError.badConfig(file: configFile, detail: "interaction_indexes \(indexes) must split the \(depth) blocks, in "
                                            + "order, into the checkpoint's \(interactions) interactions")
        }
        self.groups = groups
        // The attention weights hold heads × levels × points rows (one level in an extractor).
        let samplesName = "backbone.interactions.0.extractor.attn.attention_weights.weight"
        let samples = try weights.shape(of: samplesName).first ?? 0
        let (deformableHeads, points): (Int, Int) = switch (settings.deformNumHeads, settings.points) {
        case (let h?, let p?): (h, p)
        case (let h?, nil): (h, h > 0 && samples % h == 0 ? samples / h : 0)
        case (nil, let p?): (p > 0 && samples % p == 0 ? samples / p : 0, p)
        case (nil, nil): (6, 4)
        }
        guard deformableHeads >= 1, points >= 1, deformableHeads * points == samples else {
            throw CheckpointError.shapeMismatch(file: file, tensor: samplesName, expected: [deformableHeads * points, width],
                                                found: try weights.shape(of: samplesName),
                                                why: "deform_num_heads \(deformableHeads) × n_points \(points) (the official defaults are 6 × 4; "
                                                    + "give deform_num_heads or n_points in config.json)")
        }
        self.deformableHeads = deformableHeads
        self.points = points
        let valueName = "backbone.interactions.0.injector.attn.value_proj.weight"
        valueWidth = try weights.shape(of: valueName).first ?? 0
        guard valueWidth > 0, valueWidth % deformableHeads == 0 else {
            throw CheckpointError.shapeMismatch(file: file, tensor: valueName, expected: [valueWidth, width], found: try weights.shape(of: valueName),
                                                why: "a value width (deform_ratio × \(width)) divided among \(deformableHeads) heads")
        }
        priorWidth = try weights.shape(of: "backbone.spm.stem.0.weight").first ?? 0
        addViTFeature = settings.addViTFeature ?? true
        poolScales = settings.poolScales ?? [1, 2, 3, 6]
    }

    // MARK: The model

    mutating func build() throws -> Graph {
        let pixels = graph.addInput("pixel_values", shape: [.fixed(1), .fixed(3), .symbol("height"), .symbol("width")])
        let prior = try spatialPrior(pixels)
        let levelMaps = Array(prior[1...])
        var c = graph.emitValue(named: "c", .concat(ConcatAttributes(axis: 1)), inputs: levelMaps.map { tokens($0) })
        let patches = graph.conv(pixels, weight: try constant("backbone.patch_embed.proj.weight", [width, 3, Self.patch, Self.patch]),
                                 bias: try constant("backbone.patch_embed.proj.bias", [width]), strided(Self.patch), name: "patch_embed")
        var x = graph.binary(.add, tokens(patches), try positionEmbedding(like: patches), name: "tokens")
        // Sizes every deformable attention reads, from the input's size (plan time).
        let priorSizes = levelSizes(levelMaps, name: "c.levels")
        let gridSizes = levelSizes([patches], name: "vit.levels")
        let priorNormaliser = normaliser(levelMaps, name: "c.normaliser")
        let gridNormaliser = normaliser([patches], name: "vit.normaliser")
        let gridPoints = referencePoints([patches], name: "vit.reference")
        let priorPoints = referencePoints(levelMaps, name: "c.reference")
        let levelTokens = tokenCounts(levelMaps, name: "c.tokens")
        var vitMaps: [String] = []
        for (index, group) in groups.enumerated() {
            let prefix = "backbone.interactions.\(index)"
            x = try injector(prefix + ".injector", x: x, c: c, points: gridPoints, sizes: priorSizes, normaliser: priorNormaliser)
            for block in group { x = try vitBlock(x, block) }
            var extractors = [prefix + ".extractor"]
            var extra = 0
            while weights.has("\(prefix).extra_extractors.\(extra).attn.value_proj.weight") {
                extractors.append("\(prefix).extra_extractors.\(extra)")
                extra += 1
            }
            for extractor in extractors {
                c = try self.extractor(extractor, c: c, x: x, points: priorPoints, sizes: gridSizes, normaliser: gridNormaliser,
                                       levelMaps: levelMaps, levelTokens: levelTokens)
            }
            vitMaps.append(map(x, like: patches, name: "interaction\(index + 1).map"))
        }
        // c back into its 1/8, 1/16, 1/32 maps; 1/4 = the transposed conv of 1/8 + the stem's map.
        let parts = levelMaps.indices.map { graph.freshName("c.level\($0 + 2)") }
        graph.emit("c.split", .split(SplitAttributes(axis: 1)), inputs: [c, levelTokens], outputs: parts)
        var pyramid = zip(parts, levelMaps).map { map($0, like: $1, name: $0 + ".map") }
        var up = ConvTransposeAttributes()
        up.window.strides = [2, 2]
        let upsampled = graph.emitValue(named: "backbone.up", .convTranspose(up),
                                        inputs: [pyramid[0], try constant("backbone.up.weight", [width, width, 2, 2]),
                                                 try constant("backbone.up.bias", [width])])
        pyramid.insert(graph.binary(.add, upsampled, prior[0], name: "level1.prior"), at: 0)
        if addViTFeature {
            guard vitMaps.count == pyramid.count else {
                throw CheckpointError.badConfig(file: configFile, detail: "add_vit_feature adds interaction i's ViT tokens to pyramid level i: "
                                                + "it needs 4 interactions, the checkpoint has \(vitMaps.count)")
            }
            for level in pyramid.indices {
                // Level 3 is at 1/16, the ViT grid's own size.
                let vit = level == 2 ? vitMaps[level] : graph.resizedBilinear(vitMaps[level], like: pyramid[level], name: "level\(level + 1).vit")
                pyramid[level] = graph.binary(.add, pyramid[level], vit, name: "level\(level + 1).sum")
            }
        }
        let features = try pyramid.indices.map { try batchNorm(pyramid[$0], "backbone.norm\($0 + 1)") }
        var head = UperNetHeadBuilder(weights: weights, graph: graph, norm: "bn", classifier: "decode_head.conv_seg",
                                      inChannels: Array(repeating: width, count: features.count), poolScales: poolScales)
        let classified = try head.build(features)
        // The logits are at 1/4 of the (padded) input: resized to it, as mmseg's EncoderDecoder does.
        head.graph.addOutput(head.graph.upsampledBilinear(classified, factor: 4, name: "logits"))
        weights = head.weights
        var built = head.graph.graph
        built.metadata[RestorationContract.Settings.Key.multiple.rawValue] = String(Self.multiple)
        return built
    }

    /// The spatial prior module: the ResNet-like stem (1/4) and three strided conv modules
    /// (1/8, 1/16, 1/32), each projected to the ViT width by a 1×1 conv; the level
    /// embedding of 1/8…1/32 is folded into their projections' biases.
    mutating func spatialPrior(_ pixels: String) throws -> [String] {
        let planes = priorWidth
        var x = try convNorm(pixels, "backbone.spm.stem.0", "backbone.spm.stem.1", input: 3, output: planes, stride: 2)
        x = try convNorm(x, "backbone.spm.stem.3", "backbone.spm.stem.4", input: planes, output: planes, stride: 1)
        x = try convNorm(x, "backbone.spm.stem.6", "backbone.spm.stem.7", input: planes, output: planes, stride: 1)
        var pool = PoolAttributes()
        pool.kernelShape = [3, 3]
        pool.window.strides = [2, 2]
        pool.window.pads = [1, 1, 1, 1]
        let c1 = graph.emitValue(named: "backbone.spm.stem.pool", .maxPool(pool), inputs: [x])
        let c2 = try convNorm(c1, "backbone.spm.conv2.0", "backbone.spm.conv2.1", input: planes, output: 2 * planes, stride: 2)
        let c3 = try convNorm(c2, "backbone.spm.conv3.0", "backbone.spm.conv3.1", input: 2 * planes, output: 4 * planes, stride: 2)
        let c4 = try convNorm(c3, "backbone.spm.conv4.0", "backbone.spm.conv4.1", input: 4 * planes, output: 4 * planes, stride: 2)
        let levelEmbedding = try weights.floats("backbone.level_embed", shape: [3, width], why: "3 levels of the \(width)-channel ViT")
        var maps: [String] = []
        for (index, (map, channels)) in [(c1, planes), (c2, 2 * planes), (c3, 4 * planes), (c4, 4 * planes)].enumerated() {
            let name = "backbone.spm.fc\(index + 1)"
            let why = "\(channels) channels into the \(width)-channel ViT"
            var bias = try weights.floats(name + ".bias", shape: [width], why: why)
            if index > 0 { for channel in 0..<width { bias[channel] += levelEmbedding[(index - 1) * width + channel] } }
            maps.append(graph.conv(map, weight: try constant(name + ".weight", [width, channels, 1, 1], why),
                                   bias: graph.addConstant(name + ".bias", shape: [width], floats: bias), name: name))
        }
        return maps
    }

    /// `pos_embed`'s grid, resized bicubically (align_corners false) to the patch grid of
    /// `patches` [1, C, h, w], as tokens [1, h·w, C].
    mutating func positionEmbedding(like patches: String) throws -> String {
        let grid = positionGrid, slot = positionTableHasClassSlot ? 1 : 0
        let table = try weights.floats("backbone.pos_embed", shape: [1, grid * grid + slot, width], why: "the \(width)-channel ViT")
        // [1, g², C] (after the class slot) → [1, C, g, g].
        var maps = [Float](repeating: 0, count: width * grid * grid)
        for position in 0..<grid * grid {
            for channel in 0..<width { maps[channel * grid * grid + position] = table[(slot + position) * width + channel] }
        }
        let stored = graph.addConstant("backbone.pos_embed.grid", shape: [1, width, grid, grid], floats: maps)
        var attributes = ResizeAttributes()
        attributes.mode = .cubic
        attributes.coordinateTransformationMode = .pytorchHalfPixel
        let sizes = graph.joined([graph.dimensions(stored, 0, 2), graph.dimensions(patches, 2, 4)], name: "pos_embed.sizes")
        let resized = graph.emitValue(named: "pos_embed", .resize(attributes), inputs: [stored, "", sizes])
        return tokens(resized)
    }

    /// A pre-norm ViT block with layer scale (folded into the output projections).
    mutating func vitBlock(_ input: String, _ block: Int) throws -> String {
        let prefix = "backbone.blocks.\(block)"
        let headWidth = width / heads
        var x = try layerNorm(input, prefix + ".norm1")
        let qkvBias = prefix + ".attn.qkv.bias"
        let qkv = graph.linear(x, weight: try constant(prefix + ".attn.qkv.weight", [3 * width, width]),
                               bias: weights.has(qkvBias) ? try constant(qkvBias, [3 * width]) : nil, name: prefix + ".attn.qkv")
        // [1, T, 3C] → [1, T, 3, heads, d] → [3, 1, heads, T, d]; q, k, v gathered.
        let split = graph.emitValue(named: prefix + ".attn.heads", .transpose(TransposeAttributes(perm: [2, 0, 3, 1, 4])),
                                    inputs: [graph.reshaped(qkv, [0, 0, 3, heads, headWidth])])
        let (q, k, v) = (gathered(split, 0), gathered(split, 1), gathered(split, 2))
        let attended = graph.emitValue(named: prefix + ".attn", .attention(AttentionAttributes(scale: 1 / Float(headWidth).squareRoot())),
                                       inputs: [q, k, v])
        let merged = graph.reshaped(graph.emitValue(named: prefix + ".attn.merge", .transpose(TransposeAttributes(perm: [0, 2, 1, 3])),
                                                    inputs: [attended]), [0, 0, width])
        x = try scaledLinear(merged, prefix + ".attn.proj", scale: prefix + ".gamma1", input: width, output: width)
        let residual = graph.binary(.add, input, x, name: prefix + ".attention.out")
        x = try layerNorm(residual, prefix + ".norm2")
        let hidden = try weights.shape(of: prefix + ".mlp.fc1.weight").first ?? 0
        x = graph.linear(x, weight: try constant(prefix + ".mlp.fc1.weight", [hidden, width]),
                         bias: try constant(prefix + ".mlp.fc1.bias", [hidden]), activation: Activation(function: .gelu), name: prefix + ".mlp.fc1")
        x = try scaledLinear(x, prefix + ".mlp.fc2", scale: prefix + ".gamma2", input: hidden, output: width)
        return graph.binary(.add, residual, x, name: prefix + ".out")
    }

    /// Injector: x + γ · MSDeformAttn(LN(x) over the three levels of LN(c)).
    mutating func injector(_ prefix: String, x: String, c: String, points: String, sizes: String, normaliser: String) throws -> String {
        let attended = try deformableAttention(prefix, query: try layerNorm(x, prefix + ".query_norm"), feat: try layerNorm(c, prefix + ".feat_norm"),
                                               points: points, sizes: sizes, normaliser: normaliser, levels: 3, scale: prefix + ".gamma")
        return graph.binary(.add, x, attended, name: prefix + ".out")
    }

    /// Extractor: c + MSDeformAttn(LN(c) over LN(x)), then c + ConvFFN(LN(c)).
    mutating func extractor(_ prefix: String, c: String, x: String, points: String, sizes: String, normaliser: String,
                            levelMaps: [String], levelTokens: String) throws -> String {
        let attended = try deformableAttention(prefix, query: try layerNorm(c, prefix + ".query_norm"), feat: try layerNorm(x, prefix + ".feat_norm"),
                                               points: points, sizes: sizes, normaliser: normaliser, levels: 1, scale: nil)
        let queried = graph.binary(.add, c, attended, name: prefix + ".attn.out")
        guard weights.has(prefix + ".ffn.fc1.weight") else { return queried }
        // ConvFFN: linear, a depth-wise 3×3 conv on each level's map, GELU, linear.
        let hidden = try weights.shape(of: prefix + ".ffn.fc1.weight").first ?? 0
        var y = graph.linear(try layerNorm(queried, prefix + ".ffn_norm"), weight: try constant(prefix + ".ffn.fc1.weight", [hidden, width]),
                             bias: try constant(prefix + ".ffn.fc1.bias", [hidden]), name: prefix + ".ffn.fc1")
        let parts = levelMaps.indices.map { graph.freshName(prefix + ".ffn.level\($0 + 1)") }
        graph.emit(prefix + ".ffn.split", .split(SplitAttributes(axis: 1)), inputs: [y, levelTokens], outputs: parts)
        let kernel = try constant(prefix + ".ffn.dwconv.dwconv.weight", [hidden, 1, 3, 3])
        let bias = try constant(prefix + ".ffn.dwconv.dwconv.bias", [hidden])
        var depthwise = ConvAttributes.padded(1)
        depthwise.group = hidden
        let convolved = zip(parts, levelMaps).map { part, level -> String in
            let shape = graph.joined([graph.addConstant(part + ".channels", shape: [2], ints: [1, hidden]), graph.dimensions(level, 2, 4)],
                                     name: part + ".shape")
            let grid = graph.emitValue(named: part + ".grid", .reshape(ReshapeAttributes()),
                                       inputs: [graph.emitValue(named: part + ".channels_first", .transpose(TransposeAttributes(perm: [0, 2, 1])),
                                                                inputs: [part]), shape])
            return tokens(graph.conv(grid, weight: kernel, bias: bias, depthwise, name: part + ".dwconv"))
        }
        y = graph.emitValue(named: prefix + ".ffn.dwconv", .concat(ConcatAttributes(axis: 1)), inputs: convolved)
        y = graph.unary(Activation(function: .gelu), y, name: prefix + ".ffn.act")
        y = graph.linear(y, weight: try constant(prefix + ".ffn.fc2.weight", [width, hidden]), bias: try constant(prefix + ".ffn.fc2.bias", [width]),
                         name: prefix + ".ffn.fc2")
        return graph.binary(.add, queried, y, name: prefix + ".out")
    }

    /// Multi-scale deformable attention (`prefix.attn`): per query, head, level and point an
    /// offset (in pixels of the level) from the query's reference point and a softmax
    /// weight over levels × points; the value sampled bilinearly (zeros outside, corners
    /// not aligned) by one `deformableAttention`; `scale` (the injector's γ) folded into the
    /// output projection.
    mutating func deformableAttention(_ prefix: String, query: String, feat: String, points reference: String, sizes: String,
                                      normaliser: String, levels: Int, scale: String?) throws -> String {
        let attention = prefix + ".attn"
        let samples = deformableHeads * levels * self.points
        let value = graph.linear(feat, weight: try constant(attention + ".value_proj.weight", [valueWidth, width]),
                                 bias: try constant(attention + ".value_proj.bias", [valueWidth]), name: attention + ".value_proj")
        let offsets = graph.linear(query, weight: try constant(attention + ".sampling_offsets.weight", [2 * samples, width]),
                                   bias: try constant(attention + ".sampling_offsets.bias", [2 * samples]), name: attention + ".sampling_offsets")
        let logits = graph.linear(query, weight: try constant(attention + ".attention_weights.weight", [samples, width]),
                                  bias: try constant(attention + ".attention_weights.bias", [samples]), name: attention + ".attention_weights")
        let weightsPerHead = graph.emitValue(named: attention + ".weights", .softmax(SoftmaxAttributes(axis: -1)),
                                             inputs: [graph.reshaped(logits, [0, 0, deformableHeads, levels * self.points])])
        // Locations in 0…1: reference + offset / (w, h) of the level; the grid is 2·location − 1.
        let located = graph.binary(.add, reference, graph.binary(.div, graph.reshaped(offsets, [0, 0, deformableHeads, levels, self.points, 2]),
                                                                 normaliser, name: attention + ".offsets"), name: attention + ".locations")
        let grid = graph.binary(.sub, graph.binary(.mul, located, graph.addConstant(attention + ".two", shape: [], floats: [2]),
                                                   name: attention + ".grid.scaled"),
                                graph.addConstant(attention + ".one", shape: [], floats: [1]), name: attention + ".grid")
        let sampled = graph.emitValue(named: attention + ".sampled",
                                      .deformableAttention(DeformableAttentionAttributes(heads: deformableHeads, levelShapes: [],
                                                                                         sampling: GridSampleAttributes())),
                                      inputs: [value, grid, weightsPerHead, sizes])
        return try scaledLinear(sampled, attention + ".output_proj", scale: scale, input: valueWidth, output: width)
    }

    // MARK: Plan-time geometry (from the input's size)

    /// The (h, w) of each map [1, C, h, w], as deformableAttention's input 3: i64 [L, 2].
    mutating func levelSizes(_ maps: [String], name: String) -> String {
        graph.reshaped(graph.joined(maps.map { graph.dimensions($0, 2, 4) }, name: name + ".joined"), [maps.count, 2])
    }

    /// Each map's h·w: the token counts of the levels `c` concatenates, i64 [L].
    mutating func tokenCounts(_ maps: [String], name: String) -> String {
        graph.joined(maps.map { graph.binary(.mul, graph.dimensions($0, 2, 3), graph.dimensions($0, 3, 4), name: name + ".level") }, name: name)
    }

    /// The offset normaliser (w, h) per level, f32 [1, 1, 1, L, 1, 2].
    mutating func normaliser(_ maps: [String], name: String) -> String {
        let sizes = graph.joined(maps.flatMap { [graph.dimensions($0, 3, 4), graph.dimensions($0, 2, 3)] }, name: name + ".sizes")
        let floats = graph.emitValue(named: name + ".f", .cast(CastAttributes(to: .float32)), inputs: [sizes])
        return graph.reshaped(floats, [1, 1, 1, maps.count, 1, 2])
    }

    /// Pixel centres of each map's grid in 0…1 as (x, y), levels one after another, row-major:
    /// [1, Σ h·w, 1, 1, 1, 2] ((i + 0.5)/h, as the official code's linspace(0.5, h − 0.5)/h).
    mutating func referencePoints(_ maps: [String], name: String) -> String {
        var levels: [String] = []
        for (index, map) in maps.enumerated() {
            let level = "\(name).\(index)"
            func centres(_ axis: Int) -> String {
                let size = graph.dimensions(map, axis, axis + 1)
                let count = graph.emitValue(named: "\(level).\(axis).count", .squeeze(SqueezeAttributes(axes: [0])), inputs: [size])
                let positions = graph.emitValue(named: "\(level).\(axis).positions", .range,
                                                inputs: [graph.addConstant("\(level).zero", shape: [], ints: [0]), count,
                                                         graph.addConstant("\(level).step", shape: [], ints: [1])])
                let floats = graph.emitValue(named: "\(level).\(axis).f", .cast(CastAttributes(to: .float32)), inputs: [positions])
                let length = graph.emitValue(named: "\(level).\(axis).length", .cast(CastAttributes(to: .float32)), inputs: [size])
                return graph.binary(.div, graph.binary(.add, floats, graph.addConstant("\(level).half", shape: [], floats: [0.5]),
                                                       name: "\(level).\(axis).centres"), length, name: "\(level).\(axis).normalised")
            }
            let ys = graph.reshaped(centres(2), [-1, 1, 1]), xs = graph.reshaped(centres(3), [1, -1, 1])
            let zero = graph.addConstant(level + ".nothing", shape: [], floats: [0])
            // Each broadcast to [h, w, 1] by adding 0 × the other.
            let x = graph.binary(.add, xs, graph.binary(.mul, ys, zero, name: level + ".rows"), name: level + ".x")
            let y = graph.binary(.add, ys, graph.binary(.mul, xs, zero, name: level + ".columns"), name: level + ".y")
            levels.append(graph.reshaped(graph.emitValue(named: level, .concat(ConcatAttributes(axis: 2)), inputs: [x, y]), [-1, 2]))
        }
        let joined = levels.count == 1 ? levels[0] : graph.emitValue(named: name, .concat(ConcatAttributes(axis: 0)), inputs: levels)
        return graph.reshaped(joined, [1, -1, 1, 1, 1, 2])
    }

    // MARK: Pieces

    mutating func constant(_ name: String, _ shape: [Int], _ why: String? = nil) throws -> String {
        graph.addConstant(name, shape: shape, floats: try weights.floats(name, shape: shape, why: why ?? "a \(width)-channel ViT-Adapter"))
    }

    mutating func layerNorm(_ x: String, _ prefix: String) throws -> String {
        graph.emitValue(named: prefix, .layerNorm(LayerNormAttributes(axis: -1, epsilon: Self.epsilon)),
                        inputs: [x, try constant(prefix + ".weight", [width]), try constant(prefix + ".bias", [width])])
    }

    /// A linear whose output is multiplied by the per-channel `scale` (layer scale, γ), folded
    /// into its weight rows and bias; a plain linear when `scale` is nil or absent.
    mutating func scaledLinear(_ x: String, _ prefix: String, scale: String?, input: Int, output: Int) throws -> String {
        let why = "a \(width)-channel ViT-Adapter"
        var weight = try weights.floats(prefix + ".weight", shape: [output, input], why: why)
        var bias = try weights.floats(prefix + ".bias", shape: [output], why: why)
        if let scale, weights.has(scale) {
            let factors = try weights.floats(scale, shape: [output], why: "the scale of \(prefix)")
            for row in 0..<output {
                for column in 0..<input { weight[row * input + column] *= factors[row] }
                bias[row] *= factors[row]
            }
        }
        return graph.linear(x, weight: graph.addConstant(prefix + ".weight", shape: [output, input], floats: weight),
                            bias: graph.addConstant(prefix + ".bias", shape: [output], floats: bias), name: prefix)
    }

    /// conv (no bias) → BatchNorm (running statistics, ε 1e-5) → ReLU as one `conv`.
    mutating func convNorm(_ x: String, _ conv: String, _ norm: String, input: Int, output: Int, stride: Int) throws -> String {
        let why = "\(input) → \(output) channels of the spatial prior (conv_inplane \(priorWidth))"
        var weight = try weights.floats(conv + ".weight", shape: [output, input, 3, 3], why: why)
        let (scale, shift) = try batchNormAffine(norm, channels: output)
        let perOutput = input * 9
        for channel in 0..<output {
            for index in channel * perOutput..<(channel + 1) * perOutput { weight[index] *= scale[channel] }
        }
        var attributes = ConvAttributes.padded(1)
        attributes.window.strides = [stride, stride]
        attributes.activation = Activation(function: .relu)
        return graph.conv(x, weight: graph.addConstant(conv + ".weight", shape: [output, input, 3, 3], floats: weight),
                          bias: graph.addConstant(norm + ".shift", shape: [output], floats: shift), attributes, name: conv)
    }

    /// BatchNorm in evaluation (running statistics, ε 1e-5) as x·scale + shift per channel.
    mutating func batchNormAffine(_ norm: String, channels: Int) throws -> (scale: [Float], shift: [Float]) {
        let why = "a BatchNorm of \(channels) channels"
        let gamma = try weights.floats(norm + ".weight", shape: [channels], why: why)
        let beta = try weights.floats(norm + ".bias", shape: [channels], why: why)
        let mean = try weights.floats(norm + ".running_mean", shape: [channels], why: why)
        let variance = try weights.floats(norm + ".running_var", shape: [channels], why: why)
        let scale = (0..<channels).map { gamma[$0] / (variance[$0] + 1e-5).squareRoot() }
        return (scale, (0..<channels).map { beta[$0] - mean[$0] * scale[$0] })
    }

    /// A pyramid level's final BatchNorm, as a per-channel multiply and add.
    mutating func batchNorm(_ x: String, _ norm: String) throws -> String {
        let (scale, shift) = try batchNormAffine(norm, channels: width)
        let scaled = graph.binary(.mul, x, graph.addConstant(norm + ".scale", shape: [1, width, 1, 1], floats: scale), name: norm + ".scaled")
        return graph.binary(.add, scaled, graph.addConstant(norm + ".shift", shape: [1, width, 1, 1], floats: shift), name: norm)
    }

    /// A map [1, C, h, w] as tokens [1, h·w, C].
    mutating func tokens(_ map: String) -> String {
        graph.emitValue(named: map + ".tokens", .transpose(TransposeAttributes(perm: [0, 2, 1])), inputs: [graph.reshaped(map, [0, 0, -1])])
    }

    /// Tokens [1, h·w, C] as a map shaped like `like` [1, C, h, w].
    mutating func map(_ tokens: String, like: String, name: String) -> String {
        let channelsFirst = graph.emitValue(named: name + ".channels_first", .transpose(TransposeAttributes(perm: [0, 2, 1])), inputs: [tokens])
        return graph.emitValue(named: name, .reshape(ReshapeAttributes()), inputs: [channelsFirst, graph.dimensions(like, 0, 4)])
    }

    /// Slice `index` of axis 0 of `x`, that axis dropped.
    mutating func gathered(_ x: String, _ index: Int) -> String {
        graph.emitValue(named: x + ".\(index)", .gather(GatherAttributes(axis: 0)),
                        inputs: [x, graph.addConstant(x + ".index\(index)", shape: [], ints: [index])])
    }

    func strided(_ stride: Int) -> ConvAttributes {
        var attributes = ConvAttributes()
        attributes.window.strides = [stride, stride]
        return attributes
    }
}

import Format
import Foundation

/// transformers' `UperNetForSemanticSegmentation` with a Swin backbone, as `save_pretrained`
/// writes it and the hub publishes it (`openmmlab/upernet-swin-*`: config.json +
/// model.safetensors). Input `pixel_values` [1, 3, H, W], output `logits` [1, labels, H, W].
///
/// Names: the hub's (`backbone.encoder.layers.i.blocks.j.attention.self.query`, …) and those
/// of transformers ≥ 5.25's modules (`backbone.swin.encoder…attention.q_proj`, …) are both
/// read (`SwinNames`). The architecture comes from the shapes (embed width, blocks per stage,
/// heads from the relative position tables, the window from their size, the MLP width, the
/// stages the head reads from `backbone.hidden_states_norms`); config.json, when present,
/// must agree, and gives `layer_norm_eps`, `hidden_act` and `pool_scales`.
///
/// The graph emits Restore's fused ops directly: per block one `linear` to q | k | v, one
/// `windowAttention` (relative position bias, and for shifted blocks the shift mask, as its
/// bias), `linear`s for the output and the MLP (GELU fused), `layerNorm`s; UperNet's conv +
/// BatchNorm + ReLU modules are single `conv`s with the norm folded. Any H, W that are
/// multiples of patch × 2^(stages−1) × window (the `restore.multiple` recorded; rrun pads
/// to it) run: the shift masks, the pyramid pooling's matrices and the resize sizes are
/// shape arithmetic on the input's size.
///
/// One difference from transformers remains, at sizes where a stage is exactly one window
/// across: transformers then turns that stage's shift off, while this graph (like the
/// original Swin code at larger sizes and mmsegmentation's at every size) keeps it.
struct UperNetSwinTemplate: ArchitectureTemplate {
    var name: String { "upernet-swin" }
    var summary: String {
        "transformers UperNetForSemanticSegmentation + Swin (openmmlab/upernet-swin-*, hub or transformers ≥ 5.25 names; "
            + "pixel_values → logits)"
    }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains("decode_head.psp_modules.0.1.conv.weight")
            && SwinNames.transformersPrefixes(under: "backbone.").contains { names.contains($0 + "embeddings.patch_embeddings.projection.weight") }
    }

    /// The auxiliary FCN head only feeds a training loss; `num_batches_tracked` counts steps;
    /// `relative_position_index` is a buffer older checkpoints store, fixed by the window
    /// size; `layernorm` is the classification model's final norm, which the backbone
    /// (hence UperNet) never applies but transformers' save keeps.
    func isTrainingOnly(_ name: String) -> Bool {
        name.hasPrefix("auxiliary_head.") || name.hasSuffix(".num_batches_tracked")
            || name.hasSuffix(".relative_position_index")
            || SwinNames.transformersPrefixes(under: "backbone.").contains { name.hasPrefix($0 + "layernorm.") }
    }

    struct Settings: Decodable {
        struct Backbone: Decodable {
            var windowSize: Int?
            var layerNormEpsilon: Float?
            var hiddenActivation: String?
            var outFeatures: [String]?
            var absoluteEmbeddings: Bool?
            enum CodingKeys: String, CodingKey {
                case windowSize = "window_size", layerNormEpsilon = "layer_norm_eps", hiddenActivation = "hidden_act"
                case outFeatures = "out_features", absoluteEmbeddings = "use_absolute_embeddings"
            }

            /// Refuses the transformers Swin options the Swin builder does not build.
            func checkSupported(configFile: String) throws {
                if absoluteEmbeddings == true {
                    throw CheckpointError.badConfig(file: configFile, detail: "use_absolute_embeddings true is not supported (the hub's Swin backbones have none)")
                }
                if let hiddenActivation, hiddenActivation != "gelu" {
                    throw CheckpointError.badConfig(file: configFile, detail: "hidden_act '\(hiddenActivation)': the template builds Swin's GELU MLP")
                }
            }
        }

        var backbone: Backbone?
        var poolScales: [Int]?
        enum CodingKeys: String, CodingKey {
            case backbone = "backbone_config", poolScales = "pool_scales"
        }
    }

    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph {
        if options.truncation != nil {
            throw CheckpointError.badOption(file: weights.checkpoint.source, option: "--truncation",
                                            detail: "only BigGAN's templates take a truncation")
        }
        let settings = try config.decode(Settings.self)
        let configFile = config.file ?? "config.json"
        try settings.backbone?.checkSupported(configFile: configFile)
        return try UperNetSwin.build(&weights, names: SwinNames(weights, layout: .transformers), configFile: configFile,
                                     windowSize: settings.backbone?.windowSize, epsilon: settings.backbone?.layerNormEpsilon ?? 1e-5,
                                     poolScales: settings.poolScales ?? [1, 2, 3, 6], outFeatures: settings.backbone?.outFeatures)
    }
}

/// mmsegmentation's Swin + UperNet (`EncoderDecoder` with `SwinTransformer` and `UPerHead`),
/// its state dict as mmseg saves it under `state_dict` in a .pth, converted to safetensors
/// (scripts/pth_to_safetensors.py). Names: `backbone.patch_embed.projection`,
/// `backbone.stages.i.blocks.j.{norm1, attn.w_msa.{qkv, proj, relative_position_bias_table},
/// norm2, ffn.layers.{0.0, 1}}`, `backbone.stages.i.downsample.{norm, reduction}` (nn.Unfold
/// order), `backbone.norm{i}` on the output stages, `decode_head.*` with mmcv's ConvModule
/// (`conv`, `bn`) and `conv_seg`. There is no config: every size comes from the shapes, and
/// mmseg's defaults (LayerNorm ε 1e-5, GELU, pool scales 1, 2, 3, 6) apply. Like mmseg, the
/// graph shifts the odd blocks' windows at every size; the logits are resized to the input
/// as `EncoderDecoder` does. Input `pixel_values`, output `logits`.
struct MMSegUperNetSwinTemplate: ArchitectureTemplate {
    var name: String { "upernet-swin-mmseg" }
    var summary: String {
        "mmsegmentation SwinTransformer + UPerHead (a .pth's state_dict saved as safetensors; pixel_values → logits)"
    }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains("backbone.patch_embed.projection.weight") && names.contains("backbone.stages.0.blocks.0.attn.w_msa.qkv.weight")
            && names.contains("decode_head.conv_seg.weight")
    }

    /// The auxiliary FCN head only feeds a training loss; `relative_position_index` is a
    /// buffer mmseg stores, fixed by the window size.
    func isTrainingOnly(_ name: String) -> Bool {
        name.hasPrefix("auxiliary_head.") || name.hasSuffix(".num_batches_tracked") || name.hasSuffix(".relative_position_index")
    }

    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph {
        if options.truncation != nil {
            throw CheckpointError.badOption(file: weights.checkpoint.source, option: "--truncation",
                                            detail: "only BigGAN's templates take a truncation")
        }
        return try UperNetSwin.build(&weights, names: SwinNames(weights, layout: .mmseg), configFile: config.file ?? "config.json",
                                     windowSize: nil, epsilon: 1e-5, poolScales: [1, 2, 3, 6], outFeatures: nil)
    }
}

/// Swin + UperNet from either layout's names: pixel_values → logits at the input's size.
enum UperNetSwin {
    static func build(_ weights: inout CheckpointWeights, names: SwinNames, configFile: String, windowSize: Int?,
                      epsilon: Float, poolScales: [Int], outFeatures: [String]?) throws -> Graph {
        var swin = try SwinBuilder(weights: weights, names: names, configFile: configFile, windowSize: windowSize, epsilon: epsilon)
        if let outFeatures, outFeatures != swin.outputStages.map({ "stage\($0 + 1)" }) {
            throw CheckpointError.badConfig(file: configFile, detail: "backbone out_features \(outFeatures) disagree with the "
                                            + "checkpoint's hidden_states_norms (stages \(swin.outputStages.map { $0 + 1 }))")
        }
        let pixels = swin.graph.addInput("pixel_values", shape: [.fixed(1), .fixed(3), .symbol("height"), .symbol("width")])
        let features = try swin.backbone(pixels).features
        var head = UperNetHeadBuilder(weights: swin.weights, graph: swin.graph, norm: swin.names.convModuleNorm,
                                      classifier: swin.names.classifier, inChannels: swin.outputStages.map { swin.channels[$0] },
                                      poolScales: poolScales)
        let classified = try head.build(features)
        // The logits are at 1/patch of the (padded) input: F.interpolate to the input's size.
        head.graph.addOutput(head.graph.upsampledBilinear(classified, factor: swin.patch, name: "logits"))
        weights = head.weights
        var graph = head.graph.graph
        graph.metadata[RestorationContract.Settings.Key.multiple.rawValue] = String(swin.multiple)
        return graph
    }
}

/// Where a Swin + UperNet checkpoint keeps each tensor: the declarative name map of one
/// publisher's layout.
struct SwinNames {
    enum Layout {
        /// transformers: the hub's names (before 5.25, which `save_pretrained` still
        /// writes) or 5.25's module names, read alike.
        case transformers
        /// mmsegmentation's `SwinTransformer` + `UPerHead` (an `EncoderDecoder` state dict).
        case mmseg
        /// timm's `SwinTransformer` classifier.
        case timm
    }

    /// Where transformers' Swin backbone at module path `root` ("backbone." in UperNet)
    /// keeps `embeddings` and `encoder`: at `root`, under `swin.` (5.25's modules), or under
    /// `model.` (the layout early releases saved Mask2Former's backbone in, with the stage
    /// norms numbered `hidden_states_norms.0…` instead of `stage1…`).
    static func transformersPrefixes(under root: String) -> [String] { [root, root + "swin.", root + "model."] }
    /// Per block role, the layout's names (transformers: the hub's, then 5.25's).
    static let transformersBlock: [String: [String]] = [
        "query": ["attention.self.query", "attention.q_proj"],
        "key": ["attention.self.key", "attention.k_proj"],
        "value": ["attention.self.value", "attention.v_proj"],
        "table": ["attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"],
        "output": ["attention.output.dense", "attention.o_proj"],
        "fc1": ["intermediate.dense", "mlp.fc1"],
        "fc2": ["output.dense", "mlp.fc2"],
        "norm1": ["layernorm_before"],
        "norm2": ["layernorm_after"],
    ]
    /// mmseg's `SwinBlock`: `attn` is a `ShiftWindowMSA` around a `WindowMSA` (one q | k | v
    /// linear), `ffn` mmcv's FFN (Sequential(Sequential(Linear, GELU, Dropout), Linear, Dropout)).
    static let mmsegBlock: [String: [String]] = [
        "qkv": ["attn.w_msa.qkv"],
        "table": ["attn.w_msa.relative_position_bias_table"],
        "output": ["attn.w_msa.proj"],
        "fc1": ["ffn.layers.0.0"],
        "fc2": ["ffn.layers.1"],
        "norm1": ["norm1"],
        "norm2": ["norm2"],
    ]

    /// timm's `SwinTransformerBlock` (since timm 0.9 a stage's patch merging is its first
    /// module, `layers.i.downsample`; before, the last module of the stage before).
    static let timmBlock: [String: [String]] = [
        "qkv": ["attn.qkv"],
        "table": ["attn.relative_position_bias_table"],
        "output": ["attn.proj"],
        "fc1": ["mlp.fc1"],
        "fc2": ["mlp.fc2"],
        "norm1": ["norm1"],
        "norm2": ["norm2"],
    ]

    let layout: Layout
    /// transformers: the backbone's module path (`hidden_states_norms` sit there).
    let root: String
    /// transformers: where `embeddings` and `encoder` sit (`root`, or `root` + "swin.").
    let prefix: String
    private let names: Set<String>

    /// The names of `layout`; for transformers, of the Swin backbone at module path `root`
    /// (UperNet's "backbone.", Mask2Former's "model.pixel_level_module.encoder.").
    init(_ weights: CheckpointWeights, layout: Layout, root: String = "backbone.") {
        self.layout = layout
        self.root = root
        names = Set(weights.checkpoint.tensorNames)
        let names = self.names
        prefix = layout != .transformers ? "backbone."
            : Self.transformersPrefixes(under: root).first { names.contains($0 + "embeddings.patch_embeddings.projection.weight") } ?? root
    }

    /// The patch embedding's convolution and its norm.
    var patchProjection: String {
        switch layout {
        case .transformers: prefix + "embeddings.patch_embeddings.projection"
        case .mmseg: "backbone.patch_embed.projection"
        case .timm: "patch_embed.proj"
        }
    }

    var patchNorm: String {
        switch layout {
        case .transformers: prefix + "embeddings.norm"
        case .mmseg: "backbone.patch_embed.norm"
        case .timm: "patch_embed.norm"
        }
    }

    /// Patch merging after stage `stage` (`.norm`, `.reduction`).
    func merging(_ stage: Int) -> String {
        switch layout {
        case .transformers: "\(prefix)encoder.layers.\(stage).downsample"
        case .mmseg: "backbone.stages.\(stage).downsample"
        case .timm: names.contains("layers.0.downsample.reduction.weight") ? "layers.\(stage).downsample" : "layers.\(stage + 1).downsample"
        }
    }

    /// The LayerNorm on stage `stage`'s output, which the head reads (timm's classifier reads
    /// none: its `norm` follows the last stage).
    func stageNorm(_ stage: Int) -> String {
        switch layout {
        case .transformers: names.contains(root + "hidden_states_norms.0.weight")
            ? "\(root)hidden_states_norms.\(stage)" : "\(root)hidden_states_norms.stage\(stage + 1)"
        case .mmseg: "backbone.norm\(stage)"
        case .timm: "layers.\(stage).norm"
        }
    }

    /// Whether q, k and v are one linear (`qkv`) rather than three.
    var fusedProjection: Bool { layout != .transformers }

    /// The checkpoint's name of `role` in block `block` of stage `stage` (`suffix` "weight",
    /// "bias" or ""); the first spelling when the checkpoint has none, for the message.
    func block(_ stage: Int, _ block: Int, _ role: String, _ suffix: String = "weight") -> String {
        let (base, roles) = switch layout {
        case .transformers: ("\(prefix)encoder.layers.\(stage).blocks.\(block).", Self.transformersBlock)
        case .mmseg: ("backbone.stages.\(stage).blocks.\(block).", Self.mmsegBlock)
        case .timm: ("layers.\(stage).blocks.\(block).", Self.timmBlock)
        }
        let spellings = (roles[role] ?? [role]).map { base + $0 + (suffix.isEmpty ? "" : "." + suffix) }
        return spellings.first(where: names.contains) ?? spellings[0]
    }

    /// UperNet's head: the BatchNorm child of a conv module, and the classifier.
    var convModuleNorm: String { layout == .mmseg ? "bn" : "batch_norm" }
    var classifier: String { layout == .mmseg ? "decode_head.conv_seg" : "decode_head.classifier" }
}

/// Swin's backbone on a token grid [1, h, w, C] (channels last, so `linear` and `layerNorm`
/// act per token and `windowAttention` reads its input as is).
struct SwinBuilder {
    var weights: CheckpointWeights
    let names: SwinNames
    let configFile: String
    var graph = GraphBuilder()
    let epsilon: Float
    let patch: Int
    let depths: [Int]
    let channels: [Int]
    let heads: [Int]
    let window: Int
    /// The stages whose normalised maps the head reads (`hidden_states_norms.stageK`).
    let outputStages: [Int]

    var multiple: Int { (patch << (depths.count - 1)) * window }

    init(weights: CheckpointWeights, names: SwinNames, configFile: String, windowSize: Int?, epsilon: Float) throws {
        self.weights = weights
        self.names = names
        self.configFile = configFile
        self.epsilon = epsilon
        let file = weights.checkpoint.source
        let projection = names.patchProjection + ".weight"
        let embedding = try weights.shape(of: projection)
        guard embedding.count == 4, embedding[1] == 3, embedding[2] == embedding[3] else {
            throw CheckpointError.shapeMismatch(file: file, tensor: projection, expected: [-1, 3, -1, -1], found: embedding,
                                                why: "a square patch embedding of RGB pixels")
        }
        patch = embedding[2]
        var depths: [Int] = [], heads: [Int] = []
        var windows: Set<Int> = []
        while weights.has(names.block(depths.count, 0, "norm1")) {
            let stage = depths.count
            var depth = 0
            while weights.has(names.block(stage, depth, "norm1")) { depth += 1 }
            let table = names.block(stage, 0, "table", "")
            let tableShape = try weights.shape(of: table)
            let side = Int((Double(tableShape.first ?? 0).squareRoot()).rounded())
            guard tableShape.count == 2, side * side == tableShape[0], side % 2 == 1 else {
                throw CheckpointError.shapeMismatch(file: file, tensor: table, expected: [-1, -1], found: tableShape,
                                                    why: "a relative position table [(2·window − 1)², heads]")
            }
            windows.insert((side + 1) / 2)
            heads.append(tableShape[1])
            depths.append(depth)
        }
        guard !depths.isEmpty else { throw CheckpointError.missingTensor(file: file, tensor: names.block(0, 0, "norm1")) }
        guard windows.count == 1, let window = windows.first else {
            throw CheckpointError.badWeights(file: file, tensor: names.block(0, 0, "table", ""),
                                             detail: "the stages' relative position tables imply windows \(windows.sorted()); Swin has one")
        }
        if let windowSize, windowSize != window {
            let table = names.block(0, 0, "table", "")
            throw CheckpointError.shapeMismatch(file: file, tensor: table, expected: [(2 * windowSize - 1) * (2 * windowSize - 1), heads[0]],
                                                found: try weights.shape(of: table), why: "config window_size \(windowSize)")
        }
        self.window = window
        self.depths = depths
        self.heads = heads
        channels = depths.indices.map { embedding[0] << $0 }
        outputStages = depths.indices.filter { weights.has(names.stageNorm($0) + ".weight") }
        guard !outputStages.isEmpty || names.layout == .timm else {
            throw CheckpointError.missingTensor(file: file, tensor: names.stageNorm(depths.count - 1) + ".weight")
        }
    }

    mutating func constant(_ name: String, _ shape: [Int], _ why: String) throws -> String {
        graph.addConstant(name, shape: shape, floats: try weights.floats(name, shape: shape, why: why))
    }

    mutating func layerNorm(_ x: String, _ prefix: String, channels: Int) throws -> String {
        let why = "\(channels) channels"
        let scale = try constant(prefix + ".weight", [channels], why), bias = try constant(prefix + ".bias", [channels], why)
        return graph.emitValue(named: prefix, .layerNorm(LayerNormAttributes(axis: -1, epsilon: epsilon)), inputs: [x, scale, bias])
    }

    /// The feature maps [1, C, h, w] of the output stages, and the last stage's token grid
    /// [1, h, w, C].
    mutating func backbone(_ pixels: String) throws -> (features: [String], grid: String) {
        let projection = names.patchProjection
        let embed = channels[0]
        var patchify = ConvAttributes()
        patchify.window.strides = [patch, patch]
        let patches = graph.conv(pixels, weight: try constant(projection + ".weight", [embed, 3, patch, patch], "the patch embedding"),
                                 bias: try constant(projection + ".bias", [embed], "the patch embedding"), patchify, name: "patch_embed")
        var x = graph.emitValue(named: "tokens", .transpose(TransposeAttributes(perm: [0, 2, 3, 1])), inputs: [patches])
        x = try layerNorm(x, names.patchNorm, channels: embed)
        var features: [String] = []
        for stage in depths.indices {
            let mask = depths[stage] > 1 ? shiftMask(x, stage: stage) : nil
            for block in 0..<depths[stage] {
                x = try swinBlock(x, stage: stage, block: block, mask: block % 2 == 1 ? mask : nil)
            }
            if outputStages.contains(stage) {
                let norm = try layerNorm(x, names.stageNorm(stage), channels: channels[stage])
                features.append(graph.emitValue(named: "stage\(stage + 1)", .transpose(TransposeAttributes(perm: [0, 3, 1, 2])),
                                                inputs: [norm]))
            }
            if stage + 1 < depths.count { x = try patchMerging(x, stage: stage) }
        }
        return (features, x)
    }

    /// LN → q | k | v → window attention (shifted by window/2 on odd blocks) → output
    /// linear → residual; LN → MLP (GELU) → residual.
    mutating func swinBlock(_ input: String, stage: Int, block: Int, mask: String?) throws -> String {
        let width = channels[stage], heads = heads[stage]
        let name = "stage\(stage + 1).block\(block + 1)"
        func why(_ what: String) -> String { "\(what) of a \(width)-channel stage" }
        var x = try layerNorm(input, names.block(stage, block, "norm1", ""), channels: width)
        var qkvWeight: [Float] = [], qkvBias: [Float] = []
        // One linear to q | k | v (each heads × head width, as windowAttention reads them).
        let (roles, rows) = names.fusedProjection ? (["qkv"], 3 * width) : (["query", "key", "value"], width)
        for role in roles {
            qkvWeight += try weights.floats(names.block(stage, block, role), shape: [rows, width], why: why("a projection"))
            let bias = names.block(stage, block, role, "bias")
            qkvBias += weights.has(bias) ? try weights.floats(bias, shape: [rows], why: why("a projection")) : Array(repeating: 0, count: rows)
        }
        let qkv = graph.linear(x, weight: graph.addConstant(name + ".qkv.weight", shape: [3 * width, width], floats: qkvWeight),
                               bias: graph.addConstant(name + ".qkv.bias", shape: [3 * width], floats: qkvBias), name: name + ".qkv")
        let table = try weights.floats(names.block(stage, block, "table", ""), shape: [(2 * window - 1) * (2 * window - 1), heads],
                                       why: "window \(window) and the stage's \(heads) heads")
        var bias = graph.addConstant(name + ".position_bias", shape: [1, heads, window * window, window * window],
                                     floats: relativePositionBias(table, heads: heads))
        if let mask { bias = graph.binary(.add, bias, mask, name: name + ".bias") }
        let shift = mask == nil ? 0 : window / 2
        let attributes = WindowAttentionAttributes(windowSize: window, shift: shift, heads: heads,
                                                   scale: 1 / Float(width / heads).squareRoot())
        let attended = graph.emitValue(named: name + ".attention", .windowAttention(attributes), inputs: [qkv, bias])
        let output = names.block(stage, block, "output")
        x = graph.linear(attended, weight: try constant(output, [width, width], why("the attention output")),
                         bias: try constant(names.block(stage, block, "output", "bias"), [width], why("the attention output")),
                         name: name + ".proj")
        let residual = graph.binary(.add, input, x, name: name + ".attention.out")
        x = try layerNorm(residual, names.block(stage, block, "norm2", ""), channels: width)
        let hidden = try weights.shape(of: names.block(stage, block, "fc1"))
        guard hidden.count == 2 else {
            throw CheckpointError.shapeMismatch(file: weights.checkpoint.source, tensor: names.block(stage, block, "fc1"),
                                                expected: [-1, width], found: hidden, why: "a linear layer")
        }
        x = graph.linear(x, weight: try constant(names.block(stage, block, "fc1"), [hidden[0], width], why("the MLP")),
                         bias: try constant(names.block(stage, block, "fc1", "bias"), [hidden[0]], why("the MLP")),
                         activation: Activation(function: .gelu), name: name + ".fc1")
        x = graph.linear(x, weight: try constant(names.block(stage, block, "fc2"), [width, hidden[0]], why("the MLP")),
                         bias: try constant(names.block(stage, block, "fc2", "bias"), [width], why("the MLP")), name: name + ".fc2")
        return graph.binary(.add, residual, x, name: name + ".out")
    }

    /// The table [(2w−1)², heads] laid out as the bias [1, heads, w², w²]: tokens i, j of a
    /// window (row-major) read row (yᵢ − yⱼ + w − 1)·(2w − 1) + (xᵢ − xⱼ + w − 1).
    func relativePositionBias(_ table: [Float], heads: Int) -> [Float] {
        let tokens = window * window
        var bias = [Float](repeating: 0, count: heads * tokens * tokens)
        for i in 0..<tokens {
            for j in 0..<tokens {
                let row = (i / window - j / window + window - 1) * (2 * window - 1) + (i % window - j % window + window - 1)
                for head in 0..<heads { bias[(head * tokens + i) * tokens + j] = table[row * heads + head] }
            }
        }
        return bias
    }

    /// The shifted windows' mask [nW, 1, w², w²] for a grid of any size: −100 between tokens
    /// the roll brought together from different regions, 0 elsewhere. Only the last row and
    /// the last column of windows mix regions, so the four window kinds (last row or not ×
    /// last column or not) are a constant [2, 2, w², w²] that edge padding in front repeats
    /// to [h/w, w/w, w², w²] (h/w − 2 rows and w/w − 2 columns more) for the input's size.
    mutating func shiftMask(_ grid: String, stage: Int) -> String {
        let tokens = window * window, shift = window / 2
        // The region (0, 1, 2) of a window's row or column `index` along an axis, in a window
        // that is or is not the last one along it (the roll by −shift puts the grid's last
        // `shift` lines there).
        func region(_ index: Int, last: Bool) -> Int { last ? (index < window - shift ? 1 : 2) : 0 }
        var kinds = [Float](repeating: 0, count: 4 * tokens * tokens)
        for lastRow in 0..<2 {
            for lastColumn in 0..<2 {
                for i in 0..<tokens {
                    for j in 0..<tokens {
                        let a = 3 * region(i / window, last: lastRow == 1) + region(i % window, last: lastColumn == 1)
                        let b = 3 * region(j / window, last: lastRow == 1) + region(j % window, last: lastColumn == 1)
                        kinds[((lastRow * 2 + lastColumn) * tokens + i) * tokens + j] = a == b ? 0 : -100
                    }
                }
            }
        }
        let name = "stage\(stage + 1).shift_mask"
        let base = graph.addConstant(name + ".kinds", shape: [2, 2, tokens, tokens], floats: kinds)
        let windows = graph.integer(.div, graph.dimensions(grid, 1, 3), [window], name: name + ".windows")
        let pads = graph.joined([graph.integer(.sub, windows, [2], name: name + ".repeats"),
                                 graph.addConstant(name + ".pads.rest", shape: [6], ints: [0, 0, 0, 0, 0, 0])], name: name + ".pads")
        let grown = graph.emitValue(named: name + ".grid", .pad(PadAttributes(mode: .edge)), inputs: [base, pads])
        return graph.reshaped(grown, [-1, 1, tokens, tokens])
    }

    /// Patch merging: each 2 × 2 cell's tokens concatenated in transformers' order (rows
    /// 0, 1 of column 0, then of column 1), LN, then the reduction linear (no bias).
    /// mmseg gathers the cell with nn.Unfold instead, channel-major (c·4 + row·2 + column):
    /// its norm's and reduction's weights are permuted to this order, which changes nothing
    /// else since both act on the whole 4C vector.
    mutating func patchMerging(_ x: String, stage: Int) throws -> String {
        let width = channels[stage]
        let prefix = names.merging(stage)
        // [1, h, w, C] → [h/2, 2, w/2, 2, C] → [h/2, w/2, dx, dy, C] → [1, h/2, w/2, 4C].
        let rows = graph.reshaped(x, [-1, 2, 0, 0])
        let cells = graph.reshaped(rows, [0, 0, -1, 2, width])
        let ordered = graph.emitValue(named: prefix + ".order", .transpose(TransposeAttributes(perm: [0, 2, 3, 1, 4])), inputs: [cells])
        let merged = graph.emitValue(named: prefix + ".merged", .unsqueeze(UnsqueezeAttributes(axes: [0])),
                                     inputs: [graph.reshaped(ordered, [0, 0, 4 * width])])
        // source[p]: the stored element for position p = (column·2 + row)·C + c.
        let source = (0..<4 * width).map { position -> Int in
            let (cell, channel) = position.quotientAndRemainder(dividingBy: width)
            let (column, row) = cell.quotientAndRemainder(dividingBy: 2)
            return names.layout == .mmseg ? channel * 4 + row * 2 + column : position
        }
        let why = "patch merging of \(width) channels"
        let scale = try weights.floats(prefix + ".norm.weight", shape: [4 * width], why: why)
        let shift = try weights.floats(prefix + ".norm.bias", shape: [4 * width], why: why)
        let reduction = try weights.floats(prefix + ".reduction.weight", shape: [2 * width, 4 * width], why: why)
        var permuted = reduction
        for output in 0..<2 * width {
            for position in 0..<4 * width { permuted[output * 4 * width + position] = reduction[output * 4 * width + source[position]] }
        }
        let normed = graph.emitValue(named: prefix + ".norm", .layerNorm(LayerNormAttributes(axis: -1, epsilon: epsilon)),
                                     inputs: [merged, graph.addConstant(prefix + ".norm.weight", shape: [4 * width], floats: source.map { scale[$0] }),
                                              graph.addConstant(prefix + ".norm.bias", shape: [4 * width], floats: source.map { shift[$0] })])
        return graph.linear(normed, weight: graph.addConstant(prefix + ".reduction.weight", shape: [2 * width, 4 * width], floats: permuted),
                            name: prefix + ".reduction")
    }
}

/// UperNet's decode head (pyramid pooling on the last map, FPN over the others) as
/// transformers' `UperNetHead` and mmseg's `UPerHead` compute it, its conv + BatchNorm +
/// ReLU modules folded. `norm` is a conv module's BatchNorm child ("batch_norm" in
/// transformers, "bn" in mmseg), `classifier` the final 1×1 conv's name.
struct UperNetHeadBuilder {
    var weights: CheckpointWeights
    var graph: GraphBuilder
    let norm: String
    let classifier: String
    let inChannels: [Int]
    let poolScales: [Int]
    var hidden = 0

    mutating func build(_ features: [String]) throws -> String {
        let classifierShape = try weights.shape(of: classifier + ".weight")
        guard classifierShape.count == 4, classifierShape[2] == 1, classifierShape[3] == 1 else {
            throw CheckpointError.shapeMismatch(file: weights.checkpoint.source, tensor: classifier + ".weight",
                                                expected: [-1, -1, 1, 1], found: classifierShape, why: "a 1×1 classifier")
        }
        hidden = classifierShape[1]
        let levels = features.count
        var laterals = try (0..<levels - 1).map { try convModule(features[$0], "decode_head.lateral_convs.\($0)", input: inChannels[$0], kernel: 1) }
        // Pyramid pooling on the last map, then the bottleneck.
        let last = features[levels - 1]
        var pooled = [last]
        for (index, scale) in poolScales.enumerated() {
            let bins = graph.adaptiveAveragePool(last, bins: scale, name: "decode_head.psp.\(index).pool")
            let reduced = try convModule(bins, "decode_head.psp_modules.\(index).1", input: inChannels[levels - 1], kernel: 1)
            pooled.append(graph.resizedBilinear(reduced, like: last, name: "decode_head.psp.\(index).up"))
        }
        let joined = graph.emitValue(named: "decode_head.psp", .concat(ConcatAttributes(axis: 1)), inputs: pooled)
        laterals.append(try convModule(joined, "decode_head.bottleneck", input: inChannels[levels - 1] + poolScales.count * hidden, kernel: 3))
        // Top-down: each lateral plus the upsampled one above it.
        for level in stride(from: levels - 1, to: 0, by: -1) {
            let up = graph.resizedBilinear(laterals[level], like: laterals[level - 1], name: "decode_head.top_down.\(level)")
            laterals[level - 1] = graph.binary(.add, laterals[level - 1], up, name: "decode_head.lateral.\(level - 1)")
        }
        var outputs = try (0..<levels - 1).map { try convModule(laterals[$0], "decode_head.fpn_convs.\($0)", input: hidden, kernel: 3) }
        outputs.append(laterals[levels - 1])
        for level in 1..<levels {
            outputs[level] = graph.resizedBilinear(outputs[level], like: outputs[0], name: "decode_head.fpn.\(level).up")
        }
        let fused = graph.emitValue(named: "decode_head.fpn", .concat(ConcatAttributes(axis: 1)), inputs: outputs)
        let bottleneck = try convModule(fused, "decode_head.fpn_bottleneck", input: levels * hidden, kernel: 3)
        let labels = try weights.shape(of: classifier + ".weight")[0]
        let why = "\(hidden) channels into the classifier"
        return graph.conv(bottleneck,
                          weight: graph.addConstant(classifier + ".weight", shape: [labels, hidden, 1, 1],
                                                    floats: try weights.floats(classifier + ".weight", shape: [labels, hidden, 1, 1], why: why)),
                          bias: graph.addConstant(classifier + ".bias", shape: [labels],
                                                  floats: try weights.floats(classifier + ".bias", shape: [labels], why: why)),
                          name: classifier)
    }

    /// conv (no bias) → BatchNorm (evaluation: running statistics, ε 1e-5) → ReLU, as one
    /// `conv`: W·γ/√(var + ε), bias β − mean·γ/√(var + ε).
    mutating func convModule(_ x: String, _ prefix: String, input: Int, kernel: Int) throws -> String {
        let shape = [hidden, input, kernel, kernel]
        let why = "\(input) input channels, UperNet hidden_size \(hidden)"
        var weight = try weights.floats(prefix + ".conv.weight", shape: shape, why: why)
        let norm = prefix + "." + self.norm
        let gamma = try weights.floats(norm + ".weight", shape: [hidden], why: why)
        let beta = try weights.floats(norm + ".bias", shape: [hidden], why: why)
        let mean = try weights.floats(norm + ".running_mean", shape: [hidden], why: why)
        let variance = try weights.floats(norm + ".running_var", shape: [hidden], why: why)
        let perOutput = weight.count / hidden
        var bias = [Float](repeating: 0, count: hidden)
        for channel in 0..<hidden {
            let scale = gamma[channel] / (variance[channel] + 1e-5).squareRoot()
            for index in channel * perOutput..<(channel + 1) * perOutput { weight[index] *= scale }
            bias[channel] = beta[channel] - mean[channel] * scale
        }
        var attributes = ConvAttributes.padded(kernel / 2)
        attributes.activation = Activation(function: .relu)
        return graph.conv(x, weight: graph.addConstant(prefix + ".weight", shape: shape, floats: weight),
                          bias: graph.addConstant(prefix + ".bias", shape: [hidden], floats: bias), attributes, name: prefix)
    }
}

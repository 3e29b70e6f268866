import Foundation
import Format

/// transformers' `Mask2FormerForUniversalSegmentation` with a Swin backbone, as
/// `save_pretrained` writes it and the hub publishes it (`facebook/mask2former-swin-*`:
/// config.json + model.safetensors). Input `pixel_values` [1, 3, H, W]; outputs
/// `class_queries_logits` [1, queries, labels + 1] and `masks_queries_logits`
/// [1, queries, H/4, W/4], the last decoder layer's, as the publisher's forward returns them.
///
/// Names: `model.pixel_level_module.encoder.*` is the Swin backbone (read by the Swin
/// template's `SwinBuilder`, either block spelling, and also in the layout early transformers
/// releases saved, which some hub checkpoints keep: the backbone under `encoder.model.`, the
/// stage norms numbered `hidden_states_norms.0…`); `model.pixel_level_module.decoder.*` the
/// pixel decoder (1×1 input projections + GroupNorm on the three coarsest maps, their level
/// embeddings, the multi-scale deformable-attention encoder layers, the FPN's `adapter_k` /
/// `layer_k` convolutions + GroupNorm on the finer maps, `mask_projection`);
/// `model.transformer_module.*` the masked-attention decoder (query features and position
/// embeddings, level embeddings, per layer masked cross-attention, self-attention and FFN
/// with their LayerNorms, the shared `layernorm` and mask embedder MLP); `class_predictor`.
/// Sizes come from the shapes; config.json gives the attention heads (shared by the
/// deformable encoder and the decoder, which the shapes leave ambiguous against the points),
/// and must agree with the layer counts, the activation and the Swin window when it states them.
///
/// The graph emits Restore's fused ops: Swin's (`windowAttention`, `linear`, `layerNorm`), one
/// `deformableAttention` per encoder layer, one `attention` per decoder cross- and
/// self-attention (the cross-attention's bias is −∞ where sigmoid of the previous prediction's
/// mask logits, resized bilinearly to the level, is below 0.5, except on rows that would mask
/// everything, as transformers does), `instanceNorm` for GroupNorm, and the mask logits as one
/// `matMul` of the mask embeddings and the 1/4-resolution mask features (what `--head rgb`
/// finds). Sine position embeddings, reference points, the level sizes the deformable
/// attention reads and the split back into levels are shape arithmetic on the input's size,
/// so any multiple of patch × 2^(stages−1) × window runs (`restore.multiple`; rrun pads to it).
/// The Swin backbone's one difference from transformers (a stage exactly one window across
/// keeps its shift here) is the Swin template's.
struct Mask2FormerSwinTemplate: ArchitectureTemplate {
    static let backbone = "model.pixel_level_module.encoder."
    static let pixelDecoder = "model.pixel_level_module.decoder."
    static let transformer = "model.transformer_module."

    var name: String { "mask2former-swin" }
    var summary: String {
        "transformers Mask2FormerForUniversalSegmentation + Swin (facebook/mask2former-swin-*; "
            + "pixel_values → class_queries_logits, masks_queries_logits)"
    }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains(Self.transformer + "queries_features.weight")
            && SwinNames.transformersPrefixes(under: Self.backbone).contains {
                names.contains($0 + "embeddings.patch_embeddings.projection.weight")
            }
    }

    /// `criterion.*` holds the loss's class weights; `relative_position_index` is a buffer
    /// older checkpoints store, fixed by the window; the backbone's `layernorm` is the Swin
    /// classifier's final norm, which the backbone never applies.
    func isTrainingOnly(_ name: String) -> Bool {
        name.hasPrefix("criterion.") || name.hasSuffix(".num_batches_tracked") || name.hasSuffix(".relative_position_index")
            || SwinNames.transformersPrefixes(under: Self.backbone).contains { name.hasPrefix($0 + "layernorm.") }
    }

    struct Settings: Decodable {
        var backbone: UperNetSwinTemplate.Settings.Backbone?
        var attentionHeads: Int?
        var decoderLayers: Int?
        var encoderLayers: Int?
        var activation: String?
        var preNorm: Bool?
        enum CodingKeys: String, CodingKey {
            case backbone = "backbone_config", attentionHeads = "num_attention_heads", decoderLayers = "decoder_layers"
            case encoderLayers = "encoder_layers", activation = "activation_function", preNorm = "pre_norm"
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
        if settings.preNorm == true {
            throw CheckpointError.badConfig(file: configFile, detail: "pre_norm true: the template builds the decoder layers' post-norm form (the hub's)")
        }
        let activation: Activation
        switch settings.activation ?? "relu" {
        case "relu": activation = Activation(function: .relu)
        case "gelu": activation = Activation(function: .gelu)
        case let other: throw CheckpointError.badConfig(file: configFile, detail: "activation_function '\(other)': relu or gelu")
        }
        var swin = try SwinBuilder(weights: weights, names: SwinNames(weights, layout: .transformers, root: Self.backbone),
                                   configFile: configFile, windowSize: settings.backbone?.windowSize,
                                   epsilon: settings.backbone?.layerNormEpsilon ?? 1e-5)
        guard swin.outputStages.count >= 3 else {
            throw CheckpointError.missingTensor(file: weights.checkpoint.source,
                                                tensor: swin.names.stageNorm(swin.depths.count - 3) + ".weight")
        }
        let pixels = swin.graph.addInput("pixel_values", shape: [.fixed(1), .fixed(3), .symbol("height"), .symbol("width")])
        let features = try swin.backbone(pixels).features
        var builder = try Mask2FormerBuilder(weights: swin.weights, graph: swin.graph, configFile: configFile,
                                             heads: settings.attentionHeads ?? 8, activation: activation,
                                             featureChannels: swin.outputStages.map { swin.channels[$0] })
        if let layers = settings.encoderLayers, layers != builder.encoderLayers {
            throw CheckpointError.badConfig(file: configFile, detail: "encoder_layers \(layers), but the checkpoint has "
                                            + "\(builder.encoderLayers) pixel decoder encoder layers")
        }
        if let layers = settings.decoderLayers, layers - 1 != builder.decoderLayers {
            throw CheckpointError.badConfig(file: configFile, detail: "decoder_layers \(layers) (\(layers - 1) masked-attention layers), "
                                            + "but the checkpoint has \(builder.decoderLayers)")
        }
        let decoded = try builder.pixelDecoder(features)
        let (classes, masks) = try builder.transformerModule(levels: decoded.levels, maskFeatures: decoded.maskFeatures)
        builder.graph.addOutput(classes)
        builder.graph.addOutput(masks)
        weights = builder.weights
        var graph = builder.graph.graph
        graph.metadata[RestorationContract.Settings.Key.multiple.rawValue] = String(swin.multiple)
        return graph
    }
}

/// Mask2Former's pixel decoder and transformer module on the backbone's maps.
struct Mask2FormerBuilder {
    /// The deformable encoder's levels (transformers fixes them at 3: the coarsest maps).
    static let levelCount = 3

    var weights: CheckpointWeights
    var graph: GraphBuilder
    let configFile: String
    let heads: Int
    let activation: Activation
    /// Channels of the backbone maps, finest first.
    let featureChannels: [Int]
    /// The pixel decoder's width (config feature_size) and the decoder's (hidden_dim).
    let featureWidth: Int
    let hiddenWidth: Int
    let encoderLayers: Int
    let decoderLayers: Int
    let epsilon: Float = 1e-5

    init(weights: CheckpointWeights, graph: GraphBuilder, configFile: String, heads: Int, activation: Activation,
         featureChannels: [Int]) throws {
        self.weights = weights
        self.graph = graph
        self.configFile = configFile
        self.heads = heads
        self.activation = activation
        self.featureChannels = featureChannels
        let decoder = Mask2FormerSwinTemplate.pixelDecoder, transformer = Mask2FormerSwinTemplate.transformer
        let levelEmbedding = try weights.shape(of: decoder + "level_embed")
        guard levelEmbedding.count == 2, levelEmbedding[0] == Self.levelCount else {
            throw CheckpointError.shapeMismatch(file: weights.checkpoint.source, tensor: decoder + "level_embed",
                                                expected: [Self.levelCount, -1], found: levelEmbedding, why: "one embedding per encoder level")
        }
        featureWidth = levelEmbedding[1]
        let queries = try weights.shape(of: transformer + "queries_features.weight")
        guard queries.count == 2 else {
            throw CheckpointError.shapeMismatch(file: weights.checkpoint.source, tensor: transformer + "queries_features.weight",
                                                expected: [-1, -1], found: queries, why: "queries × hidden_dim")
        }
        hiddenWidth = queries[1]
        guard heads >= 1, featureWidth % heads == 0, hiddenWidth % heads == 0 else {
            throw CheckpointError.badConfig(file: configFile, detail: "num_attention_heads \(heads) does not divide feature_size "
                                            + "\(featureWidth) and hidden_dim \(hiddenWidth)")
        }
        var count = 0
        while weights.has(decoder + "encoder.layers.\(count).fc1.weight") { count += 1 }
        encoderLayers = count
        count = 0
        while weights.has(transformer + "decoder.layers.\(count).fc1.weight") { count += 1 }
        decoderLayers = count
        guard encoderLayers > 0 else { throw CheckpointError.missingTensor(file: weights.checkpoint.source, tensor: decoder + "encoder.layers.0.fc1.weight") }
        guard decoderLayers > 0 else { throw CheckpointError.missingTensor(file: weights.checkpoint.source, tensor: transformer + "decoder.layers.0.fc1.weight") }
    }

    // MARK: Weights into ops

    /// The graph constants made from checkpoint tensors, by tensor name: the decoder's shared
    /// LayerNorm and mask embedder are read by every layer's prediction.
    private var constants: [String: String] = [:]

    mutating func constant(_ name: String, _ shape: [Int], _ why: String) throws -> String {
        if let made = constants[name] { return made }
        let made = graph.addConstant(name, shape: shape, floats: try weights.floats(name, shape: shape, why: why))
        constants[name] = made
        return made
    }

    /// nn.Linear `prefix` (weight [outputs, inputs], bias [outputs]) on the last axis.
    mutating func linear(_ x: String, _ prefix: String, inputs: Int, outputs: Int, activation: Activation = .identity) throws -> String {
        let why = "\(inputs) → \(outputs) features"
        return graph.linear(x, weight: try constant(prefix + ".weight", [outputs, inputs], why),
                            bias: try constant(prefix + ".bias", [outputs], why), activation: activation, name: prefix)
    }

    mutating func layerNorm(_ x: String, _ prefix: String, channels: Int) throws -> String {
        let why = "\(channels) channels"
        let scale = try constant(prefix + ".weight", [channels], why), bias = try constant(prefix + ".bias", [channels], why)
        return graph.emitValue(named: prefix, .layerNorm(LayerNormAttributes(axis: -1, epsilon: epsilon)), inputs: [x, scale, bias])
    }

    /// nn.Conv2d `prefix` (square kernel, padding kernel/2, bias when the checkpoint has one).
    mutating func conv(_ x: String, _ prefix: String, inputs: Int, outputs: Int, kernel: Int,
                       activation: Activation = .identity) throws -> String {
        let why = "\(inputs) → \(outputs) channels"
        let bias = weights.has(prefix + ".bias") ? try constant(prefix + ".bias", [outputs], why) : nil
        var attributes = ConvAttributes.padded(kernel / 2)
        attributes.activation = activation
        return graph.conv(x, weight: try constant(prefix + ".weight", [outputs, inputs, kernel, kernel], why), bias: bias,
                          attributes, name: prefix)
    }

    /// nn.GroupNorm(32, C) `prefix` on [1, C, h, w] (ε 1e-5): one channel per group is
    /// `instanceNorm` with the affine; wider groups are normalised as [1, 32, C/32·h·w] and
    /// the affine applied per channel after.
    mutating func groupNorm(_ x: String, _ prefix: String, channels: Int, activation: Activation = .identity) throws -> String {
        let groups = 32
        guard channels % groups == 0 else {
            throw CheckpointError.shapeMismatch(file: weights.checkpoint.source, tensor: prefix + ".weight", expected: [channels],
                                                found: try weights.shape(of: prefix + ".weight"), why: "GroupNorm's 32 groups must divide the channels")
        }
        let why = "GroupNorm of \(channels) channels"
        var normed: String
        if channels == groups {
            normed = graph.emitValue(named: prefix, .instanceNorm(InstanceNormAttributes(epsilon: epsilon)),
                                     inputs: [x, try constant(prefix + ".weight", [channels], why), try constant(prefix + ".bias", [channels], why)])
        } else {
            let grouped = graph.reshaped(x, [0, groups, -1])
            let plain = graph.emitValue(named: prefix + ".groups", .instanceNorm(InstanceNormAttributes(epsilon: epsilon)),
                                        inputs: [grouped, graph.addConstant(prefix + ".ones", shape: [groups], floats: Array(repeating: 1, count: groups)),
                                                 graph.addConstant(prefix + ".zeros", shape: [groups], floats: Array(repeating: 0, count: groups))])
            let restored = graph.emitValue(named: prefix + ".view", .reshape(ReshapeAttributes()),
                                           inputs: [plain, graph.dimensions(x, 0, 4)])
            let scale = graph.addConstant(prefix + ".weight", shape: [channels, 1, 1],
                                          floats: try weights.floats(prefix + ".weight", shape: [channels], why: why))
            let shift = graph.addConstant(prefix + ".bias", shape: [channels, 1, 1],
                                          floats: try weights.floats(prefix + ".bias", shape: [channels], why: why))
            normed = graph.binary(.add, graph.binary(.mul, restored, scale, name: prefix + ".scaled"), shift, name: prefix)
        }
        if activation.function != .identity { normed = graph.unary(activation, normed, name: prefix + ".activation") }
        return normed
    }

    /// [1, C, h, w] → tokens [1, h·w, C] (row-major, as flatten(2).transpose(1, 2)).
    mutating func tokens(_ map: String, channels: Int) -> String {
        let last = graph.emitValue(named: map + ".nhwc", .transpose(TransposeAttributes(perm: [0, 2, 3, 1])), inputs: [map])
        return graph.reshaped(last, [1, -1, channels])
    }

    /// Tokens [1, L, heads·d] → [1, heads, L, d], as `attention` reads them.
    mutating func splitHeads(_ x: String, width: Int) -> String {
        graph.emitValue(named: x + ".heads", .transpose(TransposeAttributes(perm: [0, 2, 1, 3])),
                        inputs: [graph.reshaped(x, [1, -1, heads, width / heads])])
    }

    /// [1, heads, L, d] → tokens [1, L, heads·d].
    mutating func mergeHeads(_ x: String, width: Int) -> String {
        graph.reshaped(graph.emitValue(named: x + ".tokens", .transpose(TransposeAttributes(perm: [0, 2, 1, 3])), inputs: [x]),
                       [1, -1, width])
    }

    // MARK: Shape arithmetic on the input's size

    /// The size `size` (i64 [1]) as f32 [1].
    mutating func float(_ size: String, name: String) -> String {
        graph.emitValue(named: name, .cast(CastAttributes(to: .float32)), inputs: [size])
    }

    /// 0, 1, …, n − 1 as f32 [n], n = `size` (i64 [1]).
    mutating func positions(_ size: String, name: String) -> String {
        let scalar = graph.emitValue(named: name + ".n", .squeeze(SqueezeAttributes(axes: [0])), inputs: [size])
        let indices = graph.emitValue(named: name + ".i", .range, inputs: [graph.addConstant(name + ".zero", shape: [], ints: [0]), scalar,
                                                                          graph.addConstant(name + ".one", shape: [], ints: [1])])
        return graph.emitValue(named: name, .cast(CastAttributes(to: .float32)), inputs: [indices])
    }

    /// `a` and `b` (one [h, 1, k], the other [1, w, k]) each broadcast to [h, w, k], joined on
    /// the last axis (a first) and viewed as tokens [1, h·w, 2k].
    mutating func joinedOnGrid(_ a: String, _ b: String, features: Int, name: String) -> String {
        // Adding zeros shaped like the other operand broadcasts without changing a value.
        let zero = graph.addConstant(name + ".zero", shape: [1], floats: [0])
        let aZero = graph.binary(.mul, a, zero, name: name + ".a.zero"), bZero = graph.binary(.mul, b, zero, name: name + ".b.zero")
        let joined = graph.emitValue(named: name + ".joined", .concat(ConcatAttributes(axis: 2)),
                                     inputs: [graph.binary(.add, a, bZero, name: name + ".a"), graph.binary(.add, b, aZero, name: name + ".b")])
        return graph.reshaped(joined, [1, -1, 2 * features])
    }

    /// Mask2FormerSinePositionEmbedding (normalize, scale 2π, temperature 10000) of a map
    /// [1, C, h, w] with `features` per axis, as tokens [1, h·w, 2·features]: the y features,
    /// then the x features, feature k being sin(p / tₖ) for even k and cos(p / tₖ) for odd k,
    /// p = (i + 1) / (n + 10⁻⁶) · 2π along the axis, tₖ = 10000^(2⌊k/2⌋ / features).
    mutating func sinePositions(_ map: String, features: Int, name: String) -> String {
        let periods = (0..<features).map { Float(pow(Double(10000), Double(2 * ($0 / 2)) / Double(features))) }
        let even = (0..<features).map { Float($0 % 2 == 0 ? 1 : 0) }
        var embedded: [String] = []
        for (axis, label) in [(2, "y"), (3, "x")] {
            let axisName = "\(name).\(label)"
            let size = graph.dimensions(map, axis, axis + 1)
            let counted = graph.binary(.add, positions(size, name: axisName + ".index"),
                                       graph.addConstant(axisName + ".first", shape: [1], floats: [1]), name: axisName + ".cumulative")
            let denominator = graph.binary(.add, float(size, name: axisName + ".size"),
                                           graph.addConstant(axisName + ".epsilon", shape: [1], floats: [1e-6]), name: axisName + ".last")
            let normalised = graph.binary(.mul, graph.binary(.div, counted, denominator, name: axisName + ".unit"),
                                          graph.addConstant(axisName + ".scale", shape: [1], floats: [2 * Float.pi]), name: axisName + ".scaled")
            let column = graph.emitValue(named: axisName + ".column", .unsqueeze(UnsqueezeAttributes(axes: [1])), inputs: [normalised])
            let angles = graph.binary(.div, column, graph.addConstant(axisName + ".periods", shape: [1, features], floats: periods),
                                      name: axisName + ".angles")
            // Multiplying by 1 or 0 keeps the sine on even features and the cosine on odd ones exactly.
            let sines = graph.binary(.mul, graph.unary(Activation(function: .sin), angles, name: axisName + ".sin"),
                                     graph.addConstant(axisName + ".even", shape: [features], floats: even), name: axisName + ".sin.even")
            let cosines = graph.binary(.mul, graph.unary(Activation(function: .cos), angles, name: axisName + ".cos"),
                                       graph.addConstant(axisName + ".odd", shape: [features], floats: even.map { 1 - $0 }),
                                       name: axisName + ".cos.odd")
            embedded.append(graph.binary(.add, sines, cosines, name: axisName))
        }
        // y: [h, features] → [h, 1, features]; x: [w, features] → [1, w, features].
        let rows = graph.emitValue(named: name + ".y.rows", .unsqueeze(UnsqueezeAttributes(axes: [1])), inputs: [embedded[0]])
        let columns = graph.emitValue(named: name + ".x.columns", .unsqueeze(UnsqueezeAttributes(axes: [0])), inputs: [embedded[1]])
        return joinedOnGrid(rows, columns, features: features, name: name)
    }

    /// The encoder's reference points of a map [1, C, h, w]: each token's pixel centre
    /// ((j + 0.5)/w, (i + 0.5)/h), as tokens [1, h·w, 2].
    mutating func referencePoints(_ map: String, name: String) -> String {
        var centres: [String] = []
        for (axis, label) in [(3, "x"), (2, "y")] {
            let size = graph.dimensions(map, axis, axis + 1)
            let centre = graph.binary(.div, graph.binary(.add, positions(size, name: "\(name).\(label).index"),
                                                         graph.addConstant("\(name).\(label).half", shape: [1], floats: [0.5]),
                                                         name: "\(name).\(label).centre"),
                                      float(size, name: "\(name).\(label).size"), name: "\(name).\(label)")
            // x: [1, w, 1]; y: [h, 1, 1].
            centres.append(graph.emitValue(named: "\(name).\(label).view", .unsqueeze(UnsqueezeAttributes(axes: axis == 3 ? [0, 2] : [1, 2])),
                                           inputs: [centre]))
        }
        return joinedOnGrid(centres[0], centres[1], features: 1, name: name)
    }

    // MARK: Pixel decoder

    /// The deformable encoder over the three coarsest maps, then the FPN up to 1/4: the
    /// multi-scale features the transformer module reads (coarsest first, [1, F, h, w]) and
    /// the mask features [1, mask channels, H/4, W/4].
    mutating func pixelDecoder(_ features: [String]) throws -> (levels: [String], maskFeatures: String) {
        let prefix = Mask2FormerSwinTemplate.pixelDecoder
        let levels = Self.levelCount, width = featureWidth, stages = features.count
        let levelEmbedding = try weights.floats(prefix + "level_embed", shape: [levels, width], why: "feature_size \(width)")
        var maps: [String] = [], tokenParts: [String] = [], positionParts: [String] = [], references: [String] = []
        var sizes: [String] = [], counts: [String] = [], normalisers: [String] = []
        for level in 0..<levels {
            let stage = stages - 1 - level
            let projection = prefix + "input_projections.\(level)"
            let projected = try conv(features[stage], projection + ".0", inputs: featureChannels[stage], outputs: width, kernel: 1)
            let map = try groupNorm(projected, projection + ".1", channels: width)
            maps.append(map)
            tokenParts.append(tokens(map, channels: width))
            let name = "pixel_decoder.level\(level)"
            positionParts.append(graph.binary(.add, sinePositions(map, features: width / 2, name: name + ".position"),
                                              graph.addConstant(name + ".level_embed", shape: [width],
                                                                floats: Array(levelEmbedding[level * width..<(level + 1) * width])),
                                              name: name + ".position_embedding"))
            references.append(referencePoints(map, name: name + ".reference"))
            sizes.append(graph.dimensions(map, 2, 4))
            counts.append(graph.binary(.mul, graph.dimensions(map, 2, 3), graph.dimensions(map, 3, 4), name: name + ".tokens"))
            normalisers.append(graph.joined([graph.dimensions(map, 3, 4), graph.dimensions(map, 2, 3)], name: name + ".normaliser"))
        }
        var x = graph.emitValue(named: "pixel_decoder.tokens", .concat(ConcatAttributes(axis: 1)), inputs: tokenParts)
        let positions = graph.emitValue(named: "pixel_decoder.position_embedding", .concat(ConcatAttributes(axis: 1)), inputs: positionParts)
        let joinedReferences = graph.emitValue(named: "pixel_decoder.reference_points", .concat(ConcatAttributes(axis: 1)), inputs: references)
        let geometry = EncoderGeometry(
            references: graph.reshaped(joinedReferences, [1, -1, 1, 1, 1, 2]),
            normaliser: graph.reshaped(float(graph.joined(normalisers, name: "pixel_decoder.normaliser"), name: "pixel_decoder.normaliser.f"),
                                       [1, 1, 1, levels, 1, 2]),
            levelShapes: graph.reshaped(graph.joined(sizes, name: "pixel_decoder.level_shapes"), [levels, 2]))
        for layer in 0..<encoderLayers { x = try encoderLayer(x, positions: positions, geometry: geometry, layer: layer) }

        // Back to maps, coarsest first, then the FPN levels on the finer backbone maps.
        let parts = (0..<levels).map { graph.freshName("pixel_decoder.level\($0).encoded") }
        graph.emit("pixel_decoder.split", .split(SplitAttributes(axis: 1)),
                   inputs: [x, graph.joined(counts, name: "pixel_decoder.token_counts")], outputs: parts)
        var outputs = parts.enumerated().map { level, part in
            graph.emitValue(named: part + ".map", .reshape(ReshapeAttributes()),
                            inputs: [graph.emitValue(named: part + ".channels", .transpose(TransposeAttributes(perm: [0, 2, 1])), inputs: [part]),
                                     graph.dimensions(maps[level], 0, 4)])
        }
        let fpnLevels = stages - levels
        for stage in stride(from: fpnLevels - 1, through: 0, by: -1) {
            let lateral = try groupNorm(try conv(features[stage], prefix + "adapter_\(stage + 1).0", inputs: featureChannels[stage],
                                                 outputs: width, kernel: 1),
                                        prefix + "adapter_\(stage + 1).1", channels: width)
            let summed = graph.binary(.add, lateral, graph.resizedBilinear(outputs[outputs.count - 1], like: lateral,
                                                                           name: "pixel_decoder.fpn\(stage).up"),
                                      name: "pixel_decoder.fpn\(stage)")
            outputs.append(try groupNorm(try conv(summed, prefix + "layer_\(stage + 1).0", inputs: width, outputs: width, kernel: 3),
                                         prefix + "layer_\(stage + 1).1", channels: width, activation: Activation(function: .relu)))
        }
        let maskChannels = try weights.shape(of: prefix + "mask_projection.weight").first ?? 0
        let maskFeatures = try conv(outputs[outputs.count - 1], prefix + "mask_projection", inputs: width, outputs: maskChannels, kernel: 1)
        return (Array(outputs.prefix(levels)), maskFeatures)
    }

    /// What every encoder layer's deformable attention shares: the reference points
    /// [1, S, 1, 1, 1, 2], each level's (w, h) [1, 1, 1, L, 1, 2] and the level sizes (i64 [L, 2] of (h, w)).
    struct EncoderGeometry {
        var references: String
        var normaliser: String
        var levelShapes: String
    }

    /// Mask2FormerPixelDecoderEncoderLayer: multi-scale deformable self-attention (queries
    /// with position embeddings, values without), residual, LayerNorm; ReLU FFN, residual,
    /// LayerNorm.
    mutating func encoderLayer(_ x: String, positions: String, geometry: EncoderGeometry, layer: Int) throws -> String {
        let prefix = Mask2FormerSwinTemplate.pixelDecoder + "encoder.layers.\(layer)"
        let attention = prefix + ".self_attn"
        let width = featureWidth, levels = Self.levelCount
        let offsetRows = try weights.shape(of: attention + ".sampling_offsets.weight").first ?? 0
        guard offsetRows > 0, offsetRows % (heads * levels * 2) == 0 else {
            throw CheckpointError.shapeMismatch(file: weights.checkpoint.source, tensor: attention + ".sampling_offsets.weight",
                                                expected: [heads * levels * 4 * 2, width], found: try weights.shape(of: attention + ".sampling_offsets.weight"),
                                                why: "num_attention_heads \(heads) × \(levels) levels × points × 2")
        }
        let points = offsetRows / (heads * levels * 2)
        let query = graph.binary(.add, x, positions, name: attention + ".query")
        let value = try linear(x, attention + ".value_proj", inputs: width, outputs: width)
        let offsets = graph.reshaped(try linear(query, attention + ".sampling_offsets", inputs: width, outputs: offsetRows),
                                     [1, -1, heads, levels, points, 2])
        let logits = graph.reshaped(try linear(query, attention + ".attention_weights", inputs: width, outputs: heads * levels * points),
                                    [1, -1, heads, levels * points])
        let attentionWeights = graph.emitValue(named: attention + ".softmax", .softmax(SoftmaxAttributes(axis: -1)), inputs: [logits])
        // Sampling locations reference + offset / (w, h), as gridSample's grid: 2·location − 1.
        let locations = graph.binary(.add, geometry.references, graph.binary(.div, offsets, geometry.normaliser, name: attention + ".scaled_offsets"),
                                     name: attention + ".locations")
        let grid = graph.binary(.sub, graph.binary(.mul, locations, graph.addConstant(attention + ".two", shape: [1], floats: [2]),
                                                   name: attention + ".doubled"),
                                graph.addConstant(attention + ".one", shape: [1], floats: [1]), name: attention + ".grid")
        let sampled = graph.emitValue(named: attention, .deformableAttention(DeformableAttentionAttributes(heads: heads, levelShapes: [],
                                                                                                           sampling: GridSampleAttributes())),
                                      inputs: [value, grid, attentionWeights, geometry.levelShapes])
        let attended = try linear(sampled, attention + ".output_proj", inputs: width, outputs: width)
        var y = try layerNorm(graph.binary(.add, x, attended, name: prefix + ".attention.out"), prefix + ".self_attn_layer_norm", channels: width)
        let hidden = try weights.shape(of: prefix + ".fc1.weight").first ?? 0
        let expanded = try linear(y, prefix + ".fc1", inputs: width, outputs: hidden, activation: Activation(function: .relu))
        let contracted = try linear(expanded, prefix + ".fc2", inputs: hidden, outputs: width)
        y = try layerNorm(graph.binary(.add, y, contracted, name: prefix + ".ffn.out"), prefix + ".final_layer_norm", channels: width)
        return y
    }

    // MARK: Transformer module

    /// The masked-attention decoder on the multi-scale features (coarsest first): the last
    /// layer's class logits and mask logits, named as the publisher's forward names them.
    mutating func transformerModule(levels: [String], maskFeatures: String) throws -> (classes: String, masks: String) {
        let prefix = Mask2FormerSwinTemplate.transformer
        let width = hiddenWidth
        let levelEmbedding = try weights.floats(prefix + "level_embed.weight", shape: [Self.levelCount, width], why: "hidden_dim \(width)")
        var sources: [String] = [], positions: [String] = []
        for (index, map) in levels.enumerated() {
            let projection = prefix + "input_projections.\(index)"
            var projected = map
            if weights.has(projection + ".weight") {
                projected = try conv(map, projection, inputs: featureWidth, outputs: width, kernel: 1)
            } else if featureWidth != width {
                throw CheckpointError.missingTensor(file: weights.checkpoint.source, tensor: projection + ".weight")
            }
            let name = "transformer.level\(index)"
            sources.append(graph.binary(.add, tokens(projected, channels: width),
                                        graph.addConstant(name + ".level_embed", shape: [width],
                                                          floats: Array(levelEmbedding[index * width..<(index + 1) * width])),
                                        name: name + ".source"))
            positions.append(sinePositions(map, features: width / 2, name: name + ".position"))
        }
        let queryShape = try weights.shape(of: prefix + "queries_features.weight")
        let why = "queries × hidden_dim \(width)"
        let queryPositions = graph.addConstant(prefix + "queries_embedder.weight", shape: [1] + queryShape,
                                               floats: try weights.floats(prefix + "queries_embedder.weight", shape: queryShape, why: why))
        var hidden = graph.addConstant(prefix + "queries_features.weight", shape: [1] + queryShape,
                                       floats: try weights.floats(prefix + "queries_features.weight", shape: queryShape, why: why))
        let maskChannels = try weights.shape(of: Mask2FormerSwinTemplate.pixelDecoder + "mask_projection.weight").first ?? 0
        let flatFeatures = graph.reshaped(maskFeatures, [1, maskChannels, -1])
        let decoder = prefix + "decoder"
        var normed = try layerNorm(hidden, decoder + ".layernorm", channels: width)
        // Each layer attends where the previous prediction's masks (resized to its level) allow.
        var prediction = try predictMasks(normed, maskFeatures: maskFeatures, flatFeatures: flatFeatures, maskChannels: maskChannels,
                                          target: levels[0], name: "transformer.prediction0")
        for layer in 0..<decoderLayers {
            let level = layer % Self.levelCount
            guard let bias = prediction.bias else { break }
            hidden = try decoderLayer(hidden, queryPositions: queryPositions, source: sources[level], position: positions[level],
                                      bias: bias, layer: layer)
            normed = try layerNorm(hidden, decoder + ".layernorm", channels: width)
            let last = layer == decoderLayers - 1
            prediction = try predictMasks(normed, maskFeatures: maskFeatures, flatFeatures: flatFeatures, maskChannels: maskChannels,
                                          target: last ? nil : levels[(layer + 1) % Self.levelCount],
                                          name: last ? "masks_queries_logits" : "transformer.prediction\(layer + 1)")
        }
        let labels = try weights.shape(of: "class_predictor.weight").first ?? 0
        let classes = graph.linear(normed, weight: try constant("class_predictor.weight", [labels, width], "labels + 1 classes of hidden_dim \(width)"),
                                   bias: try constant("class_predictor.bias", [labels], "labels + 1 classes"), name: "class_queries_logits")
        return (classes, prediction.masks)
    }

    /// Mask2FormerMaskPredictor: the mask embedder MLP, the mask logits
    /// einsum("bqc,bchw->bqhw") as one matMul [1, Q, M]·[1, M, h·w] viewed as [1, Q, h, w],
    /// and, for the next layer's level `target`, the cross-attention bias [1, 1, Q, h·w]:
    /// −∞ where sigmoid of the logits resized to the level is below 0.5, 0 elsewhere and on
    /// rows that would be all −∞.
    mutating func predictMasks(_ normed: String, maskFeatures: String, flatFeatures: String, maskChannels: Int, target: String?,
                               name: String) throws -> (masks: String, bias: String?) {
        let embedder = Mask2FormerSwinTemplate.transformer + "decoder.mask_predictor.mask_embedder"
        let width = hiddenWidth
        var embedded = try linear(normed, embedder + ".0.0", inputs: width, outputs: width, activation: Activation(function: .relu))
        embedded = try linear(embedded, embedder + ".1.0", inputs: width, outputs: width, activation: Activation(function: .relu))
        embedded = try linear(embedded, embedder + ".2.0", inputs: width, outputs: maskChannels)
        let product = graph.emitValue(named: name + ".product", .matMul, inputs: [embedded, flatFeatures])
        let masks = graph.emitValue(named: name, .reshape(ReshapeAttributes()),
                                    inputs: [product, graph.joined([graph.dimensions(embedded, 0, 2), graph.dimensions(maskFeatures, 2, 4)],
                                                                   name: name + ".shape")])
        guard let target else { return (masks, nil) }
        let resized = graph.reshaped(graph.resizedBilinear(masks, like: target, name: name + ".resized"), [1, 0, -1])
        let masked = graph.binary(.less, graph.unary(Activation(function: .sigmoid), resized, name: name + ".sigmoid"),
                                  graph.addConstant(name + ".threshold", shape: [1], floats: [0.5]), name: name + ".masked")
        let coverage = graph.emitValue(named: name + ".coverage", .reduce(ReduceAttributes(function: .min, axes: [-1], keepDims: true)),
                                       inputs: [graph.emitValue(named: name + ".masked.f", .cast(CastAttributes(to: .float32)), inputs: [masked])])
        let rowKept = graph.binary(.less, coverage, graph.addConstant(name + ".all", shape: [1], floats: [0.5]), name: name + ".row_kept")
        let bias = graph.emitValue(named: name + ".bias", .where,
                                   inputs: [graph.binary(.and, masked, rowKept, name: name + ".excluded"),
                                            graph.addConstant(name + ".minus_infinity", shape: [1], floats: [-.infinity]),
                                            graph.addConstant(name + ".zero", shape: [1], floats: [0])])
        return (masks, graph.emitValue(named: name + ".bias.heads", .unsqueeze(UnsqueezeAttributes(axes: [1])), inputs: [bias]))
    }

    /// Mask2FormerMaskedAttentionDecoderLayer (post-norm): masked cross-attention
    /// (nn.MultiheadAttention; queries and keys with their position embeddings), residual,
    /// LayerNorm; self-attention (queries and keys with the query positions), residual,
    /// LayerNorm; FFN, residual, LayerNorm.
    mutating func decoderLayer(_ x: String, queryPositions: String, source: String, position: String, bias: String,
                               layer: Int) throws -> String {
        let prefix = Mask2FormerSwinTemplate.transformer + "decoder.layers.\(layer)"
        let width = hiddenWidth, scale = 1 / Float(width / heads).squareRoot()
        let cross = prefix + ".cross_attn"
        let why = "nn.MultiheadAttention of hidden_dim \(width)"
        let inWeight = try weights.floats(cross + ".in_proj_weight", shape: [3 * width, width], why: why)
        let inBias = try weights.floats(cross + ".in_proj_bias", shape: [3 * width], why: why)
        func projection(_ input: String, _ index: Int, _ role: String) -> String {
            graph.linear(input, weight: graph.addConstant(cross + ".\(role).weight", shape: [width, width],
                                                          floats: Array(inWeight[index * width * width..<(index + 1) * width * width])),
                         bias: graph.addConstant(cross + ".\(role).bias", shape: [width], floats: Array(inBias[index * width..<(index + 1) * width])),
                         name: cross + ".\(role)")
        }
        let crossQuery = projection(graph.binary(.add, x, queryPositions, name: cross + ".query.input"), 0, "query")
        let crossKey = projection(graph.binary(.add, source, position, name: cross + ".key.input"), 1, "key")
        let crossValue = projection(source, 2, "value")
        let crossAttended = graph.emitValue(named: cross, .attention(AttentionAttributes(scale: scale)),
                                            inputs: [splitHeads(crossQuery, width: width), splitHeads(crossKey, width: width),
                                                     splitHeads(crossValue, width: width), bias])
        let crossOut = try linear(mergeHeads(crossAttended, width: width), cross + ".out_proj", inputs: width, outputs: width)
        var y = try layerNorm(graph.binary(.add, x, crossOut, name: cross + ".residual"), prefix + ".cross_attn_layer_norm", channels: width)

        let attention = prefix + ".self_attn"
        let positioned = graph.binary(.add, y, queryPositions, name: attention + ".input")
        let query = try linear(positioned, attention + ".q_proj", inputs: width, outputs: width)
        let key = try linear(positioned, attention + ".k_proj", inputs: width, outputs: width)
        let value = try linear(y, attention + ".v_proj", inputs: width, outputs: width)
        let attended = graph.emitValue(named: attention, .attention(AttentionAttributes(scale: scale)),
                                       inputs: [splitHeads(query, width: width), splitHeads(key, width: width), splitHeads(value, width: width)])
        let selfOut = try linear(mergeHeads(attended, width: width), attention + ".out_proj", inputs: width, outputs: width)
        y = try layerNorm(graph.binary(.add, y, selfOut, name: attention + ".residual"), prefix + ".self_attn_layer_norm", channels: width)

        let hidden = try weights.shape(of: prefix + ".fc1.weight").first ?? 0
        let expanded = try linear(y, prefix + ".fc1", inputs: width, outputs: hidden, activation: activation)
        let contracted = try linear(expanded, prefix + ".fc2", inputs: hidden, outputs: width)
        return try layerNorm(graph.binary(.add, y, contracted, name: prefix + ".ffn.out"), prefix + ".final_layer_norm", channels: width)
    }
}

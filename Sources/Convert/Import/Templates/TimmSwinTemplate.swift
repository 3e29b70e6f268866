import Format

/// timm's `SwinTransformer` image classifier as timm saves it (`patch_embed.proj`,
/// `layers.i.blocks.j.{norm1, attn.{qkv, proj, relative_position_bias_table}, norm2,
/// mlp.{fc1, fc2}}`, `layers.i.downsample` — at the start of stage i since timm 0.9, at the
/// end of stage i before — then `norm` and `head.fc` (`head` before 0.9)). Input
/// `pixel_values` [1, 3, H, W], output `logits` [1, classes]: the last stage's tokens
/// normalised, averaged over the grid, through the classifier.
///
/// Every size comes from the shapes; timm's defaults (LayerNorm ε 1e-5, GELU) apply. The
/// Swin blocks are the ones the UperNet templates build (`SwinBuilder`), with the same fused
/// ops. timm builds its shift masks for the image size it was created with; this graph
/// builds them for the input's size, so it runs at any multiple of patch × 2^(stages−1) ×
/// window. As with transformers, timm turns a stage's shift off where the stage is one
/// window across, and this graph keeps it.
struct TimmSwinTemplate: ArchitectureTemplate {
    var name: String { "swin-timm" }
    var summary: String { "timm SwinTransformer classifier (patch_embed, layers.i.blocks.j, norm, head.fc; pixel_values → logits)" }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains("patch_embed.proj.weight") && names.contains("layers.0.blocks.0.attn.qkv.weight")
    }

    /// `relative_position_index` is fixed by the window size; `attn_mask`, which older timm
    /// stored, is the shift mask for the size the model was created with (this graph makes
    /// its own for the input's size).
    func isTrainingOnly(_ name: String) -> Bool {
        name.hasSuffix(".relative_position_index") || name.hasSuffix(".attn_mask")
    }

    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph {
        if options.truncation != nil {
            throw CheckpointError.badOption(file: weights.checkpoint.source, option: "--truncation",
                                            detail: "only BigGAN's templates take a truncation")
        }
        var swin = try SwinBuilder(weights: weights, names: SwinNames(weights, layout: .timm), configFile: config.file ?? "config.json",
                                   windowSize: nil, epsilon: 1e-5)
        let pixels = swin.graph.addInput("pixel_values", shape: [.fixed(1), .fixed(3), .symbol("height"), .symbol("width")])
        let grid = try swin.backbone(pixels).grid
        let width = swin.channels[swin.channels.count - 1]
        let normed = try swin.layerNorm(grid, "norm", channels: width)
        let pooled = swin.graph.emitValue(named: "pooled", .reduce(ReduceAttributes(function: .mean, axes: [1, 2], keepDims: false)),
                                          inputs: [normed])
        let head = swin.weights.has("head.fc.weight") ? "head.fc" : "head"
        let classifier = try swin.weights.shape(of: head + ".weight")
        guard classifier.count == 2, classifier[1] == width else {
            throw CheckpointError.shapeMismatch(file: swin.weights.checkpoint.source, tensor: head + ".weight",
                                                expected: [classifier.first ?? -1, width], found: classifier,
                                                why: "a classifier of the last stage's \(width) channels")
        }
        let why = "\(classifier[0]) classes of \(width) channels"
        let logits = swin.graph.linear(pooled, weight: try swin.constant(head + ".weight", classifier, why),
                                       bias: try swin.constant(head + ".bias", [classifier[0]], why), name: "logits")
        swin.graph.addOutput(logits)
        weights = swin.weights
        var graph = swin.graph.graph
        graph.metadata[RestorationContract.Settings.Key.multiple.rawValue] = String(swin.multiple)
        return graph
    }
}

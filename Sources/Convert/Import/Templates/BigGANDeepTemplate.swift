import Format
import Foundation

/// BigGAN-deep's generator as pytorch-pretrained-biggan publishes it: `config.json`
/// (output_dim, z_dim, channel_width, num_classes, layers as [upsample, in, out] channel
/// multipliers, attention_layer_position, eps, n_stats) and its state dict's names.
///
/// Inputs `z` [batch, z_dim] and `class_vector` [batch, num_classes]; output `image`
/// [batch, 3, output_dim, output_dim] in −1…1, as the package's `BigGAN.forward(z, class_label,
/// truncation)` computes it. What its forward computes per call from constants is done here
/// once:
/// - spectral norm (`weight_orig`, `weight_u`, `weight_v`): evaluation mode uses the stored
///   vectors, W = W_orig / σ with σ = uᵀ·W_orig·v (W_orig viewed as [out, -1]);
/// - the batch norms' 51-row statistics tables: the row for `--truncation` t is picked, or two
///   rows blended, exactly as the package does (t / step = k + f: row k·f + row k+1·(1 − f),
///   its own order of the weights);
/// - a conditional batch norm, (x − m)/√(v + ε)·(1 + s(c)) + o(c) with s, o linear in the
///   condition c, is x·a(c) + b(c) where a and b are linear in c with folded weights, so each
///   becomes one `linear` per norm;
/// - the attention's γ scales its output convolution, and only the 3 channels the package
///   keeps of `conv_to_rgb` are computed.
struct BigGANDeepTemplate: ArchitectureTemplate {
    var name: String { "biggan-deep" }
    var summary: String {
        "BigGAN-deep generator, pytorch-pretrained-biggan names and config.json (z, class_vector → image; --truncation)"
    }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains("embeddings.weight") && names.contains("generator.gen_z.weight_orig")
    }

    /// Nothing in the package's state dict is training-only; a BatchNorm counter would be.
    func isTrainingOnly(_ name: String) -> Bool { name.hasSuffix(".num_batches_tracked") }

    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph {
        let settings = try config.decode(BigGANDeepConfig.self)
        try settings.check(file: config.file ?? "config.json")
        let truncation = options.truncation ?? 1
        guard truncation > 0, truncation <= 1 else {
            throw CheckpointError.badOption(file: weights.checkpoint.source, option: "--truncation",
                                            detail: "BigGAN's truncation is in (0, 1], found \(truncation)")
        }
        var builder = BigGANDeepBuilder(weights: weights, settings: settings, truncation: truncation)
        try builder.buildGenerator()
        weights = builder.weights
        var graph = builder.graph.graph
        graph.metadata["convert.truncation"] = String(truncation)
        graph.metadata[Graph.spectralNormKey] = Graph.spectralNormNote(builder.spectralNorms)
        return graph
    }
}

/// pytorch-pretrained-biggan's `BigGANConfig`, with its defaults (the 128×128 model).
struct BigGANDeepConfig: Decodable {
    struct Layer: Decodable {
        var upsample: Bool
        var inputMultiplier: Int
        var outputMultiplier: Int

        init(_ upsample: Bool, _ input: Int, _ output: Int) {
            (self.upsample, inputMultiplier, outputMultiplier) = (upsample, input, output)
        }

        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            upsample = try container.decode(Bool.self)
            inputMultiplier = try container.decode(Int.self)
            outputMultiplier = try container.decode(Int.self)
        }
    }

    var outputDim = 128
    var zDim = 128
    var channelWidth = 128
    var numClasses = 1000
    var layers: [Layer] = [Layer(false, 16, 16), Layer(true, 16, 16), Layer(false, 16, 16), Layer(true, 16, 8),
                           Layer(false, 8, 8), Layer(true, 8, 4), Layer(false, 4, 4), Layer(true, 4, 2),
                           Layer(false, 2, 2), Layer(true, 2, 1)]
    var attentionLayerPosition = 8
    var eps: Float = 1e-4
    var nStats = 51

    enum CodingKeys: String, CodingKey {
        case outputDim = "output_dim", zDim = "z_dim", channelWidth = "channel_width", numClasses = "num_classes"
        case layers, attentionLayerPosition = "attention_layer_position", eps, nStats = "n_stats"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        outputDim = try container.decodeIfPresent(Int.self, forKey: .outputDim) ?? outputDim
        zDim = try container.decodeIfPresent(Int.self, forKey: .zDim) ?? zDim
        channelWidth = try container.decodeIfPresent(Int.self, forKey: .channelWidth) ?? channelWidth
        numClasses = try container.decodeIfPresent(Int.self, forKey: .numClasses) ?? numClasses
        layers = try container.decodeIfPresent([Layer].self, forKey: .layers) ?? layers
        attentionLayerPosition = try container.decodeIfPresent(Int.self, forKey: .attentionLayerPosition)
            ?? attentionLayerPosition
        eps = try container.decodeIfPresent(Float.self, forKey: .eps) ?? eps
        nStats = try container.decodeIfPresent(Int.self, forKey: .nStats) ?? nStats
    }

    /// Refuses a config the package's own forward could not run (or this template would
    /// read out of range), naming the setting.
    func check(file: String) throws {
        func require(_ condition: Bool, _ detail: String) throws {
            if !condition { throw CheckpointError.badConfig(file: file, detail: detail) }
        }
        try require(zDim > 0 && channelWidth > 0 && numClasses > 0, "z_dim, channel_width and num_classes must be positive")
        try require(nStats >= 2, "n_stats must be at least 2, found \(nStats)")
        try require(!layers.isEmpty, "layers is empty")
        try require(eps > 0, "eps must be positive, found \(eps)")
        var channels = 16
        var size = 4
        for (index, layer) in layers.enumerated() {
            try require(layer.inputMultiplier == channels, "layers[\(index)] takes \(layer.inputMultiplier)×channel_width "
                        + "channels, the layer before gives \(channels)×")
            try require(layer.outputMultiplier == channels || layer.outputMultiplier * 2 == channels,
                        "layers[\(index)]: a block keeps or halves its channels (\(channels) → \(layer.outputMultiplier))")
            try require(channelWidth * layer.inputMultiplier % 4 == 0 && channelWidth * layer.inputMultiplier >= 8,
                        "layers[\(index)]: \(channelWidth * layer.inputMultiplier) channels are not a multiple of 4 (and ≥ 8)")
            channels = layer.outputMultiplier
            if layer.upsample { size *= 2 }
        }
        try require(channels == 1, "the last layer must end at 1×channel_width channels, found \(channels)×")
        try require(channelWidth >= 3, "channel_width must be at least 3 (the RGB channels)")
        try require(size == outputDim, "layers upsample 4×4 to \(size)×\(size), output_dim is \(outputDim)")
        try require(attentionLayerPosition < 0 || attentionLayerPosition >= layers.count
                        || channelWidth * layers[attentionLayerPosition].inputMultiplier % 8 == 0,
                    "the attention layer's channels must be a multiple of 8")
    }
}

/// Emits the generator node by node, reading tensors by their package names.
private struct BigGANDeepBuilder {
    var weights: CheckpointWeights
    let settings: BigGANDeepConfig
    let truncation: Double
    var graph = GraphBuilder()
    /// Weights divided by their spectral norm so far.
    var spectralNorms = 0
    /// The condition vector [batch, 2·z_dim]: z and the class embedding.
    var condition = ""

    init(weights: CheckpointWeights, settings: BigGANDeepConfig, truncation: Double) {
        self.weights = weights
        self.settings = settings
        self.truncation = truncation
    }

    mutating func buildGenerator() throws {
        let z = graph.addInput("z", shape: [.symbol("batch"), .fixed(settings.zDim)])
        let classes = graph.addInput("class_vector", shape: [.symbol("batch"), .fixed(settings.numClasses)])
        let embedding = try plainConstant("embeddings.weight", shape: [settings.zDim, settings.numClasses],
                                          why: "config z_dim × num_classes")
        let embedded = graph.linear(classes, weight: embedding, name: "embeddings")
        condition = graph.emitValue(named: "condition", .concat(ConcatAttributes(axis: 1)), inputs: [z, embedded])

        let width = settings.channelWidth
        let first = 16 * width
        let genZ = graph.addConstant("generator.gen_z.weight", shape: [4 * 4 * first, 2 * settings.zDim],
                                     floats: try spectralNormalised("generator.gen_z", shape: [4 * 4 * first, 2 * settings.zDim]))
        let genZBias = try floatConstant("generator.gen_z.bias", shape: [4 * 4 * first])
        var x = graph.linear(condition, weight: genZ, bias: genZBias, name: "gen_z")
        x = graph.reshaped(x, [-1, 4, 4, first])
        x = graph.emitValue(named: "gen_z.nchw", .transpose(TransposeAttributes(perm: [0, 3, 1, 2])), inputs: [x])
        var size = 4
        var module = 0
        for (index, layer) in settings.layers.enumerated() {
            if index == settings.attentionLayerPosition {
                x = try selfAttention(x, prefix: "generator.layers.\(module)", channels: width * layer.inputMultiplier, size: size)
                module += 1
            }
            x = try block(x, prefix: "generator.layers.\(module)", input: width * layer.inputMultiplier,
                          output: width * layer.outputMultiplier, upsample: layer.upsample)
            if layer.upsample { size *= 2 }
            module += 1
        }
        x = try finalNorm(x, channels: width)
        x = graph.unary(Activation(function: .relu), x)
        // Only the 3 channels the package keeps (z[:, :3]) are computed; σ is the whole kernel's.
        let rgb = try spectralNormalised("generator.conv_to_rgb", shape: [width, width, 3, 3])
        let rgbBias = try weights.floats("generator.conv_to_rgb.bias", shape: [width], why: "config channel_width")
        let rgbWeight = graph.addConstant("generator.conv_to_rgb.weight", shape: [3, width, 3, 3],
                                          floats: Array(rgb[..<(3 * width * 9)]))
        let rgbBiasConstant = graph.addConstant("generator.conv_to_rgb.bias", shape: [3], floats: Array(rgbBias[..<3]))
        x = graph.conv(x, weight: rgbWeight, bias: rgbBiasConstant, .padded(1), name: "conv_to_rgb")
        let image = graph.unary(Activation(function: .tanh), x, name: "image")
        graph.addOutput(image)
    }

    // MARK: Modules

    /// GenBlock: four conditional norms with ReLU, convolutions 1×1, 3×3, 3×3, 1×1 (nearest
    /// ×2 upsampling before the first 3×3), and the skip path (channels halved, upsampled).
    mutating func block(_ input: String, prefix: String, input channels: Int, output: Int, upsample: Bool) throws -> String {
        let middle = channels / 4
        var x = try conditionalNorm(input, prefix: prefix + ".bn_0", channels: channels)
        x = graph.unary(Activation(function: .relu), x)
        x = try convolution(x, prefix: prefix + ".conv_0", output: middle, input: channels, kernel: 1)
        x = try conditionalNorm(x, prefix: prefix + ".bn_1", channels: middle)
        x = graph.unary(Activation(function: .relu), x)
        if upsample { x = graph.upsampledNearest(x) }
        x = try convolution(x, prefix: prefix + ".conv_1", output: middle, input: middle, kernel: 3)
        x = try conditionalNorm(x, prefix: prefix + ".bn_2", channels: middle)
        x = graph.unary(Activation(function: .relu), x)
        x = try convolution(x, prefix: prefix + ".conv_2", output: middle, input: middle, kernel: 3)
        x = try conditionalNorm(x, prefix: prefix + ".bn_3", channels: middle)
        x = graph.unary(Activation(function: .relu), x)
        x = try convolution(x, prefix: prefix + ".conv_3", output: output, input: middle, kernel: 1)
        var skip = input
        if output != channels {
            skip = graph.channelSlice(skip, 0..<(channels / 2), name: "\(prefix).skip")
        }
        if upsample { skip = graph.upsampledNearest(skip) }
        return graph.binary(.add, x, skip, name: "\(prefix).out")
    }

    /// SelfAttn: softmax(θᵀ·φ)·gᵀ over the positions, φ and g max-pooled 2×2, then γ·o(·) added.
    mutating func selfAttention(_ x: String, prefix: String, channels: Int, size: Int) throws -> String {
        func projection(_ name: String, _ output: Int, _ input: Int, scale: Float = 1) throws -> String {
            let weight = try spectralNormalised("\(prefix).snconv1x1_\(name)", shape: [output, input, 1, 1])
            return graph.addConstant("\(prefix).\(name).weight", shape: [output, input, 1, 1], floats: weight.map { $0 * scale })
        }
        let gamma = try weights.floats("\(prefix).gamma", shape: [1],
                                       why: "attention at layer position \(settings.attentionLayerPosition)")[0]
        return graph.selfAttention(x, theta: try projection("theta", channels / 8, channels),
                                   phi: try projection("phi", channels / 8, channels),
                                   g: try projection("g", channels / 2, channels),
                                   output: try projection("o_conv", channels, channels / 2, scale: gamma),
                                   channels: channels, size: size, name: prefix)
    }

    /// BigGANBatchNorm with a condition: x·a(c) + b(c), a and b per sample and channel.
    mutating func conditionalNorm(_ x: String, prefix: String, channels: Int) throws -> String {
        let (mean, variance) = try statistics(prefix, channels: channels)
        let width = 2 * settings.zDim
        return graph.conditionalNorm(x, condition: condition, mean: mean, variance: variance, epsilon: settings.eps,
                                     gain: try spectralNormalised(prefix + ".scale", shape: [channels, width]),
                                     bias: try spectralNormalised(prefix + ".offset", shape: [channels, width]),
                                     conditionWidth: width, name: prefix)
    }

    /// The generator's last, unconditional norm: a per-channel affine.
    mutating func finalNorm(_ x: String, channels: Int) throws -> String {
        let (mean, variance) = try statistics("generator.bn", channels: channels)
        let why = "config channel_width"
        let weight = try weights.floats("generator.bn.weight", shape: [channels], why: why)
        let bias = try weights.floats("generator.bn.bias", shape: [channels], why: why)
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for channel in 0..<channels {
            scale[channel] = weight[channel] / (variance[channel] + settings.eps).squareRoot()
            shift[channel] = bias[channel] - mean[channel] * scale[channel]
        }
        return graph.channelAffine(x, scale: scale, shift: shift, name: "generator.bn")
    }

    // MARK: Weights

    /// The running mean and variance for the truncation: a row of the tables, or two blended
    /// as the package blends them.
    mutating func statistics(_ prefix: String, channels: Int) throws -> (mean: [Float], variance: [Float]) {
        let shape = [settings.nStats, channels]
        let why = "config n_stats × the norm's channels"
        let means = try weights.floats(prefix + ".running_means", shape: shape, why: why)
        let variances = try weights.floats(prefix + ".running_vars", shape: shape, why: why)
        let quotient = truncation / (1 / Double(settings.nStats - 1))
        let row = Int(quotient.rounded(.towardZero))
        let fraction = quotient - quotient.rounded(.towardZero)
        func pick(_ table: [Float]) -> [Float] {
            let first = table[(row * channels)..<((row + 1) * channels)]
            guard fraction != 0 else { return Array(first) }
            let second = table[((row + 1) * channels)..<((row + 2) * channels)]
            return zip(first, second).map { $0 * Float(fraction) + $1 * Float(1 - fraction) }
        }
        return (pick(means), pick(variances))
    }

    /// W_orig / σ, σ = uᵀ·W_orig·v with the stored u and v (PyTorch's evaluation mode).
    mutating func spectralNormalised(_ prefix: String, shape: [Int]) throws -> [Float] {
        spectralNorms += 1
        let why = "config \(prefix)"
        let original = try weights.floats(prefix + ".weight_orig", shape: shape, why: why)
        let rows = shape[0], columns = original.count / max(rows, 1)
        let u = try weights.floats(prefix + ".weight_u", shape: [rows], why: "spectral norm of \(prefix) [\(rows), \(columns)]")
        let v = try weights.floats(prefix + ".weight_v", shape: [columns], why: "spectral norm of \(prefix) [\(rows), \(columns)]")
        var sigma = 0.0
        for row in 0..<rows {
            var dot = 0.0
            for column in 0..<columns { dot += Double(original[row * columns + column]) * Double(v[column]) }
            sigma += Double(u[row]) * dot
        }
        let divisor = Float(sigma)
        guard divisor.isFinite, divisor != 0 else {
            throw CheckpointError.badWeights(file: weights.checkpoint.file(holding: prefix + ".weight_u"),
                                             tensor: prefix + ".weight_orig",
                                             detail: "its spectral norm uᵀ·W·v is \(sigma), which cannot divide it")
        }
        return original.map { $0 / divisor }
    }

    mutating func floatConstant(_ name: String, shape: [Int]) throws -> String {
        graph.addConstant(name, shape: shape, floats: try weights.floats(name, shape: shape, why: "config \(name)"))
    }

    /// A tensor used as stored (its f16/bf16 kept).
    mutating func plainConstant(_ name: String, shape: [Int], why: String) throws -> String {
        let tensor = try weights.constant(name, shape: shape, why: why)
        guard tensor.dtype.isFloatingPoint else { return try floatConstant(name, shape: shape) }
        graph.addConstant(tensor)
        return name
    }

    /// A spectrally normalised convolution with its bias; 3×3 kernels are padded by 1.
    mutating func convolution(_ x: String, prefix: String, output: Int, input: Int, kernel: Int) throws -> String {
        let shape = [output, input, kernel, kernel]
        let weight = graph.addConstant(prefix + ".weight", shape: shape, floats: try spectralNormalised(prefix, shape: shape))
        let bias = try floatConstant(prefix + ".bias", shape: [output])
        return graph.conv(x, weight: weight, bias: bias, .padded(kernel / 2), name: prefix)
    }
}

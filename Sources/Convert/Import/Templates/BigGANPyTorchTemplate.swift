import Format
import Foundation

/// BigGAN's generator as BigGAN-PyTorch saves it (`G.pth` / `G_ema.pth`, the weights DGP
/// loads): `shared` (the class embedding), `linear`, `blocks.i.0` (GBlock: `bn1`, `conv1`,
/// `bn2`, `conv2`, `conv_sc`), `blocks.i.1` (attention: `theta`, `phi`, `g`, `o`, `gamma`)
/// and `output_layer` (batch norm, ReLU, convolution), with its own spectral norm: the weight
/// is stored plain beside `u0` (and `sv0`, a training log).
///
/// The checkpoint carries no config: the architecture is read from the shapes — the
/// channels of each block, the bottom width (4 in every published model), where attention
/// sits, and whether z is split hierarchically (the norms' input is shared_dim + a z chunk).
/// `config.json`, if present, may give `BN_eps` (default 1e-5) and `SN_eps` (1e-6), the
/// values of BigGAN-PyTorch's launch scripts, which a state dict does not record.
///
/// Inputs `z` [batch, dim_z] and `class_vector` [batch, n_classes] (one-hot for a class; the
/// product with `shared.weight` is the embedding `G.shared(y)` that the package's sampling
/// passes to `G`); output `image` [batch, 3, resolution, resolution], as `G(z, G.shared(y))`
/// in evaluation mode. Spectral norm in evaluation mode runs one power iteration from the
/// stored u0 without storing it; here it is run once at convert time: v = n(u0·W),
/// u = n(v·Wᵀ), σ = v·Wᵀ·uᵀ, n(x) = x / max(‖x‖, SN_eps), W viewed as [out, -1].
struct BigGANPyTorchTemplate: ArchitectureTemplate {
    var name: String { "biggan-pytorch" }
    var summary: String {
        "BigGAN generator, BigGAN-PyTorch G/G_ema names as DGP loads them (z, class_vector → image; architecture from shapes)"
    }

    func recognises(_ names: Set<String>) -> Bool {
        names.contains("shared.weight") && names.contains("linear.u0") && names.contains("output_layer.2.weight")
    }

    /// `sv0` only logs the last singular value during training; the forward never reads it.
    func isTrainingOnly(_ name: String) -> Bool { name.hasSuffix(".sv0") || name.hasSuffix(".num_batches_tracked") }

    struct Settings: Decodable {
        var bnEpsilon: Float = 1e-5
        var snEpsilon: Float = 1e-6

        enum CodingKeys: String, CodingKey {
            case bnEpsilon = "BN_eps", snEpsilon = "SN_eps"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            bnEpsilon = try container.decodeIfPresent(Float.self, forKey: .bnEpsilon) ?? bnEpsilon
            snEpsilon = try container.decodeIfPresent(Float.self, forKey: .snEpsilon) ?? snEpsilon
        }
    }

    func build(_ weights: inout CheckpointWeights, config: TemplateConfig, options: ImportOptions) throws -> Graph {
        if options.truncation != nil {
            throw CheckpointError.badOption(file: weights.checkpoint.source, option: "--truncation",
                                            detail: "BigGAN-PyTorch's generator has no truncation tables; truncate z instead")
        }
        let settings = try config.decode(Settings.self)
        var builder = try BigGANPyTorchBuilder(weights: weights, settings: settings)
        try builder.buildGenerator()
        weights = builder.weights
        var graph = builder.graph.graph
        graph.metadata[Graph.spectralNormKey] = Graph.spectralNormNote(builder.spectralNorms)
        return graph
    }
}

/// The architecture read from the checkpoint's shapes, then the graph.
private struct BigGANPyTorchBuilder {
    struct Block {
        var input: Int
        var output: Int
        var attention: Bool
    }

    var weights: CheckpointWeights
    let settings: BigGANPyTorchTemplate.Settings
    var graph = GraphBuilder()
    /// Weights divided by their spectral norm so far.
    var spectralNorms = 0
    let blocks: [Block]
    let classes: Int
    let sharedWidth: Int
    /// z's width per chunk: the part the first linear reads (all of z without hierarchy).
    let chunk: Int
    let hierarchical: Bool
    let bottomWidth: Int

    init(weights: CheckpointWeights, settings: BigGANPyTorchTemplate.Settings) throws {
        self.weights = weights
        self.settings = settings
        let file = weights.checkpoint.source
        let shared = try weights.shape(of: "shared.weight")
        guard shared.count == 2 else {
            throw CheckpointError.shapeMismatch(file: file, tensor: "shared.weight", expected: [-1, -1], found: shared,
                                                why: "an embedding [n_classes, shared_dim]")
        }
        (classes, sharedWidth) = (shared[0], shared[1])
        var blocks: [Block] = []
        while weights.has("blocks.\(blocks.count).0.conv1.weight") {
            let index = blocks.count
            let conv1 = try weights.shape(of: "blocks.\(index).0.conv1.weight")
            guard conv1.count == 4 else {
                throw CheckpointError.shapeMismatch(file: file, tensor: "blocks.\(index).0.conv1.weight", expected: [-1, -1, 3, 3],
                                                    found: conv1, why: "a convolution kernel")
            }
            blocks.append(Block(input: conv1[1], output: conv1[0], attention: weights.has("blocks.\(index).1.theta.weight")))
        }
        guard let first = blocks.first else { throw CheckpointError.missingTensor(file: file, tensor: "blocks.0.0.conv1.weight") }
        self.blocks = blocks
        let linear = try weights.shape(of: "linear.weight")
        guard linear.count == 2, linear[0] % first.input == 0 else {
            throw CheckpointError.shapeMismatch(file: file, tensor: "linear.weight", expected: [first.input * 16, -1],
                                                found: linear, why: "blocks.0 takes \(first.input) channels at the bottom width²")
        }
        let area = linear[0] / first.input
        bottomWidth = Int(Double(area).squareRoot().rounded())
        guard bottomWidth * bottomWidth == area else {
            throw CheckpointError.shapeMismatch(file: file, tensor: "linear.weight", expected: [first.input * 16, linear[1]],
                                                found: linear, why: "\(first.input) channels × a square bottom width")
        }
        chunk = linear[1]
        let normInput = try weights.shape(of: "blocks.0.0.bn1.gain.weight")
        guard normInput.count == 2 else {
            throw CheckpointError.shapeMismatch(file: file, tensor: "blocks.0.0.bn1.gain.weight", expected: [first.input, -1],
                                                found: normInput, why: "a linear of the condition")
        }
        // The norms read shared_dim + a z chunk with hierarchical z, shared_dim alone without.
        hierarchical = normInput[1] != sharedWidth
        guard !hierarchical || normInput[1] == sharedWidth + chunk else {
            throw CheckpointError.shapeMismatch(file: file, tensor: "blocks.0.0.bn1.gain.weight",
                                                expected: [first.input, sharedWidth + chunk], found: normInput,
                                                why: "shared_dim \(sharedWidth) + the z chunk \(chunk) that linear.weight reads")
        }
    }

    var conditionWidth: Int { hierarchical ? sharedWidth + chunk : sharedWidth }
    var zWidth: Int { hierarchical ? chunk * (blocks.count + 1) : chunk }

    mutating func buildGenerator() throws {
        let z = graph.addInput("z", shape: [.symbol("batch"), .fixed(zWidth)])
        let classVector = graph.addInput("class_vector", shape: [.symbol("batch"), .fixed(classes)])
        // G.shared(y) for a one-hot y is the product with the embedding table.
        let table = try weights.floats("shared.weight", shape: [classes, sharedWidth], why: "n_classes × shared_dim")
        var transposed = [Float](repeating: 0, count: table.count)
        for row in 0..<classes {
            for column in 0..<sharedWidth { transposed[column * classes + row] = table[row * sharedWidth + column] }
        }
        let embedding = graph.linear(classVector, weight: graph.addConstant("shared.weight.t", shape: [sharedWidth, classes],
                                                                             floats: transposed), name: "shared")
        func zChunk(_ index: Int) -> String {
            guard hierarchical else { return z }
            let starts = graph.addConstant("z.\(index).starts", shape: [1], ints: [index * chunk])
            let ends = graph.addConstant("z.\(index).ends", shape: [1], ints: [(index + 1) * chunk])
            let axes = graph.addConstant("z.\(index).axes", shape: [1], ints: [1])
            return graph.emitValue(named: "z.\(index)", .slice, inputs: [z, starts, ends, axes])
        }
        let first = blocks[0].input
        let linearWeight = try spectralNormalised("linear", shape: [first * bottomWidth * bottomWidth, chunk])
        var x = graph.linear(zChunk(0), weight: graph.addConstant("linear.weight", shape: [first * bottomWidth * bottomWidth, chunk],
                                                                  floats: linearWeight),
                             bias: try floatConstant("linear.bias", shape: [first * bottomWidth * bottomWidth]), name: "linear")
        x = graph.reshaped(x, [0, first, bottomWidth, bottomWidth])
        var size = bottomWidth
        for (index, block) in blocks.enumerated() {
            let condition = hierarchical
                ? graph.emitValue(named: "condition.\(index)", .concat(ConcatAttributes(axis: 1)), inputs: [embedding, zChunk(index + 1)])
                : embedding
            x = try generatorBlock(x, prefix: "blocks.\(index).0", block: block, condition: condition)
            size *= 2
            if block.attention { x = try attention(x, prefix: "blocks.\(index).1", channels: block.output, size: size) }
        }
        let channels = blocks[blocks.count - 1].output
        let (mean, variance) = try statistics("output_layer.0", channels: channels)
        let why = "the last block's \(channels) output channels"
        let gain = try weights.floats("output_layer.0.gain", shape: [channels], why: why)
        let bias = try weights.floats("output_layer.0.bias", shape: [channels], why: why)
        // layers.bn keeps torch's default ε = 1e-5 whatever BN_eps says (G does not pass it).
        let scale = (0..<channels).map { gain[$0] / (variance[$0] + 1e-5).squareRoot() }
        x = graph.channelAffine(x, scale: scale, shift: (0..<channels).map { bias[$0] - mean[$0] * scale[$0] }, name: "output_layer.0")
        x = graph.unary(Activation(function: .relu), x)
        x = try convolution(x, prefix: "output_layer.2", output: 3, input: channels, kernel: 3)
        graph.addOutput(graph.unary(Activation(function: .tanh), x, name: "image"))
    }

    /// GBlock: ccbn, ReLU, nearest ×2, conv 3×3, ccbn, ReLU, conv 3×3, plus the upsampled
    /// input through the 1×1 `conv_sc`.
    mutating func generatorBlock(_ input: String, prefix: String, block: Block, condition: String) throws -> String {
        var x = try conditionalNorm(input, prefix: prefix + ".bn1", channels: block.input, condition: condition)
        x = graph.unary(Activation(function: .relu), x)
        x = graph.upsampledNearest(x)
        x = try convolution(x, prefix: prefix + ".conv1", output: block.output, input: block.input, kernel: 3)
        x = try conditionalNorm(x, prefix: prefix + ".bn2", channels: block.output, condition: condition)
        x = graph.unary(Activation(function: .relu), x)
        x = try convolution(x, prefix: prefix + ".conv2", output: block.output, input: block.output, kernel: 3)
        let skip = try convolution(graph.upsampledNearest(input), prefix: prefix + ".conv_sc", output: block.output,
                                   input: block.input, kernel: 1)
        return graph.binary(.add, x, skip, name: prefix + ".out")
    }

    mutating func attention(_ x: String, prefix: String, channels: Int, size: Int) throws -> String {
        let gamma = try weights.floats(prefix + ".gamma", shape: [], why: "a scalar gain")[0]
        func projection(_ name: String, _ output: Int, _ input: Int, scale: Float = 1) throws -> String {
            let weight = try spectralNormalised("\(prefix).\(name)", shape: [output, input, 1, 1])
            return graph.addConstant("\(prefix).\(name).weight", shape: [output, input, 1, 1], floats: weight.map { $0 * scale })
        }
        return graph.selfAttention(x, theta: try projection("theta", channels / 8, channels),
                                   phi: try projection("phi", channels / 8, channels),
                                   g: try projection("g", channels / 2, channels),
                                   output: try projection("o", channels, channels / 2, scale: gamma),
                                   channels: channels, size: size, name: prefix)
    }

    /// ccbn: F.batch_norm with the stored statistics, then ·(1 + gain(c)) + bias(c).
    mutating func conditionalNorm(_ x: String, prefix: String, channels: Int, condition: String) throws -> String {
        let (mean, variance) = try statistics(prefix, channels: channels)
        return graph.conditionalNorm(x, condition: condition, mean: mean, variance: variance, epsilon: settings.bnEpsilon,
                                     gain: try spectralNormalised(prefix + ".gain", shape: [channels, conditionWidth]),
                                     bias: try spectralNormalised(prefix + ".bias", shape: [channels, conditionWidth]),
                                     conditionWidth: conditionWidth, name: prefix)
    }

    mutating func statistics(_ prefix: String, channels: Int) throws -> (mean: [Float], variance: [Float]) {
        let why = "the norm's \(channels) channels"
        return (try weights.floats(prefix + ".stored_mean", shape: [channels], why: why),
                try weights.floats(prefix + ".stored_var", shape: [channels], why: why))
    }

    /// W / σ after one power iteration from the stored u0 (see the template's summary).
    mutating func spectralNormalised(_ prefix: String, shape: [Int]) throws -> [Float] {
        spectralNorms += 1
        let weight = try weights.floats(prefix + ".weight", shape: shape, why: "the architecture read from the shapes")
        let rows = shape[0], columns = weight.count / max(rows, 1)
        let u0 = try weights.floats(prefix + ".u0", shape: [1, rows], why: "spectral norm of \(prefix) [\(rows), \(columns)]")
        let epsilon = Double(settings.snEpsilon)
        func normalised(_ vector: [Double]) -> [Double] {
            let norm = max(vector.reduce(0) { $0 + $1 * $1 }.squareRoot(), epsilon)
            return vector.map { $0 / norm }
        }
        var v = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            for column in 0..<columns { v[column] += Double(u0[row]) * Double(weight[row * columns + column]) }
        }
        v = normalised(v)
        let wv = (0..<rows).map { row in (0..<columns).reduce(0.0) { $0 + v[$1] * Double(weight[row * columns + $1]) } }
        let u = normalised(wv)
        let sigma = zip(wv, u).reduce(0.0) { $0 + $1.0 * $1.1 }
        let divisor = Float(sigma)
        guard divisor.isFinite, divisor != 0 else {
            throw CheckpointError.badWeights(file: weights.checkpoint.file(holding: prefix + ".weight"), tensor: prefix + ".weight",
                                             detail: "its spectral norm estimate from u0 is \(sigma), which cannot divide it")
        }
        return weight.map { $0 / divisor }
    }

    mutating func floatConstant(_ name: String, shape: [Int]) throws -> String {
        graph.addConstant(name, shape: shape, floats: try weights.floats(name, shape: shape, why: "the architecture read from the shapes"))
    }

    mutating func convolution(_ x: String, prefix: String, output: Int, input: Int, kernel: Int) throws -> String {
        let shape = [output, input, kernel, kernel]
        let weight = graph.addConstant(prefix + ".weight", shape: shape, floats: try spectralNormalised(prefix, shape: shape))
        return graph.conv(x, weight: weight, bias: try floatConstant(prefix + ".bias", shape: [output]), .padded(kernel / 2),
                          name: prefix)
    }
}

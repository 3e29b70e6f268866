import Foundation
import Format

/// The randomly initialised generators Deep Image Prior fits to one image, built as
/// ordinary Restore graphs (so the same kernels and backward rules run them).
public enum PriorNetwork: String, Sendable, CaseIterable {
    /// The encoder-decoder with skip connections of Ulyanov et al. (CVPR 2018, "skip"):
    /// per level a stride-2 3×3 conv and a 3×3 conv down, a 1×1 conv to a few skip
    /// channels, and on the way up bilinear ×2 upsampling, concatenation with the skip,
    /// normalisation, a 3×3 and a 1×1 conv; every conv followed by normalisation and
    /// LeakyReLU(0.2); a 1×1 conv and a sigmoid at the end. The paper's batch
    /// normalisation over a batch of one image is instance normalisation, which is what
    /// the graph uses. Zero padding where the paper's denoising used reflection.
    case unet
    /// A small ViT generator: 8×8 patch embedding of the noise, learned position
    /// embeddings, pre-norm transformer blocks (multi-head self-attention, GELU MLP) and
    /// a linear pixel reconstruction of each patch (depth-to-space), then a sigmoid.
    case vit

    /// Channels of the noise input.
    public static let inputChannels = 32

    /// Sizes the network's input and output must be multiples of.
    public var multiple: Int {
        switch self {
        case .unet: 1 << UNetShape.standard.down.count
        case .vit: ViTShape.standard.patch
        }
    }

    /// The graph for an input of `height` × `width` (multiples of `multiple`), with
    /// weights drawn from `seed`: input "noise" [1, 32, H, W], output "image" [1, 3, H, W].
    public func graph(height: Int, width: Int, seed: UInt64) -> Graph {
        var assembler = GraphAssembler(seed: seed)
        let output: String
        switch self {
        case .unet: output = UNetShape.standard.build(&assembler, input: "noise")
        case .vit: output = ViTShape.standard.build(&assembler, input: "noise", height: height, width: width)
        }
        return Graph(inputs: [ValueInfo(name: "noise", dtype: .float32,
                                        shape: [.fixed(1), .fixed(Self.inputChannels), .fixed(height), .fixed(width)])],
                     outputs: [ValueInfo(name: output, dtype: .float32, shape: [.fixed(1), .fixed(3), .fixed(height), .fixed(width)])],
                     nodes: assembler.nodes, constants: assembler.constants)
    }
}

/// Channel counts of the encoder-decoder per level (finest first).
struct UNetShape {
    var down: [Int]
    var up: [Int]
    var skip: [Int]

    /// Narrower than the paper's 128 channels per level so that 128² denoising converges
    /// in well under a minute on two cores; 4 skip channels as the paper's.
    static let standard = UNetShape(down: [16, 32, 64, 64, 128], up: [16, 32, 64, 64, 128], skip: [4, 4, 4, 4, 4])

    func build(_ a: inout GraphAssembler, input: String) -> String {
        let last = a.conv(level(0, &a, input: input, depth: PriorNetwork.inputChannels), from: up[0], to: 3, kernel: 1,
                          name: "output")
        return a.unary(last, .init(function: .sigmoid), name: "image")
    }

    private func block(_ a: inout GraphAssembler, _ x: String, from: Int, to: Int, kernel: Int, stride: Int = 1,
                       name: String) -> String {
        let y = a.conv(x, from: from, to: to, kernel: kernel, stride: stride, name: name)
        return a.unary(a.norm(y, channels: to, name: name + ".norm"), .init(function: .leakyRelu, alpha: 0.2), name: name + ".act")
    }

    private func level(_ i: Int, _ a: inout GraphAssembler, input: String, depth: Int) -> String {
        let skipped = block(&a, input, from: depth, to: skip[i], kernel: 1, name: "skip\(i)")
        var deeper = block(&a, input, from: depth, to: down[i], kernel: 3, stride: 2, name: "down\(i).0")
        deeper = block(&a, deeper, from: down[i], to: down[i], kernel: 3, name: "down\(i).1")
        let deeperChannels: Int
        if i + 1 < down.count {
            deeper = level(i + 1, &a, input: deeper, depth: down[i])
            deeperChannels = up[i + 1]
        } else {
            deeperChannels = down[i]
        }
        let upsampled = a.upsample2(deeper, name: "up\(i).upsample")
        let joined = a.concat([skipped, upsampled], name: "up\(i).concat")
        let channels = skip[i] + deeperChannels
        let normalised = a.norm(joined, channels: channels, name: "up\(i).norm")
        let y = block(&a, normalised, from: channels, to: up[i], kernel: 3, name: "up\(i).0")
        return block(&a, y, from: up[i], to: up[i], kernel: 1, name: "up\(i).1")
    }
}

/// Sizes of the ViT generator.
struct ViTShape {
    var patch: Int
    var dimension: Int
    var depth: Int
    var heads: Int
    var mlpRatio: Int

    static let standard = ViTShape(patch: 8, dimension: 96, depth: 4, heads: 4, mlpRatio: 2)

    func build(_ a: inout GraphAssembler, input: String, height: Int, width: Int) -> String {
        let (h, w) = (height / patch, width / patch)
        let tokens = h * w, d = dimension
        let embedded = a.conv(input, from: PriorNetwork.inputChannels, to: d, kernel: patch, stride: patch, padding: 0,
                              name: "embed")
        let flat = a.reshape(embedded, to: [1, d, tokens], name: "embed.flatten")
        var x = a.transpose(flat, [0, 2, 1], name: "embed.tokens")
        let position = a.parameter("embed.position", shape: [1, tokens, d], bound: 0.02)
        x = a.binary(.add, x, position, name: "embed.addPosition")
        let headSize = d / heads
        for block in 0..<depth {
            let p = "blocks.\(block)"
            let normed = a.layerNorm(x, dimension: d, name: p + ".norm1")
            let qkv = a.linear(normed, from: d, to: 3 * d, name: p + ".qkv")
            let split = a.reshape(qkv, to: [tokens, 3, heads, headSize], name: p + ".qkv.heads")
            let grouped = a.transpose(split, [1, 2, 0, 3], name: p + ".qkv.grouped")
            let (q, k, v) = a.split3(grouped, name: p + ".qkv.split")
            let keys = a.transpose(k, [0, 1, 3, 2], name: p + ".keys")
            let scores = a.binary(.mul, a.matMul(q, keys, name: p + ".scores"),
                                  a.scalar(1 / Float(headSize).squareRoot(), name: p + ".scale"), name: p + ".scaled")
            let weights = a.softmax(scores, name: p + ".softmax")
            let attended = a.matMul(weights, v, name: p + ".attend")
            let merged = a.reshape(a.transpose(attended, [0, 2, 1, 3], name: p + ".merge"), to: [1, tokens, d],
                                   name: p + ".merged")
            x = a.binary(.add, x, a.linear(merged, from: d, to: d, name: p + ".proj"), name: p + ".residual1")
            let normed2 = a.layerNorm(x, dimension: d, name: p + ".norm2")
            let hidden = a.linear(normed2, from: d, to: mlpRatio * d, activation: .init(function: .gelu), name: p + ".mlp1")
            x = a.binary(.add, x, a.linear(hidden, from: mlpRatio * d, to: d, name: p + ".mlp2"), name: p + ".residual2")
        }
        let normed = a.layerNorm(x, dimension: d, name: "norm")
        let pixels = a.linear(normed, from: d, to: 3 * patch * patch, name: "reconstruct")
        let planes = a.reshape(a.transpose(pixels, [0, 2, 1], name: "reconstruct.channels"),
                               to: [1, 3 * patch * patch, h, w], name: "reconstruct.grid")
        let image = a.depthToSpace(planes, blockSize: patch, name: "reconstruct.pixels")
        return a.unary(image, .init(function: .sigmoid), name: "image")
    }
}

/// Emits nodes and randomly initialised weights for the prior networks. Weights follow
/// PyTorch's default initialisation for conv and linear layers (uniform in ±1/√fan-in,
/// biases too), normalisation scales start at 1 and shifts at 0.
struct GraphAssembler {
    var nodes: [Node] = []
    var constants: [ConstantTensor] = []
    var random: SeededGenerator

    init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    mutating func parameter(_ name: String, shape: [Int], bound: Float) -> String {
        let count = shape.reduce(1, *)
        constants.append(ConstantTensor(name: name, shape: shape,
                                        floats: (0..<count).map { _ in (random.nextUnitFloat() * 2 - 1) * bound }))
        return name
    }

    mutating func filled(_ name: String, shape: [Int], value: Float) -> String {
        constants.append(ConstantTensor(name: name, shape: shape, floats: [Float](repeating: value, count: shape.reduce(1, *))))
        return name
    }

    mutating func scalar(_ value: Float, name: String) -> String { filled(name, shape: [], value: value) }

    mutating func emit(_ op: Op, _ inputs: [String], name: String) -> String {
        nodes.append(Node(name: name, op, inputs: inputs, outputs: [name]))
        return name
    }

    mutating func conv(_ x: String, from: Int, to: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                       name: String) -> String {
        var attributes = ConvAttributes()
        let pad = padding ?? (kernel - 1) / 2
        attributes.window.pads = [pad, pad, pad, pad]
        attributes.window.strides = [stride, stride]
        let bound = 1 / Float(from * kernel * kernel).squareRoot()
        let weight = parameter(name + ".weight", shape: [to, from, kernel, kernel], bound: bound)
        let bias = parameter(name + ".bias", shape: [to], bound: bound)
        return emit(.conv(attributes), [x, weight, bias], name: name)
    }

    mutating func linear(_ x: String, from: Int, to: Int, activation: Activation = .identity, name: String) -> String {
        let bound = 1 / Float(from).squareRoot()
        let weight = parameter(name + ".weight", shape: [to, from], bound: bound)
        let bias = parameter(name + ".bias", shape: [to], bound: bound)
        return emit(.linear(LinearAttributes(activation: activation)), [x, weight, bias], name: name)
    }

    mutating func norm(_ x: String, channels: Int, name: String) -> String {
        let scale = filled(name + ".weight", shape: [channels], value: 1)
        let shift = filled(name + ".bias", shape: [channels], value: 0)
        return emit(.instanceNorm(InstanceNormAttributes()), [x, scale, shift], name: name)
    }

    mutating func layerNorm(_ x: String, dimension: Int, name: String) -> String {
        let scale = filled(name + ".weight", shape: [dimension], value: 1)
        let shift = filled(name + ".bias", shape: [dimension], value: 0)
        return emit(.layerNorm(LayerNormAttributes()), [x, scale, shift], name: name)
    }

    mutating func unary(_ x: String, _ activation: Activation, name: String) -> String {
        emit(.unary(activation), [x], name: name)
    }

    mutating func binary(_ function: BinaryFunction, _ a: String, _ b: String, name: String) -> String {
        emit(.binary(function), [a, b], name: name)
    }

    mutating func upsample2(_ x: String, name: String) -> String {
        var attributes = ResizeAttributes()
        attributes.mode = .linear
        let scales = name + ".scales"
        constants.append(ConstantTensor(name: scales, shape: [4], floats: [1, 1, 2, 2]))
        return emit(.resize(attributes), [x, scales], name: name)
    }

    mutating func concat(_ values: [String], name: String) -> String {
        emit(.concat(ConcatAttributes(axis: 1)), values, name: name)
    }

    mutating func reshape(_ x: String, to shape: [Int], name: String) -> String {
        let target = name + ".shape"
        constants.append(ConstantTensor(name: target, shape: [shape.count], ints: shape.map(Int64.init)))
        return emit(.reshape(ReshapeAttributes()), [x, target], name: name)
    }

    mutating func transpose(_ x: String, _ perm: [Int], name: String) -> String {
        emit(.transpose(TransposeAttributes(perm: perm)), [x], name: name)
    }

    mutating func matMul(_ a: String, _ b: String, name: String) -> String { emit(.matMul, [a, b], name: name) }

    mutating func softmax(_ x: String, name: String) -> String { emit(.softmax(SoftmaxAttributes()), [x], name: name) }

    /// Splits axis 0 (size 3) into three values, each keeping the axis.
    mutating func split3(_ x: String, name: String) -> (String, String, String) {
        let outputs = (0..<3).map { "\(name).\($0)" }
        nodes.append(Node(name: name, .split(SplitAttributes(axis: 0, numOutputs: 3)), inputs: [x], outputs: outputs))
        return (outputs[0], outputs[1], outputs[2])
    }

    mutating func depthToSpace(_ x: String, blockSize: Int, name: String) -> String {
        var attributes = DepthToSpaceAttributes()
        attributes.blockSize = blockSize
        attributes.mode = .columnRowDepth
        return emit(.depthToSpace(attributes), [x], name: name)
    }
}

/// A small, fast, seedable generator (Steele, Lea & Flood's SplitMix64): the same seed
/// gives the same network and noise on every machine.
struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    mutating func nextUnitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Two independent standard normal values (Box–Muller).
    mutating func nextGaussianPair() -> (Float, Float) {
        let (u, v) = nextGaussianUniforms()
        return Self.gaussianPair(u, v)
    }

    /// The two uniforms `nextGaussianPair` transforms: drawing them is sequential and
    /// cheap, the transform (a log, a sine and a cosine) can then run on any thread.
    mutating func nextGaussianUniforms() -> (Float, Float) { (max(nextUnitFloat(), 1e-7), nextUnitFloat()) }

    /// Box–Muller: two standard normal values from uniforms u in (0, 1), v in [0, 1).
    @inline(__always)
    static func gaussianPair(_ u: Float, _ v: Float) -> (Float, Float) {
        let radius = (-2 * Foundation.log(u)).squareRoot(), angle = 2 * Float.pi * v
        return (radius * Foundation.cos(angle), radius * Foundation.sin(angle))
    }
}

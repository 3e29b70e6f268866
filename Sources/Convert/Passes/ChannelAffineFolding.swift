import Format
import Runtime

/// Folds a per-output-channel multiply/divide/add/subtract by a constant that follows a
/// convolution into its weights and bias. BatchNormalization is imported as exactly
/// such a multiply and add, so this is where it disappears.
enum ChannelAffineFolding {
    static func run(_ graph: inout Graph) throws -> Int {
        var folded = 0
        var changed = true
        while changed {
            changed = false
            let consumers = Consumers(graph)
            for index in graph.nodes.indices where isFoldableConvolution(graph.nodes[index]) {
                guard let readerIndex = consumers.soleReader(of: graph.nodes[index].outputs[0]),
                      let (affine, constant) = channelConstant(graph.nodes[readerIndex], reading: graph.nodes[index].outputs[0], graph),
                      let factors = try perChannel(constant, channels: outputChannels(graph.nodes[index], graph))
                else { continue }
                try fold(affine, factors, into: index, graph: &graph)
                graph.absorb(readerIndex, into: index)
                folded += 1
                changed = true
                break
            }
        }
        _ = graph.removeDeadNodes()
        return folded
    }

    /// What a per-channel constant does to the convolution's output.
    private enum ChannelAffine {
        case add, subtract, multiply, divide
    }

    /// A conv (or group-1 transposed conv) with constant weights and nothing fused yet.
    private static func isFoldableConvolution(_ node: Node) -> Bool {
        let convolution = if case .convTranspose(let transposed) = node.operation { transposed.group == 1 } else { node.op == .conv }
        return convolution && node.operation.fusedActivation?.function == .identity && node.input(3) == nil
            && node.outputs.count == 1
    }

    private static func outputChannels(_ node: Node, _ graph: Graph) -> Int {
        guard let weights = graph.constants[node.inputs[1]] else { return -1 }
        return node.op == .conv ? weights.shape[0] : weights.shape[1]
    }

    /// What `node` does and its constant when it combines `value` with a constant (on
    /// the right for sub and div, either side for add and mul).
    private static func channelConstant(_ node: Node, reading value: String, _ graph: Graph) -> (ChannelAffine, ConstantTensor)? {
        guard case .binary(let function) = node.operation, node.inputs.count == 2 else { return nil }
        let affine: ChannelAffine
        switch function {
        case .add: affine = .add
        case .mul: affine = .multiply
        case .sub: affine = .subtract
        case .div: affine = .divide
        case .pow, .max, .min, .mod, .prelu, .equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor: return nil
        }
        switch affine {
        case .add, .multiply:
            let other = node.inputs[0] == value ? node.inputs[1] : node.inputs[0]
            return graph.constants[other].map { (affine, $0) }
        case .subtract, .divide:
            guard node.inputs[0] == value else { return nil }
            return graph.constants[node.inputs[1]].map { (affine, $0) }
        }
    }

    /// The constant as one factor per output channel, when its shape broadcasts that way
    /// against [N, M, H, W] without changing the result's shape.
    private static func perChannel(_ constant: ConstantTensor, channels: Int) throws -> [Float]? {
        guard channels > 0, constant.dtype.isFloatingPoint, constant.shape.count <= 4 else { return nil }
        let values = constant.floatValues()
        if values.count == 1 { return Array(repeating: values[0], count: channels) }
        let padded = Array(repeating: 1, count: 4 - constant.shape.count) + constant.shape
        guard padded == [1, channels, 1, 1] else { return nil }
        return values
    }

    private static func fold(_ affine: ChannelAffine, _ factors: [Float], into index: Int, graph: inout Graph) throws {
        let node = graph.nodes[index]
        guard let weights = graph.constants[node.inputs[1]] else { return }
        let channels = factors.count
        var bias = node.input(2).flatMap { graph.constants[$0]?.floatValues() } ?? Array(repeating: 0, count: channels)
        switch affine {
        case .add: for m in 0..<channels { bias[m] += factors[m] }
        case .subtract: for m in 0..<channels { bias[m] -= factors[m] }
        case .multiply, .divide:
            let scale = affine == .multiply ? factors : factors.map { 1 / $0 }
            var w = weights.floatValues()
            // conv weights are [M, C/g, kH, kW]; transposed conv weights [C, M, kH, kW].
            let inner = weights.shape.dropFirst(2).reduce(1, *)
            for i in 0..<w.count {
                let channel = node.op == .conv ? i / (w.count / channels) : (i / inner) % channels
                w[i] *= scale[channel]
            }
            for m in 0..<channels { bias[m] *= scale[m] }
            let weightName = graph.unusedName(node.name + ".weight")
            graph.setConstant(ConstantTensor(name: weightName, shape: weights.shape, floats: w))
            graph.nodes[index].inputs[1] = weightName
        }
        let biasName = graph.unusedName(node.name + ".bias")
        graph.setConstant(ConstantTensor(name: biasName, shape: [channels], floats: bias))
        while graph.nodes[index].inputs.count < 3 { graph.nodes[index].inputs.append("") }
        graph.nodes[index].inputs[2] = biasName
    }
}

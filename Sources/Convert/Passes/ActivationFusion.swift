import Format

/// Fuses an activation that is the sole reader of a conv, transposed conv or linear
/// output into that op, so the activation runs on the GEMM tile while it is in cache.
enum ActivationFusion {
    /// Functions the fused kernels apply (pure element-wise maps of one value).
    static let fusable: Set<UnaryFunction> = [.relu, .leakyRelu, .sigmoid, .tanh, .clip, .gelu, .geluTanh,
                                               .silu, .elu, .hardSigmoid, .softplus]

    static func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        let consumers = Consumers(graph)
        for index in graph.nodes.indices where [.conv, .convTranspose, .linear].contains(graph.nodes[index].op) {
            let node = graph.nodes[index]
            guard node.outputs.count == 1, (try node.string("activation", default: "identity")) == "identity",
                  let readerIndex = consumers.soleReader(of: node.outputs[0]) else { continue }
            let reader = graph.nodes[readerIndex]
            guard reader.op == .unary, let function: UnaryFunction = try? reader.enumeration("function"),
                  fusable.contains(function) else { continue }
            for (key, value) in reader.attributes where key != "function" {
                graph.nodes[index].attributes[key] = value
            }
            graph.nodes[index].attributes["activation"] = .string(function.rawValue)
            if node.op == .conv && node.input(3) != nil {
                graph.nodes[index].attributes["residualBeforeActivation"] = .int(1)
            }
            graph.absorb(readerIndex, into: index)
            fused += 1
        }
        _ = graph.removeDeadNodes()
        return fused
    }
}

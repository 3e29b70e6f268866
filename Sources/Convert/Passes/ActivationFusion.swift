import Format

/// Fuses an activation that is the sole reader of a conv, transposed conv or linear
/// output into that op, so the activation runs on the GEMM tile while it is in cache.
enum ActivationFusion {
    static func run(_ graph: inout Graph) throws -> Int {
        var fused = 0
        let consumers = Consumers(graph)
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard node.op.traits.contains(.fusesActivation), node.operation.fusedActivation == .identity,
                  node.outputs.count == 1, let readerIndex = consumers.soleReader(of: node.outputs[0]),
                  case .unary(let activation) = graph.nodes[readerIndex].operation,
                  activation.function.isFusableActivation else { continue }
            graph.nodes[index].operation.fusedActivation = activation
            // A residual already fused into the conv was added before this activation.
            if case .conv(var conv) = graph.nodes[index].operation, node.input(3) != nil {
                conv.residualBeforeActivation = true
                graph.nodes[index].operation = .conv(conv)
            }
            graph.absorb(readerIndex, into: index)
            fused += 1
        }
        _ = graph.removeDeadNodes()
        return fused
    }
}

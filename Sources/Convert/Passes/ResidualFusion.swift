import Format

/// Fuses `conv(x) + r` into the conv as its residual input when r has the conv output's
/// shape at every sampled input size, so the skip connection costs no extra pass.
enum ResidualFusion {
    /// `sameShape(a, b)` answers whether two values always have the same shape.
    static func run(_ graph: inout Graph, sameShape: (String, String) -> Bool) throws -> Int {
        var fused = 0
        let consumers = Consumers(graph)
        let producers = Dictionary(graph.nodes.enumerated().flatMap { index, node in node.outputs.map { ($0, index) } },
                                   uniquingKeysWith: { first, _ in first })
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard case .conv(var conv) = node.operation, node.input(3) == nil, node.outputs.count == 1,
                  let readerIndex = consumers.soleReader(of: node.outputs[0]) else { continue }
            let reader = graph.nodes[readerIndex]
            guard case .binary(.add) = reader.operation, reader.inputs.count == 2 else { continue }
            let other = reader.inputs[0] == node.outputs[0] ? reader.inputs[1] : reader.inputs[0]
            // The residual must be computed before the conv runs, and must not be a constant (that is a bias).
            guard other != node.outputs[0], graph.constants[other] == nil,
                  producers[other].map({ $0 < index }) ?? graph.inputs.contains(where: { $0.name == other }),
                  sameShape(other, node.outputs[0]) else { continue }
            while graph.nodes[index].inputs.count < 3 { graph.nodes[index].inputs.append("") }
            graph.nodes[index].inputs.append(other)
            conv.residualBeforeActivation = conv.activation.function == .identity
            graph.nodes[index].operation = .conv(conv)
            graph.absorb(readerIndex, into: index)
            fused += 1
        }
        _ = graph.removeDeadNodes()
        return fused
    }
}

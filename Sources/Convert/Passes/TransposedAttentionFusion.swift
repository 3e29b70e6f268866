import Format
import Runtime

/// Fuses self-attention as SAGAN and BigGAN write it, channels first:
///
///     s = matMul(Q, Kᵀ)                    Q [.., L, d], Kᵀ [.., d, S] (any values)
///     p = softmax(s, last axis)
///     y = matMul(G, transpose(p))          G [.., c, S], y [.., c, L]; the transpose swaps the last two axes
///
/// into `attention` on K = Kᵀ and V = Gᵀ, transposed back:
///
///     y = transpose(attention(Q, transpose(Kᵀ), transpose(G)))
///
/// The unfused form writes, transposes and reads the whole L × S score matrix (BigGAN-deep
/// at 128²: 4096 × 1024 floats per image, 16 MB, twice); the fused kernel holds one block
/// of it per worker. The three transposes move only d·S, c·S and c·L floats.
/// `AttentionFusion` takes the transformers' form, where p is read untransposed as the
/// left operand and Kᵀ comes from a transpose node; this pass leaves that form alone.
/// Fires only when the leading dims of Q, Kᵀ and G agree at every sampled input size.
enum TransposedAttentionFusion {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        for index in graph.nodes.indices where view.isNode(index, .kind(.softmax)) {
            if let rewrite = match(softmax: index, view, shapes) { rewrites.append(rewrite) }
        }
        return graph.apply(rewrites)
    }

    private static func match(softmax: Int, _ view: PatternView, _ shapes: SampledShapes) -> Rewrite? {
        let graph = view.graph
        guard let scores = graph.nodes[softmax].input(0), let rank = shapes.rank(scores), rank >= 3,
              case .softmax(let normalisation) = graph.nodes[softmax].operation,
              normalisation.axis == -1 || normalisation.axis == rank - 1,
              let product = view.producer(of: scores, .kind(.matMul)), graph.nodes[product].inputs.count == 2,
              view.consumers.soleReader(of: scores) == softmax else { return nil }
        let swapLast = Array(0..<(rank - 2)) + [rank - 1, rank - 2]
        let probabilities = view.output(softmax)
        guard let transpose = view.soleReader(of: probabilities, .kind(.transpose)),
              graph.nodes[transpose].operation == .transpose(TransposeAttributes(perm: swapLast)),
              let output = view.soleReader(of: view.output(transpose), .kind(.matMul)),
              graph.nodes[output].inputs.count == 2, graph.nodes[output].inputs[1] == view.output(transpose)
        else { return nil }
        let (query, keyT, values) = (graph.nodes[product].inputs[0], graph.nodes[product].inputs[1], graph.nodes[output].inputs[0])
        guard agree(query: query, keyT: keyT, values: values, shapes) else { return nil }
        let name = graph.nodes[softmax].name
        let (key, value, attended) = (graph.unusedName("\(name).key"), graph.unusedName("\(name).value"),
                                      graph.unusedName("\(name).attended"))
        let swap = Op.transpose(TransposeAttributes(perm: swapLast))
        let nodes = [
            Node(name: key, swap, inputs: [keyT], outputs: [key]),
            Node(name: value, swap, inputs: [values], outputs: [value]),
            Node(name: name, .attention(AttentionAttributes(scale: 1)), inputs: [query, key, value], outputs: [attended]),
            Node(name: "\(name).channelsFirst", swap, inputs: [attended], outputs: [view.output(output)]),
        ]
        return Rewrite(matched: [product, softmax, transpose, output], replacement: nodes)
    }

    /// Q [.., L, d], Kᵀ [.., d, S] and G [.., c, S] with equal leading dims at every sample.
    private static func agree(query: String, keyT: String, values: String, _ shapes: SampledShapes) -> Bool {
        guard let qs = shapes.shapes(query), let ks = shapes.shapes(keyT), let gs = shapes.shapes(values),
              qs.count == ks.count, gs.count == qs.count else { return false }
        return qs.indices.allSatisfy { sample in
            let (q, k, g) = (qs[sample], ks[sample], gs[sample])
            let rank = q.count
            return rank >= 3 && k.count == rank && g.count == rank && q.dropLast(2) == k.dropLast(2)
                && k.dropLast(2) == g.dropLast(2) && q[rank - 1] == k[rank - 2] && k[rank - 1] == g[rank - 1]
        }
    }
}

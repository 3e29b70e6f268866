import Format

/// Lets `attention` read Q, K and V with their heads interleaved, [..., L, H, D] as the
/// projections write them, and write its output so, instead of running the transposes that
/// split the heads before it and merge them after it:
///
///     Q = [reshape(]transpose(Xq, swap L and H)[)]     likewise K from Xk, V from Xv
///     y = attention(Q, K, V)
///     z = reshape(transpose(y, perm))                  perm puts Lq before H (unit axes aside)
///
/// becomes `z = reshape(attention(Xq, Xk, Xv; headsInterleaved))`. The optional reshape
/// after each input transpose may only add or drop unit axes (nn.MultiheadAttention's
/// export views [H, L, D] as [1, H, L, D]); the output's reader must be a reshape (to the
/// merged [..., L, H·D]), whose target then reads the new element order unchanged. On the
/// ViT restorer this drops 24 of its 32 copies per image (4 per block; the q | k | v split
/// before them remains), on transformers' ViT-S/16 48 of 49.
///
/// Fires only for attention without a bias (the bias would have to follow the dropped unit
/// axes), when every stretch has this form at every sampled input size and no transpose or
/// reshape it drops has another reader.
enum AttentionHeadLayoutFusion {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        let view = PatternView(graph)
        var fused = 0
        for index in graph.nodes.indices where view.isNode(index, .kind(.attention)) {
            guard case .attention(var attributes) = graph.nodes[index].operation, !attributes.headsInterleaved,
                  graph.nodes[index].inputs.count == 3,
                  let sources = splitSources(of: index, view, shapes),
                  let merge = mergingReshape(after: index, view, shapes) else { continue }
            attributes.headsInterleaved = true
            graph.nodes[index].operation = .attention(attributes)
            graph.nodes[index].inputs = sources
            graph.nodes[merge].inputs[0] = graph.nodes[index].outputs[0]
            fused += 1
        }
        _ = graph.removeDeadNodes()
        return fused
    }

    /// The tensors [..., L, H, D] the three operands were transposed from, when each
    /// operand is such a transpose (of rank ≥ 3), maybe viewed with unit axes added or
    /// dropped, read by nothing else, and the three agree in rank and leading dims.
    private static func splitSources(of attention: Int, _ view: PatternView, _ shapes: SampledShapes) -> [String]? {
        let graph = view.graph
        var sources: [String] = []
        for operand in graph.nodes[attention].inputs {
            guard view.consumers.soleReader(of: operand) == attention else { return nil }
            var transposed = operand
            if let reshape = view.producer(of: operand, .kind(.reshape)) {
                transposed = graph.nodes[reshape].inputs[0]
                guard view.consumers.soleReader(of: transposed) == reshape,
                      let before = shapes.shapes(transposed), let after = shapes.shapes(operand),
                      zip(before, after).allSatisfy({ $0.filter { $0 != 1 } == $1.filter { $0 != 1 } }) else { return nil }
            }
            guard let transpose = view.producer(of: transposed, .kind(.transpose)),
                  case .transpose(let t) = graph.nodes[transpose].operation,
                  let rank = shapes.rank(transposed), rank >= 3,
                  t.perm == Array(0..<(rank - 3)) + [rank - 2, rank - 3, rank - 1] else { return nil }
            sources.append(graph.nodes[transpose].inputs[0])
        }
        let all = sources.compactMap { shapes.shapes($0) }
        guard all.count == 3 else { return nil }
        // Q [..., Lq, H, D], K [..., Lk, H, D], V [..., Lk, H, Dv]: one rank, one leading shape and H.
        let agree = all[0].indices.allSatisfy { sample in
            let (q, k, v) = (all[0][sample], all[1][sample], all[2][sample])
            return k.count == q.count && v.count == q.count
                && q.dropLast(3) == k.dropLast(3) && k.dropLast(3) == v.dropLast(3)
                && q[q.count - 2] == k[k.count - 2] && k[k.count - 2] == v[v.count - 2]
        }
        return agree ? sources : nil
    }

    /// The reshape that reads the attention's output through one transpose that leaves
    /// its non-unit axes in the order (leading..., Lq, H, Dv), at every sample; nil otherwise.
    private static func mergingReshape(after attention: Int, _ view: PatternView, _ shapes: SampledShapes) -> Int? {
        let graph = view.graph
        let output = view.output(attention)
        guard let transpose = view.soleReader(of: output, .kind(.transpose)),
              case .transpose(let t) = graph.nodes[transpose].operation,
              let reshape = view.soleReader(of: view.output(transpose), .kind(.reshape)),
              graph.nodes[reshape].inputs[0] == view.output(transpose),
              case .reshape(let r) = graph.nodes[reshape].operation,
              let target = graph.nodes[reshape].input(1).flatMap({ graph.constants[$0] }),
              r.allowZero || !target.intValues().contains(0),
              let outputShapes = shapes.shapes(output) else { return nil }
        return outputShapes.allSatisfy { shape in
            let rank = shape.count
            guard rank >= 3, t.perm.count == rank else { return false }
            let wanted = Array(0..<(rank - 3)) + [rank - 2, rank - 3, rank - 1]
            return t.perm.filter { shape[$0] != 1 } == wanted.filter { shape[$0] != 1 }
        } ? reshape : nil
    }
}

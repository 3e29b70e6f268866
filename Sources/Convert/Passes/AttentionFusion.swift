import Format
import Runtime

/// Fuses scaled dot-product attention as transformers' eager attention exports it,
///
///     s = matMul(Q, Kᵀ) · scale            (or / √d, or Q and Kᵀ each · √scale; optional)
///     p = softmax(s + bias, last axis)      (bias optional, either side)
///     y = matMul(p, V)                      (p possibly through f32→f32 casts)
///
/// where Kᵀ is a transpose node: of K swapping its last two axes, or of K before its
/// heads were split (the exporter merges both transposes), in which case a transpose
/// producing K stays in front of the fused node.
///
/// into one `attention` node, whose kernel never holds more than a block of the score
/// matrix. Fires only when Q, K and V share their leading dims and the bias broadcasts
/// to the scores without enlarging them, at every sampled input size.
enum AttentionFusion {
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
        guard let logits = graph.nodes[softmax].input(0), let rank = shapes.rank(logits),
              case .softmax(let normalisation) = graph.nodes[softmax].operation,
              normalisation.axis == -1 || normalisation.axis == rank - 1 else { return nil }
        // Exporters may cast the probabilities "to the query's dtype", f32 to f32: no-ops.
        var (probabilities, casts) = (view.output(softmax), [Int]())
        while let cast = view.soleReader(of: probabilities, .kind(.cast)),
              graph.nodes[cast].operation == .cast(CastAttributes(to: .float32)), graph.nodes[cast].inputs.count == 1 {
            casts.append(cast)
            probabilities = view.output(cast)
        }
        guard let output = view.soleReader(of: probabilities, .kind(.matMul)),
              graph.nodes[output].inputs.count == 2, graph.nodes[output].inputs[0] == probabilities else { return nil }
        let value = graph.nodes[output].inputs[1]
        var matched = [softmax, output] + casts
        // Walk back from the softmax: `scores` is the value `reader` reads.
        var (scores, reader) = (logits, softmax)
        var bias: String?
        if let add = view.producer(of: scores, .binary(.add)), view.consumers.soleReader(of: scores) == reader {
            let inputs = graph.nodes[add].inputs
            guard let side = inputs.firstIndex(where: { isScaledProduct($0, view) }) else { return nil }
            (scores, reader, bias) = (inputs[side], add, inputs[1 - side])
            matched.append(add)
        }
        var scale: Float = 1
        if view.producer(of: scores, .kind(.matMul)) == nil {
            guard view.consumers.soleReader(of: scores) == reader, let scaling = scalarMultiple(scores, view),
                  view.producer(of: scaling.operand, .kind(.matMul)) != nil else { return nil }
            (scores, reader, scale) = (scaling.operand, scaling.node, scaling.factor)
            matched.append(scaling.node)
        }
        guard let product = view.producer(of: scores, .kind(.matMul)), view.consumers.soleReader(of: scores) == reader else { return nil }
        matched.append(product)
        // PyTorch's exported scaled_dot_product_attention scales Q and Kᵀ by √scale each instead.
        var (query, keyT, keyTReader) = (graph.nodes[product].inputs[0], graph.nodes[product].inputs[1], product)
        if let scaling = scalarMultiple(query, view), view.consumers.soleReader(of: query) == product {
            (query, scale) = (scaling.operand, scale * scaling.factor)
            matched.append(scaling.node)
        }
        if let scaling = scalarMultiple(keyT, view), view.consumers.soleReader(of: keyT) == product {
            (keyT, keyTReader, scale) = (scaling.operand, scaling.node, scale * scaling.factor)
            matched.append(scaling.node)
        }
        guard let transpose = view.producer(of: keyT, .kind(.transpose)), view.consumers.soleReader(of: keyT) == keyTReader,
              let source = graph.nodes[transpose].input(0),
              case .transpose(let transposition) = graph.nodes[transpose].operation, transposition.perm.count == rank
        else { return nil }
        let perm = transposition.perm
        matched.append(transpose)
        // Kᵀ = transpose(source, perm), so K = transpose(source, perm with its last two
        // entries swapped): exporters merge head-splitting and Kᵀ into one transpose.
        let keyPerm = Array(perm.dropLast(2)) + [perm[rank - 1], perm[rank - 2]]
        let name = graph.nodes[softmax].name
        var nodes: [Node] = []
        var key = source
        if keyPerm != Array(0..<rank) {
            key = graph.unusedName("\(name).key")
            nodes.append(Node(name: "\(name).key", .transpose(TransposeAttributes(perm: keyPerm)), inputs: [source], outputs: [key]))
        }
        guard let keyShapes = shapes.shapes(source)?.map({ dims in keyPerm.map { dims[$0] } }),
              agree(query: query, keyShapes: keyShapes, value: value, bias: bias, shapes) else { return nil }
        nodes.append(Node(name: name, .attention(AttentionAttributes(scale: scale)), inputs: [query, key, value] + (bias.map { [$0] } ?? []),
                          outputs: [view.output(output)]))
        return Rewrite(matched: matched, replacement: nodes)
    }

    /// True when `value` is a matMul's output, or that output times or over a scalar.
    static func isScaledProduct(_ value: String, _ view: PatternView) -> Bool {
        view.producer(of: value, .kind(.matMul)) != nil
            || scalarMultiple(value, view).map { view.producer(of: $0.operand, .kind(.matMul)) != nil } == true
    }

    /// `value` as x · c, c · x or x / c with c a scalar constant: the node, x and the factor.
    private static func scalarMultiple(_ value: String, _ view: PatternView) -> (node: Int, operand: String, factor: Float)? {
        if let multiply = view.producer(of: value, .binary(.mul)) {
            let inputs = view.graph.nodes[multiply].inputs
            for (operand, factor) in [(inputs[0], inputs[1]), (inputs[1], inputs[0])] where view.graph.constants[operand] == nil {
                if let factor = view.scalar(factor) { return (multiply, operand, factor) }
            }
        }
        if let divide = view.producer(of: value, .binary(.div)), let divisor = view.scalar(view.graph.nodes[divide].inputs[1]),
           divisor != 0 {
            return (divide, view.graph.nodes[divide].inputs[0], 1 / divisor)
        }
        return nil
    }

    /// Q, K, V have equal leading dims and the bias fits the scores at every sample.
    private static func agree(query: String, keyShapes ks: [[Int]], value: String, bias: String?, _ shapes: SampledShapes) -> Bool {
        guard let qs = shapes.shapes(query), let vs = shapes.shapes(value), ks.count == qs.count else { return false }
        let biasShapes = bias.map { shapes.shapes($0) }
        if case .some(nil) = biasShapes { return false }
        return qs.indices.allSatisfy { sample in
            let (q, k, v) = (qs[sample], ks[sample], vs[sample])
            guard q.count >= 2, k.count == q.count, v.count == q.count, q.dropLast(2) == k.dropLast(2),
                  k.dropLast(2) == v.dropLast(2), q.last == k.last, k[k.count - 2] == v[v.count - 2] else { return false }
            guard let biasShape = biasShapes??[sample] else { return true }
            let scores = Array(q.dropLast()) + [k[k.count - 2]]
            return biasShape.count <= scores.count && (try? ShapeRules.broadcast(biasShape, scores, node: "")) == scores
        }
    }
}

import Format
import Runtime

/// Fuses scaled dot-product attention as transformers' eager attention exports it,
///
///     s = matMul(Q, transpose(K, swap last two axes)) · scale   (or / √d; optional)
///     p = softmax(s + bias, last axis)                          (bias optional, either side)
///     y = matMul(p, V)
///
/// into one `attention` node, whose kernel never holds more than a block of the score
/// matrix. Fires only when Q, K and V share their leading dims and the bias broadcasts
/// to the scores without enlarging them, at every sampled input size.
enum AttentionFusion {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        for index in graph.nodes.indices where view.isNode(index, .softmax) {
            if let rewrite = match(softmax: index, view, shapes) { rewrites.append(rewrite) }
        }
        return graph.apply(rewrites)
    }

    private static func match(softmax: Int, _ view: PatternView, _ shapes: SampledShapes) -> Rewrite? {
        let graph = view.graph
        guard let logits = graph.nodes[softmax].input(0), let rank = shapes.rank(logits),
              let axis = try? graph.nodes[softmax].int("axis", default: -1), axis == -1 || axis == rank - 1,
              let output = view.soleReader(of: view.output(softmax), .matMul),
              graph.nodes[output].inputs.count == 2, graph.nodes[output].inputs[0] == view.output(softmax) else { return nil }
        let value = graph.nodes[output].inputs[1]
        var matched = [softmax, output]
        // Walk back from the softmax: `scores` is the value `reader` reads.
        var (scores, reader) = (logits, softmax)
        var bias: String?
        if let add = view.producer(of: scores, .binary, "add"), view.consumers.soleReader(of: scores) == reader {
            let inputs = graph.nodes[add].inputs
            guard let side = inputs.firstIndex(where: { isScaledProduct($0, view) }) else { return nil }
            (scores, reader, bias) = (inputs[side], add, inputs[1 - side])
            matched.append(add)
        }
        var scale: Float = 1
        if view.producer(of: scores, .matMul) == nil {
            guard view.consumers.soleReader(of: scores) == reader, let scaling = scaledProduct(scores, view) else { return nil }
            (scores, reader, scale) = (scaling.product, scaling.node, scaling.scale)
            matched.append(scaling.node)
        }
        guard let product = view.producer(of: scores, .matMul), view.consumers.soleReader(of: scores) == reader,
              let transpose = view.producer(of: graph.nodes[product].inputs[1], .transpose),
              view.consumers.soleReader(of: view.output(transpose)) == product,
              let key = graph.nodes[transpose].input(0),
              swapsLastTwoAxes(graph.nodes[transpose], rank: rank) else { return nil }
        let query = graph.nodes[product].inputs[0]
        matched += [product, transpose]
        guard agree(query: query, key: key, value: value, bias: bias, shapes) else { return nil }
        return Rewrite(matched: matched, replacement: [
            Node(name: graph.nodes[softmax].name, op: .attention, inputs: [query, key, value] + (bias.map { [$0] } ?? []),
                 outputs: [view.output(output)], attributes: ["scale": .float(scale)]),
        ])
    }

    /// True when `value` is a matMul's output, or that output times or over a scalar.
    private static func isScaledProduct(_ value: String, _ view: PatternView) -> Bool {
        view.producer(of: value, .matMul) != nil || scaledProduct(value, view) != nil
    }

    /// `value` as product · c, c · product or product / c, with product a matMul's output.
    private static func scaledProduct(_ value: String, _ view: PatternView) -> (node: Int, product: String, scale: Float)? {
        if let multiply = view.producer(of: value, .binary, "mul") {
            let inputs = view.graph.nodes[multiply].inputs
            for (product, factor) in [(inputs[0], inputs[1]), (inputs[1], inputs[0])] where view.producer(of: product, .matMul) != nil {
                if let scale = view.scalar(factor) { return (multiply, product, scale) }
            }
        }
        if let divide = view.producer(of: value, .binary, "div"), view.producer(of: view.graph.nodes[divide].inputs[0], .matMul) != nil,
           let divisor = view.scalar(view.graph.nodes[divide].inputs[1]), divisor != 0 {
            return (divide, view.graph.nodes[divide].inputs[0], 1 / divisor)
        }
        return nil
    }

    private static func swapsLastTwoAxes(_ node: Node, rank: Int) -> Bool {
        guard case .ints(let perm)? = node.attributes["perm"], perm.count == rank, rank >= 2 else { return false }
        return perm == Array(0..<(rank - 2)) + [rank - 1, rank - 2]
    }

    /// Q, K, V have equal leading dims and the bias fits the scores at every sample.
    private static func agree(query: String, key: String, value: String, bias: String?, _ shapes: SampledShapes) -> Bool {
        guard let qs = shapes.shapes(query), let ks = shapes.shapes(key), let vs = shapes.shapes(value) else { return false }
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

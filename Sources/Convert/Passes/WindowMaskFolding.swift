import Format
import Runtime

/// Moves the shifted-window mask of Swin's paper/mmsegmentation layout into the attention
/// bias, so that `AttentionFusion` can fuse the masked blocks too. That layout adds the
/// mask through a 5-D view of the scores:
///
///     t = s + b                        s the scores [M, h, N, N] (a scaled matMul), b a bias
///     u = reshape(t, [B, nW, h, N, N])  (M = B·nW windows)
///     v = u + m                        m the mask, [1, nW, 1, N, N]
///     y = reshape(v, [M, h, N, N])
///
/// When B is 1 at every sampled size (image models run one image at a time) the views are
/// no-ops, and this becomes
///
///     m' = reshape(m, [-1, m₂, m₃, m₄])   [nW, 1, N, N]
///     y  = s + (b + m')
///
/// which `AttentionFusion` takes as softmax(scores + bias). Adding the bias and the mask
/// first only reorders one float addition. Without `b` the result is `y = s + m'`.
enum WindowMaskFolding {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        for index in graph.nodes.indices where view.isNode(index, .kind(.reshape)) {
            if let rewrite = match(outerReshape: index, view, shapes) { rewrites.append(rewrite) }
        }
        return graph.apply(rewrites)
    }

    private static func match(outerReshape: Int, _ view: PatternView, _ shapes: SampledShapes) -> Rewrite? {
        let graph = view.graph
        guard let masked = graph.nodes[outerReshape].input(0), let add = view.producer(of: masked, .binary(.add)),
              view.consumers.soleReader(of: masked) == outerReshape else { return nil }
        let addInputs = graph.nodes[add].inputs
        // Either side of `u + m` may be the 5-D view of the scores.
        for side in 0..<2 {
            let (viewed, mask) = (addInputs[side], addInputs[1 - side])
            guard let innerReshape = view.producer(of: viewed, .kind(.reshape)), view.consumers.soleReader(of: viewed) == add,
                  let scores = graph.nodes[innerReshape].input(0), view.consumers.soleReader(of: scores) == innerReshape,
                  let maskDims = foldableMask(mask, scores: scores, viewed: viewed, output: view.output(outerReshape), shapes)
            else { continue }
            let name = graph.nodes[outerReshape].name
            let maskShape = graph.unusedName("\(name).mask_shape")
            let folded = graph.unusedName("\(name).mask")
            var nodes = [Node(name: "\(name).mask", .reshape(ReshapeAttributes()), inputs: [mask, maskShape], outputs: [folded])]
            var matched = [outerReshape, add, innerReshape]
            let output = view.output(outerReshape)
            if let biasAdd = view.producer(of: scores, .binary(.add)),
               let productSide = graph.nodes[biasAdd].inputs.firstIndex(where: { AttentionFusion.isScaledProduct($0, view) }) {
                let (product, bias) = (graph.nodes[biasAdd].inputs[productSide], graph.nodes[biasAdd].inputs[1 - productSide])
                let combined = graph.unusedName("\(name).bias")
                nodes.append(Node(name: "\(name).bias", .binary(.add), inputs: [bias, folded], outputs: [combined]))
                nodes.append(Node(name: name, .binary(.add), inputs: [product, combined], outputs: [output]))
                matched.append(biasAdd)
            } else if AttentionFusion.isScaledProduct(scores, view) {
                nodes.append(Node(name: name, .binary(.add), inputs: [scores, folded], outputs: [output]))
            } else {
                return nil
            }
            return Rewrite(matched: matched, replacement: nodes,
                           constants: [ConstantTensor(name: maskShape, shape: [4], ints: [-1] + maskDims.map(Int64.init))])
        }
        return nil
    }

    /// The mask's axes 2…4 when, at every sample, the scores `[M, h, N, N]` are viewed as
    /// `[1, M, h, N, N]`, viewed back to their own shape, and the mask is `[1, nW, m₂, m₃, m₄]`
    /// with those axes the same everywhere and broadcasting to the scores without enlarging them.
    private static func foldableMask(_ mask: String, scores: String, viewed: String, output: String,
                                     _ shapes: SampledShapes) -> [Int]? {
        guard let scoreShapes = shapes.shapes(scores), let viewedShapes = shapes.shapes(viewed),
              let outputShapes = shapes.shapes(output), let maskShapes = shapes.shapes(mask),
              let trailing = maskShapes.first.map({ Array($0.dropFirst(2)) }) else { return nil }
        for (sample, score) in scoreShapes.enumerated() {
            let maskShape = maskShapes[sample]
            guard score.count == 4, viewedShapes[sample] == [1] + score, outputShapes[sample] == score,
                  maskShape.count == 5, maskShape[0] == 1, Array(maskShape.dropFirst(2)) == trailing,
                  (try? ShapeRules.broadcast(Array(maskShape.dropFirst()), score, node: "")) == score else { return nil }
        }
        return trailing
    }
}

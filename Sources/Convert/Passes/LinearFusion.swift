import Format

/// Turns `matMul(x, W)` with a constant 2-D W [K, N], and the `add` of a constant bias
/// vector [N] that follows it when there is one, into `linear(x, Wᵀ, b)`: the weight is
/// transposed once here, the bias is added on the GEMM tile while it is in cache, and
/// `ActivationFusion` can fuse a following GELU into the same node.
enum LinearFusion {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        var transposed: [String: String] = [:]
        for index in graph.nodes.indices where view.isNode(index, .kind(.matMul)) {
            let node = graph.nodes[index]
            guard node.inputs.count == 2, let weight = graph.constants[node.inputs[1]], weight.dtype.isFloatingPoint,
                  weight.shape.count == 2 else { continue }
            let (k, n) = (weight.shape[0], weight.shape[1])
            var matched = [index]
            var output = view.output(index)
            var constants: [ConstantTensor] = []
            if let add = view.soleReader(of: output, .binary(.add)),
               let candidate = view.operand(of: add, besides: output),
               isBiasVector(candidate, columns: n, outputRank: shapes.rank(output), view),
               let values = graph.constants[candidate]?.floatValues() {
                matched.append(add)
                output = view.output(add)
                constants.append(ConstantTensor(name: graph.unusedName("\(node.name).bias"), shape: [n], floats: values))
            }
            let bias = constants.first?.name
            // A weight shared by several products (tied embeddings) is transposed once.
            let transposedName = transposed[weight.name] ?? graph.unusedName("\(weight.name).transposed")
            if transposed[weight.name] == nil {
                let values = weight.floatValues()
                var rows = [Float](repeating: 0, count: values.count)
                for p in 0..<k { for j in 0..<n { rows[j * k + p] = values[p * n + j] } }
                constants.append(ConstantTensor(name: transposedName, shape: [n, k], floats: rows))
                transposed[weight.name] = transposedName
            }
            rewrites.append(Rewrite(matched: matched, replacement: [
                Node(name: node.name, .linear(LinearAttributes()), inputs: [node.inputs[0], transposedName] + (bias.map { [$0] } ?? []),
                     outputs: [output]),
            ], constants: constants))
        }
        return graph.apply(rewrites)
    }

    /// True when `value` is a float constant of `columns` values along the last axis only,
    /// so adding it broadcasts over rows and does not enlarge the product.
    private static func isBiasVector(_ value: String, columns: Int, outputRank: Int?, _ view: PatternView) -> Bool {
        guard let constant = view.graph.constants[value], constant.dtype.isFloatingPoint,
              constant.shape.last == columns, constant.shape.dropLast().allSatisfy({ $0 == 1 }) else { return false }
        return constant.shape.count == 1 || outputRank.map { constant.shape.count <= $0 } == true
    }
}

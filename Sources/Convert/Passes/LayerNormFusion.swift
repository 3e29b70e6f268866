import Format

/// Fuses layer normalisation written out as elementary ops — what opset < 17 exports and
/// hand-written modules such as NAFNet's LayerNorm2d produce — into one `layerNorm`:
///
///     m = mean(x, axis); d = x − m; v = mean(d², axis)      (d² as Pow 2 or d·d; d may be computed twice)
///     n = d / sqrt(v + ε)  or  d · reciprocal(sqrt(v + ε))
///     y = n · γ + β                                          (γ, β optional, either side)
///
/// over the last axis, or over the channels of NCHW. `layerNorm` normalises trailing
/// axes, so the channel form becomes transpose to NHWC, `layerNorm`, transpose back:
/// three nodes and two copies instead of ten element-wise passes.
enum LayerNormFusion {
    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        for index in graph.nodes.indices {
            if let rewrite = match(mean: index, view, shapes) { rewrites.append(rewrite) }
        }
        let fused = graph.apply(rewrites)
        // γ/β reshapes and the shape arithmetic feeding them are now unread.
        _ = graph.removeDeadNodes()
        return fused
    }

    /// The axis, when `node` is a keep-dims mean over exactly one axis.
    private static func meanAxis(_ node: Node) -> Int? {
        guard case .reduce(let mean) = node.operation, mean.function == .mean, mean.keepDims,
              mean.axes.count == 1 else { return nil }
        return mean.axes[0]
    }

    /// The axis normalised when a mean over `axis` is a layer norm's: -1 for the last
    /// axis, 1 for the channels of a rank-4 tensor.
    private static func normalisedAxis(_ axis: Int, rank: Int?) -> Int? {
        if axis == -1 || (rank.map { axis == $0 - 1 } ?? false) { return -1 }
        if rank == 4 && (axis == 1 || axis == -3) { return 1 }
        return nil
    }

    private static func match(mean: Int, _ view: PatternView, _ shapes: SampledShapes) -> Rewrite? {
        let graph = view.graph
        guard view.isNode(mean, .reduce(.mean)), let x = graph.nodes[mean].input(0) else { return nil }
        let rank = shapes.rank(x)
        // d = x − m, computed once or (NAFNet's own LayerNorm2d) once for the square and again for the division.
        let centres = view.consumers.distinctReaders(of: view.output(mean))
        guard let reduced = meanAxis(graph.nodes[mean]), let axis = normalisedAxis(reduced, rank: rank),
              (1...2).contains(centres.count),
              centres.allSatisfy({ view.isNode($0, .binary(.sub)) && graph.nodes[$0].inputs == [x, view.output(mean)] })
        else { return nil }
        let centred = Set(centres.map(view.output))
        guard let square = centres.lazy.flatMap({ view.consumers.distinctReaders(of: view.output($0)) })
                  .first(where: { index in centred.contains { isSquare(index, of: $0, view) } }),
              let variance = view.soleReader(of: view.output(square), .reduce(.mean)),
              meanAxis(graph.nodes[variance]) == reduced,
              let shift = view.soleReader(of: view.output(variance), .binary(.add)),
              let epsilon = view.operand(of: shift, besides: view.output(variance)).flatMap(view.scalar),
              let root = view.soleReader(of: view.output(shift), .unary(.sqrt)),
              let (division, normalised) = divide(centred, by: root, view) else { return nil }
        // Each d is read by the square or the division and nothing else (a graph output has no listed readers).
        let allowed = Set([square] + division)
        guard centred.allSatisfy({ value in
            let readers = view.consumers.distinctReaders(of: value)
            return !readers.isEmpty && readers.allSatisfy(allowed.contains)
        }) else { return nil }
        var matched = [mean, square, variance, shift, root] + centres + division
        var result = normalised
        var scale: [Float]?
        var bias: [Float]?
        if let multiply = view.soleReader(of: result, .binary(.mul)),
           let values = view.operand(of: multiply, besides: result).flatMap({ parameter($0, axis: axis, rank: rank, view, shapes) }) {
            scale = values
            matched.append(multiply)
            result = view.output(multiply)
        }
        if let add = view.soleReader(of: result, .binary(.add)),
           let values = view.operand(of: add, besides: result).flatMap({ parameter($0, axis: axis, rank: rank, view, shapes) }) {
            bias = values
            matched.append(add)
            result = view.output(add)
        }
        let name = graph.nodes[mean].name
        var constants: [ConstantTensor] = []
        var parameters: [String] = []
        for (label, values) in [("scale", scale), ("bias", bias)] {
            guard let values else { parameters.append(""); continue }
            constants.append(ConstantTensor(name: graph.unusedName("\(name).\(label)"), shape: [values.count], floats: values))
            parameters.append(constants[constants.count - 1].name)
        }
        return Rewrite(matched: matched, replacement: replacement(x: x, parameters: parameters, output: result, axis: axis,
                                                                  epsilon: epsilon, name: name, graph),
                       constants: constants)
    }

    /// d² as `pow(d, 2)` or `d · d`.
    private static func isSquare(_ index: Int, of value: String, _ view: PatternView) -> Bool {
        let inputs = view.graph.nodes[index].inputs
        if view.isNode(index, .binary(.pow)) { return inputs.count == 2 && inputs[0] == value && view.isScalar(inputs[1], 2) }
        return view.isNode(index, .binary(.mul)) && inputs == [value, value]
    }

    /// The nodes computing d / root and its output, d one of `centred`: one `div`, or
    /// `reciprocal` then `mul`.
    private static func divide(_ centred: Set<String>, by root: Int, _ view: PatternView) -> ([Int], String)? {
        let deviation = view.output(root)
        if let division = view.soleReader(of: deviation, .binary(.div)),
           view.graph.nodes[division].inputs[1] == deviation, centred.contains(view.graph.nodes[division].inputs[0]) {
            return ([division], view.output(division))
        }
        if let reciprocal = view.soleReader(of: deviation, .unary(.reciprocal)),
           let multiply = view.soleReader(of: view.output(reciprocal), .binary(.mul)),
           let other = view.operand(of: multiply, besides: view.output(reciprocal)), centred.contains(other) {
            return ([reciprocal, multiply], view.output(multiply))
        }
        return nil
    }

    /// The values of a γ or β that varies at most along the normalised axis (so
    /// broadcasting it neither mixes positions nor enlarges the result): a constant, or a
    /// constant reshaped to a target computed from shapes (`weight.view(1, C, 1, 1)` with
    /// C read from x), whose shape is then the same at every sample.
    private static func parameter(_ value: String, axis: Int, rank: Int?, _ view: PatternView, _ shapes: SampledShapes) -> [Float]? {
        let graph = view.graph
        let constant: ConstantTensor
        let shape: [Int]
        if let direct = graph.constants[value] {
            (constant, shape) = (direct, direct.shape)
        } else if let reshape = view.producer(of: value, .kind(.reshape)), let source = graph.nodes[reshape].input(0),
                  let reshaped = graph.constants[source], let sampled = shapes.shapes(value), Set(sampled).count == 1,
                  sampled[0].reduce(1, *) == reshaped.shape.reduce(1, *) {
            (constant, shape) = (reshaped, sampled[0])
        } else {
            return nil
        }
        guard constant.dtype.isFloatingPoint else { return nil }
        // Without the input's rank only a plain vector is known to broadcast along the last axis alone.
        guard let rank else { return axis == -1 && shape.count == 1 ? constant.floatValues() : nil }
        guard shape.count <= rank else { return nil }
        let padded = Array(repeating: 1, count: rank - shape.count) + shape
        let normalisedIndex = axis < 0 ? rank - 1 : axis
        guard padded.indices.allSatisfy({ $0 == normalisedIndex || padded[$0] == 1 }) else { return nil }
        return constant.floatValues()
    }

    /// `layerNorm` of x with [scale, bias] names ("" when absent), wrapped in transposes
    /// for the channel axis.
    private static func replacement(x: String, parameters: [String], output: String, axis: Int, epsilon: Float,
                                    name: String, _ graph: Graph) -> [Node] {
        let layerNorm = Op.layerNorm(LayerNormAttributes(axis: -1, epsilon: epsilon))
        if axis == -1 {
            return [Node(name: name, layerNorm, inputs: [x] + parameters, outputs: [output])]
        }
        let (channelsLast, normalised) = (graph.unusedName("\(name).nhwc"), graph.unusedName("\(name).normalised_nhwc"))
        return [
            Node(name: "\(name).to_nhwc", .transpose(TransposeAttributes(perm: [0, 2, 3, 1])), inputs: [x], outputs: [channelsLast]),
            Node(name: name, layerNorm, inputs: [channelsLast] + parameters, outputs: [normalised]),
            Node(name: "\(name).to_nchw", .transpose(TransposeAttributes(perm: [0, 3, 1, 2])), inputs: [normalised], outputs: [output]),
        ]
    }
}

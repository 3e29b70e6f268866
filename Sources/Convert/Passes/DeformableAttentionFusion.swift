import Format
import Runtime

/// Recognises multi-scale deformable attention written with one gridSample per level (as
/// Deformable DETR's PyTorch fallback, transformers' Mask2Former and ViT-Adapter export it)
/// and replaces it by one `deformableAttention` node.
///
/// The anchor is a sum over the last axis of `samples × weights`, where `samples` is a
/// concat of the levels' gridSample outputs (each unsqueezed, the stack reshaped). From
/// each gridSample it walks back through data movement (reshape, transpose, slice, split,
/// gather, squeeze, unsqueeze, flatten) to the value all levels' maps come from and to the
/// grid all levels' grids come from; from the other factor back to the weights; and from
/// the sum forward through data movement to the last value shaped [B, Q, heads·D]. The
/// heads and level sizes come from the gridSample inputs' shapes, which must be the same
/// at every sample size (fixed-size models). The match is then checked by running it:
/// at every sample size, the matched nodes' reference kernels and `deformableAttention`'s
/// reference on the same random value, grid (some points outside the maps) and weights
/// must agree to 1e-4 of the output's magnitude — so a layout the walk did not foresee
/// (another split order, a level permuted) leaves the graph alone instead of changing it.
enum DeformableAttentionFusion {
    static let movement: OpPattern = .anyOf([.traits(.isView), .kind(.transpose), .kind(.slice), .kind(.split), .kind(.gather)])

    static func run(_ graph: inout Graph, shapes: SampledShapes) throws -> Int {
        guard !shapes.samples.isEmpty else { return 0 }
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        for index in graph.nodes.indices where view.isNode(index, .reduce(.sum)) {
            if let rewrite = match(sum: index, view, shapes) { rewrites.append(rewrite) }
        }
        return graph.apply(rewrites)
    }

    private struct Chain {
        var nodes: [Int] = []
        var source: String
    }

    /// Walks back from `value` through data-movement nodes to the first value a node of
    /// another kind (or a graph input or constant) produces. A split (several outputs,
    /// one per level) is data movement too.
    private static func walkBack(from value: String, _ view: PatternView) -> Chain {
        var chain = Chain(source: value)
        while let producer = view.producer(of: chain.source, movement) ?? splitProducing(chain.source, view),
              let input = view.graph.nodes[producer].inputs.first, !input.isEmpty {
            chain.nodes.append(producer)
            chain.source = input
        }
        return chain
    }

    private static func splitProducing(_ value: String, _ view: PatternView) -> Int? {
        view.graph.nodes.firstIndex { $0.op == .split && $0.outputs.contains(value) }
    }

    private static func match(sum: Int, _ view: PatternView, _ shapes: SampledShapes) -> Rewrite? {
        guard case .reduce(let reduction) = view.graph.nodes[sum].operation, !reduction.keepDims,
              reduction.axes.count == 1, let rank = shapes.rank(view.graph.nodes[sum].inputs[0]),
              reduction.axes[0] == -1 || reduction.axes[0] == rank - 1,
              let product = view.producer(of: view.graph.nodes[sum].inputs[0], .binary(.mul)) else { return nil }
        let factors = view.graph.nodes[product].inputs
        for (samplesSide, weightSide) in [(0, 1), (1, 0)] {
            if let rewrite = match(sum: sum, product: product, samples: factors[samplesSide], weights: factors[weightSide],
                                   view, shapes) {
                return rewrite
            }
        }
        return nil
    }

    private static func match(sum: Int, product: Int, samples: String, weights: String, _ view: PatternView,
                              _ shapes: SampledShapes) -> Rewrite? {
        // samples: views of a concat of (views of) gridSample outputs, one per level.
        // With one level there is no concat: the views lead straight to the gridSample.
        let stacked = walkBack(from: samples, view)
        var matched = Set(stacked.nodes + [product, sum])
        var levelOutputs = [samples]
        if let concat = view.producer(of: stacked.source, .kind(.concat)) {
            matched.insert(concat)
            levelOutputs = view.graph.nodes[concat].inputs
        }
        var samplers: [Int] = []
        for input in levelOutputs {
            let level = walkBack(from: input, view)
            guard let sampler = view.producer(of: level.source, .kind(.gridSample)) else { return nil }
            matched.formUnion(level.nodes)
            samplers.append(sampler)
        }
        guard case .gridSample(let sampling) = view.graph.nodes[samplers[0]].operation,
              samplers.allSatisfy({ view.graph.nodes[$0].operation == .gridSample(sampling) }) else { return nil }
        matched.formUnion(samplers)

        // Every level's map from one value, every level's grid from one grid.
        let valueChains = samplers.map { walkBack(from: view.graph.nodes[$0].inputs[0], view) }
        let gridChains = samplers.map { walkBack(from: view.graph.nodes[$0].inputs[1], view) }
        guard let value = valueChains.first?.source, valueChains.allSatisfy({ $0.source == value }),
              let grid = gridChains.first?.source, gridChains.allSatisfy({ $0.source == grid }) else { return nil }
        let weightChain = walkBack(from: weights, view)
        matched.formUnion(valueChains.flatMap(\.nodes) + gridChains.flatMap(\.nodes) + weightChain.nodes)

        // Forward from the sum through data movement; the output is the last [B, Q, C] value.
        var forward: [Int] = []
        var current = view.output(sum)
        while let reader = view.soleReader(of: current, movement) {
            forward.append(reader)
            current = view.output(reader)
        }

        // Sizes: B from the value, heads from the maps' batch, levels from the maps.
        var maps: [[Int]] = []
        for sampler in samplers {
            guard let mapShapes = shapes.shapes(view.graph.nodes[sampler].inputs[0]), Set(mapShapes).count == 1,
                  mapShapes[0].count == 4 else { return nil }
            maps.append(mapShapes[0])
        }
        guard let valueShapes = shapes.shapes(value), let gridShapes = shapes.shapes(grid), Set(valueShapes).count == 1,
              let batch = valueShapes[0].first, batch > 0, maps[0][0] % batch == 0 else { return nil }
        let attributes = DeformableAttentionAttributes(heads: maps[0][0] / batch, levelShapes: maps.flatMap { [$0[2], $0[3]] },
                                                       sampling: sampling)
        let channels = valueShapes[0].dropFirst(2).reduce(1, *)
        let queries = gridShapes[0].count > 1 ? gridShapes[0][1] : 0
        let candidates = ([sum] + forward).map { view.output($0) }
        guard let outputIndex = candidates.lastIndex(where: { shapes.shapes($0)?.allSatisfy { $0 == [batch, queries, channels] } ?? false })
        else { return nil }
        matched.formUnion(forward.prefix(outputIndex))
        let output = candidates[outputIndex]

        // Nothing the match computes may be read outside it.
        for index in matched {
            for produced in view.graph.nodes[index].outputs where produced != output {
                guard view.consumers.distinctReaders(of: produced).allSatisfy(matched.contains),
                      !view.graph.outputs.contains(where: { $0.name == produced }) else { return nil }
            }
        }
        let fused = Node(name: view.graph.nodes[sum].name, .deformableAttention(attributes),
                         inputs: [value, grid, weightChain.source], outputs: [output])
        guard agrees(Array(matched), fused: fused, output: output, view, shapes) else { return nil }
        return Rewrite(matched: Array(matched), replacement: [fused])
    }

    /// Runs the matched nodes and the fused node on the same random inputs at every sample size.
    private static func agrees(_ nodes: [Int], fused: Node, output: String, _ view: PatternView,
                               _ shapes: SampledShapes) -> Bool {
        var generator = SplitMix(seed: 0x5EED)
        for sample in shapes.samples.indices {
            var values: [String: HostTensor] = [:]
            for (position, input) in fused.inputs.enumerated() {
                guard let shape = shapes.samples[sample][input] else { return false }
                // Grid points reach 20% past the maps on each side, so padding decides some samples.
                let spread: Float = position == 1 ? 1.2 : 1
                values[input] = HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in
                    generator.uniform() * 2 * spread - spread
                })
            }
            let inputs = fused.inputs.map { values[$0] }
            for index in nodes.sorted() {
                let node = view.graph.nodes[index]
                var arguments: [HostTensor?] = []
                for name in node.inputs {
                    if name.isEmpty {
                        arguments.append(nil)
                    } else if let known = values[name] ?? (try? view.graph.constantValue(name))
                                ?? (sample < shapes.knownValues.count ? shapes.knownValues[sample][name] : nil) {
                        arguments.append(known)
                    } else {
                        return false
                    }
                }
                guard let results = try? OpKind.makeOperator(node).reference(arguments) else { return false }
                for (name, result) in zip(node.outputs, results) { values[name] = result }
            }
            guard let expected = values[output]?.floats,
                  let actual = try? OpKind.makeOperator(fused).reference(inputs).first?.floats,
                  expected.count == actual.count else { return false }
            let magnitude = expected.reduce(Float(0)) { max($0, abs($1)) }
            let error = zip(expected, actual).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
            guard error <= 1e-4 * max(magnitude, 1e-6) else { return false }
        }
        return true
    }

    /// A small seeded generator (SplitMix64), so a conversion is reproducible.
    private struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }

        mutating func uniform() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24)
        }
    }
}

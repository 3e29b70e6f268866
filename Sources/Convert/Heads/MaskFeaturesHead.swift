import Format
import Runtime

/// `convert --head rgb` on a Mask2Former (transformers' `Mask2FormerForUniversalSegmentation`,
/// docs/design.md §4). Its outputs are per-query class logits [B, Q, classes + 1] and per-query
/// masks [B, Q, H/4, W/4] = einsum("bqc,bchw->bqhw", mask embeddings, mask features), where the
/// mask features [B, C, H/4, W/4] are the pixel decoder's 1/4-resolution output. The head is
/// either a 1×1 conv from the mask features to 3 channels, zero-initialised (`--head-init zero`:
/// with `restore.residual` the model starts as the identity; the transformer decoder then reads
/// into nothing and is removed), or 3 chosen mask queries' logits (`--head-queries A,B,C`, or
/// `--head-init first3` for queries 0, 1, 2). Either is upsampled bilinearly to full size and
/// becomes the model's only output.
enum MaskFeaturesHead {
    /// Where the mask features are, found by the structure of the mask product.
    struct Match: Equatable {
        /// The [B, C, H/4, W/4] value the mask product reads.
        var maskFeatures: String
        /// The graph output holding the [B, Q, H/4, W/4] masks.
        var maskLogits: String
        var featureChannels: Int
        var queries: Int
    }

    /// Whether `node` moves data without computing: the einsum lowering puts reshapes and
    /// transposes between the mask product and its operands and result, and the importer
    /// an identity before a graph output.
    private static func movesData(_ node: Node) -> Bool {
        switch node.operation {
        case .reshape, .transpose, .squeeze, .unsqueeze, .flatten: true
        case .unary(let activation): activation.function == .identity
        default: false
        }
    }

    /// The mask product of a Mask2Former: a graph output of rank 4 produced (through data
    /// movement) by a `matMul` of a [B, Q, C] operand and a [B, C, h, w] one, with h × w a
    /// quarter of the input's size at every sample size. Nil when the graph has none; an
    /// error when two outputs read different features.
    static func find(_ graph: Graph, valueShapes: [[String: [Int]]], input: String) throws -> Match? {
        func producer(of value: String) -> Node? { graph.nodes.last { $0.outputs.contains(value) } }
        func source(of value: String) -> String {
            var value = value
            while let node = producer(of: value), movesData(node), let data = node.input(0) { value = data }
            return value
        }
        var matches: [Match] = []
        for output in graph.outputs {
            guard let product = producer(of: source(of: output.name)), product.op == .matMul,
                  let left = product.input(0), let right = product.input(1) else { continue }
            let operands = [source(of: left), source(of: right)]
            let match = valueShapes.allSatisfy { shapes in
                guard let image = shapes[input], image.count == 4, let masks = shapes[output.name], masks.count == 4,
                      let embeddings = shapes[operands[0]], embeddings.count == 3,
                      let features = shapes[operands[1]], features.count == 4 else { return false }
                return features[2] * 4 == image[2] && features[3] * 4 == image[3]
                    && masks[2] == features[2] && masks[3] == features[3]
                    && embeddings[2] == features[1] && masks[1] == embeddings[1]
            }
            guard match, let shapes = valueShapes.first, let masks = shapes[output.name],
                  let features = shapes[operands[1]] else { continue }
            matches.append(Match(maskFeatures: operands[1], maskLogits: output.name, featureChannels: features[1],
                                 queries: masks[1]))
        }
        if Set(matches.map(\.maskFeatures)).count > 1 {
            throw RGBHeadError.ambiguousMaskFeatures(matches.map(\.maskFeatures))
        }
        return matches.first
    }

    /// Whether `graph` is recognisably a Mask2Former by name, so that a failed `find`
    /// is reported as such rather than as a missing classifier.
    static func looksLikeMask2Former(_ graph: Graph) -> Bool {
        graph.outputs.contains { $0.name == "masks_queries_logits" }
            || graph.nodes.contains { $0.name.contains("mask_projection") }
    }

    /// Attaches the head for `match`; returns the outcome `convert --verbose` prints.
    static func attach(to graph: inout Graph, match: Match, input: String, scale: Int,
                       initialisation: HeadInitialisation?, queries: [Int]?) throws -> RGBHead.Outcome {
        let prefix = "rgb_head"
        let lowResolution = prefix + ".low_resolution"
        var outcome = RGBHead.Outcome(channels: match.featureChannels, maskFeatures: match.maskFeatures)
        let chosenQueries: [Int]?
        switch (initialisation, queries) {
        case (_?, _?):
            throw RGBHeadError.maskHeadChoice(features: match.maskFeatures, channels: match.featureChannels,
                                              queries: match.queries, conflicting: true)
        case (nil, nil):
            throw RGBHeadError.maskHeadChoice(features: match.maskFeatures, channels: match.featureChannels,
                                              queries: match.queries, conflicting: false)
        case (.zero?, nil): chosenQueries = nil
        case (.first3?, nil): chosenQueries = [0, 1, 2]
        case (nil, let chosen?): chosenQueries = chosen
        }
        if let chosenQueries {
            guard chosenQueries.count == 3, chosenQueries.allSatisfy({ (0..<match.queries).contains($0) }) else {
                throw RGBHeadError.maskQueries(chosenQueries, available: match.queries)
            }
            let indices = ConstantTensor(name: prefix + ".queries", shape: [3], ints: chosenQueries.map(Int64.init))
            graph.setConstant(indices)
            graph.nodes.append(Node(name: prefix + ".select_queries", .gather(GatherAttributes(axis: 1)),
                                    inputs: [match.maskLogits, indices.name], outputs: [lowResolution]))
            outcome.channels = match.queries
            outcome.maskQueries = chosenQueries
        } else {
            let weight = ConstantTensor(name: prefix + ".conv.weight", shape: [3, match.featureChannels, 1, 1],
                                        floats: Array(repeating: 0, count: 3 * match.featureChannels))
            let bias = ConstantTensor(name: prefix + ".conv.bias", shape: [3], floats: [0, 0, 0])
            graph.setConstant(weight)
            graph.setConstant(bias)
            graph.nodes.append(Node(name: prefix + ".conv", .conv(ConvAttributes()),
                                    inputs: [match.maskFeatures, weight.name, bias.name], outputs: [lowResolution]))
            outcome.replacedClassifier = prefix + ".conv"
        }
        let output = "rgb"
        outcome.appendedResize = RGBHead.appendUpsampling(&graph, from: lowResolution, to: output, input: input, scale: scale)
        // The image is the model's only output: the class and mask logits were for
        // segmentation, and what only they read is removed by the simplifier.
        outcome.droppedOutputs = graph.outputs.map(\.name)
        graph.outputs = [ValueInfo(name: output, dtype: .float32, shape: [])]
        if graph.metadata[RestorationContract.Settings.Key.output.rawValue] != nil {
            graph.metadata[RestorationContract.Settings.Key.output.rawValue] = output
        }
        return outcome
    }
}

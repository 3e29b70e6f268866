import Format

/// A restoration model cut at its three-channel head (docs/design.md §4): the conv that
/// emits the image output's 3 channels, possibly followed by weight-free nodes (a bilinear
/// resize to full size, reshapes), found from the graph's structure rather than by name.
/// The backbone computes the head's input, the *features*; the head turns them into the
/// image output. Fine-tuning trains the head on cached features (`HeadFineTuning`).
public struct RestorationHead {
    /// The 3-channel conv.
    public let conv: String
    /// The value the head reads from the backbone: the conv's input.
    public let features: String
    /// The float weights the head's nodes read (the conv's filter and bias): what is trained.
    public let weights: [String]
    /// Graph input `contract.input` → `features`: every node the features need.
    public let backbone: Graph
    /// `features` (and the image input, when the head reads it, e.g. for its size) →
    /// `contract.output`; its inputs are `headInputs` in that order.
    public let head: Graph
    /// The head graph's inputs: `features`, then the image input if the head reads it.
    public var headInputs: [String] { head.inputs.map(\.name) }

    /// Finds the head of `graph` for `contract`. `inputShape` is an image input shape the
    /// model plans at (shape arithmetic is recognised by evaluating it there).
    public init(graph: Graph, contract: RestorationContract, inputShape: [Int]) throws(HeadError) {
        // Features are cached per image, so nothing but the image may feed the model.
        if let other = graph.inputs.first(where: { $0.name != contract.input }) { throw .extraInput(other.name) }
        let inferred: InferredShapes
        do {
            inferred = try ShapeInference(graph: graph).infer([inputShape])
        } catch {
            throw .cannotPlan(shape: inputShape, reason: "\(error)")
        }
        let producer = Dictionary(graph.nodes.enumerated().flatMap { index, node in node.outputs.map { ($0, index) } },
                                  uniquingKeysWith: { _, last in last })
        /// A value computed while running from the image's pixels: not a constant, not an
        /// input, not known before running (shape arithmetic).
        func isComputed(_ name: String) -> Bool {
            !name.isEmpty && producer[name] != nil && inferred.facts[name]?.value == nil
        }
        func readsWeights(_ node: Node) -> Bool {
            node.op.weightInputs.contains { $0 < node.inputs.count && graph.constants[node.inputs[$0]] != nil }
        }

        // Walk back from the output through weight-free nodes with one computed input (a
        // resize, a reshape, a residual add of the image input) to the 3-channel conv.
        var value = contract.output
        var convIndex: Int?
        while convIndex == nil {
            guard let index = producer[value] else { throw .noConv(output: contract.output, reached: value, why: "it is not computed by a node") }
            let node = graph.nodes[index]
            if case .conv = node.operation, let weight = node.input(1).flatMap({ graph.constants[$0] }) {
                guard weight.shape.first == 3 else {
                    throw .noConv(output: contract.output, reached: value,
                                  why: "its conv '\(node.name)' emits \(weight.shape.first ?? 0) channels, not 3")
                }
                convIndex = index
                break
            }
            let computedInputs = node.inputs.filter { isComputed($0) }
            guard !readsWeights(node), computedInputs.count == 1 else {
                throw .noConv(output: contract.output, reached: value,
                              why: "node '\(node.name)' (\(node.op.rawValue)) is not a 3-channel conv, nor a weight-free step of one computed input")
            }
            value = computedInputs[0]
        }
        let convNode = graph.nodes[convIndex!]
        guard let featureName = convNode.input(0), isComputed(featureName) else {
            throw .noConv(output: contract.output, reached: convNode.name, why: "its input is not computed from the image")
        }
        conv = convNode.name
        features = featureName

        // The head: what the output needs besides the features; the backbone: what the
        // features need.
        func ancestors(of target: String, stoppingAt stop: String?) -> Set<Int> {
            var needed: Set<String> = [target], nodes: Set<Int> = []
            for (index, node) in graph.nodes.enumerated().reversed() where node.outputs.contains(where: needed.contains) {
                nodes.insert(index)
                needed.formUnion(node.inputs.filter { $0 != stop })
            }
            return nodes
        }
        let headNodes = ancestors(of: contract.output, stoppingAt: featureName)
        let backboneNodes = ancestors(of: featureName, stoppingAt: nil)
        var downstream: Set<String> = [featureName]
        for node in graph.nodes where node.inputs.contains(where: downstream.contains) { downstream.formUnion(node.outputs) }
        // A head node that is not fed by the features and runs on pixels would recompute
        // part of the backbone at every step (a skip connection around the head).
        for index in headNodes.sorted() {
            let node = graph.nodes[index]
            if !node.outputs.contains(where: downstream.contains), node.outputs.contains(where: isComputed) {
                throw .readsMoreThanFeatures(node: node.name, features: featureName)
            }
        }
        var trained: [String] = []
        for index in headNodes.sorted() where graph.nodes[index].outputs.contains(where: downstream.contains) {
            let node = graph.nodes[index]
            for slot in node.op.weightInputs where slot < node.inputs.count {
                let name = node.inputs[slot]
                if let constant = graph.constants[name], constant.dtype.isFloatingPoint, !trained.contains(name) {
                    trained.append(name)
                }
            }
        }
        for index in backboneNodes.sorted() {
            if let shared = graph.nodes[index].inputs.first(where: trained.contains) {
                throw .weightShared(weight: shared, node: graph.nodes[index].name)
            }
        }
        weights = trained

        func subgraph(_ nodes: Set<Int>, inputs: [ValueInfo], output: ValueInfo) -> Graph {
            let kept = nodes.sorted().map { graph.nodes[$0] }
            let read = Set(kept.flatMap(\.inputs))
            var sub = Graph(inputs: inputs, outputs: [output], nodes: kept,
                            constants: graph.orderedConstants.filter { read.contains($0.name) }, metadata: [:])
            sub.removeUnusedConstants()
            return sub
        }
        let imageInput = graph.inputs.first { $0.name == contract.input }!
        let featureRank = inferred.facts[featureName]?.shape.count ?? 4
        let featureInfo = ValueInfo(name: featureName, dtype: .float32,
                                    shape: (0..<featureRank).map { .symbol("features_\($0)") })
        backbone = subgraph(backboneNodes, inputs: [imageInput], output: featureInfo)
        let headReadsImage = headNodes.contains { graph.nodes[$0].inputs.contains(contract.input) }
        let outputInfo = graph.outputs.first { $0.name == contract.output }!
        head = subgraph(headNodes, inputs: [featureInfo] + (headReadsImage ? [imageInput] : []), output: outputInfo)
    }
}

/// Why a model has no head `rrun finetune` can train.
public enum HeadError: Error, CustomStringConvertible, Equatable {
    case cannotPlan(shape: [Int], reason: String)
    /// Walking back from the image output did not reach a 3-channel conv.
    case noConv(output: String, reached: String, why: String)
    /// A head node runs on values other than the head conv's features.
    case readsMoreThanFeatures(node: String, features: String)
    /// A head weight is also read by the backbone, which must stay frozen.
    case weightShared(weight: String, node: String)
    /// The model reads a graph input besides the image.
    case extraInput(String)

    public var description: String {
        switch self {
        case .cannotPlan(let shape, let reason): "the model cannot be planned at \(shape): \(reason)"
        case .noConv(let output, let reached, let why):
            "no three-channel head conv found from output '\(output)': at '\(reached)', \(why)"
        case .readsMoreThanFeatures(let node, let features):
            "head node '\(node)' reads values computed from the image besides the features '\(features)'; "
                + "only a head fed by one feature tensor can be trained on cached features"
        case .weightShared(let weight, let node):
            "head weight '\(weight)' is also read by backbone node '\(node)', which must stay frozen"
        case .extraInput(let name): "the model reads input '\(name)' besides the image; finetune feeds only the image"
        }
    }
}

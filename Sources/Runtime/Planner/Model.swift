import Format

/// A loaded model: the graph and one parsed operator per node. One model serves many
/// sessions on many threads; only its constants' values change, through `replaceConstant`.
public final class Model: Sendable {
    /// The graph as kernels see it: float constants as plain f32 (f16, bf16 and int8 widened
    /// when the model loaded), with the values of the latest `replaceConstant`.
    public var graph: Graph { weights.graph }
    let operators: [any Operator]
    /// Where each value comes from: a node's output index, a graph input or a constant.
    let producers: [String: Producer]
    /// The constants' current values and generations.
    let weights: WeightStore
    /// Weights kernels rearranged from constants, shared by every plan and session.
    let preparedWeights: PreparedWeightStore

    enum Producer: Sendable {
        case input(Int)
        case constant
        case node(index: Int, output: Int)
    }

    /// Parses every node; throws `ModelError.invalidNodes` listing every bad node at once.
    public init(graph: Graph) throws {
        var operators: [any Operator] = []
        var problems: [String] = []
        var producers: [String: Producer] = [:]
        for (index, input) in graph.inputs.enumerated() { producers[input.name] = .input(index) }
        for name in graph.constantOrder { producers[name] = .constant }
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty && producers[input] == nil {
                problems.append(GraphError.unknownValue(node: node.name, value: input).description)
            }
            do {
                operators.append(try OpKind.makeOperator(node))
            } catch {
                problems.append("\(error)")
            }
            for (slot, output) in node.outputs.enumerated() where !output.isEmpty {
                producers[output] = .node(index: index, output: slot)
            }
        }
        for output in graph.outputs where producers[output.name] == nil {
            problems.append("graph output '\(output.name)' is produced by no node")
        }
        guard problems.isEmpty else { throw ModelError.invalidNodes(problems) }
        self.operators = operators
        self.producers = producers
        self.weights = try WeightStore(graph)
        self.preparedWeights = PreparedWeightStore()
    }

    /// Lets the pages of an f32 constant mapped from the file leave resident memory (read
    /// back if used again); widened copies stay.
    func releaseConstantPages(_ name: String) { weights.releasePages(name) }

    /// Bytes of the weights kernels prepared from constants so far (see `ConstantInputs`).
    public var preparedWeightBytes: Int { preparedWeights.bytes }

    /// The f32 elements of a float constant; valid until the constant is replaced.
    func floatConstant(_ name: String) -> UnsafePointer<Float> { weights.weight(name).floats }

    /// Replaces the values of float constant `name` (a trained weight) with `values`, in its
    /// shape's row-major order, and frees the weights kernels prepared from the old values.
    /// Every session replans before its next run, so that kernels and the values known
    /// while planning (small constants) follow. Call it between runs: no session of this
    /// model may be running meanwhile.
    public func replaceConstant(_ name: String, with values: [Float]) throws(ModelError) {
        try weights.replace(name, with: values)
        preparedWeights.discard(name)
    }

    /// The generation of constant `name`'s values: 0 as loaded, one more per replacement.
    public func constantGeneration(_ name: String) -> Int { weights.generation(of: name) }

    /// Replacements of constants so far; a plan made at another count is stale.
    var constantReplacements: Int { weights.replacements }
}

/// Errors in loading, planning or running a model.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidNodes([String])
    case missingInput(String)
    case unexpectedInput(String)
    case inputShape(input: String, expected: String, found: [Int])
    case inconsistentSymbol(String, Int, Int)
    case node(name: String, message: String)
    /// One value would need more memory than any run is allowed (`limit` bytes).
    case valueTooLarge(value: String, shape: [Int], limit: Int)
    /// A constant whose layout does not fit it (int8 scales missing or of the wrong size).
    case invalidConstant(name: String, detail: String)
    /// `Model.replaceConstant` was given an unknown or non-float constant, or the wrong count.
    case constantReplacement(name: String, detail: String)

    public var description: String {
        switch self {
        case .invalidNodes(let problems):
            "\(problems.count) invalid node\(problems.count == 1 ? "" : "s"):\n  " + problems.joined(separator: "\n  ")
        case .missingInput(let name): "input '\(name)' is missing"
        case .unexpectedInput(let name): "the model has no input named '\(name)'"
        case .inputShape(let input, let expected, let found):
            "input '\(input)' should have shape \(expected), found \(found)"
        case .inconsistentSymbol(let symbol, let a, let b):
            "dimension '\(symbol)' is \(a) in one input and \(b) in another"
        case .node(let name, let message): "node '\(name)': \(message)"
        case .valueTooLarge(let value, let shape, let limit):
            "\(value) of shape \(shape) would take more than the \(limit)-byte limit for one value"
        case .invalidConstant(let name, let detail): "constant '\(name)': \(detail)"
        case .constantReplacement(let name, let detail): "cannot replace constant '\(name)': \(detail)"
        }
    }
}

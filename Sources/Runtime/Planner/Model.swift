import Format

/// A loaded model: the graph and one parsed operator per node. One model serves many
/// sessions on many threads; only its constants' values change, through `replaceConstant`.
public final class Model: Sendable {
    /// The graph as kernels see it: float constants as plain f32 (f16, bf16 and int8 widened
    /// when the model loaded) except the int8 weights int8 kernels read (read their values
    /// with `Graph.floatValues(of:)`), with the values of the latest `replaceConstant`.
    public var graph: Graph { weights.graph }
    /// The parsed operators, which infer shapes before the planner builds kernels; the
    /// constants it holds are those the model loaded with (see `shapeInference`).
    private let parsedShapeInference: ShapeInference
    /// The constants' current values and generations.
    let weights: WeightStore
    /// Weights kernels rearranged from constants, shared by every plan and session.
    let preparedWeights: PreparedWeightStore

    /// Packed values the file held for kernels this version does not have, which kernels
    /// prepare from their sources instead (`rrun -v` says so).
    public let foreignPackedConstants: [ForeignPackedConstant]

    /// The file's tensors not verified yet: the large f32 weights and packed values, which
    /// the planner verifies when a plan first reads them (`verifyConstants`).
    let checksums: TensorChecksums?

    /// Parses every node; throws `ModelError.invalidNodes` listing every bad node at once.
    /// The graph's packed values (`convert --prepare`) are used in place by the kernels they
    /// were made for. `checksums` are the file's, for the tensors not verified yet: those
    /// read while loading (every constant but large f32 weights and packed values: values
    /// shape inference reads, tensors widened or dequantized here) are verified first.
    public init(graph: Graph, foreignPackedConstants: [ForeignPackedConstant] = [],
                checksums: TensorChecksums? = nil) throws {
        // Background workers start on what plans will read first, so that the rest of
        // loading overlaps them too; what loading reads is a disjoint set.
        checksums?.verifyInBackground(Self.likelyPlanReads(graph))
        try checksums?.verify(graph.orderedConstants.filter { !Self.verifiedWhenPlanned($0) }.map(\.name))
        self.checksums = checksums
        weights = try WeightStore(graph)
        parsedShapeInference = try ShapeInference(graph: weights.graph)
        self.preparedWeights = PreparedWeightStore(packed: graph.packedConstants)
        self.foreignPackedConstants = foreignPackedConstants
    }

    /// What plans will most likely read of the tensors verified when planned: the packed
    /// values this CPU's kernels take (Winograd filters, GEMM panels of its path) and the
    /// large f32 weights without such values. A wrong guess costs a sum on an idle core.
    private static func likelyPlanReads(_ graph: Graph) -> [String] {
        let usable = graph.packedConstants.filter { values in
            values.layout == .winogradF4x3 || (GEMM.packs() && values.layout == GEMM.packedLayout)
        }
        let packedSources = Set(usable.map(\.source))
        return usable.map(\.tensor.name)
            + graph.orderedConstants.filter { verifiedWhenPlanned($0) && !packedSources.contains($0.name) }.map(\.name)
    }

    /// The model of a file read by `RGraphReader`.
    public convenience init(file: RGraphFile) throws {
        try self.init(graph: file.graph, foreignPackedConstants: file.foreignPackedConstants, checksums: file.checksums)
    }

    /// Whether loading leaves `constant` unread, for the planner to verify: an f32 weight in
    /// place, larger than the constants shape inference reads as values.
    private static func verifiedWhenPlanned(_ constant: ConstantTensor) -> Bool {
        constant.dtype == .float32 && constant.layout == .elements
            && constant.elementCount > ShapeInference.smallConstantLimit
    }

    /// Verifies the file's checksums of the tensors among `names` not verified yet (a
    /// plan's reads, a trainer's weights), releasing the pages of those in `releasing`
    /// (read only to prepare others) once summed.
    public func verifyConstants(_ names: some Sequence<String>, releasing: Set<String> = []) throws(RGraphError) {
        try checksums?.verify(names, releasing: releasing)
    }

    /// Verifies every tensor of the file not verified yet (`rrun info`, training, which
    /// reads weights outside plans).
    public func verifyAllConstants() throws(RGraphError) {
        try checksums?.verifyAll()
    }

    /// Lets the pages of an f32 constant mapped from the file leave resident memory (read
    /// back if used again); widened copies stay.
    func releaseConstantPages(_ name: String) { weights.releasePages(name) }

    /// Bytes of the weights kernels prepared from constants so far (see `ConstantInputs`);
    /// the file's packed values they used in place are not counted.
    public var preparedWeightBytes: Int { preparedWeights.bytes }

    /// Where the weights kernels use came from so far: prepared at load, or the file's
    /// packed values (`convert --prepare`) used in place.
    public var preparedWeightUsage: PreparedWeightUsage { preparedWeights.usage }

    /// Copies of the weights kernels prepared so far from the constants as loaded, as packed
    /// constants (`convert --prepare` stores them; a model reading them prepares nothing).
    public func preparedWeightsAsConstants() -> [PackedConstant] { preparedWeights.madeAsConstants() }

    /// Shape inference over the constants' current values (small ones, such as a
    /// resize's scales or a bias, are read as values while planning).
    var shapeInference: ShapeInference { parsedShapeInference.reading(constantsOf: weights.graph) }

    /// The f32 elements of a float constant (an int8 weight's dequantized on first request);
    /// valid until the constant is replaced.
    func floatConstant(_ name: String) -> UnsafePointer<Float> { weights.floats(of: name) }

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
    /// Nodes that cannot be loaded, every one found at once.
    case invalidNodes([NodeProblem])
    case missingInput(String)
    case unexpectedInput(String)
    /// A value fed by name that is one of the model's weights (`Graph.weightInputsKey`).
    case weightFed(String)
    /// A tensor of another element type than the graph input's (never cast quietly).
    case inputType(input: String, expected: DType, found: String)
    case inputShape(input: String, expected: String, found: [Int])
    case inconsistentSymbol(String, Int, Int)
    /// A node that cannot be planned at the given input shapes.
    case node(NodeProblem)
    /// One value would need more memory than any run is allowed (`limit` bytes).
    case valueTooLarge(value: String, shape: [Int], limit: Int)
    /// A constant whose layout does not fit it (int8 scales missing or of the wrong size).
    case invalidConstant(name: String, detail: String)
    /// `Model.replaceConstant` was given an unknown or non-float constant, or the wrong count.
    case constantReplacement(name: String, detail: String)

    public var description: String {
        switch self {
        case .invalidNodes(let problems):
            "\(problems.count) invalid node\(problems.count == 1 ? "" : "s"):\n  "
                + problems.map(\.description).joined(separator: "\n  ")
        case .missingInput(let name): "input '\(name)' is missing"
        case .unexpectedInput(let name): "the model has no input named '\(name)'"
        case .weightFed(let name):
            "'\(name)' is a weight of the model (an initializer its ONNX file also listed as a graph input), not an "
                + "input: weights are prepared once when the model loads, so they cannot be fed at run time"
        case .inputType(let input, let expected, let found):
            "input '\(input)' takes \(expected.numPyName) data, given \(found); "
                + "convert it first (in NumPy: x.astype(np.\(expected.numPyName)))"
        case .inputShape(let input, let expected, let found):
            "input '\(input)' should have shape \(expected), found \(found)"
        case .inconsistentSymbol(let symbol, let a, let b):
            "dimension '\(symbol)' is \(a) in one input and \(b) in another"
        case .node(let problem): problem.description
        case .valueTooLarge(let value, let shape, let limit):
            "\(value) of shape \(shape) would take more than the \(limit)-byte limit for one value"
        case .invalidConstant(let name, let detail): "constant '\(name)': \(detail)"
        case .constantReplacement(let name, let detail): "cannot replace constant '\(name)': \(detail)"
        }
    }
}

/// What is wrong with one node (or graph output), as the graph or the op reported it;
/// each case names the node.
public enum NodeProblem: Error, CustomStringConvertible, Equatable {
    /// Its wiring or attributes: an input nothing produces, a missing or bad attribute.
    case graph(GraphError)
    /// Its op: inputs whose shapes do not fit, a configuration not implemented.
    case op(OpError)
    /// A graph output that no node produces.
    case outputNotProduced(String)

    /// The problem an error thrown while parsing or planning a node is, or nil for an error
    /// that is not about a node (to be passed on as it is).
    init?(_ error: any Error) {
        switch error {
        case let error as GraphError: self = .graph(error)
        case let error as OpError: self = .op(error)
        case let error as NodeProblem: self = error
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .graph(let error): error.description
        case .op(let error): error.description
        case .outputNotProduced(let output): "graph output '\(output)' is produced by no node"
        }
    }
}

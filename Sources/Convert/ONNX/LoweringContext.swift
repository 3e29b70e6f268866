import Format

/// Why a lowering rule gave up on a node. The importer adds the file, node and op type.
enum LoweringFailure: Error {
    /// Valid ONNX that Restore does not handle; all such nodes are reported together.
    case unsupported(String)
    /// The node breaks the ONNX operator's own rules.
    case invalid(String)
}

/// Lowers one ONNX node by emitting Restore nodes and constants into the context.
typealias LoweringRule = (inout LoweringContext, ONNXNode) throws -> Void

/// The graph being built while ONNX nodes are lowered one by one, with what rules need to
/// know about the rest of the model: constants, known shapes, the opset, value names.
struct LoweringContext {
    /// The default-domain opset the model was written against.
    let opset: Int
    private(set) var graph: Graph
    /// Shapes known before lowering (graph inputs, value_info, constants), by value name.
    private(set) var knownShapes: [String: [Dim]]
    /// Values read by some node or graph output, to tell whether an optional output matters.
    private let consumedValues: Set<String>
    /// Values that are only another name of an earlier value (Identity, Dropout).
    private var aliases: [String: String] = [:]
    /// Every value and node name in use, so generated names never collide.
    private var takenNames: Set<String>

    init(opset: Int, graph: Graph, knownShapes: [String: [Dim]], onnxNodes: [ONNXNode]) {
        self.opset = opset
        self.graph = graph
        self.knownShapes = knownShapes
        var consumed = Set(graph.outputs.map(\.name))
        var taken = Set(graph.inputs.map(\.name)).union(graph.constantOrder)
        for node in onnxNodes {
            consumed.formUnion(node.inputs)
            taken.formUnion(node.outputs)
            taken.insert(node.name)
        }
        self.consumedValues = consumed
        self.takenNames = taken
    }

    // MARK: Values

    /// The value a name stands for once aliases are followed.
    func resolved(_ name: String) -> String {
        var current = name
        while let target = aliases[current] { current = target }
        return current
    }

    /// The constant tensor behind a value, if it is one.
    func constant(_ name: String) -> ConstantTensor? {
        graph.constants[resolved(name)]
    }

    /// The shape of a value when the model states it, or it is a constant.
    func shape(of name: String) -> [Dim]? {
        let value = resolved(name)
        if let constant = graph.constants[value] { return constant.shape.map { .fixed($0) } }
        return knownShapes[value]
    }

    /// Whether a node or graph output reads this value.
    func isConsumed(_ name: String) -> Bool { !name.isEmpty && consumedValues.contains(name) }

    /// A value or node name not used anywhere yet, derived from `hint`.
    mutating func freshName(_ hint: String) -> String {
        var candidate = hint
        var counter = 1
        while takenNames.contains(candidate) {
            counter += 1
            candidate = "\(hint)_\(counter)"
        }
        takenNames.insert(candidate)
        return candidate
    }

    // MARK: Emitting

    /// Appends a node; inputs are resolved through aliases.
    mutating func emit(_ name: String, _ op: OpKind, inputs: [String], outputs: [String],
                       attributes: [String: Attribute] = [:]) throws {
        graph.nodes.append(try Node(name: name, op: op, inputs: inputs.map { $0.isEmpty ? $0 : resolved($0) },
                                outputs: outputs, attributes: attributes))
    }

    /// Emits a node whose output is a new intermediate value, and returns that value's
    /// name, which the node shares (nodes and values are named apart, so that is no clash).
    mutating func emitIntermediate(_ name: String, _ op: OpKind, inputs: [String],
                                   attributes: [String: Attribute] = [:]) throws -> String {
        let output = freshName(name)
        try emit(output, op, inputs: inputs, outputs: [output], attributes: attributes)
        return output
    }

    /// Adds a constant under a fresh name derived from `hint` and returns that name.
    mutating func addConstant(_ hint: String, shape: [Int], floats: [Float]) -> String {
        let name = freshName(hint)
        graph.setConstant(ConstantTensor(name: name, shape: shape, floats: floats))
        return name
    }

    /// Adds an int64 constant under a fresh name derived from `hint` and returns that name.
    mutating func addConstant(_ hint: String, shape: [Int], ints: [Int]) -> String {
        let name = freshName(hint)
        graph.setConstant(ConstantTensor(name: name, shape: shape, ints: ints.map { Int64($0) }))
        return name
    }

    /// Adds a constant produced by an ONNX Constant node under its ONNX output name.
    mutating func addConstant(_ tensor: ConstantTensor) {
        graph.setConstant(tensor)
    }

    /// Makes `output` another name of `input` (Identity, Dropout). A graph output keeps
    /// its name through an identity node, because outputs are named by the model.
    mutating func alias(_ output: String, to input: String, node: String) {
        if graph.outputs.contains(where: { $0.name == output }) {
            graph.nodes.append(Node(name: node, .unary(.identity), inputs: [resolved(input)], outputs: [output]))
        } else {
            aliases[output] = resolved(input)
        }
    }

    /// Rewrites every node input and graph output through the aliases (for models whose
    /// nodes are not in topological order, where a use may precede its alias).
    mutating func resolveAllAliases() {
        for index in graph.nodes.indices {
            graph.nodes[index].inputs = graph.nodes[index].inputs.map { $0.isEmpty ? $0 : resolved($0) }
        }
    }

    /// Drops constants that became attributes or were folded into others.
    mutating func removeUnusedConstants() { graph.removeUnusedConstants() }

    /// Replaces the node list (after sorting).
    mutating func setNodes(_ nodes: [Node]) { graph.nodes = nodes }
}

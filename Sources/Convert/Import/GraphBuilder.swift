import Format

/// Builds a `Graph` node by node from typed ops: the part of importing that does not
/// depend on the file read. The ONNX lowering emits through it one ONNX node at a time;
/// an architecture template can emit fused ops (`conv`, `linear`, `windowAttention` …)
/// directly.
///
/// It hands out names that collide with no value or node, follows aliases (a value that
/// is only another name of an earlier one), and knows the shapes the model file states.
/// Nodes are appended as emitted; an importer whose source is not in topological order
/// sorts them afterwards.
public struct GraphBuilder: Sendable {
    public private(set) var graph: Graph
    /// Shapes stated before building (graph inputs, a file's value info), by value name.
    private var knownShapes: [String: [Dim]]
    /// Values that are only another name of an earlier value.
    private var aliases: [String: String] = [:]
    /// Every value and node name in use or reserved, so generated names never collide.
    private var takenNames: Set<String>

    /// Starts from `graph`, whose inputs, outputs, constants and metadata may already be
    /// set. `knownShapes` adds shapes the file states for other values; `reservedNames`
    /// are names the importer will still use for values or nodes of its own.
    public init(graph: Graph = Graph(), knownShapes: [String: [Dim]] = [:], reservedNames: Set<String> = []) {
        self.graph = graph
        var shapes = knownShapes
        for input in graph.inputs where shapes[input.name] == nil { shapes[input.name] = input.shape }
        self.knownShapes = shapes
        var taken = reservedNames.union(graph.inputs.map(\.name)).union(graph.constantOrder)
        for node in graph.nodes {
            taken.insert(node.name)
            taken.formUnion(node.outputs)
        }
        self.takenNames = taken
    }

    // MARK: Values

    /// The value a name stands for once aliases are followed.
    public func resolved(_ name: String) -> String {
        var current = name
        while let target = aliases[current] { current = target }
        return current
    }

    /// The constant tensor behind a value, if it is one.
    public func constant(_ name: String) -> ConstantTensor? {
        graph.constants[resolved(name)]
    }

    /// The shape of a value when the file states it, or it is a constant.
    public func shape(of name: String) -> [Dim]? {
        let value = resolved(name)
        if let constant = graph.constants[value] { return constant.shape.map { .fixed($0) } }
        return knownShapes[value]
    }

    /// The rank of a value when its shape is known.
    public func rank(of name: String) -> Int? { shape(of: name)?.count }

    /// A value or node name not used anywhere yet, derived from `hint`.
    public mutating func freshName(_ hint: String) -> String {
        var candidate = hint
        var counter = 1
        while takenNames.contains(candidate) {
            counter += 1
            candidate = "\(hint)_\(counter)"
        }
        takenNames.insert(candidate)
        return candidate
    }

    // MARK: Graph inputs and outputs

    /// Adds a graph input named `hint` (or a fresh variant of it) and returns its name.
    public mutating func addInput(_ hint: String, dtype: DType = .float32, shape: [Dim]) -> String {
        let name = freshName(hint)
        graph.inputs.append(ValueInfo(name: name, dtype: dtype, shape: shape))
        knownShapes[name] = shape
        return name
    }

    /// Makes `value` a graph output. Its shape may stay empty: the runtime derives
    /// output shapes itself.
    public mutating func addOutput(_ value: String, dtype: DType = .float32, shape: [Dim] = []) {
        graph.outputs.append(ValueInfo(name: resolved(value), dtype: dtype, shape: shape))
    }

    // MARK: Nodes

    /// Appends a node named `name` writing `outputs`; inputs are resolved through
    /// aliases ("" stays an absent optional input).
    public mutating func emit(_ name: String, _ operation: Op, inputs: [String], outputs: [String]) {
        graph.nodes.append(Node(name: name, operation, inputs: inputs.map { $0.isEmpty ? $0 : resolved($0) },
                                outputs: outputs))
    }

    /// Emits a node whose one output is a new value named after `hint`, and returns that
    /// value's name, which the node shares (nodes and values are named apart, so that is
    /// no clash).
    public mutating func emitValue(named hint: String, _ operation: Op, inputs: [String]) -> String {
        let output = freshName(hint)
        emit(output, operation, inputs: inputs, outputs: [output])
        return output
    }

    /// Checks the attributes of the nodes from index `start` on as the `.rgraph` reader
    /// will when the converted file is loaded (list lengths, ranges), so a bad value is
    /// refused at import, naming its node. Throws `GraphError`.
    public func checkAttributes(ofNodesFrom start: Int = 0) throws {
        for node in graph.nodes[start...] {
            _ = try Op(kind: node.op, attributes: node.attributes, node: node.name)
        }
    }

    // MARK: Constants

    /// Adds a float32 constant under a fresh name derived from `hint` and returns that name.
    public mutating func addConstant(_ hint: String, shape: [Int], floats: [Float]) -> String {
        let name = freshName(hint)
        graph.setConstant(ConstantTensor(name: name, shape: shape, floats: floats))
        return name
    }

    /// Adds an int64 constant under a fresh name derived from `hint` and returns that name.
    public mutating func addConstant(_ hint: String, shape: [Int], ints: [Int]) -> String {
        let name = freshName(hint)
        graph.setConstant(ConstantTensor(name: name, shape: shape, ints: ints.map { Int64($0) }))
        return name
    }

    /// Adds a constant under its own name, which the caller has reserved (a file's
    /// tensor name).
    public mutating func addConstant(_ tensor: ConstantTensor) {
        takenNames.insert(tensor.name)
        graph.setConstant(tensor)
    }

    // MARK: Aliases and finishing

    /// Makes `output` another name of `input` (an identity). A graph output keeps its
    /// name through an identity node named `node`, because outputs are named by the model.
    public mutating func alias(_ output: String, to input: String, node: String) {
        // A node whose output is (through aliases) its own input would make an alias loop,
        // which `resolved` would follow forever (the ONNX fuzzer's find); as a node it is
        // the cycle the topological order refuses, naming it.
        if graph.outputs.contains(where: { $0.name == output }) || resolved(input) == output {
            emit(node, .unary(.identity), inputs: [input], outputs: [output])
        } else {
            aliases[output] = resolved(input)
        }
    }

    /// Rewrites every node input through the aliases (for sources whose nodes are not in
    /// topological order, where a use may precede its alias).
    public mutating func resolveAllAliases() {
        for index in graph.nodes.indices {
            graph.nodes[index].inputs = graph.nodes[index].inputs.map { $0.isEmpty ? $0 : resolved($0) }
        }
    }

    /// Drops constants that no node or graph output reads any more.
    public mutating func removeUnusedConstants() { graph.removeUnusedConstants() }

    /// Replaces the node list (after sorting).
    public mutating func setNodes(_ nodes: [Node]) { graph.nodes = nodes }
}

/// Helpers for the common ops, each emitting one node with a fresh output value named
/// after `name` and returning that value.
extension GraphBuilder {
    /// `conv` of `input` [N, C, H, W] with `weight` [M, C/group, kH, kW] and an optional
    /// bias [M].
    public mutating func conv(_ input: String, weight: String, bias: String? = nil,
                              _ attributes: ConvAttributes = ConvAttributes(), name: String = "conv") -> String {
        emitValue(named: name, .conv(attributes), inputs: [input, weight] + optional(bias))
    }

    /// `linear`: act(input·weightᵀ + bias), weight [N, K], bias [N].
    public mutating func linear(_ input: String, weight: String, bias: String? = nil,
                                activation: Activation = .identity, name: String = "linear") -> String {
        emitValue(named: name, .linear(LinearAttributes(activation: activation)), inputs: [input, weight] + optional(bias))
    }

    /// `unary`: the activation applied to each element.
    public mutating func unary(_ activation: Activation, _ input: String, name: String? = nil) -> String {
        emitValue(named: name ?? activation.function.rawValue, .unary(activation), inputs: [input])
    }

    /// `binary`: the function of two broadcast inputs.
    public mutating func binary(_ function: BinaryFunction, _ a: String, _ b: String, name: String? = nil) -> String {
        emitValue(named: name ?? function.rawValue, .binary(function), inputs: [a, b])
    }
}

/// An optional input as a list of zero or one names.
func optional(_ name: String?) -> [String] { name.map { [$0] } ?? [] }

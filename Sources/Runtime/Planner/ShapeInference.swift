import Format

/// A graph's operators, ready to infer the shape and plan-time value of every value at
/// concrete input sizes: binds the inputs' symbolic dims, runs each op's shape rule and
/// evaluates what is known before running (constants, shape arithmetic) with the
/// reference kernels. It builds no kernel and reads no weight, so `convert` and its passes
/// use it alone; the `Planner` runs it first, then builds kernels and the arena.
public struct ShapeInference: Sendable {
    public private(set) var graph: Graph
    /// One parsed operator per node, in graph order.
    let operators: [any Operator]

    /// Float constants up to this many elements are read as values (a resize's scales, a
    /// pad value); larger ones (weights) are only read if a node is entirely constant.
    public static let smallConstantLimit = 4096
    /// No value may take more bytes than this. It is far above what a restoration model
    /// needs for a tile (1×64×4096×4096 f32 is 4 GiB), so a bigger value comes from a
    /// hostile or broken graph; refusing it before any kernel is built keeps the kernels'
    /// tables, the byte counts and the arena offsets far from overflow.
    static let maximumValueBytes = 1 << 34

    /// Parses every node; throws `ModelError.invalidNodes` listing every bad node at once.
    public init(graph: Graph) throws {
        var operators: [any Operator] = []
        var problems: [NodeProblem] = []
        var known = Set(graph.inputs.map(\.name)).union(graph.constantOrder)
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty && !known.contains(input) {
                problems.append(.graph(.unknownValue(node: node.name, value: input)))
            }
            do {
                operators.append(try OpKind.makeOperator(node))
            } catch {
                guard let problem = NodeProblem(error) else { throw error }
                problems.append(problem)
            }
            known.formUnion(node.outputs.filter { !$0.isEmpty })
        }
        for output in graph.outputs where !known.contains(output.name) {
            problems.append(.outputNotProduced(output.name))
        }
        guard problems.isEmpty else { throw ModelError.invalidNodes(problems) }
        self.graph = graph
        self.operators = operators
    }

    /// The same operators over `graph`'s constants: the values of a model's constants
    /// after some were replaced (the nodes are the same, so nothing is parsed again).
    func reading(constantsOf graph: Graph) -> ShapeInference {
        precondition(graph.nodes.count == self.graph.nodes.count, "constants of another graph")
        var copy = self
        copy.graph = graph
        return copy
    }

    /// Every value's type and shape at `inputShapes` (graph input order), and the values
    /// known before running.
    public func infer(_ inputShapes: [[Int]]) throws -> InferredShapes {
        guard inputShapes.count == graph.inputs.count else {
            throw ModelError.missingInput(graph.inputs.dropFirst(inputShapes.count).first?.name ?? "?")
        }
        var facts: [String: ValueFact] = [:]
        /// Values that depend on the input data, known only when running.
        var runtime = Set<String>()
        var symbols: [String: Int] = [:]
        for (info, shape) in zip(graph.inputs, inputShapes) {
            try Self.bind(info, shape: shape, symbols: &symbols)
            guard Self.fitsLimit(shape) else {
                throw ModelError.valueTooLarge(value: "input '\(info.name)'", shape: shape, limit: Self.maximumValueBytes)
            }
            facts[info.name] = ValueFact(dtype: info.dtype, shape: shape)
            runtime.insert(info.name)
        }
        for constant in graph.orderedConstants where facts[constant.name] == nil {
            guard Self.fitsLimit(constant.shape) else {
                throw ModelError.valueTooLarge(value: "constant '\(constant.name)'", shape: constant.shape,
                                               limit: Self.maximumValueBytes)
            }
            let small = !constant.dtype.isFloatingPoint || constant.elementCount <= Self.smallConstantLimit
            let value = small ? try HostTensor(constant, of: graph) : nil
            facts[constant.name] = ValueFact(dtype: value?.dtype ?? .float32, shape: constant.shape, value: value)
        }

        var nodes: [InferredShapes.Node] = []
        var knownValues: [String: HostTensor] = [:]
        for (index, node) in graph.nodes.enumerated() {
            let op = operators[index]
            let inputFacts = node.inputs.map { $0.isEmpty ? nil : facts[$0] }
            do {
                var outputFacts = try op.outputs(for: inputFacts)
                for fact in outputFacts where !Self.fitsLimit(fact.shape) {
                    throw ModelError.valueTooLarge(value: "node '\(node.name)' output", shape: fact.shape,
                                                   limit: Self.maximumValueBytes)
                }
                guard outputFacts.count >= node.outputs.filter({ !$0.isEmpty }).count else {
                    throw OpError.shape(node: node.name, "produces \(outputFacts.count) outputs, the graph uses \(node.outputs.count)")
                }
                let evaluation: InferredShapes.Evaluation
                if outputFacts.allSatisfy({ $0.value != nil }) {
                    evaluation = .known
                } else if node.inputs.allSatisfy({ !runtime.contains($0) }) {
                    let values = try op.reference(node.inputs.map { name in
                        try name.isEmpty ? nil : facts[name]?.value ?? graph.constantValue(name)
                    })
                    for (slot, value) in values.enumerated() where slot < outputFacts.count {
                        outputFacts[slot] = ValueFact(value)
                    }
                    evaluation = .known
                } else if op.isView(at: inputFacts), let viewed = node.inputs.first, runtime.contains(viewed) {
                    runtime.insert(node.outputs[0])
                    facts[node.outputs[0]] = outputFacts[0]
                    nodes.append(.init(inputs: inputFacts, outputs: outputFacts, evaluation: .view))
                    continue
                } else {
                    evaluation = .kernel
                }
                for (slot, name) in node.outputs.enumerated() where !name.isEmpty {
                    facts[name] = outputFacts[slot]
                    if let value = outputFacts[slot].value {
                        knownValues[name] = value
                    } else {
                        runtime.insert(name)
                    }
                }
                nodes.append(.init(inputs: inputFacts, outputs: outputFacts, evaluation: evaluation))
            } catch let error as ModelError {
                throw error
            } catch {
                guard let problem = NodeProblem(error) else { throw error }
                throw ModelError.node(problem)
            }
        }
        for output in graph.outputs where facts[output.name] == nil {
            throw ModelError.node(.outputNotProduced(output.name))
        }
        return InferredShapes(inputShapes: inputShapes, facts: facts, nodes: nodes, knownValues: knownValues)
    }

    /// Checks a concrete shape against an input's declared dims, binding symbols.
    private static func bind(_ info: ValueInfo, shape: [Int], symbols: inout [String: Int]) throws {
        let declared = "[" + info.shape.map(\.description).joined(separator: ", ") + "]"
        guard shape.count == info.shape.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw ModelError.inputShape(input: info.name, expected: declared, found: shape)
        }
        for (dim, size) in zip(info.shape, shape) {
            switch dim {
            case .fixed(let expected):
                guard expected == size else { throw ModelError.inputShape(input: info.name, expected: declared, found: shape) }
            case .symbol(let name):
                if let bound = symbols[name], bound != size { throw ModelError.inconsistentSymbol(name, bound, size) }
                symbols[name] = size
            }
        }
    }

    /// Whether a value of `shape` stays within `maximumValueBytes` (checked without
    /// overflowing, whatever the dimensions). Empty axes count as 1, so that the strides of
    /// an empty value with huge other axes cannot overflow either.
    private static func fitsLimit(_ shape: [Int]) -> Bool {
        guard let elements = ShapeRules.checkedProduct(shape.map { max($0, 1) }) else { return false }
        return elements <= maximumValueBytes / MemoryLayout<Float>.size
    }
}

/// What shape inference found at one set of input shapes.
public struct InferredShapes: Sendable {
    /// How a node's outputs become known.
    enum Evaluation: Sendable {
        /// Before running: a shape rule or a reference kernel gave every output's value.
        case known
        /// Output 0 is input 0's buffer under another shape; nothing runs.
        case view
        /// Only by running a kernel.
        case kernel
    }

    /// One node's input and output facts, in graph order.
    struct Node: Sendable {
        let inputs: [ValueFact?]
        let outputs: [ValueFact]
        let evaluation: Evaluation
    }

    public let inputShapes: [[Int]]
    /// Type, shape and (when known before running) value of every value by name.
    let facts: [String: ValueFact]
    let nodes: [Node]
    /// Node outputs known before running at these input sizes (folded or shape arithmetic).
    public let knownValues: [String: HostTensor]

    /// The concrete shape of every value, for passes and diagnostics.
    public var valueShapes: [String: [Int]] { facts.mapValues(\.shape) }

    /// Nodes evaluated before running (constant folding, shape arithmetic).
    public var foldedNodes: Int { nodes.count(where: { $0.evaluation == .known }) }
}

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

/// What lowering rules work with: the graph being built, and what is ONNX's own — the
/// opset the model was written against and which values its nodes read.
struct LoweringContext {
    /// The default-domain opset the model was written against.
    let opset: Int
    /// The graph being built, with the shapes the model's value_info states.
    var builder: GraphBuilder
    /// Values read by some node or graph output, to tell whether an optional output matters.
    private let consumedValues: Set<String>
    /// Nodes a rule hands back for the importer to lower next, in order, in its place
    /// (the taken branch of an If).
    var inlinedNodes: [ONNXNode] = []

    init(opset: Int, graph: Graph, knownShapes: [String: [Dim]], onnxNodes: [ONNXNode]) {
        self.opset = opset
        var consumed = Set(graph.outputs.map(\.name))
        var reserved: Set<String> = []
        // Subgraphs' nodes may be inlined (If), so their names count too, and a value a
        // subgraph reads or returns is consumed.
        func visit(_ nodes: [ONNXNode]) {
            for node in nodes {
                consumed.formUnion(node.inputs)
                reserved.formUnion(node.outputs)
                reserved.insert(node.name)
                for case .graph(let subgraph) in node.attributes.values {
                    consumed.formUnion(subgraph.outputs)
                    reserved.formUnion(subgraph.initializers.map(\.name))
                    visit(subgraph.nodes)
                }
            }
        }
        visit(onnxNodes)
        self.consumedValues = consumed
        self.builder = GraphBuilder(graph: graph, knownShapes: knownShapes, reservedNames: reserved)
    }

    /// The element type of a constant or graph input; nil for values nodes compute.
    func elementType(of name: String) -> DType? {
        if let constant = builder.constant(name) { return constant.dtype }
        return builder.graph.inputs.first { $0.name == builder.resolved(name) }?.dtype
    }

    /// Whether a node or graph output reads this value.
    func isConsumed(_ name: String) -> Bool { !name.isEmpty && consumedValues.contains(name) }
}

extension Dim {
    /// The size when it is fixed.
    var fixedValue: Int? {
        if case .fixed(let size) = self { return size }
        return nil
    }
}

import Format
import Foundation

/// Imports ONNX models into Restore's `Graph`: reads the protobuf with protobuf-c, decodes
/// initializers (inline or external), and lowers each node to Restore's op set.
///
/// Every node Restore cannot lower is reported at once in one
/// `ONNXImportError.unsupportedNodes`; other errors stop at the first problem. The result is
/// topologically sorted; constants that became attributes are dropped.
public struct ONNXImporter: Importer {
    /// Default-domain opsets Restore reads: 7 up to the newest the onnx package Restore is
    /// checked against defines (1.23.2: opset 28). Each lowering lists the versions of its op
    /// it implements up to this opset (`Lowering`); a newer opset could change any op, so it
    /// is refused as a whole.
    public static let supportedOpsets = 7...28

    /// ONNX loops, which Restore's graphs do not have (an If whose condition is known when
    /// converting is inlined, `LowerIf`).
    static let controlFlowOps: Set<String> = ["Loop", "Scan"]

    /// Why loops are refused and how to export without them: PyTorch's classic exporter
    /// writes them for Python-level loops in torch.jit.script-ed code.
    static let controlFlowAdvice = "loops are not supported (Restore's graphs are static dataflow); PyTorch's exporter "
        + "writes Loop for torch.jit.script-ed code (trace it instead); see docs/exporting.md"

    public init() {}

    public var formatName: String { "ONNX" }
    public var fileExtensions: [String] { ["onnx"] }

    /// Imports the model at `url`; external data files are looked up next to it.
    public func importGraph(at url: URL) throws -> Graph {
        let file = url.lastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ONNXImportError.unreadableFile(file: file, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw ONNXImportError.unreadableFile(file: file, reason: "it is a directory") }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ONNXImportError.unreadableFile(file: file, reason: error.localizedDescription)
        }
        return try importGraph(bytes: bytes, fileName: file, directory: url.deletingLastPathComponent())
    }

    /// Imports a model held in memory. `fileName` names it in errors; external data is
    /// resolved against `directory`, and refused when it is nil.
    public func importGraph(bytes: Data, fileName: String = "model.onnx", directory: URL? = nil) throws -> Graph {
        let decoder = ONNXModelDecoder(tensors: TensorDecoder(fileName: fileName, directory: directory))
        let model = try bytes.withUnsafeBytes { try decoder.decode($0) }
        guard let opset = model.opset else { throw ONNXImportError.unsupportedOpset(file: fileName, version: nil) }
        guard Self.supportedOpsets.contains(opset) else { throw ONNXImportError.unsupportedOpset(file: fileName, version: opset) }
        return try ModelLowering(fileName: fileName, model: model, opset: opset).lower()
    }
}

/// One import: turns the decoded model into a `Graph`.
private struct ModelLowering {
    let fileName: String
    let model: ONNXModelDescription
    let opset: Int

    func lower() throws -> Graph {
        let initializerNames = Set(model.initializers.map(\.name))
        // Graph inputs that are also initializers are weights with a default, i.e. constants.
        let inputs = try model.inputs.filter { !initializerNames.contains($0.name) }.map { try valueInfo($0, isInput: true) }
        let outputs = try model.outputs.map { try valueInfo($0, isInput: false) }
        var metadata = model.metadata
        metadata["onnx.opset"] = String(opset)
        let weightInputs = model.inputs.map(\.name).filter(initializerNames.contains)
        if !weightInputs.isEmpty, let names = try? JSONEncoder().encode(weightInputs) {
            metadata[Graph.weightInputsKey] = String(decoding: names, as: UTF8.self)
        }
        if !model.producer.isEmpty { metadata["onnx.producer"] = model.producer }

        var knownShapes: [String: [Dim]] = [:]
        for info in model.valueInfo + model.outputs + model.inputs {
            if let shape = info.shape { knownShapes[info.name] = shape }
        }
        var context = LoweringContext(
            opset: opset,
            graph: Graph(inputs: inputs, outputs: outputs, constants: model.initializers, metadata: metadata),
            knownShapes: knownShapes, onnxNodes: model.nodes)

        var unsupported: [UnsupportedNode] = []
        // A stack of the nodes still to lower, next last: a rule that inlines a subgraph
        // (If) puts its nodes on top, so they are lowered in its place.
        var pending = Array(model.nodes.reversed())
        while let node = pending.popLast() {
            guard node.domain.isEmpty, let lowering = LoweringTable.rules[node.opType] else {
                let reason = node.domain.isEmpty && ONNXImporter.controlFlowOps.contains(node.opType) ? ONNXImporter.controlFlowAdvice : ""
                unsupported.append(UnsupportedNode(opType: node.qualifiedOpType, node: node.name, reason: reason))
                continue
            }
            if let refusal = versionRefusal(lowering, node) {
                unsupported.append(UnsupportedNode(opType: node.opType, node: node.name, reason: refusal))
                continue
            }
            var node = node
            node.version = lowering.version(atOpset: opset) ?? 0
            let firstEmitted = context.builder.graph.nodes.count
            do {
                try lowering.rule(&context, node)
                try context.builder.checkAttributes(ofNodesFrom: firstEmitted)
                pending += context.inlinedNodes.reversed()
                context.inlinedNodes = []
            } catch LoweringFailure.unsupported(let reason) {
                unsupported.append(UnsupportedNode(opType: node.qualifiedOpType, node: node.name, reason: reason))
            } catch LoweringFailure.invalid(let reason) {
                throw ONNXImportError.badNode(file: fileName, node: node.name, opType: node.opType, reason: reason)
            } catch let error as GraphError {
                // An ONNX value outside what the Restore op allows (a stride of 0, a negative pad).
                throw ONNXImportError.badNode(file: fileName, node: node.name, opType: node.opType,
                                              reason: "lowers to an invalid Restore node (\(error))")
            }
        }
        guard unsupported.isEmpty else { throw ONNXImportError.unsupportedNodes(file: fileName, nodes: unsupported) }

        context.builder.resolveAllAliases()
        context.builder.removeUnusedConstants()
        let graph = context.builder.graph
        context.builder.setNodes(try TopologicalOrder(fileName: fileName).sorted(graph))
        return context.builder.graph
    }

    /// Why the node's op version (the one in force at the model's opset) cannot be lowered,
    /// naming both versions; nil when the lowering implements it.
    private func versionRefusal(_ lowering: Lowering, _ node: ONNXNode) -> String? {
        let implemented = lowering.versions.map(String.init).joined(separator: ", ")
        guard let version = lowering.version(atOpset: opset) else {
            return "\(node.opType) does not exist in opset \(opset) (its first version is \(lowering.versions.min() ?? 0))"
        }
        guard let reason = lowering.refused[version] else { return nil }
        return "\(node.opType) version \(version) (opset \(opset)) is not supported: \(reason); Restore implements versions \(implemented)"
    }

    /// A graph input or output as Restore describes it. Inputs need a supported element
    /// type and a known rank; an output without them is described as f32 of rank 0,
    /// since the runtime derives output shapes itself.
    private func valueInfo(_ info: ONNXValueInfo, isInput: Bool) throws -> ValueInfo {
        let dtype: DType
        if let elementType = info.elementType {
            guard let type = ONNXDataType(rawValue: elementType)?.restoreType else {
                let typeName = ONNXDataType(rawValue: elementType)?.name ?? String(elementType)
                throw ONNXImportError.badValueInfo(file: fileName, value: info.name, reason: "element type \(typeName) is not supported")
            }
            dtype = type
        } else if isInput {
            // Any other type is a sequence, map or optional (ONNX's TypeProto), which
            // Restore's tensor graphs do not have.
            throw ONNXImportError.badValueInfo(file: fileName, value: info.name, reason: "has no tensor type (a sequence, "
                                               + "map or optional value, which Restore does not run)")
        } else {
            dtype = .float32
        }
        guard let shape = info.shape else {
            if isInput {
                throw ONNXImportError.badValueInfo(file: fileName, value: info.name, reason: "has no shape (unknown rank)")
            }
            return ValueInfo(name: info.name, dtype: dtype, shape: [])
        }
        return ValueInfo(name: info.name, dtype: dtype, shape: shape)
    }
}

/// Orders nodes so every value is produced before it is read, keeping the model's order
/// where it already is one, and checks that every value read has a source.
struct TopologicalOrder {
    let fileName: String

    func sorted(_ graph: Graph) throws -> [Node] {
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if producer.updateValue(index, forKey: output) != nil || graph.constants[output] != nil
                    || graph.inputs.contains(where: { $0.name == output }) {
                    throw ONNXImportError.badGraph(file: fileName, reason: "value '\(output)' is produced twice (by node '\(node.name)' and earlier)")
                }
            }
        }
        let graphInputs = Set(graph.inputs.map(\.name))
        var dependencies: [[Int]] = []
        for node in graph.nodes {
            var nodeDependencies: [Int] = []
            for input in node.inputs where !input.isEmpty {
                if let index = producer[input] {
                    nodeDependencies.append(index)
                } else if graph.constants[input] == nil && !graphInputs.contains(input) {
                    throw ONNXImportError.badGraph(
                        file: fileName, reason: "node '\(node.name)' reads '\(input)', which no node, initializer or graph input provides")
                }
            }
            dependencies.append(nodeDependencies)
        }
        for output in graph.outputs where producer[output.name] == nil && graph.constants[output.name] == nil
            && !graphInputs.contains(output.name) {
            throw ONNXImportError.badGraph(file: fileName, reason: "graph output '\(output.name)' is produced by no node")
        }

        // Depth-first, visiting producers before consumers, nodes in model order; an
        // explicit stack keeps deep graphs from overflowing the call stack.
        enum Mark { case unvisited, inProgress, done }
        var marks = [Mark](repeating: .unvisited, count: graph.nodes.count)
        var order: [Node] = []
        order.reserveCapacity(graph.nodes.count)
        for root in graph.nodes.indices where marks[root] == .unvisited {
            var stack: [(node: Int, next: Int)] = [(root, 0)]
            marks[root] = .inProgress
            while let (node, next) = stack.last {
                if next < dependencies[node].count {
                    stack[stack.count - 1].next += 1
                    let dependency = dependencies[node][next]
                    switch marks[dependency] {
                    case .unvisited:
                        marks[dependency] = .inProgress
                        stack.append((dependency, 0))
                    case .inProgress:
                        throw ONNXImportError.badGraph(file: fileName, reason: "nodes form a cycle through '\(graph.nodes[dependency].name)'")
                    case .done:
                        break
                    }
                } else {
                    marks[node] = .done
                    order.append(graph.nodes[node])
                    stack.removeLast()
                }
            }
        }
        return order
    }
}

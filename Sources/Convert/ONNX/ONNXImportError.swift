import Foundation

/// An ONNX node Restore cannot import, with why when the op type alone does not say it.
public struct UnsupportedNode: Hashable, Sendable {
    /// The op type, prefixed with its domain when that is not the default one.
    public var opType: String
    public var node: String
    /// Empty when the op type itself is unsupported; otherwise the unsupported feature.
    public var reason: String

    public init(opType: String, node: String, reason: String = "") {
        self.opType = opType
        self.node = node
        self.reason = reason
    }
}

/// Why an ONNX file could not be imported. Every message begins with the file's name and
/// names the node, tensor or value concerned.
public enum ONNXImportError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all (missing, a directory, no permission).
    case unreadableFile(file: String, reason: String)
    /// protobuf-c refused the bytes, or they hold no graph.
    case notONNX(file: String, reason: String)
    /// The model's default-domain opset is missing or outside the supported range.
    case unsupportedOpset(file: String, version: Int?)
    /// A tensor (initializer or attribute) whose bytes or type Restore cannot use.
    case badTensor(file: String, tensor: String, reason: String)
    /// A tensor stored in an external file that is missing, too short or outside the model's folder.
    case badExternalData(file: String, tensor: String, dataFile: String, reason: String)
    /// A graph input or output whose type or shape Restore cannot use.
    case badValueInfo(file: String, value: String, reason: String)
    /// A node that breaks the ONNX operator's own rules (wrong attribute type, missing input).
    case badNode(file: String, node: String, opType: String, reason: String)
    /// Every node Restore cannot lower, listed together.
    case unsupportedNodes(file: String, nodes: [UnsupportedNode])
    /// Nodes that read values nothing produces, or that form a cycle.
    case badGraph(file: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableFile(let file, let reason):
            "\(file): cannot read the file (\(reason))"
        case .notONNX(let file, let reason):
            "\(file): \(reason)"
        case .unsupportedOpset(let file, let version?):
            "\(file): ONNX opset \(version) is not supported (Restore reads opsets \(ONNXImporter.supportedOpsets.lowerBound)–\(ONNXImporter.supportedOpsets.upperBound))"
        case .unsupportedOpset(let file, nil):
            "\(file): the model imports no version of the default ONNX domain"
        case .badTensor(let file, let tensor, let reason):
            "\(file): tensor '\(tensor)': \(reason)"
        case .badExternalData(let file, let tensor, let dataFile, let reason):
            "\(file): tensor '\(tensor)': external data file '\(dataFile)' \(reason)"
        case .badValueInfo(let file, let value, let reason):
            "\(file): graph value '\(value)': \(reason)"
        case .badNode(let file, let node, let opType, let reason):
            "\(file): node '\(node)' (\(opType)): \(reason)"
        case .unsupportedNodes(let file, let nodes):
            "\(file): \(nodes.count) unsupported node\(nodes.count == 1 ? "" : "s"): \(Self.groupedByOpType(nodes))"
        case .badGraph(let file, let reason):
            "\(file): \(reason)"
        }
    }

    /// "TopK (topk_3, topk_7), Resize (up: antialias is not supported)", op types in order of first appearance.
    private static func groupedByOpType(_ nodes: [UnsupportedNode]) -> String {
        var opTypes: [String] = []
        var entries: [String: [String]] = [:]
        for node in nodes {
            if entries[node.opType] == nil { opTypes.append(node.opType) }
            entries[node.opType, default: []].append(node.reason.isEmpty ? node.node : "\(node.node): \(node.reason)")
        }
        return opTypes.map { "\($0) (\(entries[$0, default: []].joined(separator: ", ")))" }.joined(separator: ", ")
    }
}

extension ONNXImportError: LocalizedError {
    public var errorDescription: String? { description }
}

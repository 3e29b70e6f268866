import CONNX
import Format

/// An ONNX attribute value as Restore reads it.
enum ONNXAttribute {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(ConstantTensor)
    /// A subgraph (If's branches), decoded like the main graph.
    case graph(ONNXSubgraph)
    /// A kind Restore never reads (graphs, sparse tensor, type proto …), by its ONNX name.
    case other(String)
}

/// An ONNX node copied out of the protobuf message.
struct ONNXNode {
    var name: String
    var opType: String
    /// Empty for the default domain ("" or "ai.onnx").
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: ONNXAttribute]
    /// The op's version in force at the model's opset (the largest since-version not above
    /// it, see `Lowering`); set by the importer before the node is lowered, 0 until then.
    var version = 0

    /// The op type as listed in errors: prefixed with the domain when that is not the default one.
    var qualifiedOpType: String { domain.isEmpty ? opType : "\(domain).\(opType)" }
}

/// A graph held by an attribute (If's then_branch and else_branch): its nodes, its own
/// initializers, and the names of its outputs. It has no inputs: it reads values of the
/// scopes around it by name, which ONNX keeps distinct from every name inside.
struct ONNXSubgraph {
    var nodes: [ONNXNode]
    var initializers: [ConstantTensor]
    var outputs: [String]
}

/// A graph input, output or value_info entry: element type (nil when absent or not
/// representable) and shape (nil when the rank is unknown).
struct ONNXValueInfo {
    var name: String
    var elementType: Int32?
    var shape: [Dim]?
}

/// The parts of an ONNX model Restore imports, copied out of protobuf-c's message so that
/// the message can be freed at once.
struct ONNXModelDescription {
    /// The default domain's opset version, nil when the model imports none.
    var opset: Int?
    var producer: String
    var metadata: [String: String]
    var nodes: [ONNXNode]
    var initializers: [ConstantTensor]
    var inputs: [ONNXValueInfo]
    var outputs: [ONNXValueInfo]
    var valueInfo: [ONNXValueInfo]
}

/// Reads protobuf-c's C structures into Swift values; tensors go through `TensorDecoder`.
struct ONNXModelDecoder {
    let tensors: TensorDecoder

    /// Unpacks `bytes` with protobuf-c, copies what Restore needs, and frees the message.
    func decode(_ bytes: UnsafeRawBufferPointer) throws -> ONNXModelDescription {
        let file = tensors.fileName
        guard bytes.count > 0 else {
            throw ONNXImportError.notONNX(file: file, reason: "the file is empty, not an ONNX model")
        }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let message = onnx__model_proto__unpack(nil, bytes.count, base) else {
            throw ONNXImportError.notONNX(file: file, reason: "not a valid ONNX protobuf (truncated or corrupted?)")
        }
        defer { onnx__model_proto__free_unpacked(message, nil) }
        let model = message.pointee
        guard let graph = model.graph?.pointee else {
            throw ONNXImportError.notONNX(file: file, reason: "the protobuf holds no graph (not an ONNX model, or truncated?)")
        }

        var opset: Int?
        for entry in cArray(model.opset_import, model.n_opset_import) {
            guard let entry = entry?.pointee else { continue }
            let domain = string(entry.domain)
            if (domain.isEmpty || domain == "ai.onnx") && entry.has_version != 0 {
                opset = Int(entry.version)
            }
        }
        var metadata: [String: String] = [:]
        for entry in cArray(model.metadata_props, model.n_metadata_props) {
            guard let entry = entry?.pointee else { continue }
            metadata[string(entry.key)] = string(entry.value)
        }
        let producer = [string(model.producer_name), string(model.producer_version)]
            .filter { !$0.isEmpty }.joined(separator: " ")

        return ONNXModelDescription(
            opset: opset,
            producer: producer,
            metadata: metadata,
            nodes: try decodeNodes(graph, depth: 0),
            initializers: try decodeInitializers(graph),
            inputs: cArray(graph.input, graph.n_input).compactMap { $0.map { decodeValueInfo($0.pointee) } },
            outputs: cArray(graph.output, graph.n_output).compactMap { $0.map { decodeValueInfo($0.pointee) } },
            valueInfo: cArray(graph.value_info, graph.n_value_info).compactMap { $0.map { decodeValueInfo($0.pointee) } })
    }

    /// Subgraphs nested deeper than this are refused: decoding recurses once per level, and
    /// no exporter nests If more than a few levels.
    static let maximumSubgraphDepth = 32

    private func decodeNodes(_ graph: Onnx__GraphProto, depth: Int) throws -> [ONNXNode] {
        uniquelyNamed(try cArray(graph.node, graph.n_node).enumerated().compactMap { index, node in
            try node.map { try decodeNode($0.pointee, index: index, depth: depth) }
        })
    }

    private func decodeInitializers(_ graph: Onnx__GraphProto) throws -> [ConstantTensor] {
        try cArray(graph.initializer, graph.n_initializer).compactMap { tensor in
            try tensor.map { try tensors.decode($0.pointee, fallbackName: "") }
        }
    }

    /// Nodes with distinct names (errors and rewrite passes name nodes): a repeated name
    /// gets a numeric suffix.
    private func uniquelyNamed(_ nodes: [ONNXNode]) -> [ONNXNode] {
        var seen = Set<String>()
        return nodes.map { node in
            var renamed = node
            var counter = 1
            while !seen.insert(renamed.name).inserted {
                counter += 1
                renamed.name = "\(node.name)_\(counter)"
            }
            return renamed
        }
    }

    private func decodeNode(_ node: Onnx__NodeProto, index: Int, depth: Int) throws -> ONNXNode {
        let opType = string(node.op_type)
        var name = string(node.name)
        if name.isEmpty { name = "\(opType.isEmpty ? "node" : opType)_\(index)" }
        var domain = string(node.domain)
        if domain == "ai.onnx" { domain = "" }
        var attributes: [String: ONNXAttribute] = [:]
        for attribute in cArray(node.attribute, node.n_attribute) {
            guard let attribute = attribute?.pointee else { continue }
            attributes[string(attribute.name)] = try decodeAttribute(attribute, node: name, depth: depth)
        }
        return ONNXNode(name: name, opType: opType, domain: domain,
                        inputs: cArray(node.input, node.n_input).map(string),
                        outputs: cArray(node.output, node.n_output).map(string),
                        attributes: attributes)
    }

    private func decodeAttribute(_ attribute: Onnx__AttributeProto, node: String, depth: Int) throws -> ONNXAttribute {
        switch attribute.has_type != 0 ? attribute.type : inferredType(attribute) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return .int(Int(attribute.i))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return .float(attribute.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return .string(string(attribute.s))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            return .ints(cArray(attribute.ints, attribute.n_ints).map { Int($0) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            return .floats(Array(cArray(attribute.floats, attribute.n_floats)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
            return .strings(cArray(attribute.strings, attribute.n_strings).map(string))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            guard let tensor = attribute.t?.pointee else { return .other("TENSOR without a value") }
            return .tensor(try tensors.decode(tensor, fallbackName: "\(node).\(string(attribute.name))"))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
            guard let graph = attribute.g?.pointee else { return .other("GRAPH without a value") }
            guard depth < Self.maximumSubgraphDepth else {
                throw ONNXImportError.badGraph(file: tensors.fileName, reason: "node '\(node)' nests subgraphs more than "
                                               + "\(Self.maximumSubgraphDepth) levels deep")
            }
            return .graph(ONNXSubgraph(nodes: try decodeNodes(graph, depth: depth + 1),
                                       initializers: try decodeInitializers(graph),
                                       outputs: cArray(graph.output, graph.n_output).compactMap { $0.map { string($0.pointee.name) } }))
        default:
            return .other(attributeTypeName(attribute.type))
        }
    }

    /// The type of an attribute written before ONNX required `type`: the field that is set.
    private func inferredType(_ attribute: Onnx__AttributeProto) -> Onnx__AttributeProto__AttributeType {
        if attribute.n_ints > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS }
        if attribute.n_floats > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS }
        if attribute.n_strings > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS }
        if attribute.t != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR }
        if attribute.g != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH }
        if attribute.has_s != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING }
        if attribute.has_f != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT }
        if attribute.has_i != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT }
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED
    }

    private func decodeValueInfo(_ info: Onnx__ValueInfoProto) -> ONNXValueInfo {
        let name = string(info.name)
        guard let type = info.type?.pointee, type.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensorType = type.tensor_type?.pointee else {
            return ONNXValueInfo(name: name, elementType: nil, shape: nil)
        }
        let elementType = tensorType.has_elem_type != 0 ? tensorType.elem_type : nil
        guard let shape = tensorType.shape?.pointee else {
            return ONNXValueInfo(name: name, elementType: elementType, shape: nil)
        }
        let dims = cArray(shape.dim, shape.n_dim).enumerated().map { index, dim -> Dim in
            // A dimension with neither a value nor a name is still a dimension: give it a
            // symbol of its own so that the runtime binds it per input.
            let generated = Dim.symbol("\(name)_dim\(index)")
            guard let dim = dim?.pointee else { return generated }
            switch dim.value_case {
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE where dim.dim_value >= 0:
                return .fixed(Int(dim.dim_value))
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM where !string(dim.dim_param).isEmpty:
                return .symbol(string(dim.dim_param))
            default:
                return generated
            }
        }
        return ONNXValueInfo(name: name, elementType: elementType, shape: dims)
    }

    private func attributeTypeName(_ type: Onnx__AttributeProto__AttributeType) -> String {
        switch type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: "GRAPH"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: "GRAPHS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: "TENSORS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: "SPARSE_TENSOR"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: "SPARSE_TENSORS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: "TYPE_PROTO"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS: "TYPE_PROTOS"
        default: "UNDEFINED (\(type.rawValue))"
        }
    }
}

/// The `count` elements of a protobuf-c repeated field (empty when the pointer is NULL).
func cArray<Element>(_ base: UnsafeMutablePointer<Element>?, _ count: Int) -> UnsafeBufferPointer<Element> {
    guard let base, count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: base, count: count)
}

/// A protobuf-c string field; absent strings are NULL in proto2 messages.
func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}

/// A protobuf `bytes` field read as UTF-8 text (ONNX stores string attributes as bytes).
func string(_ data: ProtobufCBinaryData) -> String {
    guard let bytes = data.data, data.len > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: bytes, count: data.len), as: UTF8.self)
}

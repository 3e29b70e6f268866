import Foundation

/// One dimension of a graph input or output: a fixed size or a named symbol
/// (such as `H`) that the runtime binds when it plans for a concrete input.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case fixed(Int)
    case symbol(String)

    public var description: String {
        switch self {
        case .fixed(let size): String(size)
        case .symbol(let name): name
        }
    }
}

/// Name, element type and (possibly symbolic) shape of a graph input or output.
public struct ValueInfo: Hashable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Dim]

    public init(name: String, dtype: DType, shape: [Dim]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// A typed node attribute.
public enum Attribute: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Float)
    case ints([Int])
    case floats([Float])
    case string(String)

    public var description: String {
        switch self {
        case .int(let v): String(v)
        case .float(let v): String(v)
        case .ints(let v): "\(v)"
        case .floats(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        }
    }
}

/// One operation of the graph. Inputs and outputs name values; an empty input name
/// marks an optional input that is absent.
public struct Node: Hashable, Sendable {
    public var name: String
    /// The op and its typed attributes.
    public var operation: Op
    public var inputs: [String]
    public var outputs: [String]

    public init(name: String, _ operation: Op, inputs: [String], outputs: [String]) {
        self.name = name
        self.operation = operation
        self.inputs = inputs
        self.outputs = outputs
    }

    /// Decodes a node as stored: the op's attributes are checked (`Op.init(kind:attributes:node:)`).
    public init(name: String, op: OpKind, inputs: [String], outputs: [String],
                attributes: [String: Attribute] = [:]) throws {
        self.init(name: name, try Op(kind: op, attributes: attributes, node: name), inputs: inputs, outputs: outputs)
    }

    public var op: OpKind { operation.kind }

    /// The attributes as stored (defaults left out).
    public var attributes: [String: Attribute] { operation.attributes }

    /// The input at `index`, or nil when it is absent (past the end or named "").
    public func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }
}

extension Graph {
    /// Metadata key where `convert` records how many nodes the importer produced, so that
    /// `rrun info` can show the node count before and after simplification.
    public static let importedNodesKey = "convert.imported-nodes"
    /// How many nodes computed only on constants and were evaluated at convert time (an
    /// ONNX export's spectral norms W/σ, reshapes of weights…).
    public static let constantFoldedNodesKey = "convert.constant-folded-nodes"
    /// What a checkpoint template did with spectral norms.
    public static let spectralNormKey = "convert.spectral-norm"

    public static func spectralNormNote(_ count: Int) -> String {
        "W/σ folded at convert time into \(count) weight\(count == 1 ? "" : "s")"
    }

    /// Metadata key where an importer records the weights the source model also listed as
    /// graph inputs (ONNX before IR version 4 listed every initializer so), as a JSON array
    /// of names: they are constants, and feeding one at run time is refused by name.
    public static let weightInputsKey = "convert.weight-inputs"

    /// The names recorded under `weightInputsKey` (empty when absent or unreadable).
    public var weightInputNames: [String] {
        guard let text = metadata[Self.weightInputsKey],
              let names = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { return [] }
        return names
    }
}

/// A model in Restore's own op set: nodes in topological order, constant tensors
/// (weights and folded values) and string metadata (docs/design.md §4 for `restore.*` keys).
public struct Graph: Sendable {
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var nodes: [Node]
    /// Constant tensors by name; `constantOrder` keeps the order they are written in.
    public private(set) var constants: [String: ConstantTensor]
    public private(set) var constantOrder: [String]
    public var metadata: [String: String]
    /// Constants' values already arranged for kernels (`convert --prepare`), in file order;
    /// each names a constant of `constants` as its source.
    public var packedConstants: [PackedConstant]

    public init(inputs: [ValueInfo] = [], outputs: [ValueInfo] = [], nodes: [Node] = [],
                constants: [ConstantTensor] = [], metadata: [String: String] = [:],
                packedConstants: [PackedConstant] = []) {
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
        self.constants = [:]
        self.constantOrder = []
        self.metadata = metadata
        self.packedConstants = []
        for constant in constants { setConstant(constant) }
        self.packedConstants = packedConstants
    }

    /// Adds or replaces a constant tensor; packed values made from a replaced one are
    /// dropped, being stale.
    public mutating func setConstant(_ constant: ConstantTensor) {
        if constants.updateValue(constant, forKey: constant.name) == nil {
            constantOrder.append(constant.name)
        } else if packedConstants.contains(where: { $0.source == constant.name }) {
            packedConstants.removeAll { $0.source == constant.name }
        }
    }

    /// Removes constants that no node input, graph output or used constant's layout (the
    /// scales of an int8 weight) names any more.
    public mutating func removeUnusedConstants() {
        var used = Set(outputs.map(\.name))
        for node in nodes { used.formUnion(node.inputs) }
        for name in used {
            guard let constant = constants[name] else { continue }
            switch constant.layout {
            case .int8Symmetric(let scales): used.insert(scales.tensor)
            case .elements, .packed: break
            }
        }
        constantOrder.removeAll { !used.contains($0) }
        constants = constants.filter { used.contains($0.key) }
        packedConstants.removeAll { !used.contains($0.source) }
    }

    /// Constants in file order.
    public var orderedConstants: [ConstantTensor] { constantOrder.compactMap { constants[$0] } }
}

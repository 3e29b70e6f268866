import Format

// Scaffolding while the op files are written: each op's file replaces its line here.
// This file is deleted once every op has landed.

public struct Convolution: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Convolution is not implemented yet") } }
public struct TransposedConvolution: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "TransposedConvolution is not implemented yet") } }
public struct Linear: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Linear is not implemented yet") } }
public struct MatrixMultiply: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "MatrixMultiply is not implemented yet") } }
public struct InstanceNormalization: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "InstanceNormalization is not implemented yet") } }
public struct LayerNormalization: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "LayerNormalization is not implemented yet") } }
public struct Softmax: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Softmax is not implemented yet") } }
public struct ElementwiseUnary: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ElementwiseUnary is not implemented yet") } }
public struct ElementwiseBinary: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ElementwiseBinary is not implemented yet") } }
public struct Select: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Select is not implemented yet") } }
public struct Reduction: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Reduction is not implemented yet") } }
public struct AveragePool: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "AveragePool is not implemented yet") } }
public struct MaxPool: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "MaxPool is not implemented yet") } }
public struct Pad: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Pad is not implemented yet") } }
public struct Resize: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Resize is not implemented yet") } }
public struct DepthToSpace: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "DepthToSpace is not implemented yet") } }
public struct SpaceToDepth: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "SpaceToDepth is not implemented yet") } }

public protocol PendingOperator: Operator {}
extension PendingOperator {
    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] { fatalError() }
    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] { fatalError() }
    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel { fatalError() }
}

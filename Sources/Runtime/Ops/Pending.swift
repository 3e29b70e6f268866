import Format

// Scaffolding while the op files are written: each op's file replaces its line here.
// This file is deleted once every op has landed.

public struct Linear: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Linear is not implemented yet") } }
public struct MatrixMultiply: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "MatrixMultiply is not implemented yet") } }
public struct LayerNormalization: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "LayerNormalization is not implemented yet") } }
public struct Softmax: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Softmax is not implemented yet") } }
public struct ElementwiseUnary: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ElementwiseUnary is not implemented yet") } }
public struct ElementwiseBinary: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ElementwiseBinary is not implemented yet") } }
public struct Select: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Select is not implemented yet") } }
public struct Reduction: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Reduction is not implemented yet") } }
public struct Concatenation: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Concatenation is not implemented yet") } }
public struct Split: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Split is not implemented yet") } }
public struct Slice: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Slice is not implemented yet") } }
public struct Transpose: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Transpose is not implemented yet") } }
public struct Reshape: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Reshape is not implemented yet") } }
public struct Squeeze: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Squeeze is not implemented yet") } }
public struct Unsqueeze: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Unsqueeze is not implemented yet") } }
public struct Flatten: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Flatten is not implemented yet") } }
public struct Expand: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Expand is not implemented yet") } }
public struct Tile: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Tile is not implemented yet") } }
public struct Gather: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Gather is not implemented yet") } }
public struct ShapeOf: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ShapeOf is not implemented yet") } }
public struct Cast: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Cast is not implemented yet") } }
public struct ArithmeticRange: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ArithmeticRange is not implemented yet") } }
public struct ConstantOfShape: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "ConstantOfShape is not implemented yet") } }

public protocol PendingOperator: Operator {}
extension PendingOperator {
    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] { fatalError() }
    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] { fatalError() }
    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel { fatalError() }
}

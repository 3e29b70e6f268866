import Format

// Scaffolding while the op files are written: each op's file replaces its line here.
// This file is deleted once every op has landed.

public struct Resize: PendingOperator { public init(node: Node) throws { throw OpError.unsupported(node: node.name, "Resize is not implemented yet") } }

public protocol PendingOperator: Operator {}
extension PendingOperator {
    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] { fatalError() }
    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] { fatalError() }
    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel { fatalError() }
}

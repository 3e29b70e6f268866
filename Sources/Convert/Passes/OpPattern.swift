import Format

/// The node a fusion pass looks for, written in the op schema's own types
/// (`.binary(.mul)`, `.unary(.sqrt)`, `.reduce(.mean)`, `.kind(.transpose)`), so that a
/// misspelt function does not compile instead of silently never matching.
enum OpPattern: Sendable {
    /// Any node of the op, whatever its attributes.
    case kind(OpKind)
    /// Any node of an op with all these traits (`.traits(.isView)`: reshape, squeeze …).
    case traits(OpTraits)
    /// A `unary` node applying the function, whatever its parameters.
    case unary(UnaryFunction)
    /// A `binary` node applying the function.
    case binary(BinaryFunction)
    /// A `reduce` node applying the function, over any axes.
    case reduce(ReduceAttributes.Function)
    /// A node matching any of the patterns.
    case anyOf([OpPattern])

    func matches(_ operation: Op) -> Bool {
        switch self {
        case .kind(let kind): operation.kind == kind
        case .traits(let traits): operation.kind.traits.isSuperset(of: traits)
        case .unary(let function): if case .unary(let activation) = operation { activation.function == function } else { false }
        case .binary(let function): operation == .binary(function)
        case .reduce(let function): if case .reduce(let reduction) = operation { reduction.function == function } else { false }
        case .anyOf(let patterns): patterns.contains { $0.matches(operation) }
        }
    }
}

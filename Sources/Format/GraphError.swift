/// Errors in a graph's structure or attributes, naming the node and what is wrong.
public enum GraphError: Error, CustomStringConvertible, Equatable {
    case missingAttribute(node: String, attribute: String)
    /// An attribute the op does not define: its meaning is unknown, so it is refused.
    case unknownAttribute(node: String, attribute: String)
    case badAttribute(node: String, attribute: String, expected: String, found: String)
    case missingInput(node: String, index: Int)
    case unknownValue(node: String, value: String)

    public var description: String {
        switch self {
        case .missingAttribute(let node, let attribute):
            "node '\(node)': missing attribute '\(attribute)'"
        case .unknownAttribute(let node, let attribute):
            "node '\(node)': the op has no attribute '\(attribute)'"
        case .badAttribute(let node, let attribute, let expected, let found):
            "node '\(node)': attribute '\(attribute)' should be \(expected), found \(found)"
        case .missingInput(let node, let index):
            "node '\(node)': input \(index) is required"
        case .unknownValue(let node, let value):
            "node '\(node)': input '\(value)' is produced by no node, constant or graph input"
        }
    }
}

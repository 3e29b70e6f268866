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

extension Node {
    /// An integer attribute, or `defaultValue` when absent.
    public func int(_ key: String, default defaultValue: Int? = nil) throws -> Int {
        switch attributes[key] {
        case .int(let v)?: return v
        case nil: if let d = defaultValue { return d }; throw GraphError.missingAttribute(node: name, attribute: key)
        case let other?: throw GraphError.badAttribute(node: name, attribute: key, expected: "an int", found: other.description)
        }
    }

    public func float(_ key: String, default defaultValue: Float? = nil) throws -> Float {
        switch attributes[key] {
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        case nil: if let d = defaultValue { return d }; throw GraphError.missingAttribute(node: name, attribute: key)
        case let other?: throw GraphError.badAttribute(node: name, attribute: key, expected: "a float", found: other.description)
        }
    }

    public func ints(_ key: String, default defaultValue: [Int]? = nil) throws -> [Int] {
        switch attributes[key] {
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        case nil: if let d = defaultValue { return d }; throw GraphError.missingAttribute(node: name, attribute: key)
        case let other?: throw GraphError.badAttribute(node: name, attribute: key, expected: "a list of ints", found: other.description)
        }
    }

    public func floats(_ key: String, default defaultValue: [Float]? = nil) throws -> [Float] {
        switch attributes[key] {
        case .floats(let v)?: return v
        case .float(let v)?: return [v]
        case nil: if let d = defaultValue { return d }; throw GraphError.missingAttribute(node: name, attribute: key)
        case let other?: throw GraphError.badAttribute(node: name, attribute: key, expected: "a list of floats", found: other.description)
        }
    }

    public func string(_ key: String, default defaultValue: String? = nil) throws -> String {
        switch attributes[key] {
        case .string(let v)?: return v
        case nil: if let d = defaultValue { return d }; throw GraphError.missingAttribute(node: name, attribute: key)
        case let other?: throw GraphError.badAttribute(node: name, attribute: key, expected: "a string", found: other.description)
        }
    }

    /// A string attribute that names a case of `T`.
    public func enumeration<T: RawRepresentable>(_ key: String, default defaultValue: T? = nil) throws -> T where T.RawValue == String {
        guard attributes[key] != nil else {
            if let d = defaultValue { return d }
            throw GraphError.missingAttribute(node: name, attribute: key)
        }
        let raw = try string(key)
        guard let value = T(rawValue: raw) else {
            throw GraphError.badAttribute(node: name, attribute: key, expected: "one of \(T.self)", found: "\"\(raw)\"")
        }
        return value
    }
}

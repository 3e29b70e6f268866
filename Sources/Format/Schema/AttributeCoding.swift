/// A Swift value that one node attribute holds: how it is read from and written as an
/// `Attribute`. Reading is as lenient as the `.rgraph` format allows (an int where a float
/// is expected, one int where a list is expected) and strict about everything else.
public protocol AttributeValue: Hashable, Sendable {
    /// The value held by `attribute`, or nil when the attribute has another type.
    init?(attribute: Attribute)
    var attribute: Attribute { get }
    /// What a valid attribute looks like, for error messages ("an int").
    static var expectation: String { get }
    /// Whether the two values are stored alike (floats by bits, so that −0 and NaN
    /// payloads are not taken for a default and dropped).
    func isStoredAlike(_ other: Self) -> Bool
}

extension AttributeValue {
    public func isStoredAlike(_ other: Self) -> Bool { self == other }
}

extension Int: AttributeValue {
    public init?(attribute: Attribute) {
        guard case .int(let value) = attribute else { return nil }
        self = value
    }
    public var attribute: Attribute { .int(self) }
    public static var expectation: String { "an int" }
}

extension Float: AttributeValue {
    public init?(attribute: Attribute) {
        switch attribute {
        case .float(let value): self = value
        case .int(let value): self = Float(value)
        case .ints, .floats, .string: return nil
        }
    }
    public var attribute: Attribute { .float(self) }
    public static var expectation: String { "a float" }
    public func isStoredAlike(_ other: Float) -> Bool { bitPattern == other.bitPattern }
}

/// Flags are stored as the ints 0 and 1, as ONNX stores them.
extension Bool: AttributeValue {
    public init?(attribute: Attribute) {
        guard case .int(let value) = attribute, value == 0 || value == 1 else { return nil }
        self = value == 1
    }
    public var attribute: Attribute { .int(self ? 1 : 0) }
    public static var expectation: String { "0 or 1" }
}

extension Array: AttributeValue where Element: ListAttributeElement {
    public init?(attribute: Attribute) {
        guard let values = Element.list(from: attribute) else { return nil }
        self = values
    }
    public var attribute: Attribute { Element.attribute(of: self) }
    public static var expectation: String { "a list of \(Element.pluralName)" }
    public func isStoredAlike(_ other: [Element]) -> Bool {
        count == other.count && zip(self, other).allSatisfy { $0.isStoredAlike($1) }
    }
}

/// Element types of list attributes (`ints`, `floats`).
public protocol ListAttributeElement: AttributeValue {
    static func list(from attribute: Attribute) -> [Self]?
    static func attribute(of list: [Self]) -> Attribute
    static var pluralName: String { get }
}

extension Int: ListAttributeElement {
    public static func list(from attribute: Attribute) -> [Int]? {
        switch attribute {
        case .ints(let values): values
        case .int(let value): [value]
        case .float, .floats, .string: nil
        }
    }
    public static func attribute(of list: [Int]) -> Attribute { .ints(list) }
    public static var pluralName: String { "ints" }
}

extension Float: ListAttributeElement {
    public static func list(from attribute: Attribute) -> [Float]? {
        switch attribute {
        case .floats(let values): values
        case .float(let value): [value]
        case .int, .ints, .string: nil
        }
    }
    public static func attribute(of list: [Float]) -> Attribute { .floats(list) }
    public static var pluralName: String { "floats" }
}

/// The names a string attribute may hold, without its Swift type (for the fuzz
/// dictionary and docs, which list every token of the format).
public protocol NamedAttributeDomain {
    static var allNames: [String] { get }
}

/// A closed set of names stored as a string attribute (modes, functions, dtypes).
public protocol NamedAttributeValue: AttributeValue, RawRepresentable, CaseIterable, NamedAttributeDomain
where RawValue == String {}

extension NamedAttributeValue {
    public static var allNames: [String] { allCases.map(\.rawValue) }

    public init?(attribute: Attribute) {
        guard case .string(let name) = attribute else { return nil }
        self.init(rawValue: name)
    }
    public var attribute: Attribute { .string(rawValue) }
    public static var expectation: String { "one of " + allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") }
}

/// One or more attribute keys of an op and the property of its attribute struct they fill.
/// Built from key paths, so a property's name on the node is written once, and its
/// default once: in the struct's property declaration, which `init()` takes.
public struct AttributeField<Root: OpAttributes>: @unchecked Sendable {
    /// The attribute keys this field reads and writes.
    let keys: [String]
    /// Keys that must be present on every node of the op.
    let requiredKeys: [String]
    /// Every name a string attribute of this field may hold (empty for numbers).
    let valueNames: [String]
    let decode: (inout Root, [String: Attribute], _ node: String) throws -> Void
    /// Writes the value's attributes, leaving out those equal to their default.
    let encode: (Root, inout [String: Attribute]) -> Void

    /// A property with a default: absent on the node means the default.
    public init<Value: AttributeValue>(_ key: String, _ path: WritableKeyPath<Root, Value>) {
        self.init(key, path, required: false)
    }

    /// A property every node of the op must give (there is no sensible default).
    public static func required<Value: AttributeValue>(_ key: String, _ path: WritableKeyPath<Root, Value>) -> Self {
        Self(key, path, required: true)
    }

    /// A property that may be absent, which means something of its own (nil).
    public init<Value: AttributeValue>(_ key: String, _ path: WritableKeyPath<Root, Value?>) {
        keys = [key]
        requiredKeys = []
        valueNames = (Value.self as? NamedAttributeDomain.Type)?.allNames ?? []
        decode = { root, attributes, node in
            guard let attribute = attributes[key] else { return }
            root[keyPath: path] = try Value.decoded(attribute, key: key, node: node)
        }
        encode = { root, attributes in
            if let value = root[keyPath: path] { attributes[key] = value.attribute }
        }
    }

    /// A fused activation: the function under `functionKey` and its parameters
    /// (alpha, beta, min, max), each written only when it differs from its default.
    public static func activation(_ functionKey: String, _ path: WritableKeyPath<Root, Activation>) -> Self {
        Self(keys: [functionKey] + Activation.parameterKeys, requiredKeys: [], valueNames: UnaryFunction.allNames,
             decode: { root, attributes, node in
                 root[keyPath: path] = try Activation(attributes: attributes, functionKey: functionKey, node: node)
             },
             encode: { root, attributes in
                 attributes.merge(root[keyPath: path].attributes(functionKey: functionKey)) { _, new in new }
             })
    }

    private init<Value: AttributeValue>(_ key: String, _ path: WritableKeyPath<Root, Value>, required: Bool) {
        keys = [key]
        requiredKeys = required ? [key] : []
        valueNames = (Value.self as? NamedAttributeDomain.Type)?.allNames ?? []
        decode = { root, attributes, node in
            guard let attribute = attributes[key] else { return }
            root[keyPath: path] = try Value.decoded(attribute, key: key, node: node)
        }
        encode = { root, attributes in
            let value = root[keyPath: path]
            if required || !value.isStoredAlike(Root()[keyPath: path]) { attributes[key] = value.attribute }
        }
    }

    private init(keys: [String], requiredKeys: [String], valueNames: [String],
                 decode: @escaping (inout Root, [String: Attribute], String) throws -> Void,
                 encode: @escaping (Root, inout [String: Attribute]) -> Void) {
        self.keys = keys
        self.requiredKeys = requiredKeys
        self.valueNames = valueNames
        self.decode = decode
        self.encode = encode
    }

}

extension AttributeValue {
    /// The value `attribute` holds; throws `badAttribute` naming the node and key when
    /// the attribute has another type.
    static func decoded(_ attribute: Attribute, key: String, node: String) throws -> Self {
        guard let value = Self(attribute: attribute) else {
            throw GraphError.badAttribute(node: node, attribute: key, expected: expectation, found: attribute.description)
        }
        return value
    }
}

/// The attributes of one op as a typed value (docs/design.md §2: nothing crosses a module
/// boundary as a string to be parsed again). Importers and passes build it, the `.rgraph`
/// writer encodes it, the reader decodes and checks it, kernels read it.
public protocol OpAttributes: Hashable, Sendable {
    /// Every property at its default, declared once with the property.
    init()
    /// The attribute keys, in the order they are documented.
    static var fields: [AttributeField<Self>] { get }
    /// Checks that go beyond each value's type (list lengths, ranges); throws
    /// `GraphError.badAttribute` naming `node`.
    func validate(node: String) throws
}

extension OpAttributes {
    public func validate(node: String) throws {}

    /// Decodes and checks the attributes of node `node`: unknown keys, wrong types,
    /// missing required keys and invalid values are errors naming the node and key.
    public init(attributes: [String: Attribute], node: String) throws {
        self.init()
        let fields = Self.fields
        for key in attributes.keys.sorted() where !fields.contains(where: { $0.keys.contains(key) }) {
            throw GraphError.unknownAttribute(node: node, attribute: key)
        }
        for field in fields {
            for key in field.requiredKeys where attributes[key] == nil {
                throw GraphError.missingAttribute(node: node, attribute: key)
            }
            try field.decode(&self, attributes, node)
        }
        try validate(node: node)
    }

    /// The node attributes that describe this value; defaults are left out.
    public var encoded: [String: Attribute] {
        var result: [String: Attribute] = [:]
        for field in Self.fields { field.encode(self, &result) }
        return result
    }
}

/// Validation helpers for `OpAttributes.validate`.
extension GraphError {
    /// Throws `badAttribute` unless `condition` holds.
    static func check(_ condition: Bool, node: String, attribute: String, expected: String, found: @autoclosure () -> String) throws {
        guard condition else { throw GraphError.badAttribute(node: node, attribute: attribute, expected: expected, found: found()) }
    }
}

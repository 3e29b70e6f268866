import Format

/// Typed access to an ONNX node's attributes and inputs for lowering rules. A wrong
/// attribute type or a missing required input is `LoweringFailure.invalid`.
extension ONNXNode {
    /// The input at `index`, or nil when it is absent (past the end or named "").
    func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }

    func requiredInput(_ index: Int) throws -> String {
        guard let name = input(index) else { throw LoweringFailure.invalid("input \(index) is required") }
        return name
    }

    /// The first output, which every lowered op produces.
    func output() throws -> String {
        guard let name = outputs.first, !name.isEmpty else { throw LoweringFailure.invalid("the node has no output") }
        return name
    }

    func int(_ key: String) throws -> Int? {
        switch attributes[key] {
        case nil: return nil
        case .int(let value)?: return value
        case let other?: throw wrongType(key, expected: "an int", found: other)
        }
    }

    func int(_ key: String, default defaultValue: Int) throws -> Int {
        try int(key) ?? defaultValue
    }

    /// An int attribute that ONNX reads as a flag: any value but 0 is true.
    func flag(_ key: String, default defaultValue: Bool) throws -> Bool {
        try int(key).map { $0 != 0 } ?? defaultValue
    }

    func float(_ key: String) throws -> Float? {
        switch attributes[key] {
        case nil: return nil
        case .float(let value)?: return value
        case .int(let value)?: return Float(value)
        case let other?: throw wrongType(key, expected: "a float", found: other)
        }
    }

    func float(_ key: String, default defaultValue: Float) throws -> Float {
        try float(key) ?? defaultValue
    }

    func ints(_ key: String) throws -> [Int]? {
        switch attributes[key] {
        case nil: return nil
        case .ints(let values)?: return values
        case let other?: throw wrongType(key, expected: "a list of ints", found: other)
        }
    }

    func floats(_ key: String) throws -> [Float]? {
        switch attributes[key] {
        case nil: return nil
        case .floats(let values)?: return values
        case let other?: throw wrongType(key, expected: "a list of floats", found: other)
        }
    }

    func string(_ key: String) throws -> String? {
        switch attributes[key] {
        case nil: return nil
        case .string(let value)?: return value
        case let other?: throw wrongType(key, expected: "a string", found: other)
        }
    }

    func string(_ key: String, default defaultValue: String) throws -> String {
        try string(key) ?? defaultValue
    }

    /// A string attribute that names one of `values` by its ONNX spelling, or nil when
    /// absent. A string that names none is invalid, and the error lists those that do.
    func named<Value>(_ key: String, _ values: [String: Value]) throws -> Value? {
        guard let name = try string(key) else { return nil }
        guard let value = values[name] else {
            let known = values.keys.sorted().map { "'\($0)'" }.joined(separator: ", ")
            throw LoweringFailure.invalid("attribute '\(key)' is '\(name)', which is none of \(known)")
        }
        return value
    }

    func named<Value>(_ key: String, default defaultValue: Value, _ values: [String: Value]) throws -> Value {
        try named(key, values) ?? defaultValue
    }

    func tensor(_ key: String) throws -> ConstantTensor? {
        switch attributes[key] {
        case nil: return nil
        case .tensor(let value)?: return value
        case let other?: throw wrongType(key, expected: "a tensor", found: other)
        }
    }

    func graph(_ key: String) throws -> ONNXSubgraph? {
        switch attributes[key] {
        case nil: return nil
        case .graph(let value)?: return value
        case let other?: throw wrongType(key, expected: "a graph", found: other)
        }
    }

    private func wrongType(_ key: String, expected: String, found: ONNXAttribute) -> LoweringFailure {
        let kind = switch found {
        case .int: "an int"
        case .float: "a float"
        case .string: "a string"
        case .ints: "a list of ints"
        case .floats: "a list of floats"
        case .strings: "a list of strings"
        case .tensor: "a tensor"
        case .graph: "a graph"
        case .other(let name): name
        }
        return .invalid("attribute '\(key)' should be \(expected), found \(kind)")
    }
}

extension LoweringContext {
    /// The integer values of an input Restore needs at import time (axes, split sizes):
    /// nil when the input is absent; unsupported when it is computed by the graph.
    func constantInts(_ node: ONNXNode, _ index: Int, role: String) throws -> [Int]? {
        guard let name = node.input(index) else { return nil }
        guard let tensor = builder.constant(name) else {
            throw LoweringFailure.unsupported("input '\(role)' must be a constant")
        }
        guard !tensor.dtype.isFloatingPoint else {
            throw LoweringFailure.invalid("input '\(role)' must hold integers, not \(tensor.dtype)")
        }
        return tensor.intValues().map { Int($0) }
    }

    /// The float values of an input Restore needs at import time (Clip bounds).
    func constantFloats(_ node: ONNXNode, _ index: Int, role: String) throws -> [Float]? {
        guard let name = node.input(index) else { return nil }
        guard let tensor = builder.constant(name) else {
            throw LoweringFailure.unsupported("input '\(role)' must be a constant")
        }
        return tensor.floatValues()
    }

    /// Refuses a node whose optional outputs from `index` on are read (MaxPool indices,
    /// Dropout mask, normalisation statistics): Restore computes only the first output.
    func requireUnusedOutputs(_ node: ONNXNode, from index: Int, what: String) throws {
        if node.outputs.dropFirst(index).contains(where: isConsumed) {
            throw LoweringFailure.unsupported("its \(what) output is used")
        }
    }
}

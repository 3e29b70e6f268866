import Format

/// A name pattern choosing weights: `*` matches any run of characters (also none), `?`
/// one character, everything else itself. "blocks.3.*" chooses a block's weights,
/// "head.*" a head's, "*" every weight.
public struct NamePattern: Sendable, Equatable, ExpressibleByStringLiteral {
    public let pattern: String

    public init(_ pattern: String) { self.pattern = pattern }
    public init(stringLiteral value: String) { self.init(value) }

    public func matches(_ name: String) -> Bool {
        let p = Array(pattern.unicodeScalars), s = Array(name.unicodeScalars)
        // Iterative wildcard matching with backtracking to the last `*`.
        var (i, j) = (0, 0)
        var star: (pattern: Int, name: Int)?
        while j < s.count {
            if i < p.count && (p[i] == "?" || p[i] == s[j]) {
                i += 1
                j += 1
            } else if i < p.count && p[i] == "*" {
                star = (i, j)
                i += 1
            } else if let last = star {
                i = last.pattern + 1
                j = last.name + 1
                star = (last.pattern, last.name + 1)
            } else {
                return false
            }
        }
        while i < p.count && p[i] == "*" { i += 1 }
        return i == p.count
    }
}

/// Writable copies of the model constants being trained. The model's own constants (and
/// the mapped file behind them) are never written: training changes these copies, and
/// `commit(to:)` hands them to the model with `Model.replaceConstant`.
public final class TrainableWeights {
    /// The trained constants, in the order gradient plans and optimizers index them.
    public let names: [String]
    public let shapes: [[Int]]
    /// One allocation per constant (at least one element, so every pointer is valid).
    private let allocations: [UnsafeMutablePointer<Float>]
    private let storage: [UnsafeMutableBufferPointer<Float>]

    /// The float constants that nodes read as weights (`OpKind.weightInputs`) whose names
    /// match one of `trainable` and none of `frozen`, copied. Throws when none match.
    public convenience init(model: Model, trainable: [NamePattern], frozen: [NamePattern] = []) throws {
        let graph = model.graph
        var weightNames = Set<String>()
        for node in graph.nodes {
            for slot in node.op.weightInputs where slot < node.inputs.count {
                weightNames.insert(node.inputs[slot])
            }
        }
        let chosen = graph.constantOrder.filter { name in
            guard weightNames.contains(name), let constant = graph.constants[name], constant.dtype.isFloatingPoint else {
                return false
            }
            return trainable.contains { $0.matches(name) } && !frozen.contains { $0.matches(name) }
        }
        guard !chosen.isEmpty else {
            throw TrainingError.noTrainableWeights(patterns: trainable.map(\.pattern), frozen: frozen.map(\.pattern))
        }
        try self.init(model: model, names: chosen)
    }

    /// Copies of the float constants `names`, in that order (a head's weights found by
    /// structure, `RestorationHead`).
    public init(model: Model, names chosen: [String]) throws {
        let graph = model.graph
        for name in chosen where graph.constants[name]?.dtype.isFloatingPoint != true {
            throw GradientError.unknownParameter(name)
        }
        try model.verifyConstants(chosen)
        names = chosen
        shapes = chosen.map { graph.constants[$0]?.shape ?? [] }
        // Through the layout: an int8 weight the model keeps for its int8 kernels is scaled here.
        let values = try chosen.map { name in try graph.constants[name].map { try graph.floatValues(of: $0) } ?? [] }
        allocations = values.map { values in
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
            pointer.initialize(from: values, count: values.count)
            return pointer
        }
        storage = zip(allocations, values).map { UnsafeMutableBufferPointer(start: $0, count: $1.count) }
    }

    deinit { allocations.forEach { $0.deallocate() } }

    /// Element counts per trained constant.
    public var sizes: [Int] { storage.map(\.count) }

    /// Total number of trained values.
    public var parameterCount: Int { sizes.reduce(0, +) }

    /// The current values of every trained constant, writable (an optimizer steps them).
    public var buffers: [UnsafeMutableBufferPointer<Float>] { storage }

    /// Read-only pointers for a `GradientPlan` run.
    public var pointers: [UnsafePointer<Float>] { allocations.map { UnsafePointer($0) } }

    /// The values of trained constant `index`.
    public func values(_ index: Int) -> [Float] { Array(storage[index]) }

    /// Gives the model the trained values (new generations of its constants).
    public func commit(to model: Model) throws {
        for (name, values) in zip(names, storage) { try model.replaceConstant(name, with: Array(values)) }
    }
}

extension OpKind {
    /// The input slots that hold learned weights (filters, biases, normalisation scales)
    /// when they are constants: what `TrainableWeights` may choose. Plan-time inputs
    /// (shapes, scales of a resize, pads) are never among them.
    public var weightInputs: [Int] {
        switch self {
        case .conv, .convTranspose, .linear, .instanceNorm, .layerNorm: [1, 2]
        case .matMul, .binary: [0, 1]
        case .concat, .attention, .windowAttention, .deformableAttention, .softmax, .unary, .where, .reduce, .averagePool, .maxPool, .split, .slice,
             .transpose, .reshape, .squeeze, .unsqueeze, .flatten, .pad, .resize, .gridSample, .depthToSpace,
             .spaceToDepth, .expand, .tile, .gather, .scatterND, .shape, .cast, .range, .constantOfShape,
             .gatherElements, .scatterElements, .gatherND, .reverseSequence, .maxUnpool, .det: []
        }
    }
}

/// Why training cannot start or go on.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case noTrainableWeights(patterns: [String], frozen: [String])
    case shapeMismatch(what: String, expected: [Int], found: [Int])
    case cancelled

    public var description: String {
        switch self {
        case .noTrainableWeights(let patterns, let frozen):
            "no weight matches \(patterns.joined(separator: ", "))"
                + (frozen.isEmpty ? "" : " outside \(frozen.joined(separator: ", "))")
        case .shapeMismatch(let what, let expected, let found): "\(what) has shape \(found), expected \(expected)"
        case .cancelled: "cancelled"
        }
    }
}

import Format

/// A tensor held in ordinary arrays: the currency of reference kernels, constant
/// folding and plan-time shape arithmetic. Floats for f32 (and stored float types);
/// Int64 for i64, i32 and bool (0 or 1).
public struct HostTensor: Sendable, Equatable, CustomStringConvertible {
    public enum Elements: Sendable, Equatable {
        case float([Float])
        case int([Int64])
    }

    public var dtype: DType
    public var shape: [Int]
    public var elements: Elements

    public init(shape: [Int], floats: [Float]) {
        precondition(floats.count == shape.reduce(1, *), "\(floats.count) floats for shape \(shape)")
        self.dtype = .float32
        self.shape = shape
        self.elements = .float(floats)
    }

    public init(shape: [Int], ints: [Int64], dtype: DType = .int64) {
        precondition(ints.count == shape.reduce(1, *), "\(ints.count) ints for shape \(shape)")
        precondition(!dtype.isFloatingPoint, "ints stored as \(dtype)")
        self.dtype = dtype
        self.shape = shape
        self.elements = .int(ints)
    }

    /// Reads constant `constant` of `graph` as the values it stands for: f16 and bf16
    /// widened to f32, int8 multiplied by its scales (another constant of `graph`, hence the
    /// graph), integers as they are. Throws, naming the constant, when its layout does not
    /// fit it (missing or bad scales, a packed layout).
    public init(_ constant: ConstantTensor, of graph: Graph) throws(ModelError) {
        if constant.dtype.isFloatingPoint {
            do throws(WeightLayoutError) {
                self.init(shape: constant.shape, floats: try graph.floatValues(of: constant))
            } catch {
                throw .invalidConstant(name: constant.name, detail: error.description)
            }
        } else {
            self.init(shape: constant.shape, ints: constant.intValues(), dtype: constant.dtype)
        }
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var isFloat: Bool { if case .float = elements { true } else { false } }

    /// Elements as floats (ints converted).
    public var floats: [Float] {
        switch elements {
        case .float(let v): v
        case .int(let v): v.map { Float($0) }
        }
    }

    /// Elements as integers (floats truncated toward zero).
    public var ints: [Int64] {
        switch elements {
        case .float(let v): v.map { Int64($0) }
        case .int(let v): v
        }
    }

    /// Same elements, another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> HostTensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) to \(newShape)")
        var copy = self
        copy.shape = newShape
        return copy
    }

    public func asConstant(named name: String) -> ConstantTensor {
        switch elements {
        case .float(let v): ConstantTensor(name: name, shape: shape, floats: v)
        case .int(let v): ConstantTensor(name: name, shape: shape, ints: v, dtype: dtype)
        }
    }

    public var description: String {
        let preview: String
        switch elements {
        case .float(let v): preview = v.prefix(8).map { String($0) }.joined(separator: ", ")
        case .int(let v): preview = v.prefix(8).map { String($0) }.joined(separator: ", ")
        }
        return "\(dtype)\(shape)[\(preview)\(count > 8 ? ", …" : "")]"
    }
}

/// What the planner knows of a value: its type and concrete shape, and its elements
/// when they are known before running (constants and shape arithmetic).
public struct ValueFact: Sendable, Equatable {
    public var dtype: DType
    public var shape: [Int]
    public var value: HostTensor?

    public init(dtype: DType, shape: [Int], value: HostTensor? = nil) {
        self.dtype = dtype
        self.shape = shape
        self.value = value
    }

    public init(_ value: HostTensor) {
        self.init(dtype: value.dtype, shape: value.shape, value: value)
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
}

extension Graph {
    /// The values constant `name` stands for, as plan-time code reads them
    /// (`HostTensor(_:of:)`: int8 with its scales); nil when `name` is not a constant.
    public func constantValue(_ name: String) throws(ModelError) -> HostTensor? {
        guard let constant = constants[name] else { return nil }
        return try HostTensor(constant, of: self)
    }
}

extension DType: NamedAttributeValue {}

/// `shape`: dims [start, end) of the input's shape as i64.
public struct ShapeAttributes: OpAttributes {
    public var start = 0
    /// Absent: the rank.
    public var end: Int?

    public init() {}
    public init(start: Int, end: Int?) {
        self.start = start
        self.end = end
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("start", \.start),
        AttributeField("end", \.end),
    ]
}

/// `cast` to the element type `to` (required).
public struct CastAttributes: OpAttributes {
    public var to = DType.float32

    public init() {}
    public init(to: DType) { self.to = to }

    public static let fields: [AttributeField<Self>] = [.required("to", \.to)]
}

/// `constantOfShape`: a tensor of the given shape filled with `value` as `dtype`.
public struct ConstantOfShapeAttributes: OpAttributes {
    public var value: Float = 0
    public var dtype = DType.float32

    public init() {}
    public init(value: Float, dtype: DType) {
        self.value = value
        self.dtype = dtype
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("value", \.value),
        AttributeField("dtype", \.dtype),
    ]
}

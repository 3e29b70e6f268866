/// `attention`: Y = softmax(scale·Q·Kᵀ + bias)·V.
public struct AttentionAttributes: OpAttributes {
    public var scale: Float = 1

    public init() {}
    public init(scale: Float) { self.scale = scale }

    public static let fields: [AttributeField<Self>] = [AttributeField("scale", \.scale)]
}

/// `windowAttention`: Swin's shifted-window attention (see `OpKind.windowAttention`).
public struct WindowAttentionAttributes: OpAttributes {
    /// Tokens per window side, ≥ 1. Required.
    public var windowSize = 1
    /// Cyclic shift of the grid, ≥ 0 (Swin uses windowSize / 2; the roll wraps any value).
    public var shift = 0
    /// Attention heads, ≥ 1; C is a multiple of it. Required.
    public var heads = 1
    public var scale: Float = 1

    public init() {}
    public init(windowSize: Int, shift: Int, heads: Int, scale: Float) {
        self.windowSize = windowSize
        self.shift = shift
        self.heads = heads
        self.scale = scale
    }

    public static let fields: [AttributeField<Self>] = [
        .required("windowSize", \.windowSize),
        AttributeField("shift", \.shift),
        .required("heads", \.heads),
        AttributeField("scale", \.scale),
    ]

    public func validate(node: String) throws {
        try GraphError.check(windowSize >= 1, node: node, attribute: "windowSize", expected: "an int >= 1",
                             found: String(windowSize))
        try GraphError.check(shift >= 0, node: node, attribute: "shift", expected: "an int >= 0", found: String(shift))
        try GraphError.check(heads >= 1, node: node, attribute: "heads", expected: "an int >= 1", found: String(heads))
    }
}

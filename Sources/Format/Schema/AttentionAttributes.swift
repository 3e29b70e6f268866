/// `attention`: Y = softmax(scale·Q·Kᵀ + bias)·V.
public struct AttentionAttributes: OpAttributes {
    public var scale: Float = 1
    /// Whether Q, K, V and Y hold their heads side by side in each token, [..., L, H, D] as
    /// the linear layers that make them write them, instead of [..., H, L, D]: the kernel
    /// then reads and writes each head with a row stride of H·D, and the transposes that
    /// split and merge the heads are not run.
    public var headsInterleaved = false

    public init() {}
    public init(scale: Float, headsInterleaved: Bool = false) {
        self.scale = scale
        self.headsInterleaved = headsInterleaved
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("scale", \.scale),
        AttributeField("headsInterleaved", \.headsInterleaved),
    ]
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

/// `deformableAttention`: multi-scale deformable attention's sampling and weighting
/// (Deformable DETR), each level's map sampled as `gridSample` with these options.
public struct DeformableAttentionAttributes: OpAttributes {
    /// Attention heads, ≥ 1; the value's channels are heads × head width. Required.
    public var heads = 1
    /// The levels' map sizes, h₀, w₀, h₁, w₁, …, each ≥ 1: the value holds the levels'
    /// h·w tokens one level after another. Empty when input 3 gives them instead (a graph
    /// that takes any input size computes them from it); exactly one of the two is given.
    public var levelShapes: [Int] = []
    /// How each level is sampled (ONNX GridSample's options; the models use linear, zeros,
    /// alignCorners false).
    public var sampling = GridSampleAttributes()

    public init() {}
    public init(heads: Int, levelShapes: [Int], sampling: GridSampleAttributes) {
        self.heads = heads
        self.levelShapes = levelShapes
        self.sampling = sampling
    }

    /// The levels as (height, width).
    public var levels: [(height: Int, width: Int)] {
        stride(from: 0, to: levelShapes.count - 1, by: 2).map { (levelShapes[$0], levelShapes[$0 + 1]) }
    }

    public static let fields: [AttributeField<Self>] = [
        .required("heads", \.heads),
        AttributeField("levelShapes", \.levelShapes),
        AttributeField("mode", \.sampling.mode),
        AttributeField("paddingMode", \.sampling.paddingMode),
        AttributeField("alignCorners", \.sampling.alignCorners),
    ]

    public func validate(node: String) throws {
        try GraphError.check(heads >= 1, node: node, attribute: "heads", expected: "an int >= 1", found: String(heads))
        try GraphError.check(levelShapes.count % 2 == 0 && levelShapes.allSatisfy { $0 >= 1 },
                             node: node, attribute: "levelShapes", expected: "height, width pairs of ints >= 1 (or none: input 3)",
                             found: "\(levelShapes)")
        try GraphError.check(sampling.mode != .cubic, node: node, attribute: "mode", expected: "linear or nearest",
                             found: sampling.mode.rawValue)
    }
}

/// How ONNX derives a window's padding from the input size instead of explicit pads.
public enum AutoPad: String, NamedAttributeValue {
    case notset
    /// Output size ceil(in / stride); the odd pixel of padding goes at the end.
    case sameUpper = "same_upper"
    /// As `sameUpper`, with the odd pixel of padding at the beginning.
    case sameLower = "same_lower"
    /// No padding.
    case valid
}

/// The sliding-window attributes convolutions and pooling share.
public struct SlidingWindow: Hashable, Sendable {
    /// [strideH, strideW], each ≥ 1.
    public var strides = [1, 1]
    /// [dilationH, dilationW], each ≥ 1.
    public var dilations = [1, 1]
    /// [top, left, bottom, right], each ≥ 0; ignored unless `autoPad` is `notset`.
    public var pads = [0, 0, 0, 0]
    public var autoPad = AutoPad.notset

    public init() {}

    static func fields<Root: OpAttributes>(_ path: WritableKeyPath<Root, SlidingWindow>) -> [AttributeField<Root>] {
        [AttributeField("strides", path.appending(path: \.strides)),
         AttributeField("dilations", path.appending(path: \.dilations)),
         AttributeField("pads", path.appending(path: \.pads)),
         AttributeField("autoPad", path.appending(path: \.autoPad))]
    }

    func validate(node: String) throws {
        try GraphError.check(strides.count == 2 && strides.allSatisfy { $0 >= 1 }, node: node, attribute: "strides",
                             expected: "2 values >= 1", found: "\(strides)")
        try GraphError.check(dilations.count == 2 && dilations.allSatisfy { $0 >= 1 }, node: node, attribute: "dilations",
                             expected: "2 values >= 1", found: "\(dilations)")
        try GraphError.check(pads.count == 4 && pads.allSatisfy { $0 >= 0 }, node: node, attribute: "pads",
                             expected: "4 values >= 0 [top, left, bottom, right]", found: "\(pads)")
    }
}

/// `conv`: Y = act(conv(X, W) + B) + R, or act(conv(X, W) + B + R) when
/// `residualBeforeActivation`.
public struct ConvAttributes: OpAttributes {
    public var window = SlidingWindow()
    /// ≥ 1; C and M are multiples of it.
    public var group = 1
    public var activation = Activation.identity
    /// Whether the residual input R joins before the activation (a fused add that the
    /// activation read) or after it.
    public var residualBeforeActivation = false

    public init() {}

    public static let fields: [AttributeField<Self>] = SlidingWindow.fields(\.window) + [
        AttributeField("group", \.group),
        .activation("activation", \.activation),
        AttributeField("residualBeforeActivation", \.residualBeforeActivation),
    ]

    public func validate(node: String) throws {
        try window.validate(node: node)
        try GraphError.check(group >= 1, node: node, attribute: "group", expected: "an int >= 1", found: String(group))
    }
}

/// `convTranspose`: output size per axis, as ONNX ConvTranspose:
/// stride·(in − 1) + outputPadding + (k − 1)·dilation + 1 − padBegin − padEnd.
public struct ConvTransposeAttributes: OpAttributes {
    public var window = SlidingWindow()
    public var group = 1
    /// [H, W], each ≥ 0 and below the stride or dilation (ONNX).
    public var outputPadding = [0, 0]
    public var activation = Activation.identity

    public init() {}

    public static let fields: [AttributeField<Self>] = SlidingWindow.fields(\.window) + [
        AttributeField("group", \.group),
        AttributeField("outputPadding", \.outputPadding),
        .activation("activation", \.activation),
    ]

    public func validate(node: String) throws {
        try window.validate(node: node)
        try GraphError.check(group >= 1, node: node, attribute: "group", expected: "an int >= 1", found: String(group))
        try GraphError.check(outputPadding.count == 2 && outputPadding.allSatisfy { $0 >= 0 }, node: node,
                             attribute: "outputPadding", expected: "2 values >= 0", found: "\(outputPadding)")
    }
}

/// `linear`: Y = act(X·Wᵀ + B).
public struct LinearAttributes: OpAttributes {
    public var activation = Activation.identity

    public init() {}
    public init(activation: Activation) { self.activation = activation }

    public static let fields: [AttributeField<Self>] = [.activation("activation", \.activation)]
}

/// `averagePool` and `maxPool` (maxPool ignores `countIncludePad`).
public struct PoolAttributes: OpAttributes {
    /// [kH, kW], each ≥ 1. Required.
    public var kernelShape = [1, 1]
    public var window = SlidingWindow()
    /// Output size rounds up instead of down.
    public var ceilMode = false
    /// Average pooling divides by the whole window, padding included.
    public var countIncludePad = false

    public init() {}

    public static let fields: [AttributeField<Self>] = [.required("kernelShape", \.kernelShape)]
        + SlidingWindow.fields(\.window) + [
            AttributeField("ceilMode", \.ceilMode),
            AttributeField("countIncludePad", \.countIncludePad),
        ]

    public func validate(node: String) throws {
        try GraphError.check(kernelShape.count == 2 && kernelShape.allSatisfy { $0 >= 1 }, node: node,
                             attribute: "kernelShape", expected: "2 values >= 1", found: "\(kernelShape)")
        try window.validate(node: node)
    }
}

/// `maxUnpool`: the pooling window whose indices it inverts; it sets the output size when
/// no outputShape input is given.
public struct MaxUnpoolAttributes: OpAttributes {
    /// [kH, kW], each ≥ 1. Required.
    public var kernelShape = [1, 1]
    /// [strideH, strideW], each ≥ 1.
    public var strides = [1, 1]
    /// [top, left, bottom, right], each ≥ 0.
    public var pads = [0, 0, 0, 0]

    public init() {}
    public init(kernelShape: [Int], strides: [Int], pads: [Int]) {
        self.kernelShape = kernelShape
        self.strides = strides
        self.pads = pads
    }

    public static let fields: [AttributeField<Self>] = [
        .required("kernelShape", \.kernelShape),
        AttributeField("strides", \.strides),
        AttributeField("pads", \.pads),
    ]

    public func validate(node: String) throws {
        try GraphError.check(kernelShape.count == 2 && kernelShape.allSatisfy { $0 >= 1 }, node: node,
                             attribute: "kernelShape", expected: "2 values >= 1", found: "\(kernelShape)")
        try GraphError.check(strides.count == 2 && strides.allSatisfy { $0 >= 1 }, node: node, attribute: "strides",
                             expected: "2 values >= 1", found: "\(strides)")
        try GraphError.check(pads.count == 4 && pads.allSatisfy { $0 >= 0 }, node: node, attribute: "pads",
                             expected: "4 values >= 0 [top, left, bottom, right]", found: "\(pads)")
    }
}

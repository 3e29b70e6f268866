/// `instanceNorm`: per sample and channel, (x − mean) / sqrt(var + epsilon) · scale + bias.
public struct InstanceNormAttributes: OpAttributes {
    public var epsilon: Float = 1e-5

    public init() {}
    public init(epsilon: Float) { self.epsilon = epsilon }

    public static let fields: [AttributeField<Self>] = [AttributeField("epsilon", \.epsilon)]
}

/// `layerNorm`: normalises over axes [axis, rank).
public struct LayerNormAttributes: OpAttributes {
    public var axis = -1
    public var epsilon: Float = 1e-5
    /// Subtracts the mean (layer normalisation); false divides by the root mean square
    /// √(mean(x²) + ε) alone (ONNX RMSNormalization).
    public var centered = true

    public init() {}
    public init(axis: Int, epsilon: Float, centered: Bool = true) {
        self.axis = axis
        self.epsilon = epsilon
        self.centered = centered
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("axis", \.axis),
        AttributeField("epsilon", \.epsilon),
        AttributeField("centered", \.centered),
    ]
}

/// `softmax` along one axis.
public struct SoftmaxAttributes: OpAttributes {
    public var axis = -1

    public init() {}
    public init(axis: Int) { self.axis = axis }

    public static let fields: [AttributeField<Self>] = [AttributeField("axis", \.axis)]
}

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

    public init() {}
    public init(axis: Int, epsilon: Float) {
        self.axis = axis
        self.epsilon = epsilon
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("axis", \.axis),
        AttributeField("epsilon", \.epsilon),
    ]
}

/// `softmax` along one axis.
public struct SoftmaxAttributes: OpAttributes {
    public var axis = -1

    public init() {}
    public init(axis: Int) { self.axis = axis }

    public static let fields: [AttributeField<Self>] = [AttributeField("axis", \.axis)]
}

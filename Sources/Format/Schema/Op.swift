/// What a node computes: its op and that op's attributes as typed values. `OpKind`
/// documents each op's inputs and semantics; the attribute structs (OpAttributes files
/// beside this one) document each attribute and hold its default.
///
/// Passes match typed patterns (`if case .binary(.mul) = node.operation`); a misspelt
/// function or attribute name does not compile instead of silently never matching.
public enum Op: Hashable, Sendable {
    // Convolutions and dense layers
    case conv(ConvAttributes)
    case convTranspose(ConvTransposeAttributes)
    case linear(LinearAttributes)
    case matMul
    case attention(AttentionAttributes)
    case windowAttention(WindowAttentionAttributes)
    case deformableAttention(DeformableAttentionAttributes)
    // Normalisation
    case instanceNorm(InstanceNormAttributes)
    case layerNorm(LayerNormAttributes)
    case softmax(SoftmaxAttributes)
    // Element-wise
    case unary(Activation)
    case binary(BinaryFunction)
    case `where`
    // Reductions and pooling
    case reduce(ReduceAttributes)
    case averagePool(PoolAttributes)
    case maxPool(PoolAttributes)
    case maxUnpool(MaxUnpoolAttributes)
    case det
    // Layout and data movement
    case concat(ConcatAttributes)
    case split(SplitAttributes)
    case slice
    case transpose(TransposeAttributes)
    case reshape(ReshapeAttributes)
    case squeeze(SqueezeAttributes)
    case unsqueeze(UnsqueezeAttributes)
    case flatten(FlattenAttributes)
    case pad(PadAttributes)
    case resize(ResizeAttributes)
    case gridSample(GridSampleAttributes)
    case depthToSpace(DepthToSpaceAttributes)
    case spaceToDepth(SpaceToDepthAttributes)
    case expand
    case tile
    case gather(GatherAttributes)
    case scatterND(ScatterNDAttributes)
    case gatherElements(GatherAttributes)
    case scatterElements(ScatterElementsAttributes)
    case gatherND(GatherNDAttributes)
    case reverseSequence(ReverseSequenceAttributes)
    // Shape arithmetic
    case shape(ShapeAttributes)
    case cast(CastAttributes)
    case range
    case constantOfShape(ConstantOfShapeAttributes)

    /// The op, without its attributes.
    public var kind: OpKind {
        switch self {
        case .conv: .conv
        case .convTranspose: .convTranspose
        case .linear: .linear
        case .matMul: .matMul
        case .attention: .attention
        case .windowAttention: .windowAttention
        case .deformableAttention: .deformableAttention
        case .instanceNorm: .instanceNorm
        case .layerNorm: .layerNorm
        case .softmax: .softmax
        case .unary: .unary
        case .binary: .binary
        case .where: .where
        case .reduce: .reduce
        case .averagePool: .averagePool
        case .maxPool: .maxPool
        case .concat: .concat
        case .split: .split
        case .slice: .slice
        case .transpose: .transpose
        case .reshape: .reshape
        case .squeeze: .squeeze
        case .unsqueeze: .unsqueeze
        case .flatten: .flatten
        case .pad: .pad
        case .resize: .resize
        case .gridSample: .gridSample
        case .depthToSpace: .depthToSpace
        case .spaceToDepth: .spaceToDepth
        case .expand: .expand
        case .tile: .tile
        case .gather: .gather
        case .scatterND: .scatterND
        case .gatherElements: .gatherElements
        case .scatterElements: .scatterElements
        case .gatherND: .gatherND
        case .reverseSequence: .reverseSequence
        case .maxUnpool: .maxUnpool
        case .det: .det
        case .shape: .shape
        case .cast: .cast
        case .range: .range
        case .constantOfShape: .constantOfShape
        }
    }

    /// Decodes and checks the attributes of a node of op `kind` named `node`, as the
    /// `.rgraph` reader does for every node it loads.
    public init(kind: OpKind, attributes: [String: Attribute], node: String) throws {
        func decode<A: OpAttributes>(_ type: A.Type) throws -> A { try A(attributes: attributes, node: node) }
        switch kind {
        case .conv: self = .conv(try decode(ConvAttributes.self))
        case .convTranspose: self = .convTranspose(try decode(ConvTransposeAttributes.self))
        case .linear: self = .linear(try decode(LinearAttributes.self))
        case .matMul: self = try .withoutAttributes(.matMul, attributes, node: node)
        case .attention: self = .attention(try decode(AttentionAttributes.self))
        case .windowAttention: self = .windowAttention(try decode(WindowAttentionAttributes.self))
        case .deformableAttention: self = .deformableAttention(try decode(DeformableAttentionAttributes.self))
        case .instanceNorm: self = .instanceNorm(try decode(InstanceNormAttributes.self))
        case .layerNorm: self = .layerNorm(try decode(LayerNormAttributes.self))
        case .softmax: self = .softmax(try decode(SoftmaxAttributes.self))
        case .unary: self = .unary(try decode(UnaryAttributes.self).function)
        case .binary: self = .binary(try decode(BinaryAttributes.self).function)
        case .where: self = try .withoutAttributes(.where, attributes, node: node)
        case .reduce: self = .reduce(try decode(ReduceAttributes.self))
        case .averagePool: self = .averagePool(try decode(PoolAttributes.self))
        case .maxPool: self = .maxPool(try decode(PoolAttributes.self))
        case .concat: self = .concat(try decode(ConcatAttributes.self))
        case .split: self = .split(try decode(SplitAttributes.self))
        case .slice: self = try .withoutAttributes(.slice, attributes, node: node)
        case .transpose: self = .transpose(try decode(TransposeAttributes.self))
        case .reshape: self = .reshape(try decode(ReshapeAttributes.self))
        case .squeeze: self = .squeeze(try decode(SqueezeAttributes.self))
        case .unsqueeze: self = .unsqueeze(try decode(UnsqueezeAttributes.self))
        case .flatten: self = .flatten(try decode(FlattenAttributes.self))
        case .pad: self = .pad(try decode(PadAttributes.self))
        case .resize: self = .resize(try decode(ResizeAttributes.self))
        case .gridSample: self = .gridSample(try decode(GridSampleAttributes.self))
        case .depthToSpace: self = .depthToSpace(try decode(DepthToSpaceAttributes.self))
        case .spaceToDepth: self = .spaceToDepth(try decode(SpaceToDepthAttributes.self))
        case .expand: self = try .withoutAttributes(.expand, attributes, node: node)
        case .tile: self = try .withoutAttributes(.tile, attributes, node: node)
        case .gather: self = .gather(try decode(GatherAttributes.self))
        case .scatterND: self = .scatterND(try decode(ScatterNDAttributes.self))
        case .gatherElements: self = .gatherElements(try decode(GatherAttributes.self))
        case .scatterElements: self = .scatterElements(try decode(ScatterElementsAttributes.self))
        case .gatherND: self = .gatherND(try decode(GatherNDAttributes.self))
        case .reverseSequence: self = .reverseSequence(try decode(ReverseSequenceAttributes.self))
        case .maxUnpool: self = .maxUnpool(try decode(MaxUnpoolAttributes.self))
        case .det: self = try .withoutAttributes(.det, attributes, node: node)
        case .shape: self = .shape(try decode(ShapeAttributes.self))
        case .cast: self = .cast(try decode(CastAttributes.self))
        case .range: self = try .withoutAttributes(.range, attributes, node: node)
        case .constantOfShape: self = .constantOfShape(try decode(ConstantOfShapeAttributes.self))
        }
    }

    /// The node attributes that describe this operation, defaults left out: what the
    /// `.rgraph` writer stores.
    public var attributes: [String: Attribute] {
        switch self {
        case .conv(let a): a.encoded
        case .convTranspose(let a): a.encoded
        case .linear(let a): a.encoded
        case .attention(let a): a.encoded
        case .windowAttention(let a): a.encoded
        case .deformableAttention(let a): a.encoded
        case .instanceNorm(let a): a.encoded
        case .layerNorm(let a): a.encoded
        case .softmax(let a): a.encoded
        case .unary(let function): UnaryAttributes(function: function).encoded
        case .binary(let function): BinaryAttributes(function: function).encoded
        case .reduce(let a): a.encoded
        case .averagePool(let a), .maxPool(let a): a.encoded
        case .concat(let a): a.encoded
        case .split(let a): a.encoded
        case .transpose(let a): a.encoded
        case .reshape(let a): a.encoded
        case .squeeze(let a): a.encoded
        case .unsqueeze(let a): a.encoded
        case .flatten(let a): a.encoded
        case .pad(let a): a.encoded
        case .resize(let a): a.encoded
        case .gridSample(let a): a.encoded
        case .depthToSpace(let a): a.encoded
        case .spaceToDepth(let a): a.encoded
        case .gather(let a), .gatherElements(let a): a.encoded
        case .scatterElements(let a): a.encoded
        case .gatherND(let a): a.encoded
        case .reverseSequence(let a): a.encoded
        case .maxUnpool(let a): a.encoded
        case .scatterND(let a): a.encoded
        case .shape(let a): a.encoded
        case .cast(let a): a.encoded
        case .constantOfShape(let a): a.encoded
        case .matMul, .where, .slice, .expand, .tile, .range, .det: [:]
        }
    }

    /// An op that has no attributes: any attribute on the node is an error.
    private static func withoutAttributes(_ operation: Op, _ attributes: [String: Attribute],
                                          node: String) throws -> Op {
        if let key = attributes.keys.sorted().first { throw GraphError.unknownAttribute(node: node, attribute: key) }
        return operation
    }

    /// The activation fused into a conv, transposed conv or linear (identity when none
    /// is), or nil for ops that fuse none (`OpTraits.fusesActivation`).
    public var fusedActivation: Activation? {
        get {
            switch self {
            case .conv(let a): a.activation
            case .convTranspose(let a): a.activation
            case .linear(let a): a.activation
            case .matMul, .attention, .windowAttention, .deformableAttention, .instanceNorm, .layerNorm, .softmax, .unary, .binary, .where,
                 .reduce, .averagePool, .maxPool, .concat, .split, .slice, .transpose, .reshape, .squeeze, .unsqueeze,
                 .flatten, .pad, .resize, .gridSample, .depthToSpace, .spaceToDepth, .expand, .tile, .gather, .scatterND, .shape,
                 .cast, .range, .constantOfShape, .gatherElements, .scatterElements, .gatherND, .reverseSequence,
                 .maxUnpool, .det: nil
            }
        }
        set {
            guard let newValue else { return }
            switch self {
            case .conv(var a): a.activation = newValue; self = .conv(a)
            case .convTranspose(var a): a.activation = newValue; self = .convTranspose(a)
            case .linear(var a): a.activation = newValue; self = .linear(a)
            case .matMul, .attention, .windowAttention, .deformableAttention, .instanceNorm, .layerNorm, .softmax, .unary, .binary, .where,
                 .reduce, .averagePool, .maxPool, .concat, .split, .slice, .transpose, .reshape, .squeeze, .unsqueeze,
                 .flatten, .pad, .resize, .gridSample, .depthToSpace, .spaceToDepth, .expand, .tile, .gather, .scatterND, .shape,
                 .cast, .range, .constantOfShape, .gatherElements, .scatterElements, .gatherND, .reverseSequence,
                 .maxUnpool, .det: break
            }
        }
    }
}

/// What passes and the planner may assume about an op, kept with the op set instead of
/// in hand-kept lists inside each pass.
public struct OpTraits: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Applies an `Activation` to its result in the kernel (`Op.fusedActivation`).
    public static let fusesActivation = OpTraits(rawValue: 1 << 0)
    /// Adds a same-shaped residual input to its result in the kernel.
    public static let fusesResidual = OpTraits(rawValue: 1 << 1)
    /// Output 0 is input 0's elements under another shape: the planner aliases the buffer.
    public static let isView = OpTraits(rawValue: 1 << 2)
    /// Has a backward rule (reverse-mode gradients): its runtime operator is `Differentiable`.
    public static let hasGradient = OpTraits(rawValue: 1 << 3)
}

extension OpKind {
    public var traits: OpTraits {
        switch self {
        case .conv: [.fusesActivation, .fusesResidual, .hasGradient]
        case .linear: [.fusesActivation, .hasGradient]
        case .convTranspose: [.fusesActivation, .hasGradient]
        case .reshape, .squeeze, .unsqueeze, .flatten: [.isView, .hasGradient]
        case .matMul, .attention, .instanceNorm, .layerNorm, .softmax, .unary, .binary, .reduce, .concat, .split, .slice,
             .transpose, .pad, .resize, .depthToSpace, .spaceToDepth, .expand, .tile, .gather, .averagePool, .maxPool, .windowAttention, .where,
             .cast, .gridSample, .scatterND, .gatherElements, .scatterElements, .gatherND, .reverseSequence,
             .maxUnpool, .deformableAttention: [.hasGradient]
        case .det, .shape, .range, .constantOfShape: []
        }
    }

    /// Every attribute key a node of this op may carry, in documentation order.
    public var attributeKeys: [String] { attributeFields.flatMap(\.keys) }

    /// Every name its string attributes may hold (functions, modes, dtypes).
    public var attributeValueNames: [String] { attributeFields.flatMap(\.valueNames) }

    /// The keys and value names of each attribute field of this op.
    private var attributeFields: [(keys: [String], valueNames: [String])] {
        func fields<A: OpAttributes>(_ type: A.Type) -> [(keys: [String], valueNames: [String])] {
            A.fields.map { ($0.keys, $0.valueNames) }
        }
        return attributesType.map { fields($0) } ?? []
    }

    /// The struct a node of this op stores its attributes as; nil for ops without any.
    public var attributesType: (any OpAttributes.Type)? {
        switch self {
        case .conv: ConvAttributes.self
        case .convTranspose: ConvTransposeAttributes.self
        case .linear: LinearAttributes.self
        case .attention: AttentionAttributes.self
        case .windowAttention: WindowAttentionAttributes.self
        case .deformableAttention: DeformableAttentionAttributes.self
        case .instanceNorm: InstanceNormAttributes.self
        case .layerNorm: LayerNormAttributes.self
        case .softmax: SoftmaxAttributes.self
        case .unary: UnaryAttributes.self
        case .binary: BinaryAttributes.self
        case .reduce: ReduceAttributes.self
        case .averagePool, .maxPool: PoolAttributes.self
        case .concat: ConcatAttributes.self
        case .split: SplitAttributes.self
        case .transpose: TransposeAttributes.self
        case .reshape: ReshapeAttributes.self
        case .squeeze: SqueezeAttributes.self
        case .unsqueeze: UnsqueezeAttributes.self
        case .flatten: FlattenAttributes.self
        case .pad: PadAttributes.self
        case .resize: ResizeAttributes.self
        case .gridSample: GridSampleAttributes.self
        case .depthToSpace: DepthToSpaceAttributes.self
        case .spaceToDepth: SpaceToDepthAttributes.self
        case .gather: GatherAttributes.self
        case .scatterND: ScatterNDAttributes.self
        case .gatherElements: GatherAttributes.self
        case .scatterElements: ScatterElementsAttributes.self
        case .gatherND: GatherNDAttributes.self
        case .reverseSequence: ReverseSequenceAttributes.self
        case .maxUnpool: MaxUnpoolAttributes.self
        case .shape: ShapeAttributes.self
        case .cast: CastAttributes.self
        case .constantOfShape: ConstantOfShapeAttributes.self
        case .matMul, .where, .slice, .expand, .tile, .range, .det: nil
        }
    }


}

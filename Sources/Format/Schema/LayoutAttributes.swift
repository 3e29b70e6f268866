/// `reduce`: the function over `axes` (empty: every axis).
public struct ReduceAttributes: OpAttributes {
    public enum Function: String, NamedAttributeValue { case mean, sum, max, min, prod }

    /// Required.
    public var function = Function.mean
    public var axes: [Int] = []
    public var keepDims = true

    public init() {}
    public init(function: Function, axes: [Int], keepDims: Bool) {
        self.function = function
        self.axes = axes
        self.keepDims = keepDims
    }

    public static let fields: [AttributeField<Self>] = [
        .required("function", \.function),
        AttributeField("axes", \.axes),
        AttributeField("keepDims", \.keepDims),
    ]
}

/// `concat` along `axis` (required).
public struct ConcatAttributes: OpAttributes {
    public var axis = 0

    public init() {}
    public init(axis: Int) { self.axis = axis }

    public static let fields: [AttributeField<Self>] = [.required("axis", \.axis)]
}

/// `split` along `axis` into one part per node output.
public struct SplitAttributes: OpAttributes {
    public var axis = 0
    /// When given, must equal the node's output count (ONNX 18's num_outputs).
    public var numOutputs: Int?

    public init() {}
    public init(axis: Int, numOutputs: Int? = nil) {
        self.axis = axis
        self.numOutputs = numOutputs
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("axis", \.axis),
        AttributeField("numOutputs", \.numOutputs),
    ]
}

/// `transpose` by `perm` (empty: reverse the axes).
public struct TransposeAttributes: OpAttributes {
    public var perm: [Int] = []

    public init() {}
    public init(perm: [Int]) { self.perm = perm }

    public static let fields: [AttributeField<Self>] = [AttributeField("perm", \.perm)]
}

/// `reshape`: a 0 in the target shape copies the input's dim unless `allowZero`.
public struct ReshapeAttributes: OpAttributes {
    public var allowZero = false

    public init() {}
    public init(allowZero: Bool) { self.allowZero = allowZero }

    public static let fields: [AttributeField<Self>] = [AttributeField("allowZero", \.allowZero)]
}

/// `squeeze` the size-1 `axes` (empty: every size-1 axis).
public struct SqueezeAttributes: OpAttributes {
    public var axes: [Int] = []

    public init() {}
    public init(axes: [Int]) { self.axes = axes }

    public static let fields: [AttributeField<Self>] = [AttributeField("axes", \.axes)]
}

/// `unsqueeze`: new size-1 axes at `axes` (positions in the output; required).
public struct UnsqueezeAttributes: OpAttributes {
    public var axes: [Int] = []

    public init() {}
    public init(axes: [Int]) { self.axes = axes }

    public static let fields: [AttributeField<Self>] = [.required("axes", \.axes)]
}

/// `flatten` to 2-D: axes before `axis` form the rows.
public struct FlattenAttributes: OpAttributes {
    public var axis = 1

    public init() {}
    public init(axis: Int) { self.axis = axis }

    public static let fields: [AttributeField<Self>] = [AttributeField("axis", \.axis)]
}

/// `pad`: what the padded border holds.
public struct PadAttributes: OpAttributes {
    public enum Mode: String, NamedAttributeValue { case constant, reflect, edge }

    public var mode = Mode.constant

    public init() {}
    public init(mode: Mode) { self.mode = mode }

    public static let fields: [AttributeField<Self>] = [AttributeField("mode", \.mode)]
}

/// `resize`: interpolation of the last two axes, per ONNX Resize.
public struct ResizeAttributes: OpAttributes {
    public enum Mode: String, NamedAttributeValue { case nearest, linear, cubic }

    /// How an output coordinate maps back to an input coordinate (ONNX names).
    public enum CoordinateTransformation: String, NamedAttributeValue {
        case halfPixel = "half_pixel"
        case halfPixelSymmetric = "half_pixel_symmetric"
        case pytorchHalfPixel = "pytorch_half_pixel"
        case alignCorners = "align_corners"
        case asymmetric
        case tfHalfPixelForNearest = "tf_half_pixel_for_nearest"
        /// Samples `regionOfInterest` of the input: x_original = start·(in − 1) + x·(end −
        /// start)·(in − 1)/(out − 1) (the region's centre when out = 1); a sample outside
        /// [0, in − 1] gives `extrapolationValue`.
        case tfCropAndResize = "tf_crop_and_resize"
    }

    /// How `nearest` rounds a fractional input coordinate.
    public enum NearestMode: String, NamedAttributeValue {
        case roundPreferFloor = "round_prefer_floor"
        case roundPreferCeil = "round_prefer_ceil"
        case floor, ceil
    }

    /// With sizes: stretch each axis to its size, or scale the resized axes by one
    /// factor, the largest that fits within every size (not_larger) or the smallest that
    /// covers every size (not_smaller); each such axis is then round(in · factor) long.
    public enum KeepAspectRatioPolicy: String, NamedAttributeValue {
        case stretch
        case notLarger = "not_larger"
        case notSmaller = "not_smaller"
    }

    public var mode = Mode.nearest
    public var coordinateTransformationMode = CoordinateTransformation.halfPixel
    public var nearestMode = NearestMode.roundPreferFloor
    /// The cubic kernel's A.
    public var cubicCoeffA: Float = -0.75
    /// Cubic weights of samples outside the input are set to 0 and the rest renormalised.
    public var excludeOutside = false
    public var keepAspectRatioPolicy = KeepAspectRatioPolicy.stretch
    /// Linear and cubic downsampling widen the filter by 1/scale (ONNX Resize 18's antialias).
    public var antialias = false
    /// tf_crop_and_resize's region of the last two axes, as fractions of the input:
    /// [start H, start W, end H, end W] (empty for the other modes).
    public var regionOfInterest: [Float] = []
    /// tf_crop_and_resize's output where a sample falls outside the input.
    public var extrapolationValue: Float = 0

    public init() {}

    public func validate(node: String) throws {
        let cropping = coordinateTransformationMode == .tfCropAndResize
        try GraphError.check(regionOfInterest.count == (cropping ? 4 : 0) && regionOfInterest.allSatisfy(\.isFinite),
                             node: node, attribute: "regionOfInterest",
                             expected: cropping ? "4 finite values [start H, start W, end H, end W]"
                                 : "none (only tf_crop_and_resize reads a region)",
                             found: "\(regionOfInterest)")
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("mode", \.mode),
        AttributeField("coordinateTransformationMode", \.coordinateTransformationMode),
        AttributeField("nearestMode", \.nearestMode),
        AttributeField("cubicCoeffA", \.cubicCoeffA),
        AttributeField("excludeOutside", \.excludeOutside),
        AttributeField("keepAspectRatioPolicy", \.keepAspectRatioPolicy),
        AttributeField("antialias", \.antialias),
        AttributeField("regionOfInterest", \.regionOfInterest),
        AttributeField("extrapolationValue", \.extrapolationValue),
    ]
}

/// `gridSample`: how X is sampled at the grid's points (ONNX GridSample).
public struct GridSampleAttributes: OpAttributes {
    /// Interpolation: (tri)linear (ONNX 16's "bilinear", 20's "linear"), the nearest
    /// pixel, rounding halves to even, or bicubic (Keys' kernel with A = −0.75; 4-D only;
    /// ONNX 16's "bicubic", 20's "cubic").
    public enum Mode: String, NamedAttributeValue { case linear, nearest, cubic }

    /// What a sample outside the input reads.
    public enum PaddingMode: String, NamedAttributeValue {
        /// Zero.
        case zeros
        /// The nearest border pixel.
        case border
        /// The input mirrored at its border (repeatedly, for points far outside).
        case reflection
    }

    public var mode = Mode.linear
    public var paddingMode = PaddingMode.zeros
    /// −1 and 1 are the centres of the corner pixels (true) or their outer edges (false).
    public var alignCorners = false

    public init() {}
    public init(mode: Mode, paddingMode: PaddingMode, alignCorners: Bool) {
        self.mode = mode
        self.paddingMode = paddingMode
        self.alignCorners = alignCorners
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("mode", \.mode),
        AttributeField("paddingMode", \.paddingMode),
        AttributeField("alignCorners", \.alignCorners),
    ]
}

/// `depthToSpace`: blocks of `blockSize`² channels become blockSize × blockSize pixels.
public struct DepthToSpaceAttributes: OpAttributes {
    /// Depth-column-row (DCR, the default) or column-row-depth (CRD) channel order.
    public enum Mode: String, NamedAttributeValue {
        case depthColumnRow = "DCR"
        case columnRowDepth = "CRD"
    }

    /// ≥ 1. Required.
    public var blockSize = 1
    public var mode = Mode.depthColumnRow

    public init() {}
    public init(blockSize: Int, mode: Mode) {
        self.blockSize = blockSize
        self.mode = mode
    }

    public static let fields: [AttributeField<Self>] = [
        .required("blockSize", \.blockSize),
        AttributeField("mode", \.mode),
    ]

    public func validate(node: String) throws {
        try GraphError.check(blockSize >= 1, node: node, attribute: "blockSize", expected: "an int >= 1", found: String(blockSize))
    }
}

/// `spaceToDepth`: blockSize × blockSize pixels become blockSize² channels, ordered as
/// the depthToSpace of the same mode reads them.
public struct SpaceToDepthAttributes: OpAttributes {
    /// ≥ 1. Required.
    public var blockSize = 1
    public var mode = DepthToSpaceAttributes.Mode.depthColumnRow

    public init() {}
    public init(blockSize: Int, mode: DepthToSpaceAttributes.Mode = .depthColumnRow) {
        self.blockSize = blockSize
        self.mode = mode
    }

    public static let fields: [AttributeField<Self>] = [
        .required("blockSize", \.blockSize),
        AttributeField("mode", \.mode),
    ]

    public func validate(node: String) throws {
        try GraphError.check(blockSize >= 1, node: node, attribute: "blockSize", expected: "an int >= 1", found: String(blockSize))
    }
}

/// `gather` along `axis`.
public struct GatherAttributes: OpAttributes {
    public var axis = 0

    public init() {}
    public init(axis: Int) { self.axis = axis }

    public static let fields: [AttributeField<Self>] = [AttributeField("axis", \.axis)]
}

/// `scatterND`: how an update combines with the slice it lands on.
public struct ScatterNDAttributes: OpAttributes {
    public enum Reduction: String, NamedAttributeValue { case none, add, mul, max, min }

    public var reduction = Reduction.none

    public init() {}
    public init(reduction: Reduction) { self.reduction = reduction }

    public static let fields: [AttributeField<Self>] = [AttributeField("reduction", \.reduction)]
}

/// `scatterElements`: the axis its indices address, and how an update combines with the
/// element it lands on.
public struct ScatterElementsAttributes: OpAttributes {
    public var axis = 0
    public var reduction = ScatterNDAttributes.Reduction.none

    public init() {}
    public init(axis: Int, reduction: ScatterNDAttributes.Reduction) {
        self.axis = axis
        self.reduction = reduction
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("axis", \.axis),
        AttributeField("reduction", \.reduction),
    ]
}

/// `gatherND`: how many leading axes data and indices share as batch axes.
public struct GatherNDAttributes: OpAttributes {
    /// ≥ 0.
    public var batchDims = 0

    public init() {}
    public init(batchDims: Int) { self.batchDims = batchDims }

    public static let fields: [AttributeField<Self>] = [AttributeField("batchDims", \.batchDims)]

    public func validate(node: String) throws {
        try GraphError.check(batchDims >= 0, node: node, attribute: "batchDims", expected: "an int >= 0", found: String(batchDims))
    }
}

/// `reverseSequence`: which axis holds the batch and which the time steps (0 and 1, in
/// either order, as ONNX allows).
public struct ReverseSequenceAttributes: OpAttributes {
    public var batchAxis = 1
    public var timeAxis = 0

    public init() {}
    public init(batchAxis: Int, timeAxis: Int) {
        self.batchAxis = batchAxis
        self.timeAxis = timeAxis
    }

    public static let fields: [AttributeField<Self>] = [
        AttributeField("batchAxis", \.batchAxis),
        AttributeField("timeAxis", \.timeAxis),
    ]

    public func validate(node: String) throws {
        try GraphError.check(Set([batchAxis, timeAxis]) == [0, 1], node: node, attribute: "batchAxis",
                             expected: "batchAxis and timeAxis 0 and 1 in either order", found: "\(batchAxis), \(timeAxis)")
    }
}

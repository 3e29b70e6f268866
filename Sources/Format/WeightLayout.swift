/// How a constant's stored bytes encode its values (schemas/rgraph.md §4, TENSOR
/// `quantization`). Each new way of storing weights is a case here, read by the reader,
/// written by the writer and turned into what kernels use in one place each, rather than a
/// new path through the program.
public enum WeightLayout: Hashable, Sendable, CustomStringConvertible {
    /// Plain elements of the constant's dtype in row-major order: f32 (used in place from
    /// the mapping), f16 and bf16 (widened to f32 when a model loads), and the integer
    /// types of shape arithmetic. Every constant of a version 1.0 file.
    case elements
    /// Signed 8-bit values `q` (dtype `i8`) with f32 scales stored as another constant:
    /// value = scale × q, symmetric (no zero point). Since version 1.1.
    case int8Symmetric(Int8Scales)
    /// Values already arranged for one kernel (`PackedLayout`): f32 floats of shape
    /// [count], stored beside the plain constant they were made from (`PackedConstant`,
    /// since version 1.2), never an input of a node.
    case packed(PackedLayout)

    public var description: String {
        switch self {
        case .elements: "plain elements"
        case .int8Symmetric(let scales): "int8 symmetric, \(scales)"
        case .packed(let layout): "packed \(layout)"
        }
    }

    /// Checks that `constant`, stored in this layout, can be read: for int8, its dtype is i8
    /// and its scales are a constant found by `lookup`, plain f32, finite, one per index of
    /// the named axis (or one for the whole tensor). A packed layout is not a graph
    /// constant's: packed values are `PackedConstant`s, checked against their source there.
    public func validate(_ constant: ConstantTensor,
                         scales lookup: (String) -> ConstantTensor?) throws(WeightLayoutError) {
        switch self {
        case .elements:
            return
        case .packed:
            throw .invalid("packed values are not a constant of the graph; they need a source constant")
        case .int8Symmetric(let quantization):
            _ = try quantization.checkedScales(for: constant, lookup: lookup)
        }
    }
}

/// Where the scales of an int8 constant are and what they scale.
public struct Int8Scales: Hashable, Sendable, CustomStringConvertible {
    /// The f32 constant holding the scales.
    public var tensor: String
    /// The axis whose every index has its own scale (0, the output channels of conv and
    /// linear weights); nil for one scale for the whole tensor.
    public var axis: Int?

    public init(tensor: String, axis: Int?) {
        self.tensor = tensor
        self.axis = axis
    }

    public var description: String {
        axis.map { "scales '\(tensor)' per index of axis \($0)" } ?? "one scale '\(tensor)'"
    }

    /// `values` of `shape` quantized symmetrically to int8: per index of `axis` (or over all
    /// values when nil) scale = max |value| / 127 and q = round(value / scale), so that every
    /// q lies in [-127, 127] and the largest magnitude is exact. Returns the i8 constant,
    /// whose layout names the scales, and the f32 scales constant `scalesName`; both must
    /// go into the graph.
    public static func quantize(name: String, shape: [Int], values: [Float], axis: Int?,
                                scalesName: String) -> (weights: ConstantTensor, scales: ConstantTensor) {
        precondition(values.count == shape.reduce(1, *), "constant \(name): \(values.count) values for shape \(shape)")
        precondition(axis.map { $0 >= 0 && $0 < shape.count } ?? true, "axis \(axis ?? 0) outside shape \(shape)")
        let channels = axis.map { shape[$0] } ?? 1
        let inner = axis.map { shape[($0 + 1)...].reduce(1, *) } ?? values.count
        var maxima = [Float](repeating: 0, count: channels)
        for (index, value) in values.enumerated() {
            let channel = (index / Swift.max(inner, 1)) % channels
            maxima[channel] = Swift.max(maxima[channel], Swift.abs(value))
        }
        let scales = maxima.map { $0 / 127 }
        let quantized = values.enumerated().map { index, value -> Int8 in
            let scale = scales[(index / Swift.max(inner, 1)) % channels]
            return scale > 0 ? Int8(Swift.max(-127, Swift.min(127, (value / scale).rounded()))) : 0
        }
        let storage = quantized.withUnsafeBytes { ByteStorage(copying: $0) }
        var weights = ConstantTensor(name: name, dtype: .int8, shape: shape, storage: storage)
        weights.layout = .int8Symmetric(Int8Scales(tensor: scalesName, axis: axis))
        let scalesShape = axis == nil ? [] : [channels]
        return (weights, ConstantTensor(name: scalesName, shape: scalesShape, floats: scales))
    }

    /// The scales of `constant` found by `lookup`, after checking that they fit it.
    public func checkedScales(for constant: ConstantTensor,
                       lookup: (String) -> ConstantTensor?) throws(WeightLayoutError) -> ConstantTensor {
        guard constant.dtype == .int8 else {
            throw .invalid("int8 quantization needs dtype i8, the tensor is \(constant.dtype.rawValue)")
        }
        guard let scales = lookup(tensor) else { throw .invalid("its scale tensor '\(tensor)' does not exist") }
        guard scales.dtype == .float32, scales.layout == .elements else {
            throw .invalid("its scale tensor '\(tensor)' is \(scales.dtype.rawValue) (\(scales.layout)), not plain f32")
        }
        if let axis {
            guard axis >= 0, axis < constant.shape.count else {
                throw .invalid("scale axis \(axis) is outside its shape \(constant.shape)")
            }
            guard scales.shape == [constant.shape[axis]] else {
                throw .invalid("its scale tensor '\(tensor)' has shape \(scales.shape), "
                               + "axis \(axis) needs [\(constant.shape[axis])]")
            }
        } else {
            guard scales.elementCount == 1, scales.shape.count <= 1 else {
                throw .invalid("its scale tensor '\(tensor)' has shape \(scales.shape), "
                               + "a per-tensor scale needs [] or [1]")
            }
        }
        if let bad = scales.float32Elements.first(where: { !$0.isFinite }) {
            throw .invalid("its scale tensor '\(tensor)' holds \(bad)")
        }
        return scales
    }

    /// The values of `weights` (i8, this layout) given its checked `scales`: scale × q.
    func dequantize(_ weights: ConstantTensor, scales: ConstantTensor) -> [Float] {
        let factors = scales.float32Elements
        let channels = axis.map { weights.shape[$0] } ?? 1
        let inner = axis.map { weights.shape[($0 + 1)...].reduce(1, *) } ?? weights.elementCount
        return weights.bytes.bindMemory(to: Int8.self).enumerated().map { index, q in
            factors[(index / Swift.max(inner, 1)) % channels] * Float(q)
        }
    }
}

/// Weights arranged for one kernel, as kernels prepare them once per model and as a file
/// stores them (`PackedConstant`, `convert --prepare`). The arrangement, the CPU it needs
/// and its version are the layout's identity: a kernel uses such bytes only if all three
/// are what it expects.
public enum PackedLayout: Hashable, Sendable, CustomStringConvertible {
    /// Winograd F(4×4, 3×3) transformed filters U = G·g·Gᵀ of a 3×3 convolution's weight
    /// [K, C, 3, 3]: 36 points × K × C floats, point-major. Portable code reads them.
    case winogradF4x3
    /// GEMM's B operand (a linear weight's Wᵀ) in panels of `width` columns, zero padded
    /// to whole panels, for the kernel of `cpu` (Sources/CKernels/gemm_avx512.c).
    case gemmPanels(width: Int, cpu: CPULevel)

    /// Version of the arrangement; bumps whenever the kernel expects other bytes, so that
    /// packed weights from an older Restore are refused instead of misread.
    public var version: Int {
        switch self {
        case .winogradF4x3, .gemmPanels: 1
        }
    }

    /// The least CPU whose kernel reads this arrangement.
    public var cpu: CPULevel {
        switch self {
        case .winogradF4x3: .portable
        case .gemmPanels(_, let cpu): cpu
        }
    }

    public var description: String {
        switch self {
        case .winogradF4x3: "winograd-f4x3 v\(version)"
        case .gemmPanels(let width, let cpu): "gemm-panels width \(width) for \(cpu.rawValue) v\(version)"
        }
    }

    /// Floats of this arrangement made from a plain constant of shape `source`, or nil when
    /// the arrangement cannot be made from that shape: Winograd needs a 3×3 filter bank
    /// [K, C, 3, 3] (36 × K × C floats), GEMM panels a matrix [N, K] (K × N rounded up to
    /// whole panels of `width`) and a positive width. Nil too when the count overflows.
    public func floatCount(source shape: [Int]) -> Int? {
        switch self {
        case .winogradF4x3:
            guard shape.count == 4, shape[2] == 3, shape[3] == 3 else { return nil }
            return Self.product([Self.winogradPoints, shape[0], shape[1]])
        case .gemmPanels(let width, _):
            guard shape.count == 2, width > 0 else { return nil }
            let panels = shape[0] / width + (shape[0] % width == 0 ? 0 : 1)
            return Self.product([panels, width, shape[1]])
        }
    }

    /// Transform points of Winograd F(4×4, 3×3): one 6×6 tile.
    static let winogradPoints = 36

    private static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for factor in factors {
            guard factor >= 0 else { return nil }
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            guard !overflow else { return nil }
            result = next
        }
        return result
    }
}

/// CPU feature levels that kernels, and weights packed for them, are written for, in
/// order: a CPU of one level runs the kernels of the levels below it.
public enum CPULevel: String, Hashable, Sendable, CaseIterable, Comparable {
    /// Any CPU Restore runs on (x86-64's baseline, SSE2).
    case portable
    /// x86-64 with AVX2 and FMA.
    case avx2
    /// x86-64 with AVX-512F (and AVX2 and FMA).
    case avx512

    public static func < (lhs: CPULevel, rhs: CPULevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// The environment variable that forces a lower level than the CPU's (to measure or
    /// test the AVX2 path on an AVX-512 machine): the runtime's kernels
    /// (`CPUFeatures.level`) and the file checksum (`RGraphChecksum`) both follow it.
    public static let environmentVariable = "RESTORE_CPU"

    /// The level `RESTORE_CPU` names (generic, portable, avx2, avx512), nil for any other text.
    public init?(named text: String) {
        switch text.lowercased() {
        case "generic", "portable": self = .portable
        case "avx2": self = .avx2
        case "avx512": self = .avx512
        default: return nil
        }
    }
}

/// Why a constant cannot be read in its `WeightLayout`.
public enum WeightLayoutError: Error, Equatable, CustomStringConvertible {
    /// The layout does not fit the constant or its scales.
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let detail): detail
        }
    }
}

extension Graph {
    /// The values of a float constant as f32, whatever its layout: f16/bf16 widened, int8
    /// scaled by its scales. Throws when the layout does not fit (`WeightLayout.validate`).
    public func floatValues(of constant: ConstantTensor) throws(WeightLayoutError) -> [Float] {
        switch constant.layout {
        case .elements:
            return constant.floatValues()
        case .int8Symmetric(let quantization):
            let scales = try quantization.checkedScales(for: constant) { constants[$0] }
            return quantization.dequantize(constant, scales: scales)
        case .packed:
            throw .invalid("packed values are read by kernels, not as the values of \(constant.name)")
        }
    }
}

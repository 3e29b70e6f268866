import Format

/// A node's constant inputs while its kernel is made, and the model's store of weights
/// prepared from them (design: weights are used in place from the mmap; what a kernel
/// derives from them is made once per model and shared by every plan and session).
public struct ConstantInputs {
    /// Per input: the constant as the kernel may read it, nil for other inputs.
    public let weights: [ConstantWeight?]
    let store: PreparedWeightStore?
    /// Where the planner learns which constants kernels prepared weights from and which
    /// packed values of the file they used in place instead.
    let reads: ConstantReads?

    /// No constant inputs (kernels made outside a planner, as in tests).
    public static let none = ConstantInputs(weights: [], store: nil)

    init(weights: [ConstantWeight?], store: PreparedWeightStore?, reads: ConstantReads? = nil) {
        self.weights = weights
        self.store = store
        self.reads = reads
    }

    /// Input `index` if it is a constant.
    public func weight(_ index: Int) -> ConstantWeight? {
        index < weights.count ? weights[index] : nil
    }

    /// `count` floats arranged as `form` from constant input `index` by `fill` (which reads
    /// the input's floats and writes the arranged ones), made on the first request for this
    /// input, form and generation of the constant and kept while the model lives and the
    /// constant is not replaced; nil when the input is not a constant or the model's
    /// prepared weights would exceed their budget (`PreparedWeightStore.budgetBytes`), and
    /// the kernel must then do without.
    /// An int8 weight's values are dequantized for `fill` into a temporary copy.
    public func prepared(_ index: Int, as form: PackedLayout, count: Int,
                         fill: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> PreparedWeights? {
        guard let weight = weight(index), let store,
              let prepared = store.prepared(from: weight, as: .packed(form), count: count, fill: { arranged in
                  weight.withFloats { fill($0, arranged) }
              }) else { return nil }
        if let fileTensor = prepared.fileTensor {
            reads?.packedInPlace[weight.name] = fileTensor
        } else {
            reads?.preparedFrom.insert(weight.name)
        }
        return prepared
    }

    /// Constant input `index` packed for `Int8GEMM` as a matrix [n, k] (n = shape[0], k the
    /// product of the other dimensions), when it is stored int8 and k is within
    /// `Int8GEMM.maximumDepth`; made once per model as `prepared` is. Nil otherwise (the
    /// kernel then reads the weight as f32).
    public func int8Weights(_ index: Int) -> Int8Weights? {
        guard let weight = weight(index), weight.dtype == .int8, let scales = weight.scales, let store,
              let n = weight.shape.first else { return nil }
        let k = weight.shape.dropFirst().reduce(1, *)
        guard k <= Int8GEMM.maximumDepth else { return nil }
        let floats = (Int8GEMM.packedBytes(k: k, n: n) + 3) / 4
        guard let packed = store.prepared(from: weight, as: .int8Panels, count: floats, fill: { panels in
            Int8GEMM.pack(k: k, n: n, w: weight.elements.assumingMemoryBound(to: Int8.self), into: panels)
        }) else { return nil }
        reads?.preparedFrom.insert(weight.name)
        return Int8Weights(packed: UnsafeRawPointer(packed.pointer), scales: scales, n: n, k: k)
    }
}

/// What the kernels of one plan took from the model's constants while they were made, so
/// that the planner verifies what they read (`Model.verifyConstants`) and lets go of the
/// pages of weights read only to prepare others.
final class ConstantReads {
    /// Constants kernels prepared weights from (for this plan or an earlier one).
    var preparedFrom: Set<String> = []
    /// Constants whose packed values from the file kernels used in place instead of
    /// reading them, with the name of those values' tensor.
    var packedInPlace: [String: String] = [:]
}

/// A constant input as a kernel sees it: which constant and which generation of its values,
/// how its bytes are laid out, its shape and where its elements are. Valid while the model
/// lives and the constant is not replaced.
public struct ConstantWeight: @unchecked Sendable {
    public let name: String
    /// Bumps each time the model's values of this constant are replaced
    /// (`Model.replaceConstant`); prepared weights are kept per generation.
    public let generation: Int
    public let shape: [Int]
    public let dtype: DType
    public let layout: WeightLayout
    public let elements: UnsafeRawPointer
    /// For an int8 weight: one scale per index of axis 0 (per output channel), a per-tensor
    /// scale repeated; nil otherwise.
    public let scales: UnsafePointer<Float>?

    public init(name: String, generation: Int, shape: [Int], dtype: DType, layout: WeightLayout,
                elements: UnsafeRawPointer, scales: UnsafePointer<Float>? = nil) {
        self.name = name
        self.generation = generation
        self.shape = shape
        self.dtype = dtype
        self.layout = layout
        self.elements = elements
        self.scales = scales
    }

    /// Plain f32 elements: what a model gives kernels today, every float constant having
    /// been widened or dequantized when it loaded.
    public init(name: String, generation: Int = 0, shape: [Int], floats: UnsafePointer<Float>) {
        self.init(name: name, generation: generation, shape: shape, dtype: .float32, layout: .elements,
                  elements: UnsafeRawPointer(floats))
    }

    /// Calls `body` with the values as f32: the elements in place, or an int8 weight's
    /// dequantized into a temporary copy (scale × q, as `Int8Scales.dequantize`).
    public func withFloats<Result>(_ body: (UnsafePointer<Float>) -> Result) -> Result {
        guard dtype == .int8, let scales else { return body(floats) }
        let count = shape.reduce(1, *), channels = shape.first ?? 1
        let inner = channels == 0 ? 0 : count / channels
        let q = elements.assumingMemoryBound(to: Int8.self)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(count, 1)) { values in
            for index in 0..<count { values[index] = scales[index / inner] * Float(q[index]) }
            guard let floats = values.baseAddress else { preconditionFailure("a temporary of at least one float has an address") }
            return body(UnsafePointer(floats))
        }
    }

    /// The f32 elements; only for a weight of plain f32 elements.
    public var floats: UnsafePointer<Float> {
        precondition(dtype == .float32 && layout == .elements, "\(name) is \(dtype.rawValue), \(layout), not plain f32")
        return elements.assumingMemoryBound(to: Float.self)
    }
}

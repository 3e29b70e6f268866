import Format

/// A node's constant inputs while its kernel is made, and the model's store of weights
/// prepared from them (design: weights are used in place from the mmap; what a kernel
/// derives from them is made once per model and shared by every plan and session).
public struct ConstantInputs {
    /// Per input: the constant as the kernel may read it, nil for other inputs.
    public let weights: [ConstantWeight?]
    let store: PreparedWeightStore?
    /// Called with a constant's name once weights were prepared from it: its bytes in the
    /// mapped file may leave resident memory until something reads them again.
    let sourceRead: (String) -> Void

    /// No constant inputs (kernels made outside a planner, as in tests).
    public static let none = ConstantInputs(weights: [], store: nil)

    init(weights: [ConstantWeight?], store: PreparedWeightStore?, sourceRead: @escaping (String) -> Void = { _ in }) {
        self.weights = weights
        self.store = store
        self.sourceRead = sourceRead
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
    public func prepared(_ index: Int, as form: PackedLayout, count: Int,
                         fill: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> PreparedWeights? {
        guard let weight = weight(index), let store,
              let prepared = store.prepared(from: weight, as: form, count: count, fill: fill) else { return nil }
        sourceRead(weight.name)
        return prepared
    }
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

    public init(name: String, generation: Int, shape: [Int], dtype: DType, layout: WeightLayout,
                elements: UnsafeRawPointer) {
        self.name = name
        self.generation = generation
        self.shape = shape
        self.dtype = dtype
        self.layout = layout
        self.elements = elements
    }

    /// Plain f32 elements: what a model gives kernels today, every float constant having
    /// been widened or dequantized when it loaded.
    public init(name: String, generation: Int = 0, shape: [Int], floats: UnsafePointer<Float>) {
        self.init(name: name, generation: generation, shape: shape, dtype: .float32, layout: .elements,
                  elements: UnsafeRawPointer(floats))
    }

    /// The f32 elements; only for a weight of plain f32 elements.
    public var floats: UnsafePointer<Float> {
        precondition(dtype == .float32 && layout == .elements, "\(name) is \(dtype.rawValue), \(layout), not plain f32")
        return elements.assumingMemoryBound(to: Float.self)
    }
}

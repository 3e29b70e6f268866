/// A constant's values already arranged for one kernel (Winograd-domain filters, GEMM
/// panels), stored in the file beside the constant so that a model needs no preparation
/// when it loads (schemas/rgraph.md §4, `packed`, since version 1.2; `convert --prepare`).
///
/// The source constant stays in the graph: kernels of another CPU level or version, and
/// kernels that do not use this arrangement at some input size, read it instead.
public struct PackedConstant: Sendable {
    /// The plain f32 constant these values were made from (a node's weight input).
    public var source: String
    public var layout: PackedLayout
    /// The packed floats: dtype f32, shape [count], layout `.packed(layout)`.
    public var tensor: ConstantTensor

    /// Packed values of `source` in `layout`, held by `tensor` (which gets the layout).
    public init(source: String, layout: PackedLayout, tensor: ConstantTensor) {
        self.source = source
        self.layout = layout
        self.tensor = tensor
        self.tensor.layout = .packed(layout)
    }

    /// The name a writer gives the packed values of `source` in `layout`.
    public static func name(source: String, layout: PackedLayout) -> String {
        switch layout {
        case .winogradF4x3: "\(source)@winograd-f4x3.v\(layout.version)"
        case .gemmPanels(let width, let cpu): "\(source)@gemm-panels\(width).\(cpu.rawValue).v\(layout.version)"
        }
    }

    /// Checks the values against their source (found by `lookup`): the source exists and is
    /// plain f32, the values are f32 of shape [n] with n what the layout makes of the
    /// source's shape. Returns why not.
    public func validate(source lookup: (String) -> ConstantTensor?) throws(WeightLayoutError) {
        guard let constant = lookup(source) else {
            throw .invalid("its source constant '\(source)' does not exist")
        }
        guard constant.dtype == .float32, constant.layout == .elements else {
            throw .invalid("its source '\(source)' is \(constant.dtype.rawValue) (\(constant.layout)), not plain f32")
        }
        guard let count = layout.floatCount(source: constant.shape) else {
            throw .invalid("\(layout) cannot be made from '\(source)' of shape \(constant.shape)")
        }
        guard tensor.dtype == .float32, tensor.shape == [count] else {
            throw .invalid("\(layout) of '\(source)' \(constant.shape) is f32 of shape [\(count)], "
                           + "found \(tensor.dtype.rawValue) \(tensor.shape)")
        }
    }
}

/// Packed values a file holds that this version of Restore cannot use: made for a kernel,
/// CPU level or kernel version it does not have. Kernels prepare from the source instead.
public struct ForeignPackedConstant: Sendable, Hashable, CustomStringConvertible {
    /// The tensor's name in the file, its source constant and what it was made for.
    public var name: String
    public var source: String
    public var madeFor: String

    public init(name: String, source: String, madeFor: String) {
        self.name = name
        self.source = source
        self.madeFor = madeFor
    }

    public var description: String { "'\(name)' (of '\(source)', \(madeFor))" }
}

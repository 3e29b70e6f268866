import Format
import Runtime

/// Which weights `convert --prepare` stores already arranged for kernels (Winograd-domain
/// filters, GEMM panels), so that `rrun` maps them instead of preparing them at every load.
///
/// The arranged values are made by planning the model with Restore's own kernels, exactly
/// as `rrun` would at load, so a prepared file gives bit-identical outputs. Which kernels
/// a plan chooses depends on the CPU (GEMM panels are for AVX-512's kernel) and on the input
/// size (Winograd needs enough output tiles), so values are prepared for this machine's
/// CPU and at `PreparationShapes`. A file whose values were made for another CPU or kernel
/// version still runs: those kernels prepare from the plain weights, kept beside them.
public enum WeightPreparation: Equatable, Sendable {
    /// Nothing prepared: the smallest file, readable by Restore before format 1.2.
    case none
    /// Only arrangements every CPU's kernels read (Winograd-domain filters).
    case portable
    /// Everything this machine's kernels use.
    case native
    /// `native` when the weights are stored as f32, else `none` (prepared values are f32,
    /// which would undo f16, bf16 or int8 storage): `convert`'s default. Preparing at load
    /// was most of the CPU time of loading and planning a large model (Swin-T + UperNet:
    /// 0.65 s of 0.65 s plain, BENCHMARKS.md), so files are made ready unless asked not to.
    case automatic

    /// Parses `auto`, `none`, `portable` or `native`.
    public init(_ text: String) throws(ConversionError) {
        switch text {
        case "auto": self = .automatic
        case "none": self = .none
        case "portable": self = .portable
        case "native": self = .native
        default: throw .unknownPreparation(text)
        }
    }

    /// What is prepared when the weights are stored as `weights` (nil: as imported, f32).
    func resolved(storing weights: ConversionOptions.WeightType?) -> WeightPreparation {
        guard self == .automatic else { return self }
        return weights == nil || weights == .f32 ? .native : .none
    }

    /// Whether values in `layout` are kept.
    func keeps(_ layout: PackedLayout) -> Bool {
        switch self {
        case .none: false
        case .portable: layout.cpu == .portable
        case .native, .automatic: true
        }
    }
}

extension Conversion {
    /// Adds to `graph` the values its kernels prepare when planned at `shapes` (one list of
    /// input shapes per size) on this machine, those `preparation` keeps. Returns how many
    /// tensors and bytes were added.
    static func prepareWeights(_ graph: inout Graph, _ preparation: WeightPreparation,
                               shapes: [[[Int]]]) throws -> (count: Int, bytes: Int) {
        guard preparation != .none else { return (0, 0) }
        let session = Session(model: try Model(graph: graph), threads: 1)
        for inputShapes in shapes { _ = try session.plan(for: inputShapes) }
        let packed = session.model.preparedWeightsAsConstants().filter { preparation.keeps($0.layout) }
        graph.packedConstants = packed
        return (packed.count, packed.reduce(0) { $0 + $1.tensor.byteCount })
    }

    /// `prepareWeights` as `convert --prepare auto` runs it: when the model cannot be
    /// planned at `shapes` (a shape only its real inputs decide), the graph stays unprepared
    /// and the reason comes back instead of an error, as before preparing was the default.
    static func prepareWeightsIfPlannable(_ graph: inout Graph, _ preparation: WeightPreparation,
                                          shapes: [[[Int]]]) -> (count: Int, bytes: Int, failure: String?) {
        do {
            let prepared = try prepareWeights(&graph, preparation, shapes: shapes)
            return (prepared.count, prepared.bytes, nil)
        } catch {
            return (0, 0, "\(error)")
        }
    }

    /// The input shapes `convert --prepare` plans at: fixed dimensions as they are; H and W
    /// (the symbols of an image input) at the model's tile size, else `defaultSide`,
    /// rounded up to `multiple`; batch 1.
    static func preparationShapes(_ graph: Graph, contract: RestorationContract.Settings,
                                  defaultSide: Int = 512) -> [[[Int]]] {
        let step = max(1, contract.resolvedMultiple)
        let side = ((contract.tile ?? 0) > 0 ? contract.tile ?? defaultSide : defaultSide)
        let rounded = (side + step - 1) / step * step
        return [graph.inputs.map { info in
            info.shape.enumerated().map { axis, dim in
                switch dim {
                case .fixed(let size): size
                case .symbol: axis == 0 ? 1 : rounded
                }
            }
        }]
    }
}

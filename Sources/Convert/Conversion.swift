import Foundation
import Format
import Runtime

/// What `convert` is asked to do besides importing: the restoration contract
/// (design.md §4) and the stored weight type.
public struct ConversionOptions: Sendable {
    public enum WeightType: String, Sendable, CaseIterable {
        case f32, f16, bf16
    }

    /// Heads `convert --head` attaches (design.md §4).
    public enum Head: String, Sendable, CaseIterable {
        /// A three-channel restoration head (`RGBHead`).
        case rgb
    }

    public var head: Head?
    /// How the rgb head makes an N-class classifier emit 3 channels; required when N ≠ 3.
    public var headInitialisation: HeadInitialisation?
    public var task: String?
    public var range: String?
    public var mean: [Float]?
    public var std: [Float]?
    public var residual = false
    public var scale: Int?
    public var multiple: Int?
    public var tile: Int?
    public var overlap: Int?
    public var weights: WeightType = .f32

    public init() {}

    /// The `restore.*` metadata these options set.
    var metadata: [String: String] {
        var result: [String: String] = [:]
        func list(_ values: [Float]) -> String { values.map { String($0) }.joined(separator: ",") }
        result["restore.task"] = task
        result["restore.range"] = range
        result["restore.mean"] = mean.map(list)
        result["restore.std"] = std.map(list)
        if residual { result["restore.residual"] = "true" }
        result["restore.scale"] = scale.map(String.init)
        result["restore.multiple"] = multiple.map(String.init)
        result["restore.tile"] = tile.map(String.init)
        result["restore.overlap"] = overlap.map(String.init)
        return result
    }
}

/// Imports a model file, simplifies and fuses it, records the restoration contract
/// and stores weights in the requested type: everything `convert` does but writing.
public enum Conversion {
    public struct Result {
        public var graph: Graph
        public var report: Simplifier.Report
        /// What `--head` changed, when one was asked for.
        public var head: RGBHead.Outcome?
    }

    public static func convert(_ path: String, options: ConversionOptions) throws -> Result {
        let url = URL(fileURLWithPath: path)
        var graph = try Importers.importer(for: url).importGraph(at: url)
        for (key, value) in options.metadata { graph.metadata[key] = value }
        graph.metadata["restore.converted-from"] = URL(fileURLWithPath: path).lastPathComponent
        let multiple = Int(graph.metadata["restore.multiple"] ?? "") ?? 1
        var head: RGBHead.Outcome?
        switch options.head {
        case .rgb?:
            head = try RGBHead.attach(to: &graph, initialisation: options.headInitialisation,
                                      scale: Int(graph.metadata["restore.scale"] ?? "") ?? 1, multiple: multiple)
            // A restorer records its task, so the contract below is checked.
            graph.metadata["restore.task"] = options.task ?? "restore"
        case nil:
            if options.headInitialisation != nil { throw ConversionError.headInitialisationWithoutHead }
        }
        let report = try Simplifier.simplify(&graph, multiple: multiple)
        graph.metadata[Graph.importedNodesKey] = String(report.nodesBefore)
        if graph.metadata.keys.contains(where: { $0.hasPrefix("restore.") && $0 != "restore.converted-from" }) {
            // Refuse a contract rrun could not apply, now rather than at run time.
            _ = try RestorationContract(graph: graph)
        }
        if options.weights != .f32 { storeWeights(&graph, as: options.weights) }
        // Plan once at a sample size, so a model that cannot run fails here with the node named.
        let samples = Simplifier.sampleShapes(graph, multiple: multiple)
        let model = try Model(graph: graph)
        do {
            _ = try Session(model: model, threads: 1).plan(for: samples[0])
        } catch {
            throw ConversionError.doesNotPlan(shapes: samples[0], multiple: multiple, reason: "\(error)")
        }
        return Result(graph: graph, report: report, head: head)
    }

    /// Re-stores large float32 constants (weights) as f16 or bf16; small ones (biases,
    /// scales) stay f32 since they cost nothing and matter most for accuracy.
    private static func storeWeights(_ graph: inout Graph, as type: ConversionOptions.WeightType) {
        for constant in graph.orderedConstants where constant.dtype == .float32 && constant.elementCount >= 1024 {
            let bits: [UInt16] = constant.float32Elements.map { value in
                switch type {
                case .f16: Float16(value).bitPattern
                case .bf16: bfloat16Bits(value)
                case .f32: preconditionFailure("f32 weights are not converted")
                }
            }
            let storage = bits.withUnsafeBytes { ByteStorage(copying: $0) }
            graph.setConstant(ConstantTensor(name: constant.name, dtype: type == .f16 ? .float16 : .bfloat16,
                                             shape: constant.shape, storage: storage))
        }
    }

    /// bfloat16 by rounding to nearest even (NaN stays NaN).
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}

public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case unknownFormat(String)
    /// The model cannot run at the sample input shapes: often a model that needs H and W
    /// to be multiples of some N (Swin: 32) but was converted without `--multiple N`.
    case doesNotPlan(shapes: [[Int]], multiple: Int, reason: String)
    case headInitialisationWithoutHead

    public var description: String {
        switch self {
        case .unknownFormat(let path): "\(path): not a model file convert reads (\(Importers.formatList))"
        case .doesNotPlan(let shapes, let multiple, let reason):
            "the model does not run at input shapes \(shapes) (H and W multiples of \(multiple)): \(reason). "
                + "If it needs H and W to be multiples of some N (a Swin with 4 stages: 32), pass --multiple N"
        case .headInitialisationWithoutHead: "--head-init chooses how --head rgb builds its classifier; it needs --head rgb"
        }
    }
}

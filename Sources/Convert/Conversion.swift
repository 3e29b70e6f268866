import Foundation
import Format
import Runtime

/// What `convert` is asked to do besides importing: the restoration contract
/// (docs/design.md §4) and the stored weight type.
public struct ConversionOptions: Sendable {
    public enum WeightType: String, Sendable, CaseIterable {
        /// int8 with per-output-channel scales, for the weights int8 kernels read
        /// (`Int8Quantization`); the others stay f32.
        case f32, f16, bf16, int8
    }

    /// Heads `convert --head` attaches (docs/design.md §4).
    public enum Head: String, Sendable, CaseIterable {
        /// A three-channel restoration head (`RGBHead`).
        case rgb
    }

    public var head: Head?
    /// How the rgb head makes an N-class classifier emit 3 channels; required when N ≠ 3.
    public var headInitialisation: HeadInitialisation?
    /// A Mask2Former's rgb head as 3 of its mask queries' logits (`--head-queries`).
    public var headQueries: [Int]?
    /// The restoration contract fields `convert`'s flags set; each overrides what the
    /// model carries (ONNX metadata), and the model's other fields stay as they were.
    public var contract = RestorationContract.Settings()
    /// How weights are stored; nil keeps a checkpoint's own f16/bf16 and stores f32 otherwise.
    public var weights: WeightType?
    /// Choices for a checkpoint's architecture template (`--arch`, `--truncation`).
    public var importing = ImportOptions()
    /// Fusions to leave out (`convert --no-fusion`), for benchmarks and for bisecting a conversion.
    public var skippedFusions: Set<Simplifier.Fusion> = []
    /// Weights to store already arranged for kernels (`convert --prepare`).
    public var preparation = WeightPreparation.none

    public init() {}
}

/// Imports a model file, simplifies and fuses it, records the restoration contract
/// and stores weights in the requested type: everything `convert` does but writing.
public enum Conversion {
    public struct Result {
        public var graph: Graph
        public var report: Simplifier.Report
        /// What `--head` changed, when one was asked for.
        public var head: RGBHead.Outcome?
        /// What the importer noticed (template chosen, training-only tensors skipped), for `-v`.
        public var importNotes: [String] = []
        /// Tensors and bytes of values stored arranged for kernels (`--prepare`), and the
        /// input shapes they were planned at.
        public var prepared: (count: Int, bytes: Int, shapes: [[Int]]) = (0, 0, [])
        /// What `--weights int8` quantized and kept f32 (for `-v`).
        public var int8: String?
    }

    public static func convert(_ path: String, options: ConversionOptions) throws -> Result {
        let url = URL(fileURLWithPath: path)
        let imported = try Importers.importer(for: url).importModel(at: url, options: options.importing)
        var graph = imported.graph
        graph.metadata.merge(options.contract.metadata) { _, flag in flag }
        graph.metadata[RestorationContract.convertedFromKey] = url.lastPathComponent
        var contract = try RestorationContract.Settings(metadata: graph.metadata)
        let multiple = contract.resolvedMultiple
        var head: RGBHead.Outcome?
        switch options.head {
        case .rgb?:
            head = try RGBHead.attach(to: &graph, contract: contract, initialisation: options.headInitialisation,
                                      queries: options.headQueries)
            // A restorer records its task, so the contract below is checked.
            var recordedTask = RestorationContract.Settings()
            recordedTask.task = options.contract.task ?? .restore
            graph.metadata.merge(recordedTask.metadata) { _, task in task }
            contract = contract.merging(recordedTask)
        case nil:
            if options.headInitialisation != nil || options.headQueries != nil {
                throw ConversionError.headInitialisationWithoutHead
            }
        }
        let report = try Simplifier.simplify(&graph, multiple: multiple, skipping: options.skippedFusions)
        graph.metadata[Graph.importedNodesKey] = String(report.nodesBefore)
        graph.metadata[Graph.constantFoldedNodesKey] = String(report.passes.first { $0.name == "constant folding" }?.rewrites ?? 0)
        if !contract.isEmpty {
            // Refuse a contract rrun could not apply, now rather than at run time.
            _ = try RestorationContract(contract, graph: graph)
        }
        let storedWeights = options.weights ?? imported.storedWeightType.flatMap { ConversionOptions.WeightType(rawValue: $0.rawValue) }
        let preparation = options.preparation.resolved(storing: storedWeights)
        if let storedWeights, storedWeights != .f32, preparation != .none {
            throw ConversionError.preparationOfHalfWeights(storedWeights)
        }
        // A type kept from the checkpoint re-stores only what it holds exactly: the tensors the
        // template passed through (or rearranged); those it computed (BatchNorm folded into a
        // conv, W/σ) stay f32, so nothing is rounded twice. An explicit --weights rounds all.
        var int8: String?
        if storedWeights == .int8 {
            int8 = Int8Quantization.quantize(&graph).description
        } else if let storedWeights {
            storeWeights(&graph, as: storedWeights, onlyExact: options.weights == nil)
        }
        // Infer shapes once at a sample size, so a model that cannot run fails here with the
        // node named (shape inference builds no kernels: weights stay untouched).
        let samples = Simplifier.sampleShapes(graph, multiple: multiple)
        _ = try ShapeInference(graph: graph).inferShapes(samples[0], multiple: multiple)
        var result = Result(graph: graph, report: report, head: head, importNotes: imported.notes, int8: int8)
        if preparation != .none {
            let shapes = preparationShapes(graph, contract: contract)
            let shapeText = shapes[0].map { $0.map(String.init).joined(separator: "×") }.joined(separator: ", ")
            if options.preparation == .automatic {
                let outcome = prepareWeightsIfPlannable(&result.graph, preparation, shapes: shapes)
                if let failure = outcome.failure {
                    result.importNotes.append("weights not prepared (--prepare auto): planning at \(shapeText) failed: \(failure)")
                } else {
                    result.prepared = (outcome.count, outcome.bytes, shapes[0])
                }
            } else {
                let prepared = try prepareWeights(&result.graph, preparation, shapes: shapes)
                result.prepared = (prepared.count, prepared.bytes, shapes[0])
            }
        }
        return result
    }

    /// Re-stores large float32 constants (weights) as f16 or bf16; small ones (biases,
    /// scales) stay f32 since they cost nothing and matter most for accuracy. With
    /// `onlyExact`, a constant is re-stored only when every value survives the narrowing
    /// (the checkpoint's own half-precision values), and stays f32 otherwise. f32 widens
    /// f16 and bf16 constants (a half-precision checkpoint's weights) instead.
    private static func storeWeights(_ graph: inout Graph, as type: ConversionOptions.WeightType, onlyExact: Bool) {
        if type == .f32 {
            for constant in graph.orderedConstants where [.float16, .bfloat16].contains(constant.dtype) && constant.layout == .elements {
                graph.setConstant(ConstantTensor(name: constant.name, shape: constant.shape, floats: constant.floatValues()))
            }
            return
        }
        for constant in graph.orderedConstants where constant.dtype == .float32 && constant.elementCount >= 1024 {
            let values = constant.float32Elements
            let bits: [UInt16] = values.map { value in
                switch type {
                case .f16: Float16(value).bitPattern
                case .bf16: bfloat16Bits(value)
                case .f32, .int8: preconditionFailure("\(type) weights are not stored here")
                }
            }
            if onlyExact {
                let widened: (UInt16) -> Float = type == .f16 ? { Float(Float16(bitPattern: $0)) } : { Float(bitPattern: UInt32($0) << 16) }
                guard zip(values, bits).allSatisfy({ widened($1) == $0 }) else { continue }
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

extension ShapeInference {
    /// Every value's shape at `inputShapes`; a model that cannot run there is refused
    /// naming the sizes and `multiple` (`ConversionError.doesNotPlan`).
    func inferShapes(_ inputShapes: [[Int]], multiple: Int) throws -> InferredShapes {
        do {
            return try infer(inputShapes)
        } catch let error as ModelError {
            throw ConversionError.doesNotPlan(shapes: inputShapes, multiple: multiple, reason: error)
        }
    }
}

public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case unknownFormat(String)
    /// The model cannot run at the sample input shapes: often a model that needs H and W
    /// to be multiples of some N (Swin: 32) but was converted without `--multiple N`.
    case doesNotPlan(shapes: [[Int]], multiple: Int, reason: ModelError)
    case headInitialisationWithoutHead
    /// A flag only checkpoint templates use, given for a model file of another format.
    case optionNeedsCheckpoint(flag: String, format: String)
    /// `--prepare` given something other than none, portable or native.
    case unknownPreparation(String)
    /// `--prepare` with weights stored as f16, bf16 or int8: the prepared values are f32
    /// (int8 kernels pack their weights at load, a byte shuffle).
    case preparationOfHalfWeights(ConversionOptions.WeightType)

    public var description: String {
        switch self {
        case .unknownFormat(let path): "\(path): not a model file convert reads (\(Importers.formatList))"
        case .doesNotPlan(let shapes, let multiple, let reason):
            "the model does not run at input shapes \(shapes) (H and W multiples of \(multiple)): \(reason). "
                + "If it needs H and W to be multiples of some N (a Swin with 4 stages: 32), pass --multiple N"
        case .headInitialisationWithoutHead:
            "--head-init and --head-queries choose how --head rgb builds its classifier; they need --head rgb"
        case .optionNeedsCheckpoint(let flag, let format):
            "\(flag) chooses how a safetensors checkpoint is built; a \(format) file carries its whole graph"
        case .unknownPreparation(let text): "--prepare is auto, none, portable or native, found '\(text)'"
        case .preparationOfHalfWeights(let type):
            "--prepare stores f32 values arranged for kernels, which would undo --weights \(type.rawValue): "
                + "use one or the other"
        }
    }
}

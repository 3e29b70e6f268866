import Foundation
import Format

/// Fine-tunes a restoration model's three-channel head (`RestorationHead`) on pairs of
/// degraded and clean crops, with the backbone frozen: each crop's features are computed
/// once by the backbone and cached, and every epoch runs only the head forward and
/// backward, with Adam on the head's weights. The loss is the mean squared error of the
/// restored pixels (the model's pixel contract applied: `PixelSpace`) against the clean
/// ones, so it is the MSE that PSNR is computed from.
public final class HeadFineTuning {
    /// One training or evaluation crop, its features cached.
    public struct CachedPair {
        /// The head's inputs: the features (and the model input, when the head reads it).
        public let headInputs: [HostTensor]
        /// The model input (the crop's pixels under the contract), added back when residual.
        public let modelInput: [Float]
        /// The clean crop's pixels, planar RGB.
        public let clean: [Float]
        /// The image the crop came from: PSNR is pooled per image.
        public let image: Int
        public var features: HostTensor { headInputs[0] }
    }

    public let head: RestorationHead
    public let pixelSpace: PixelSpace
    /// [1, 3, h, w]: the size crops are cut at.
    public let cropShape: [Int]
    public let featureShape: [Int]
    public let trainer: Trainer
    /// The head's weights as the model has them, before any step.
    public let initialWeights: [[Float]]
    private let backbone: Session
    private var shuffling: SeededGenerator

    /// Prepares training with Adam at `learningRate` (× `schedule`) for crops of
    /// `cropHeight` × `cropWidth` pixels (a size the model runs at without padding).
    public init(model: Model, contract: RestorationContract, cropHeight: Int, cropWidth: Int, learningRate: Float,
                schedule: LearningRateSchedule = .constant, seed: UInt64 = 0, threads: Int) throws {
        cropShape = [1, 3, cropHeight, cropWidth]
        // The backbone and head become models of their own, without the file's checksums.
        try model.verifyAllConstants()
        head = try RestorationHead(graph: model.graph, contract: contract, inputShape: cropShape)
        pixelSpace = PixelSpace(contract: contract)
        let backboneModel = try Model(graph: head.backbone)
        guard let shape = try ShapeInference(graph: head.backbone).infer([cropShape]).facts[head.features]?.shape else {
            throw ModelError.node(.outputNotProduced(head.features))
        }
        featureShape = shape
        backbone = Session(model: backboneModel, threads: threads)
        let headModel = try Model(graph: head.head)
        let weights = try TrainableWeights(model: headModel, names: head.weights)
        initialWeights = weights.names.indices.map { weights.values($0) }
        let optimizer = Optimizer(rule: .adam(), groups: [ParameterGroup(parameters: Array(weights.names.indices),
                                                                         learningRate: learningRate)],
                                  schedule: schedule, sizes: weights.sizes)
        let inputShapes = [featureShape] + (head.headInputs.count > 1 ? [cropShape] : [])
        trainer = try Trainer(model: headModel, inputShapes: inputShapes, weights: weights, optimizer: optimizer,
                              threads: threads)
        shuffling = SeededGenerator(seed: seed)
    }

    /// Runs the backbone on a degraded crop (planar RGB pixels in 0…1, `cropShape`) and
    /// keeps its features with the clean crop (`scale` × the size for super-resolution).
    public func cache(degraded: [Float], clean: [Float], image: Int) throws -> CachedPair {
        let plane = cropShape[2] * cropShape[3]
        precondition(degraded.count == 3 * plane, "degraded crop of \(degraded.count) values for \(cropShape)")
        let input = pixelSpace.modelInput(degraded, planeSize: plane)
        let inputTensor = HostTensor(shape: cropShape, floats: input)
        guard let features = try backbone.run([head.backbone.inputs[0].name: inputTensor])[head.features] else {
            throw ModelError.node(.outputNotProduced(head.features))
        }
        return CachedPair(headInputs: [features] + (head.headInputs.count > 1 ? [inputTensor] : []),
                          modelInput: input, clean: clean, image: image)
    }

    /// One pass over `pairs` in a shuffled order, `batch` crops per Adam step; returns the
    /// mean loss. `progress(step)` is called after each step.
    @discardableResult
    public func epoch(_ pairs: [CachedPair], batch: Int, progress: (Int) -> Void = { _ in }) -> Float {
        let order = pairs.indices.shuffled(using: &shuffling)
        var total: Float = 0
        var step = 0
        for start in stride(from: 0, to: order.count, by: max(batch, 1)) {
            let members = order[start..<min(start + max(batch, 1), order.count)].map { pairs[$0] }
            let loss = trainer.step(batch: members.map(\.headInputs)) { sample, output, gradient in
                pixelSpace.meanSquaredError(output: output, input: members[sample].modelInput,
                                            clean: members[sample].clean, gradient: gradient)
            }
            total += loss * Float(members.count)
            step += 1
            progress(step)
        }
        return total / Float(max(pairs.count, 1))
    }

    /// Where `side` × `side` crops of a `height` × `width` image start: a grid covering it
    /// (the last row and column against its far edges), thinned evenly to at most `count`.
    public static func cropOrigins(height: Int, width: Int, side: Int, count: Int) -> [(y: Int, x: Int)] {
        func axis(_ size: Int) -> [Int] {
            guard size > side else { return [0] }
            let n = (size + side - 1) / side
            return (0..<n).map { $0 * (size - side) / (n - 1) }
        }
        let grid = axis(height).flatMap { y in axis(width).map { x in (y: y, x: x) } }
        guard grid.count > count else { return grid }
        return (0..<count).map { grid[$0 * grid.count / count] }
    }

    /// Adam steps per epoch for `count` crops.
    public static func steps(crops count: Int, batch: Int) -> Int { (count + max(batch, 1) - 1) / max(batch, 1) }

    /// The restored pixels of a cached crop with the head's current weights, clipped to
    /// 0…1 as `Restorer` writes them.
    public func restore(_ pair: CachedPair) -> [Float] {
        let output = trainer.output(inputs: pair.headInputs)
        return output.floats.withUnsafeBufferPointer { pixelSpace.restoredPixels(output: $0, input: pair.modelInput) }
            .map { min(max($0, 0), 1) }
    }

    /// PSNR (dB, data range 1) with the current weights, of each image's crops pooled,
    /// averaged over the images.
    public func psnr(_ pairs: [CachedPair]) -> Double {
        var squared: [Int: (sum: Double, count: Int)] = [:]
        for pair in pairs {
            let restored = restore(pair)
            var sum = 0.0
            for i in restored.indices {
                let difference = Double(restored[i] - pair.clean[i])
                sum += difference * difference
            }
            squared[pair.image, default: (0, 0)].sum += sum
            squared[pair.image, default: (0, 0)].count += restored.count
        }
        let values = squared.values.map { 10 * log10(Double($0.count) / max($0.sum, 1e-30)) }
        return values.reduce(0, +) / Double(max(values.count, 1))
    }

    /// The trained weights by name.
    public var trainedWeights: [(name: String, shape: [Int], values: [Float])] {
        let weights = trainer.weights
        return weights.names.indices.map { (weights.names[$0], weights.shapes[$0], weights.values($0)) }
    }

    /// `original` (the model's graph as its file holds it) with the head's weights replaced
    /// by the trained ones, as plain f32; every other constant is kept as it was (packed
    /// values made from a replaced weight are dropped, being stale).
    public func tunedGraph(_ original: Graph) -> Graph {
        var graph = original
        for weight in trainedWeights {
            graph.setConstant(ConstantTensor(name: weight.name, shape: weight.shape, floats: weight.values))
        }
        // An int8 head weight's scales are now unread.
        graph.removeUnusedConstants()
        return graph
    }
}

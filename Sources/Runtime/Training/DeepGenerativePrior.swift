import Foundation
import Format

/// Deep Generative Prior (Pan, Zhan, Dai, Lin, Loy & Luo, ECCV 2020): restores an image
/// by inverting a pretrained class-conditional generator (BigGAN) and then fine-tuning
/// the generator itself on the degraded image, shallow blocks first, so the result stays
/// on the natural-image manifold the generator learned while fitting this image.
///
/// As the paper's reference implementation does it:
/// - z is chosen among `candidates` samples of N(0, sampleStd²) by their loss at the start
///   (with no class given, the class is drawn with each sample and chosen with it);
/// - the loss is the MSE between the degraded output and the degraded image, in the
///   generator's [−1, 1] range, plus `priorWeight` · mean(z²/2) (the latent's negative
///   log-likelihood), plus, with a feature network (a discriminator), the L1 distance of
///   its features;
/// - Adam (β₁ = 0, β₂ = 0.999: BigGAN's settings, which DGP keeps) on z and on the
///   generator, in stages with their own learning rates for z and for G; under the
///   progressive schedule each stage unfreezes more block groups, shallow to deep.
///
/// What differs: the generator's weights here are the converted ones, with spectral norm
/// and batch norm folded in (W/σ, the conditional norms as linears of the condition), so
/// fine-tuning moves W/σ directly where PyTorch moves W_orig through σ(W_orig) — the
/// same function at the start, a different parametrisation of the steps.
public struct DeepGenerativePrior {
    public enum Task: Sendable, Equatable {
        /// The image lost its colour: compared through grayscale (luma) conversion.
        case colorize
        /// Pixels are missing: `mask` (H·W of the image, row-major) is 1 where known.
        case inpaint(mask: [Float])
        /// The image is ×4 smaller: the output is compared after bilinear ×4 downsampling.
        case superResolve4

        var degradation: Degradation {
            switch self {
            case .colorize: .grayscale
            case .inpaint(let mask): .mask(mask)
            case .superResolve4: .bilinearDownsample4
            }
        }
    }

    public enum Schedule: String, Sendable, CaseIterable {
        /// The paper's: block groups unfrozen shallow to deep over the stages.
        case progressive = "dgp"
        /// z and every generator weight trained from the first iteration.
        case all
    }

    /// One stage: its iterations, learning rates, and how many block groups (from the
    /// shallowest) it trains.
    public struct Stage: Sendable, Equatable {
        public var iterations: Int
        public var generatorRate: Float
        public var latentRate: Float
        public var trainedGroups: Int
    }

    public var iterations = 500
    public var schedule = Schedule.progressive
    /// Per stage (the paper's five for super-resolution): G's and z's learning rates.
    public var generatorRates: [Float] = [5e-5, 5e-5, 2e-5, 1e-5, 1e-5]
    public var latentRates: [Float] = [2e-3, 1e-3, 2e-5, 1e-5, 1e-5]
    /// Multiplies every learning rate (1: the paper's).
    public var learningRateScale: Float = 1
    /// Random samples z is chosen from (the paper's 500).
    public var candidates = 100
    public var sampleStd: Float = 0.3
    /// Weight of mean(z²/2) (the paper's 0.02).
    public var priorWeight: Float = 0.02
    /// Weight of the MSE term.
    public var mseWeight: Float = 1
    /// The class to generate; nil chooses it with z among the candidates.
    public var classIndex: Int?
    /// A feature network (the generator's discriminator) whose features' L1 distance is
    /// added to the loss.
    public var features: FeatureDistance?
    public var seed: UInt64 = 0
    public var threads = 2

    public init() {}

    /// The generator's inputs and output, found in its graph.
    public struct Generator {
        public let model: Model
        public let latentName: String
        public let className: String
        public let latentSize: Int
        public let classes: Int
        /// Output height and width.
        public let size: (height: Int, width: Int)

        /// A generator has two rank-2 inputs — z and the class vector ("z" and
        /// "class_vector" when so named, else in that order) — and an image output.
        public init(model: Model) throws {
            self.model = model
            let inputs = model.graph.inputs
            let latent = inputs.first { $0.name == "z" }, condition = inputs.first { $0.name == "class_vector" }
            let chosen = (latent != nil && condition != nil) ? [latent!, condition!] : inputs
            guard chosen.count == 2, chosen.allSatisfy({ $0.shape.count == 2 }),
                  case .fixed(let z)? = chosen[0].shape.last, case .fixed(let c)? = chosen[1].shape.last else {
                throw GeneratorError.notAGenerator(
                    inputs: inputs.map { "\($0.name) [\($0.shape.map(\.description).joined(separator: ", "))]" })
            }
            latentName = chosen[0].name
            className = chosen[1].name
            latentSize = z
            classes = c
            let inferred = try ShapeInference(graph: model.graph).infer([[1, z], [1, c]])
            guard let output = model.graph.outputs.first, let shape = inferred.facts[output.name]?.shape,
                  shape.count == 4, shape[1] == 3 else {
                throw GeneratorError.notAGenerator(inputs: inputs.map(\.name))
            }
            size = (shape[2], shape[3])
        }

        /// Images [count, 3, H, W] in [−1, 1] for latents [count, Z] and one-hot classes.
        public func generate(latents: [Float], classIndices: [Int], threads: Int) throws -> HostTensor {
            let count = classIndices.count
            var classVectors = [Float](repeating: 0, count: count * classes)
            for (row, index) in classIndices.enumerated() { classVectors[row * classes + index] = 1 }
            let session = Session(model: model, threads: threads)
            let outputs = try session.run([latentName: HostTensor(shape: [count, latentSize], floats: latents),
                                           className: HostTensor(shape: [count, classes], floats: classVectors)])
            guard let image = model.graph.outputs.first.flatMap({ outputs[$0.name] }) else {
                throw GeneratorError.notAGenerator(inputs: model.graph.inputs.map(\.name))
            }
            return image
        }
    }

    /// What a run did, beside the image.
    public struct Outcome {
        /// The restored image [1, 3, H, W] in [0, 1], at the generator's size.
        public var image: HostTensor
        /// The image of the chosen z before any training (what selection alone gives).
        public var initialImage: HostTensor
        public var latent: [Float]
        public var classIndex: Int
        /// The loss of the chosen z before fine-tuning, and after the last iteration.
        public var initialLoss: Float
        public var finalLoss: Float
        public var stages: [Stage]
        /// The block groups, shallow to deep, each a list of weight names.
        public var groups: [[String]]
    }

    /// The stages for `groupCount` block groups.
    public func stages(groupCount: Int) -> [Stage] {
        let count = min(generatorRates.count, latentRates.count)
        return (0..<count).map { index in
            let share = iterations / count + (index < iterations % count ? 1 : 0)
            let trained: Int
            switch schedule {
            case .all: trained = groupCount
            case .progressive:
                // The first stage trains the stem and the first block; the last, everything.
                let first = min(2, groupCount)
                trained = count == 1 ? groupCount
                    : first + Int((Double(groupCount - first) * Double(index) / Double(count - 1)).rounded())
            }
            return Stage(iterations: share, generatorRate: generatorRates[index] * learningRateScale,
                         latentRate: latentRates[index] * learningRateScale, trainedGroups: trained)
        }
    }

    /// Restores `degraded` ([1, 3, H, W] in [0, 1], H × W the generator's size, or a
    /// quarter of it for super-resolution). `progress(iteration, total, loss)` returning
    /// false cancels (`TrainingError.cancelled`).
    public func restore(_ degraded: HostTensor, task: Task, generator: Generator,
                        progress: (Int, Int, Float) -> Bool = { _, _, _ in true }) throws -> Outcome {
        let (height, width) = generator.size
        let factor = task == .superResolve4 ? 4 : 1
        guard degraded.rank == 4, degraded.shape[0] == 1, degraded.shape[1] == 3,
              degraded.shape[2] * factor == height, degraded.shape[3] * factor == width else {
            throw TrainingError.shapeMismatch(what: "the degraded image", expected: [1, 3, height / factor, width / factor],
                                              found: degraded.shape)
        }
        if let classIndex, !(0..<generator.classes).contains(classIndex) {
            throw GeneratorError.classOutOfRange(classIndex, classes: generator.classes)
        }
        let layout = PlanarLayout(height: height, width: width)
        let scaled = degraded.floats.map { 2 * $0 - 1 }
        let observed: [Float]
        switch task {
        case .colorize: observed = scaled.withUnsafeBufferPointer { Degradation.grayscale.apply($0, layout: layout) }
        case .inpaint(let mask):
            guard mask.count == height * width else {
                throw TrainingError.shapeMismatch(what: "the mask", expected: [height, width], found: [mask.count])
            }
            observed = scaled.withUnsafeBufferPointer { Degradation.mask(mask).apply($0, layout: layout) }
        case .superResolve4: observed = scaled
        }
        let mse = try DegradedMSE(degradation: task.degradation, observed: observed, layout: layout)
        let featureTarget = try features.map { try $0.target(observed: observed, degradation: task.degradation, layout: layout) }
        func imageLoss(_ image: UnsafeBufferPointer<Float>, gradient: UnsafeMutableBufferPointer<Float>?) throws -> Float {
            var value = mse.evaluate(image, gradient: gradient, weight: mseWeight)
            if let features, let featureTarget {
                value += try features.evaluate(image, target: featureTarget, degradation: task.degradation,
                                               layout: layout, addingGradientTo: gradient)
            }
            return value
        }
        var random = SeededGenerator(seed: seed &+ 0xD6E)
        let (latent, chosenClass, _) = try chooseLatent(generator: generator, random: &random, loss: imageLoss)

        let model = generator.model
        let weights = try TrainableWeights(model: model, trainable: ["*"])
        let groups = BlockGroups(graph: model.graph, names: weights.names)
        let plan = try GradientPlan(model: model, inputShapes: [[1, generator.latentSize], [1, generator.classes]],
                                    parameters: weights.names, wantedInputs: [generator.latentName], threads: threads)
        let adam = OptimizerRule.adam(beta1: 0, beta2: 0.999, epsilon: 1e-8)
        let generatorOptimizer = Optimizer(rule: adam, groups: groups.members.map { ParameterGroup(parameters: $0, learningRate: 0) },
                                           sizes: weights.sizes)
        let latentOptimizer = Optimizer(rule: adam, groups: [ParameterGroup(parameters: [0], learningRate: 0)],
                                        sizes: [generator.latentSize])
        var z = latent
        var latentGradient = [Float](repeating: 0, count: z.count)
        var classVector = [Float](repeating: 0, count: generator.classes)
        classVector[chosenClass] = 1
        let classTensor = HostTensor(shape: [1, generator.classes], floats: classVector)
        let plannedStages = stages(groupCount: groups.members.count)
        let total = plannedStages.reduce(0) { $0 + $1.iterations }
        let initial = plan.forward(inputs: [HostTensor(shape: [1, z.count], floats: z), classTensor], parameters: weights.pointers)
        var iteration = 0
        var initialLoss: Float?
        var lastLoss: Float = 0
        for stage in plannedStages {
            for group in groups.members.indices {
                generatorOptimizer.setLearningRate(group < stage.trainedGroups ? stage.generatorRate : 0, of: group)
            }
            latentOptimizer.setLearningRate(stage.latentRate, of: 0)
            for _ in 0..<stage.iterations {
                let imageValue = try plan.run(inputs: [HostTensor(shape: [1, z.count], floats: z), classTensor],
                                              parameters: weights.pointers) { output, gradient in
                    try imageLoss(output, gradient: gradient)
                }
                let prior = priorTerm(z, gradient: &latentGradient, adding: plan.inputGradient(0))
                lastLoss = imageValue + prior
                if initialLoss == nil { initialLoss = lastLoss }
                z.withUnsafeMutableBufferPointer { zBuffer in
                    latentGradient.withUnsafeBufferPointer { g in latentOptimizer.step(values: [zBuffer], gradients: [g]) }
                }
                generatorOptimizer.step(values: weights.buffers, gradients: weights.names.indices.map { plan.parameterGradient($0) })
                iteration += 1
                guard progress(iteration, total, lastLoss) else { throw TrainingError.cancelled }
            }
        }
        let final = plan.forward(inputs: [HostTensor(shape: [1, z.count], floats: z), classTensor], parameters: weights.pointers)
        let finalLoss = try final.floats.withUnsafeBufferPointer { try imageLoss($0, gradient: nil) }
            + priorTerm(z, gradient: &latentGradient, adding: nil)
        func unitRange(_ tensor: HostTensor) -> HostTensor {
            HostTensor(shape: tensor.shape, floats: tensor.floats.map { min(max(($0 + 1) / 2, 0), 1) })
        }
        return Outcome(image: unitRange(final), initialImage: unitRange(initial), latent: z, classIndex: chosenClass, initialLoss: initialLoss ?? finalLoss,
                       finalLoss: finalLoss, stages: plannedStages,
                       groups: groups.members.map { $0.map { weights.names[$0] } })
    }

    /// priorWeight · mean(z²/2); its gradient plus `adding` goes into `gradient`.
    private func priorTerm(_ z: [Float], gradient: inout [Float], adding upstream: UnsafeBufferPointer<Float>?) -> Float {
        let scale = priorWeight / Float(z.count)
        var total: Float = 0
        for i in z.indices {
            total += z[i] * z[i] / 2
            gradient[i] = scale * z[i] + (upstream?[i] ?? 0)
        }
        return scale * total
    }

    /// The candidate (z, class) whose image has the smallest loss, generated in batches.
    private func chooseLatent(generator: Generator, random: inout SeededGenerator,
                              loss: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>?) throws -> Float)
        throws -> (latent: [Float], classIndex: Int, loss: Float) {
        let batch = 8
        var best: (latent: [Float], classIndex: Int, loss: Float)?
        let zSize = generator.latentSize
        var remaining = max(candidates, 1)
        while remaining > 0 {
            let count = min(batch, remaining)
            remaining -= count
            var latents = [Float](repeating: 0, count: count * zSize)
            var i = 0
            while i < latents.count {
                let (a, b) = random.nextGaussianPair()
                latents[i] = a * sampleStd
                if i + 1 < latents.count { latents[i + 1] = b * sampleStd }
                i += 2
            }
            let classes = (0..<count).map { _ in classIndex ?? Int(random.next() % UInt64(generator.classes)) }
            let images = try generator.generate(latents: latents, classIndices: classes, threads: threads)
            let imageSize = 3 * generator.size.height * generator.size.width
            for row in 0..<count {
                let value = try images.floats.withUnsafeBufferPointer { all in
                    try loss(UnsafeBufferPointer(rebasing: all[(row * imageSize)..<((row + 1) * imageSize)]), nil)
                }
                let latent = Array(latents[(row * zSize)..<((row + 1) * zSize)])
                let total = value + priorWeight * latent.reduce(0) { $0 + $1 * $1 / 2 } / Float(zSize)
                if best == nil || total < best!.loss { best = (latent, classes[row], total) }
            }
        }
        return best!
    }
}

/// The generator's trainable weights split into block groups, shallow to deep: the stem
/// (what runs before the first block: class embedding, the linear from z), then one group
/// per block — a weight belongs to the block whose index follows "layers." or "blocks."
/// in its name (pytorch-pretrained-biggan's and BigGAN-PyTorch's module names, kept by
/// both the templates and ONNX exports) —, with what runs after the last block (output
/// norm and convolution) in the last block's group, as DGP groups BigGAN's parameters.
struct BlockGroups {
    /// Per group, indices into the trained weights.
    let members: [[Int]]

    init(graph: Graph, names: [String]) {
        var firstReader: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where firstReader[input] == nil { firstReader[input] = index }
        }
        let blocks = names.map(Self.blockIndex)
        let firstBlockNode = zip(names, blocks).compactMap { $1 == nil ? nil : firstReader[$0] }.min() ?? Int.max
        let blockIndices = Array(Set(blocks.compactMap { $0 })).sorted()
        var members = [[Int]](repeating: [], count: 1 + blockIndices.count)
        for (position, name) in names.enumerated() {
            if let block = blocks[position], let group = blockIndices.firstIndex(of: block) {
                members[1 + group].append(position)
            } else if (firstReader[name] ?? 0) < firstBlockNode || blockIndices.isEmpty {
                members[0].append(position)
            } else {
                members[members.count - 1].append(position)
            }
        }
        self.members = members.filter { !$0.isEmpty }
    }

    /// The number after "layers." / "blocks." (or "/" as ONNX exports spell module paths).
    static func blockIndex(_ name: String) -> Int? {
        for marker in ["layers", "blocks"] {
            var rest = Substring(name)
            while let range = rest.range(of: marker) {
                rest = rest[range.upperBound...]
                guard let separator = rest.first, separator == "." || separator == "/" else { continue }
                let digits = rest.dropFirst().prefix { $0.isNumber }
                if !digits.isEmpty, let value = Int(digits) { return value }
            }
        }
        return nil
    }
}

/// Why a model cannot serve as a generator.
public enum GeneratorError: Error, CustomStringConvertible, Equatable {
    case notAGenerator(inputs: [String])
    case classOutOfRange(Int, classes: Int)
    case truncationMismatch(requested: Float, converted: Float)

    public var description: String {
        switch self {
        case .notAGenerator(let inputs):
            "not a class-conditional generator: expected inputs z [batch, Z] and class_vector [batch, classes] and an image "
                + "output [batch, 3, H, W]; the model has inputs \(inputs.joined(separator: ", "))"
        case .classOutOfRange(let index, let classes): "class \(index) is outside the generator's 0..<\(classes)"
        case .truncationMismatch(let requested, let converted):
            "--truncation \(requested), but the model was converted at truncation \(converted) (its batch-norm statistics "
                + "are that row of the tables): convert again with --truncation \(requested), or pass --truncation \(converted)"
        }
    }
}

/// How an image of another size than the generator's is brought to it and back: the
/// centred square of its short side is cut out (as DGP's CenterCropLongEdge does), resized
/// to the generator's input size (bilinear, antialiased when shrinking), and the result
/// resized back to that square (×4 for super-resolution, whose input is a quarter of the
/// generator's size).
public struct GeneratorFitting: Sendable {
    /// The input's size, and the square taken from it (top, left, side).
    public let inputSize: (height: Int, width: Int)
    public let crop: (top: Int, left: Int, side: Int)
    /// The size the generator's degraded image has (its output size / factor).
    public let fittedSide: Int
    public let factor: Int

    public init(inputSize: (height: Int, width: Int), generatorSize: (height: Int, width: Int), factor: Int) throws {
        guard generatorSize.height == generatorSize.width, generatorSize.height % factor == 0 else {
            throw TrainingError.shapeMismatch(what: "the generator's output", expected: [factor * 4, factor * 4],
                                              found: [generatorSize.height, generatorSize.width])
        }
        self.inputSize = inputSize
        self.factor = factor
        fittedSide = generatorSize.height / factor
        let side = min(inputSize.height, inputSize.width)
        crop = ((inputSize.height - side) / 2, (inputSize.width - side) / 2, side)
    }

    /// True when the image is used as it is.
    public var isIdentity: Bool { inputSize.height == fittedSide && inputSize.width == fittedSide }

    /// What was done, for the user (nil when nothing).
    public var note: String? {
        guard !isIdentity else { return nil }
        var steps: [String] = []
        if inputSize.height != inputSize.width {
            steps.append("centre-cropped to \(crop.side)×\(crop.side)")
        }
        if crop.side != fittedSide { steps.append("resized to \(fittedSide)×\(fittedSide) for the generator") }
        let back = crop.side * factor
        return "the image is \(inputSize.width)×\(inputSize.height), the generator's input \(fittedSide)×\(fittedSide): "
            + steps.joined(separator: ", ") + (crop.side != fittedSide ? "; the result is resized back to \(back)×\(back)" : "")
    }

    /// [1, C, H, W] → [1, C, side, side] (crop, then resize).
    public func fit(_ tensor: HostTensor) -> HostTensor {
        let cropped = Self.cropOnly(tensor, crop: crop)
        guard crop.side != fittedSide else { return cropped }
        let channels = tensor.shape[1]
        let resized = SeparableResize(from: (crop.side, crop.side), to: (fittedSide, fittedSide), filter: .triangle)
            .resize(cropped.floats, count: channels)
        return HostTensor(shape: [1, channels, fittedSide, fittedSide], floats: resized)
    }

    /// The `crop` square of [1, C, H, W].
    public static func cropOnly(_ tensor: HostTensor, crop: (top: Int, left: Int, side: Int)) -> HostTensor {
        let channels = tensor.shape[1]
        let (h, w) = (tensor.shape[2], tensor.shape[3])
        guard crop.side != h || crop.side != w else { return tensor }
        let values = tensor.floats
        var cropped = [Float](repeating: 0, count: channels * crop.side * crop.side)
        for c in 0..<channels {
            for y in 0..<crop.side {
                for x in 0..<crop.side {
                    cropped[(c * crop.side + y) * crop.side + x] = values[(c * h + crop.top + y) * w + crop.left + x]
                }
            }
        }
        return HostTensor(shape: [1, channels, crop.side, crop.side], floats: cropped)
    }

    /// A mask (H·W, 1 known) fitted as the image is, known where the resized value is above ½.
    public func fitMask(_ mask: [Float]) -> [Float] {
        fit(HostTensor(shape: [1, 1, inputSize.height, inputSize.width], floats: mask)).floats.map { $0 > 0.5 ? 1 : 0 }
    }

    /// The generator's output [1, 3, S, S] back at the crop's size (× factor).
    public func restoreSize(_ output: HostTensor) -> HostTensor {
        let side = output.shape[2], target = crop.side * factor
        guard side != target else { return output }
        let resized = SeparableResize(from: (side, side), to: (target, target), filter: .triangle)
            .resize(output.floats, count: 3)
        return HostTensor(shape: [1, 3, target, target], floats: resized)
    }
}

import ArgumentParser
import Foundation
import ImageFiles
import Runtime

extension RRun {
    /// `rrun dgp`: Deep Generative Prior restoration of one image with a BigGAN generator.
    struct DGP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dgp",
            abstract: "Restore one image with Deep Generative Prior (a BigGAN generator inverted and fine-tuned on it).",
            discussion: """
                z is chosen among random samples by the initial loss, then z and the generator are trained \
                with Adam in five stages (--schedule dgp: block groups unfrozen shallow to deep; all: every \
                weight from the first iteration). The loss is the MSE in the degraded space (grayscale; \
                mask; ×4 bilinear downsampling) plus 0.02·mean(z²/2), plus the L1 distance of the \
                discriminator's features with --disc (docs/dgp.md says how to export one).
                """)

        enum Task: String, ExpressibleByArgument, CaseIterable { case colorize, inpaint, sr4 }

        @Argument(help: "The generator (.rgraph with inputs z and class_vector).")
        var model: String

        @Argument(help: "The degraded image (PNG or JPEG): gray for colorize, with holes for inpaint, ×4 smaller for sr4.")
        var degraded: String

        @Option(help: "colorize, inpaint (needs --mask) or sr4 (×4 super-resolution).")
        var task: Task

        @Option(help: "Inpainting mask, same size as the image: white where pixels are known, black where missing.")
        var mask: String?

        @Option(name: .customLong("class"), help: "Class index; without it the class is chosen with z.")
        var classIndex: Int?

        @Option(help: "Iterations over all stages.")
        var iters: Int = DeepGenerativePrior().iterations

        @Option(help: "dgp (progressive: shallow block groups first) or all.")
        var schedule: DeepGenerativePrior.Schedule = .progressive

        @Option(help: "Random samples z is chosen from.")
        var candidates: Int = DeepGenerativePrior().candidates

        @Option(help: "Multiplies every stage's learning rates for z and G.")
        var lrScale: Float = 1

        @Option(help: "Seed of the candidate samples.")
        var seed: UInt64 = 0

        @OptionGroup var threads: KernelThreads

        @Option(help: "A clean reference image: prints PSNR and SSIM before and after against it.")
        var ref: String?

        @Option(help: "A discriminator feature network (.rgraph, docs/dgp.md): adds the L1 distance of its features.")
        var disc: String?

        @Option(name: .shortAndLong, help: "Output PNG.")
        var output: String

        @Flag(name: .shortAndLong, help: "Print the median and fastest time of one iteration (forward, backward, Adam on z and G).")
        var verbose = false

        mutating func validate() throws {
            guard iters >= 1 else { throw ValidationError("--iters must be at least 1") }
            guard candidates >= 1 else { throw ValidationError("--candidates must be at least 1") }
            guard lrScale > 0, lrScale.isFinite else { throw ValidationError("--lr-scale must be a positive number") }
            if task == .inpaint && mask == nil { throw ValidationError("--task inpaint needs --mask M.png") }
            if task != .inpaint && mask != nil { throw ValidationError("--mask is for --task inpaint") }
        }

        func run() throws {
            try reportingErrors {
                let image = try PixelImage.read(path: degraded)
                let generator = try DeepGenerativePrior.Generator(model: try loadModel(model))
                let factor = task == .sr4 ? 4 : 1
                let fitting = try GeneratorFitting(inputSize: (image.height, image.width), generatorSize: generator.size,
                                                   factor: factor)
                let clean = try ref.map { try PixelImage.read(path: $0).rgbTensor() }
                let outputShape = [1, 3, fitting.crop.side * factor, fitting.crop.side * factor]
                if let clean, clean.shape != outputShape {
                    throw ValidationError("--ref \(ref ?? "") has shape \(clean.shape), the output will be \(outputShape)")
                }
                if let note = fitting.note { print(note) }
                var prior = DeepGenerativePrior()
                prior.iterations = iters
                prior.schedule = schedule
                prior.candidates = candidates
                prior.learningRateScale = lrScale
                prior.classIndex = classIndex
                prior.seed = seed
                prior.threads = threads.count
                if let disc {
                    prior.features = try FeatureDistance(model: try loadModel(disc), imageSize: generator.size, threads: threads.count)
                }
                let priorTask: DeepGenerativePrior.Task
                switch task {
                case .colorize: priorTask = .colorize
                case .sr4: priorTask = .superResolve4
                case .inpaint:
                    let maskImage = try PixelImage.read(path: mask ?? "")
                    guard maskImage.width == image.width, maskImage.height == image.height else {
                        throw ValidationError("--mask is \(maskImage.width)×\(maskImage.height), the image \(image.width)×\(image.height)")
                    }
                    let planes = maskImage.rgbTensor().floats
                    priorTask = .inpaint(mask: fitting.fitMask(planes.prefix(image.width * image.height).map { $0 > 0.5 ? 1 : 0 }))
                }
                let fitted = fitting.fit(image.rgbTensor())
                print("choosing z among \(candidates) samples" + (classIndex == nil ? " (and the class with it)" : "") + "…")
                let progress = ProgressBar(label: "iterations")
                let start = Date()
                let timer = IterationTimer()
                let outcome: DeepGenerativePrior.Outcome
                do {
                    defer { progress.finish() }
                    outcome = try prior.restore(fitted, task: priorTask, generator: generator) { iteration, total, _ in
                        // The first interval also holds the z selection and planning.
                        timer.tick()
                        progress.update(iteration, total)
                        return true
                    }
                }
                let seconds = Date().timeIntervalSince(start)
                let stages = outcome.stages.map { "\($0.iterations) it, \($0.trainedGroups)/\(outcome.groups.count) groups" }
                print(String(format: "DGP (%@, %@) on %d×%d, class %d: loss %.5f → %.5f in %.1f s", task.rawValue,
                             schedule.rawValue, generator.size.width, generator.size.height, outcome.classIndex,
                             outcome.initialLoss, outcome.finalLoss, seconds))
                print("stages: " + stages.joined(separator: "; "))
                if verbose { print(timer.summary) }
                let restored = fitting.restoreSize(outcome.image)
                if let clean {
                    let before = try beforeImage(image.rgbTensor(), fitting: fitting)
                    print(try quality(task == .sr4 ? "input (bilinear ×4)" : "input", before, clean))
                    print(try quality("chosen z, before fine-tuning", fitting.restoreSize(outcome.initialImage), clean))
                    print(try quality("output", restored, clean))
                }
                let result = PixelImage(width: restored.shape[3], height: restored.shape[2], bitDepth: 8, colorType: .rgb,
                                        samples: Self.interleaved(restored))
                try result.write(path: output)
                print("wrote \(output)")
            }
        }

        /// The degraded image as the output's size, for the "before" figures: cropped, and
        /// upsampled ×4 (bilinear) for super-resolution.
        private func beforeImage(_ input: HostTensor, fitting: GeneratorFitting) throws -> HostTensor {
            let whole = GeneratorFitting.cropOnly(input, crop: fitting.crop)
            guard fitting.factor > 1 else { return whole }
            let side = fitting.crop.side
            let up = SeparableResize(from: (side, side), to: (side * 4, side * 4), filter: .triangle)
            return HostTensor(shape: [1, 3, side * 4, side * 4], floats: up.resize(whole.floats, count: 3))
        }

        static func interleaved(_ tensor: HostTensor) -> [Float] {
            let (h, w) = (tensor.shape[2], tensor.shape[3])
            let planes = tensor.floats
            var samples = [Float](repeating: 0, count: 3 * h * w)
            for i in 0..<(h * w) {
                for c in 0..<3 { samples[i * 3 + c] = planes[c * h * w + i] }
            }
            return samples
        }

        private func quality(_ label: String, _ tensor: HostTensor, _ reference: HostTensor) throws -> String {
            let psnr = try ImageMetrics.psnr(tensor, reference, dataRange: 1)
            let ssim = try ImageMetrics.ssim(tensor, reference, dataRange: 1)
            return String(format: "%@: PSNR %.2f dB  SSIM %.4f", label, psnr, ssim)
        }
    }
}

extension DeepGenerativePrior.Schedule: ExpressibleByArgument {}

import ArgumentParser
import Foundation
import ImageFiles
import Runtime

extension RRun {
    /// `rrun dip`: Deep Image Prior restoration of one image, no trained weights.
    struct DIP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dip",
            abstract: "Restore one image with Deep Image Prior (a randomly initialised network fitted to it).")

        enum Task: String, ExpressibleByArgument, CaseIterable { case denoise, inpaint, sr4 }

        @Argument(help: "The degraded image (PNG).")
        var degraded: String

        @Option(help: "denoise, inpaint (needs --mask) or sr4 (×4 super-resolution).")
        var task: Task = .denoise

        @Option(help: "Inpainting mask PNG, same size as the image: white where pixels are known, black where missing.")
        var mask: String?

        @Option(help: "Generator: unet (the paper's encoder-decoder with skips) or vit.")
        var net: PriorNetwork = .unet

        @Option(help: "Iterations (Adam steps).")
        var iters: Int = DeepImagePrior().iterations

        @Option(help: "Adam learning rate.")
        var lr: Float = DeepImagePrior().learningRate

        @Option(help: "Weight of a total-variation term on the output (0: none).")
        var tv: Float = 0

        @Option(help: "Seed of the network's weights and of the input noise.")
        var seed: UInt64 = 0

        @OptionGroup var threads: KernelThreads

        @Option(help: "A clean reference PNG: prints PSNR and SSIM of the input and of the output against it.")
        var ref: String?

        @Option(name: .shortAndLong, help: "Output PNG.")
        var output: String

        @Flag(name: .shortAndLong, help: "Print the median and fastest time of one iteration (forward, backward, Adam).")
        var verbose = false

        mutating func validate() throws {
            guard iters >= 1 else { throw ValidationError("--iters must be at least 1") }
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
            guard tv >= 0, tv.isFinite else { throw ValidationError("--tv must be 0 or more") }
            if task == .inpaint && mask == nil { throw ValidationError("--task inpaint needs --mask M.png") }
            if task != .inpaint && mask != nil { throw ValidationError("--mask is for --task inpaint") }
        }

        func run() throws {
            try reportingErrors {
                let image = try PixelImage.readPNG(path: degraded)
                let rgb = image.rgbTensor()
                var prior = DeepImagePrior()
                prior.network = net
                prior.iterations = iters
                prior.learningRate = lr
                prior.totalVariation = tv
                prior.seed = seed
                prior.threads = threads.count
                let priorTask: DeepImagePrior.Task
                switch task {
                case .denoise: priorTask = .denoise
                case .sr4: priorTask = .superResolve4
                case .inpaint:
                    let maskImage = try PixelImage.readPNG(path: mask ?? "")
                    guard maskImage.width == image.width, maskImage.height == image.height else {
                        throw ValidationError("--mask is \(maskImage.width)×\(maskImage.height), the image \(image.width)×\(image.height)")
                    }
                    // Known where the mask is brighter than mid-gray (its first channel).
                    let planes = maskImage.rgbTensor().floats
                    priorTask = .inpaint(mask: planes.prefix(image.width * image.height).map { $0 > 0.5 ? 1 : 0 })
                }
                let progress = ProgressBar(label: "iterations")
                let start = Date()
                let timer = IterationTimer()
                let restored: HostTensor
                do {
                    defer { progress.finish() }
                    restored = try prior.restore(rgb, task: priorTask) { iteration, _ in
                        timer.tick()
                        progress.update(iteration, iters)
                        return true
                    }
                }
                if verbose { print(timer.summary) }
                let seconds = Date().timeIntervalSince(start)
                let result = try image.withRGB(restored)
                print(String(format: "%d iterations of DIP (%@) on %d×%d in %.1f s", iters, net.rawValue,
                             image.width, image.height, seconds))
                if let ref {
                    let clean = try PixelImage.readPNG(path: ref).rgbTensor()
                    guard clean.shape == restored.shape else {
                        throw ValidationError("--ref \(ref) has shape \(clean.shape), the output \(restored.shape)")
                    }
                    if rgb.shape == clean.shape { print(try quality("input ", rgb, clean)) }
                    print(try quality("output", result.rgbTensor(), clean))
                }
                try result.writePNG(path: output)
            }
        }

        private func quality(_ label: String, _ tensor: HostTensor, _ reference: HostTensor) throws -> String {
            let psnr = try ImageMetrics.psnr(tensor, reference, dataRange: 1)
            let ssim = try ImageMetrics.ssim(tensor, reference, dataRange: 1)
            return String(format: "%@: PSNR %.2f dB  SSIM %.4f", label, psnr, ssim)
        }
    }
}

extension PriorNetwork: ExpressibleByArgument {}

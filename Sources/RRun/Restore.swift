import ArgumentParser
import Foundation
import Format
import ImageFiles
import Runtime

extension RRun {
    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Restore a PNG image, or run the model on .npy tensors.")

        @Argument(help: "The converted model (.rgraph).")
        var model: String

        @Argument(help: """
            IN.png (image mode) or X.npy (tensor mode: the first input), then NAME=FILE.npy \
            for other inputs (in image mode too, e.g. a conditioning vector).
            """)
        var inputs: [String]

        @Option(name: .shortAndLong, help: "Output file: OUT.png in image mode, OUT.npy (the first output) in tensor mode.")
        var output: String?

        @Option(help: "Tensor mode: write every output as DIR/NAME.npy.")
        var outputs: String?

        @Option(help: "Tile size in pixels for large images (0: the model's default, restore.tile).")
        var tile: Int = 0

        @Option(help: "Overlap between tiles in pixels (default: the model's restore.overlap).")
        var overlap: Int?

        @Option(help: "Threads for Restore's kernels.")
        var threads: Int = ProcessInfo.processInfo.activeProcessorCount

        @Option(help: "A clean reference PNG: prints PSNR and SSIM of the input and of the output against it.")
        var ref: String?

        @Flag(name: .shortAndLong, help: "Print the plan: kernels, folded nodes, arena bytes vs the sum of all intermediates.")
        var verbose = false

        mutating func validate() throws {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
            guard tile >= 0 else { throw ValidationError("--tile must be 0 or more") }
            if let overlap, overlap < 0 { throw ValidationError("--overlap must be 0 or more") }
            guard let first = inputs.first else { throw ValidationError("give an input image or tensor") }
            if first.lowercased().hasSuffix(".png") {
                guard output != nil || ref != nil else { throw ValidationError("give -o OUT.png (or --ref to only measure)") }
                guard outputs == nil else { throw ValidationError("--outputs is for tensor mode") }
            } else {
                guard output != nil || outputs != nil else { throw ValidationError("give -o OUT.npy or --outputs DIR") }
                guard ref == nil else { throw ValidationError("--ref is for image mode") }
            }
        }

        func run() throws {
            try reportingErrors {
                let model = try loadModel(self.model)
                let session = Session(model: model, threads: threads)
                let extra = try namedInputs(inputs.dropFirst())
                if inputs[0].lowercased().hasSuffix(".png") {
                    try restoreImage(session, extraInputs: extra)
                } else {
                    try runTensors(session, extraInputs: extra)
                }
            }
        }

        private func namedInputs(_ arguments: ArraySlice<String>) throws -> [String: HostTensor] {
            var result: [String: HostTensor] = [:]
            for argument in arguments {
                guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                    throw ValidationError("extra inputs are NAME=FILE.npy, found '\(argument)'")
                }
                let name = String(argument[..<equals])
                result[name] = try NumPyFile.read(path: String(argument[argument.index(after: equals)...]))
            }
            return result
        }

        private func restoreImage(_ session: Session, extraInputs: [String: HostTensor]) throws {
            let restorer = try Runtime.Restorer(session: session)
            let image = try PixelImage.readPNG(path: inputs[0])
            let progress = ProgressBar(label: "tiles")
            let start = Date()
            let result: PixelImage
            do {
                // Ends the bar's line also when restoring fails, before the error is printed.
                defer { progress.finish() }
                result = try restorer.restore(image, tile: tile, overlap: overlap,
                                              extraInputs: extraInputs, progress: progress.update)
            }
            if verbose {
                printPlans(session)
                print(String(format: "restored %d×%d in %.3f s", result.width, result.height, Date().timeIntervalSince(start)))
            }
            if let ref {
                let clean = try PixelImage.readPNG(path: ref)
                let cleanRGB = clean.rgbTensor()
                if image.width == clean.width && image.height == clean.height {
                    print(try qualityLine("input ", image.rgbTensor(), cleanRGB))
                }
                guard result.width == clean.width && result.height == clean.height else {
                    throw ValidationError("--ref \(ref) is \(clean.width)×\(clean.height), the output is \(result.width)×\(result.height)")
                }
                print(try qualityLine("output", result.rgbTensor(), cleanRGB))
            }
            if let output { try result.writePNG(path: output) }
        }

        /// "label: PSNR xx.xx dB  SSIM 0.xxxx" for an RGB tensor against a reference, after
        /// quantising to the output's bit depth as it would be saved.
        private func qualityLine(_ label: String, _ tensor: HostTensor, _ reference: HostTensor) throws -> String {
            let psnr = try ImageMetrics.psnr(tensor, reference, dataRange: 1)
            let ssim = try ImageMetrics.ssim(tensor, reference, dataRange: 1)
            return String(format: "%@: PSNR %.2f dB  SSIM %.4f", label, psnr, ssim)
        }

        private func runTensors(_ session: Session, extraInputs: [String: HostTensor]) throws {
            guard let first = session.model.graph.inputs.first else { throw ValidationError("the model has no inputs") }
            var feeds = extraInputs
            feeds[first.name] = try NumPyFile.read(path: inputs[0])
            let results = try session.run(feeds)
            if verbose { printPlans(session) }
            if let output, let firstOutput = session.model.graph.outputs.first, let tensor = results[firstOutput.name] {
                try NumPyFile.write(tensor, path: output)
            }
            if let directory = outputs {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                for info in session.model.graph.outputs {
                    guard let tensor = results[info.name] else { continue }
                    let safeName = info.name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }
                    try NumPyFile.write(tensor, path: directory + "/" + String(safeName) + ".npy")
                }
            }
        }

        private func printPlans(_ session: Session) {
            for plan in session.cachedPlans {
                print(PlanSummary(plan, preparedWeightBytes: session.model.preparedWeightBytes).description)
            }
        }
    }
}

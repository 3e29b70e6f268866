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
            IN.png (image mode), a folder of PNGs (folder mode) or X.npy (tensor mode: the \
            first input), then NAME=FILE.npy for other inputs (in image mode too, e.g. a \
            conditioning vector).
            """)
        var inputs: [String]

        @Option(name: .shortAndLong, help: """
            Output file: OUT.png in image mode, OUT.npy (the first output) in tensor mode; \
            the output folder in folder mode.
            """)
        var output: String?

        @Option(help: "Tensor mode: write every output as DIR/NAME.npy.")
        var outputs: String?

        @Option(help: "Tile size in pixels for large images (0: the model's default, restore.tile).")
        var tile: Int = 0

        @Option(help: "Overlap between tiles in pixels (default: the model's restore.overlap).")
        var overlap: Int?

        @Option(help: "Threads for Restore's kernels.")
        var threads: Int = ProcessInfo.processInfo.activeProcessorCount

        @Option(help: """
            A clean reference PNG: prints PSNR and SSIM of the input and of the output against it \
            (folder mode: a folder of references under the inputs' names, measured into OUT_DIR/metrics.csv).
            """)
        var ref: String?

        @Option(help: "Folder mode: write an HTML page showing every input, output and reference.")
        var report: String?

        @Option(help: "Folder mode: images restored at once, sharing --threads (default: chosen by image count).")
        var jobs: Int?

        @Flag(name: .shortAndLong, help: "Print the plan: kernels, folded nodes, arena bytes vs the sum of all intermediates.")
        var verbose = false

        mutating func validate() throws {
            guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
            guard tile >= 0 else { throw ValidationError("--tile must be 0 or more") }
            if let overlap, overlap < 0 { throw ValidationError("--overlap must be 0 or more") }
            guard let first = inputs.first else { throw ValidationError("give an input image or tensor") }
            if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if FolderRestoration.isFolder(first) {
                try FolderRestoration.validate(input: first, output: output, reference: ref, outputs: outputs)
            } else if report != nil || jobs != nil {
                throw ValidationError("--report and --jobs are for folder mode (an input folder)")
            } else if first.lowercased().hasSuffix(".png") {
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
                let extra = try namedInputs(inputs.dropFirst())
                if FolderRestoration.isFolder(inputs[0]) {
                    try restoreFolder(model, extraInputs: extra)
                } else if inputs[0].lowercased().hasSuffix(".png") {
                    try restoreImage(Session(model: model, threads: threads), extraInputs: extra)
                } else {
                    try runTensors(Session(model: model, threads: threads), extraInputs: extra)
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
            let restoration = try imageRestoration(session, extraInputs: extraInputs)
            let image = try PixelImage.readPNG(path: inputs[0])
            let progress = ProgressBar(label: "tiles")
            let start = Date()
            let result: PixelImage
            do {
                // Ends the bar's line also when restoring fails, before the error is printed.
                defer { progress.finish() }
                result = try restoration.restore(image, progress: progress.update)
            }
            if verbose {
                printPlans(session)
                print(String(format: "restored %d×%d in %.3f s", result.width, result.height, Date().timeIntervalSince(start)))
            }
            if let ref {
                let quality = try ImageRestoration.measure(input: image, output: result,
                                                           reference: try PixelImage.readPNG(path: ref), referencePath: ref)
                if let input = quality.input { print(qualityLine("input ", input)) }
                print(qualityLine("output", quality.output))
            }
            if let output { try result.writePNG(path: output) }
        }

        /// The restorer with this command's tile, overlap and extra inputs.
        func imageRestoration(_ session: Session, extraInputs: [String: HostTensor]) throws -> ImageRestoration {
            ImageRestoration(restorer: try Runtime.Restorer(session: session), tile: tile, overlap: overlap,
                             extraInputs: extraInputs)
        }

        /// "label: PSNR xx.xx dB  SSIM 0.xxxx".
        private func qualityLine(_ label: String, _ quality: Quality) -> String {
            String(format: "%@: PSNR %.2f dB  SSIM %.4f", label, quality.psnr, quality.ssim)
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

import ArgumentParser
import Foundation
import Format
import ImageFiles
import Runtime

extension ImageFileFormat: ExpressibleByArgument {
    /// "png", "jpeg", "jpg" or "webp".
    public init?(argument: String) {
        self.init(path: "image." + argument)
    }

    public static var allValueStrings: [String] { ["png", "jpeg", "webp"] }
}

extension RRun {
    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Restore a PNG, JPEG or WebP image or a folder of them, or run the model on .npy tensors.")

        @Argument(help: "The converted model (.rgraph).")
        var model: String

        @Argument(help: """
            IN.png, IN.jpg or IN.webp (image mode), a folder of such images (folder mode) or X.npy (tensor mode: \
            the first input), then NAME=FILE.npy for other inputs (in image mode too, e.g. a \
            conditioning vector).
            """)
        var inputs: [String]

        @Option(name: .shortAndLong, help: """
            Output file. Image mode: .png, .jpg, .jpeg or .webp, the format its extension names \
            (default: IN.restored.EXT beside the input). Tensor mode: OUT.npy (the first output). \
            Folder mode: the output folder.
            """)
        var output: String?

        @Option(help: """
            The output format, png, jpeg or webp: in folder mode each output is written in it under its \
            input's stem (default: each input's own format); in image mode it names the default \
            output's extension (-o's extension decides otherwise).
            """)
        var format: ImageFileFormat?

        @Flag(help: "Overwrite an existing output (image mode's default name) or the input itself.")
        var force = false

        @Option(help: "Tensor mode: write every output as DIR/NAME.npy.")
        var outputs: String?

        // .unconditional: "--tile -5" reads -5 as the value (and is refused below) instead of
        // taking it for an unknown flag and saying the value is missing.
        @Option(parsing: .unconditional, help: """
            Tile size in pixels, at least \(Runtime.Restorer.minimumTile) (0: the model's restore.tile, \
            else the whole image, else the largest tiles within --max-memory).
            """)
        var tile: Int = 0

        @Option(parsing: .unconditional, help: """
            Overlap between tiles in pixels (default: the model's restore.overlap, else 4 × its \
            receptive field radius up to \(Runtime.Restorer.maximumDerivedOverlap), else \(Runtime.Restorer.defaultOverlap)).
            """)
        var overlap: Int?

        @Option(help: "Memory one restoration may hold, e.g. 2G, 512M or bytes (default: a quarter of physical memory, at most 1G).")
        var maxMemory: String?

        @Option(parsing: .unconditional, help: "Threads for Restore's kernels.")
        var threads: Int = ProcessInfo.processInfo.activeProcessorCount

        @Option(help: """
            A clean reference image: prints PSNR and SSIM of the input and of the output against it \
            (folder mode: a folder of references under the inputs' names, measured into OUT_DIR/metrics.csv).
            """)
        var ref: String?

        @Option(help: "Folder mode: write an HTML page showing every input, output and reference.")
        var report: String?

        @Option(help: "Folder mode: images restored at once, sharing --threads (default: chosen by image count).")
        var jobs: Int?

        @Flag(name: .shortAndLong, help: "Print the tiles chosen, the CPU path (RESTORE_CPU=avx512|avx2|generic forces one) and the plan: kernels, folded nodes, arena bytes.")
        var verbose = false

        /// Most threads accepted: far above any CPU this runs on, low enough to catch a typo.
        static let maximumThreads = 1024

        /// Whether the first input is an image (else a folder or a tensor), from its extension.
        private var imageMode: Bool {
            ImageFileFormat(path: inputs.first ?? "") != nil && !FolderRestoration.isFolder(inputs.first ?? "")
        }

        mutating func validate() throws {
            guard (1...Self.maximumThreads).contains(threads) else {
                throw ValidationError("--threads must be 1 to \(Self.maximumThreads), found \(threads)")
            }
            guard tile == 0 || tile >= Runtime.Restorer.minimumTile else {
                throw ValidationError("--tile must be 0 (chosen for you) or at least \(Runtime.Restorer.minimumTile) pixels, found \(tile)")
            }
            if let overlap {
                guard overlap >= 0 else { throw ValidationError("--overlap must be 0 or more, found \(overlap)") }
                guard tile == 0 || overlap < tile else {
                    throw ValidationError("--overlap \(overlap) must be smaller than --tile \(tile)")
                }
            }
            if let maxMemory { _ = try Self.byteCount(maxMemory) }
            guard let first = inputs.first else { throw ValidationError("give an input image or tensor") }
            if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
            if FolderRestoration.isFolder(first) {
                try FolderRestoration.validate(input: first, output: output, reference: ref, outputs: outputs)
            } else if report != nil || jobs != nil {
                throw ValidationError("--report and --jobs are for folder mode (an input folder)")
            } else if imageMode {
                if let output, ImageFileFormat(path: output) == nil {
                    throw ValidationError("image mode writes \(ImageFileFormat.extensionList), not '\(output)'; "
                                          + "tensors come out of tensor mode (an .npy input)")
                }
                if let output, let format, ImageFileFormat(path: output) != format {
                    throw ValidationError("-o \(output) is not a \(format.rawValue) file, as --format \(format.rawValue) asks")
                }
                guard outputs == nil else { throw ValidationError("--outputs is for tensor mode") }
            } else {
                guard first.lowercased().hasSuffix(".npy") else {
                    throw ValidationError("'\(first)' is neither an image (\(ImageFileFormat.extensionList)) nor a tensor (.npy)")
                }
                guard output != nil || outputs != nil else { throw ValidationError("give -o OUT.npy or --outputs DIR") }
                if let output, !output.lowercased().hasSuffix(".npy") {
                    throw ValidationError("tensor mode writes .npy, not '\(output)'; images come out of image mode (an image input)")
                }
                guard ref == nil else { throw ValidationError("--ref is for image mode") }
                guard format == nil else { throw ValidationError("--format is for image and folder mode; tensor mode writes .npy") }
            }
        }

        /// Bytes from "2G", "512M", "64k", "1.5GiB" or a plain count (powers of 1024).
        static func byteCount(_ text: String) throws -> Int {
            let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
            let units: [(String, Double)] = [("gib", 0x1p30), ("gb", 0x1p30), ("g", 0x1p30), ("mib", 0x1p20), ("mb", 0x1p20),
                                             ("m", 0x1p20), ("kib", 0x1p10), ("kb", 0x1p10), ("k", 0x1p10), ("b", 1)]
            let (number, factor) = units.first { trimmed.hasSuffix($0.0) }
                .map { (String(trimmed.dropLast($0.0.count)), $0.1) } ?? (trimmed, 1)
            guard let value = Double(number.trimmingCharacters(in: .whitespaces)), value.isFinite, value > 0,
                  value * factor < 0x1p62 else {
                throw ValidationError("--max-memory takes a size like 2G, 512M or a byte count, found '\(text)'")
            }
            return Int(value * factor)
        }

        func run() throws {
            try reportingErrors {
                let loadStart = Date()
                let model = try loadModel(self.model)
                if verbose { print(String(format: "loaded %@ in %.1f ms", self.model, Date().timeIntervalSince(loadStart) * 1000)) }
                if FolderRestoration.isFolder(inputs[0]) {
                    try restoreFolder(model, extraInputs: try namedInputs(inputs.dropFirst(), of: model))
                } else if imageMode {
                    try restoreImage(Session(model: model, threads: threads))
                } else {
                    let extra = try namedInputs(inputs.dropFirst(), of: model)
                    try runTensors(Session(model: model, threads: threads), extraInputs: extra)
                }
            }
        }

        private func namedInputs(_ arguments: ArraySlice<String>, of model: Model) throws -> [String: HostTensor] {
            var result: [String: HostTensor] = [:]
            for argument in arguments {
                guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                    throw ValidationError("extra inputs are NAME=FILE.npy, found '\(argument)'")
                }
                let name = String(argument[..<equals])
                result[name] = try readTensor(String(argument[argument.index(after: equals)...]), for: name, of: model)
            }
            return result
        }

        /// A .npy file for graph input `name`. The reader widens or narrows every float type to
        /// float32; a file that stored another type than the input's is refused, as the
        /// session refuses integer data for a float input, so nothing is converted quietly.
        private func readTensor(_ path: String, for name: String, of model: Model) throws -> HostTensor {
            let (tensor, storedType) = try NumPyFile.readKeepingType(path: path)
            if let info = model.graph.inputs.first(where: { $0.name == name }), tensor.dtype == .float32,
               info.dtype.numPyName != storedType {
                throw ModelError.inputType(input: name, expected: info.dtype, found: storedType)
            }
            return tensor
        }

        /// Where image mode writes: -o, or IN.restored.EXT beside the input. Refuses, before
        /// any work, to write over the input or over an existing default-named file without
        /// --force, and a destination whose folder does not exist.
        private func imageDestination() throws -> String {
            let input = inputs[0]
            let destination: String
            if let output {
                destination = output
            } else {
                let url = URL(fileURLWithPath: input)
                let stem = url.deletingPathExtension().lastPathComponent
                let suffix = format.map { ImageFileFormat(path: input) == $0 ? url.pathExtension : $0.fileExtension }
                    ?? url.pathExtension
                destination = url.deletingLastPathComponent().appendingPathComponent("\(stem).restored.\(suffix)").path
                if !force && FileManager.default.fileExists(atPath: destination) {
                    throw ValidationError("\(destination) exists; give --force to overwrite it, or -o to write elsewhere")
                }
            }
            let resolved = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
            if !force && resolved(destination) == resolved(input) {
                throw ValidationError("-o \(destination) is the input; give --force to overwrite it")
            }
            let folder = URL(fileURLWithPath: destination).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("cannot write \(destination): folder \(folder) does not exist")
            }
            return destination
        }

        private func restoreImage(_ session: Session) throws {
            let extraInputs = try namedInputs(inputs.dropFirst(), of: session.model)
            let restoration = try imageRestoration(session, extraInputs: extraInputs)
            let restorer = restoration.restorer
            if !restorer.recordsPixelContract {
                warn("""
                    \(model) records no pixel contract (restore.range, restore.residual), so pixels are \
                    assumed to be 0…1 and the model not residual; if that is wrong the result is poor \
                    without any error. Record it with convert's --range (0,1, -1,1 or 0,255) and --residual.
                    """)
            }
            // --ref without -o only measures; otherwise the result is written (-o or the default name).
            let destination = output != nil || ref == nil ? try imageDestination() : nil
            let image = try PixelImage.read(path: inputs[0])
            let size = restorer.outputSize(height: image.height, width: image.width)
            let reference = try ref.map { path in
                let clean = try PixelImage.read(path: path)
                guard clean.width == size.width && clean.height == size.height else {
                    throw ValidationError("--ref \(path) is \(clean.width)×\(clean.height), "
                                          + "the output will be \(size.width)×\(size.height)")
                }
                guard clean.colorType.isGray == image.colorType.isGray else {
                    throw ValidationError("--ref \(path) is \(clean.colorType.isGray ? "gray" : "colour"), "
                                          + "the output will be \(image.colorType.isGray ? "gray" : "colour")")
                }
                return clean
            }
            let tiling = try restoration.tiling(for: image)
            if verbose { print(tiling) }
            let outputFormat = destination.flatMap { ImageFileFormat(path: $0) }
            if let destination, let outputFormat, let loss = image.loss(in: outputFormat) {
                warn("\(destination): \(outputFormat.name) cannot hold \(loss); it is left out (write a .png to keep it)")
            }
            let progress = ProgressBar(label: "tiles")
            let start = Date()
            let result: PixelImage
            do {
                // Ends the bar's line also when restoring fails, before the error is printed.
                defer { progress.finish() }
                result = try restoration.restore(image, tiling: tiling, progress: progress.update)
            }
            if verbose {
                printPlans(session)
                print(String(format: "restored %d×%d in %.3f s", result.width, result.height, Date().timeIntervalSince(start)))
            }
            if let ref, let reference {
                let quality = try ImageRestoration.measure(input: image, output: result, reference: reference, referencePath: ref)
                if let input = quality.input { print(qualityLine("input ", input)) }
                print(qualityLine("output", quality.output))
            }
            guard let destination else { return }
            try (outputFormat.map { result.compatible(with: $0) } ?? result).write(path: destination)
            print("wrote \(destination) (\(result.width)×\(result.height))")
        }

        /// The restorer with this command's tile, overlap and extra inputs, choosing tiles
        /// within `budget` bytes (default: the whole `--max-memory`).
        func imageRestoration(_ session: Session, extraInputs: [String: HostTensor], budget: Int? = nil) throws
            -> ImageRestoration {
            ImageRestoration(restorer: try Runtime.Restorer(session: session), tile: tile, overlap: overlap,
                             budget: try budget ?? memoryBudget(), extraInputs: extraInputs)
        }

        /// `--max-memory` in bytes, or the default budget.
        func memoryBudget() throws -> Int {
            try maxMemory.map(Self.byteCount) ?? MemoryLimit.defaultImageBudget
        }

        /// "label: PSNR xx.xx dB  SSIM 0.xxxx".
        private func qualityLine(_ label: String, _ quality: Quality) -> String {
            String(format: "%@: PSNR %.2f dB  SSIM %.4f", label, quality.psnr, quality.ssim)
        }

        private func runTensors(_ session: Session, extraInputs: [String: HostTensor]) throws {
            guard let first = session.model.graph.inputs.first else { throw ValidationError("the model has no inputs") }
            var feeds = extraInputs
            feeds[first.name] = try readTensor(inputs[0], for: first.name, of: session.model)
            let planStart = Date()
            _ = try session.plan(for: session.model.graph.inputs.map { feeds[$0.name]?.shape ?? [] })
            let runStart = Date()
            let results = try session.run(feeds)
            if verbose {
                printPlans(session)
                print(String(format: "planned in %.1f ms, ran in %.1f ms", runStart.timeIntervalSince(planStart) * 1000,
                             Date().timeIntervalSince(runStart) * 1000))
            }
            let writeStart = Date()
            defer { if verbose { print(String(format: "wrote in %.1f ms", Date().timeIntervalSince(writeStart) * 1000)) } }
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
            print(CPUFeatures.summary)
            for plan in session.cachedPlans {
                print(PlanSummary(plan, model: session.model).description)
            }
        }
    }
}

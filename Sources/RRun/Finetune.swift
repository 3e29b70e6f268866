import ArgumentParser
import Foundation
import Format
import ImageFiles
import Runtime

extension RRun {
    /// `rrun finetune`: trains a restoration model's three-channel head on pairs of
    /// degraded and clean images, the backbone frozen and its features cached.
    struct Finetune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finetune",
            abstract: "Fine-tune a model's three-channel head on degraded/clean image pairs (backbone frozen).",
            discussion: """
                The head is the conv that emits the image output's 3 channels (then any weight-free \
                steps such as a bilinear resize), found from the graph; only its weights are trained. \
                Pairs are the images of NOISY_DIR and CLEAN_DIR with the same file name; the clean \
                image is the degraded one's size (× restore.scale). Each image is cut into up to \
                --crops-per-image crops of --crop × --crop pixels, spread evenly over it; the backbone \
                runs once per crop and its features are kept in memory. The last --holdout pairs in \
                name order are held back: PSNR on their crops is printed before and after. \
                Each epoch visits every training crop once in a shuffled order, --batch crops per Adam \
                step (learning rate --lr, cosine-decayed to a tenth over all steps). The loss is the \
                mean squared error between the restored pixels (0…1: the model's restore.range, \
                restore.mean/std and restore.residual applied as rrun applies them, before clipping) \
                and the clean pixels. The output is the input model with the head's weights replaced \
                (as f32); everything else is copied unchanged, and the file is written atomically.
                """)

        @Argument(help: "The converted model (.rgraph) with a recorded pixel contract.")
        var model: String

        @Option(parsing: .upToNextOption, help: "NOISY_DIR CLEAN_DIR: folders of degraded and clean images (PNG, JPEG, WebP) paired by file name.")
        var pairs: [String]

        @Option(help: "Passes over the training crops.")
        var epochs: Int = 20

        @Option(help: "Adam's learning rate at the start (cosine decay to a tenth).")
        var lr: Float = 1e-3

        @Option(help: "Crops per Adam step.")
        var batch: Int = 8

        @Option(help: "Side of the square crops, a multiple of the model's restore.multiple (default: 64 rounded up to it; a model of fixed size uses its size).")
        var crop: Int?

        @Option(help: "Most crops taken from one image.")
        var cropsPerImage: Int = 16

        @Option(help: "Pairs held back for the PSNR before/after, the last in name order (default: a fifth, at least 1 of 2 or more).")
        var holdout: Int?

        @Option(help: "Seed of the order crops are visited in.")
        var seed: UInt64 = 0

        @OptionGroup var threads: KernelThreads

        @Option(name: .shortAndLong, help: "The tuned model (.rgraph).")
        var output: String

        @Flag(help: "Allow -o to be the input model (it is replaced only once the tuned file is complete).")
        var force = false

        mutating func validate() throws {
            guard pairs.count == 2 else { throw ValidationError("--pairs takes two folders: NOISY_DIR CLEAN_DIR") }
            guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            guard cropsPerImage >= 1 else { throw ValidationError("--crops-per-image must be at least 1") }
            if let crop, crop < 1 { throw ValidationError("--crop must be at least 1") }
            if let holdout, holdout < 0 { throw ValidationError("--holdout must be 0 or more") }
        }

        func run() throws {
            try reportingErrors {
                let (noisyFolder, cleanFolder) = (pairs[0], pairs[1])
                try checkOutput()
                let names = try pairedNames(noisyFolder, cleanFolder)
                let heldOut = holdout ?? (names.count >= 2 ? max(1, names.count / 5) : 0)
                guard heldOut < names.count else {
                    throw ValidationError("--holdout \(heldOut) leaves no training pair of the \(names.count)")
                }
                let file = try RGraphReader.read(contentsOf: model)
                let loaded = try Model(file: file)
                let contract = try RestorationContract(graph: loaded.graph)
                if contract.range == .unit && file.graph.metadata["restore.range"] == nil {
                    warn("\(model) records no restore.range; pixels are taken as 0…1 (convert --range records it)")
                }
                let side = try cropSide(contract, graph: loaded.graph)
                let images = try names.map { name in
                    try readPair(name, noisyFolder, cleanFolder, scale: contract.scale, side: side)
                }

                let tuning = try HeadFineTuning(
                    model: loaded, contract: contract, cropHeight: side, cropWidth: side, learningRate: lr,
                    schedule: .cosine(steps: epochs * HeadFineTuning.steps(crops: cropCount(images.dropLast(heldOut), side: side), batch: batch),
                                      floor: 0.1),
                    seed: seed, threads: threads.count)
                print("head: conv '\(tuning.head.conv)' on features '\(tuning.head.features)' \(tuning.featureShape); "
                      + "training \(tuning.trainer.weights.parameterCount) weights (\(tuning.head.weights.joined(separator: ", ")))")

                let start = Date()
                var training: [HeadFineTuning.CachedPair] = [], held: [HeadFineTuning.CachedPair] = []
                let total = cropCount(images, side: side)
                let bar = ProgressBar(label: "crops through the backbone")
                do {
                    defer { bar.finish() }
                    for (index, pair) in images.enumerated() {
                        for origin in HeadFineTuning.cropOrigins(height: pair.noisy.shape[2], width: pair.noisy.shape[3],
                                                                 side: side, count: cropsPerImage) {
                            let cached = try tuning.cache(
                                degraded: region(pair.noisy, y: origin.y, x: origin.x, side: side),
                                clean: region(pair.clean, y: origin.y * contract.scale, x: origin.x * contract.scale,
                                              side: side * contract.scale),
                                image: index)
                            if index < names.count - heldOut { training.append(cached) } else { held.append(cached) }
                            bar.update(training.count + held.count, total)
                        }
                    }
                }
                print(String(format: "features of %d crops (%d training, %d held out) cached in %.1f s",
                             training.count + held.count, training.count, held.count, Date().timeIntervalSince(start)))
                let before = held.isEmpty ? nil : tuning.psnr(held)
                if let before { print(String(format: "held-out PSNR before: %.2f dB (%d pairs)", before, heldOut)) }

                let steps = HeadFineTuning.steps(crops: training.count, batch: batch)
                let stepBar = ProgressBar(label: "Adam steps")
                let trainStart = Date()
                do {
                    defer { stepBar.finish() }
                    for epoch in 1...epochs {
                        let loss = tuning.epoch(training, batch: batch) { step in
                            stepBar.update((epoch - 1) * steps + step, epochs * steps)
                        }
                        var line = String(format: "epoch %d/%d: training loss %.3e (%.2f dB)", epoch, epochs, loss,
                                          10 * log10(1 / Double(max(loss, 1e-30))))
                        if !held.isEmpty { line += String(format: ", held-out PSNR %.2f dB", tuning.psnr(held)) }
                        stepBar.clear()
                        print(line)
                    }
                }
                print(String(format: "%d epochs of %d Adam steps in %.1f s", epochs, steps, Date().timeIntervalSince(trainStart)))
                var tuned = tuning.tunedGraph(file.graph)
                tuned.metadata["finetune.from"] = URL(fileURLWithPath: model).lastPathComponent
                tuned.metadata["finetune.head"] = tuning.head.conv
                tuned.metadata["finetune.pairs"] = "\(names.count - heldOut) training, \(heldOut) held out"
                tuned.metadata["finetune.crops"] = "\(training.count) training crops of \(side)×\(side), \(epochs) epochs, lr \(lr)"
                if let before {
                    let after = tuning.psnr(held)
                    print(String(format: "held-out PSNR: %.2f dB → %.2f dB (%+.2f dB)", before, after, after - before))
                    tuned.metadata["finetune.held-out-psnr"] = String(format: "%.2f dB → %.2f dB", before, after)
                }
                try RGraphWriter.write(tuned, to: output)
                print("tuned model: \(output)")
            }
        }

        /// Refuses, before any work, to replace the input model without --force, and a
        /// destination whose folder does not exist.
        private func checkOutput() throws {
            let resolved = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
            if !force && resolved(output) == resolved(model) {
                throw ValidationError("-o \(output) is the input model; give --force to replace it")
            }
            let folder = URL(fileURLWithPath: output).deletingLastPathComponent().path
            guard FolderRestoration.isFolder(folder) else {
                throw ValidationError("cannot write \(output): folder \(folder) does not exist")
            }
        }

        /// The image names found in both folders; an image without its partner is an error.
        private func pairedNames(_ noisy: String, _ clean: String) throws -> [String] {
            for (flag, folder) in [("NOISY_DIR", noisy), ("CLEAN_DIR", clean)] where !FolderRestoration.isFolder(folder) {
                throw ValidationError("--pairs \(flag) \(folder) is not a folder")
            }
            let noisyNames = try FolderRestoration.imageNames(in: noisy)
            let cleanNames = try FolderRestoration.imageNames(in: clean)
            let (noisySet, cleanSet) = (Set(noisyNames), Set(cleanNames))
            let unmatched = noisyNames.filter { !cleanSet.contains($0) }.map { "\(noisy)/\($0)" }
                + cleanNames.filter { !noisySet.contains($0) }.map { "\(clean)/\($0)" }
            guard unmatched.isEmpty else {
                let listed = unmatched.prefix(5).joined(separator: ", ") + (unmatched.count > 5 ? ", …" : "")
                throw ValidationError("\(unmatched.count) image\(unmatched.count == 1 ? " has" : "s have") no partner of the same name: \(listed)")
            }
            guard !noisyNames.isEmpty else { throw ValidationError("--pairs: no images in \(noisy)") }
            return noisyNames
        }

        /// The crop side: the model's fixed size, or --crop (default 64) as a multiple of restore.multiple.
        private func cropSide(_ contract: RestorationContract, graph: Graph) throws -> Int {
            if let info = graph.inputs.first(where: { $0.name == contract.input }),
               let fixed = RestorationContract.fixedSize(of: info) {
                guard fixed.height == fixed.width else {
                    throw ValidationError("the model's input is fixed at \(fixed.height)×\(fixed.width); finetune cuts square crops")
                }
                if let crop, crop != fixed.height {
                    throw ValidationError("--crop \(crop): the model's input is fixed at \(fixed.height)×\(fixed.width)")
                }
                return fixed.height
            }
            let multiple = max(contract.multiple, 1)
            guard let crop else { return (64 + multiple - 1) / multiple * multiple }
            guard crop % multiple == 0 else {
                throw ValidationError("--crop \(crop) is not a multiple of the model's restore.multiple \(multiple)")
            }
            return crop
        }

        /// A pair's images as [1, 3, H, W] pixels in 0…1, checked: the clean one `scale` × the
        /// degraded one's size, and the degraded one at least a crop.
        private func readPair(_ name: String, _ noisyFolder: String, _ cleanFolder: String, scale: Int,
                              side: Int) throws -> (noisy: HostTensor, clean: HostTensor) {
            let noisyPath = noisyFolder + "/" + name, cleanPath = cleanFolder + "/" + name
            let noisy = try PixelImage.read(path: noisyPath).rgbTensor()
            let clean = try PixelImage.read(path: cleanPath).rgbTensor()
            let (h, w) = (noisy.shape[2], noisy.shape[3])
            guard clean.shape[2] == h * scale && clean.shape[3] == w * scale else {
                throw ValidationError("\(cleanPath) is \(clean.shape[3])×\(clean.shape[2]), \(noisyPath) \(w)×\(h)"
                                      + (scale == 1 ? "; a pair must have one size" : "; the clean image must be \(scale)× larger"))
            }
            guard h >= side && w >= side else {
                throw ValidationError("\(noisyPath) is \(w)×\(h), smaller than a \(side)×\(side) crop; give a smaller --crop")
            }
            return (noisy, clean)
        }

        private func cropCount<Pairs: Sequence>(_ images: Pairs, side: Int) -> Int
        where Pairs.Element == (noisy: HostTensor, clean: HostTensor) {
            images.reduce(0) { total, pair in
                total + HeadFineTuning.cropOrigins(height: pair.noisy.shape[2], width: pair.noisy.shape[3],
                                                   side: side, count: cropsPerImage).count
            }
        }

        /// Planar RGB values of the `side` × `side` square at (y, x) of a [1, 3, H, W] tensor.
        private func region(_ image: HostTensor, y: Int, x: Int, side: Int) -> [Float] {
            let (height, width) = (image.shape[2], image.shape[3])
            let values = image.floats
            var result: [Float] = []
            result.reserveCapacity(3 * side * side)
            for c in 0..<3 {
                for row in y..<(y + side) {
                    let start = (c * height + row) * width + x
                    result.append(contentsOf: values[start..<(start + side)])
                }
            }
            return result
        }
    }
}

import ArgumentParser
import Foundation
import ImageFiles
import Runtime

/// Folder mode: `rrun MODEL IN_DIR -o OUT_DIR [--ref REF_DIR] [--report REPORT.html]`.
///
/// Every PNG, JPEG and WebP in IN_DIR (not in subfolders, not hidden) is restored with the one
/// loaded model into OUT_DIR under its own name and in its own format, or in `--format`'s
/// under its own stem; it keeps its bit depth, colour type and alpha as far as the output
/// format holds them (as image mode does: the same `ImageRestoration`). Outputs are written atomically, so
/// a file under an output's name is always complete; a rerun skips an output that exists
/// and is not older than its input (`make`'s rule), which resumes an interrupted run (and
/// deletes the temporary files that run was writing).
/// A file that cannot be read or restored is named on stderr and the others still run;
/// the exit status is then non-zero. With `--ref`, OUT_DIR/metrics.csv gets a row per
/// image and a summary line is printed; `--report` writes an HTML page (`FolderReport`).
///
/// Images run `jobs` at a time, each on its own session of the shared model with
/// `threads / jobs` kernel threads (`defaultJobs` picks the split; BENCHMARKS.md,
/// "Folder mode", has the measurements behind it) and `budget / jobs` bytes of the memory
/// budget, so the images in flight together stay within `--max-memory` (each chooses its
/// tiles to fit its share).
struct FolderRestoration {
    let inputFolder: String
    let outputFolder: String
    let referenceFolder: String?
    let reportPath: String?
    let jobs: Int?
    let threads: Int
    /// Bytes all images in flight may hold together (`--max-memory`).
    let budget: Int
    /// The outputs' format (`--format`); nil: each input's own.
    let format: ImageFileFormat?
    let verbose: Bool
    /// A new restorer on its own session of the shared model, with `threads` kernel threads,
    /// choosing tiles within `budget` bytes.
    let makeRestoration: (_ threads: Int, _ budget: Int) throws -> ImageRestoration

    /// The name of the metrics file written into the output folder with `--ref`.
    static let metricsName = "metrics.csv"

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Checks folder mode's options before any work.
    static func validate(input: String, output: String?, reference: String?, outputs: String?) throws {
        guard let output else { throw ValidationError("folder mode needs -o OUT_DIR") }
        guard outputs == nil else { throw ValidationError("--outputs is for tensor mode") }
        if FileManager.default.fileExists(atPath: output) && !isFolder(output) {
            throw ValidationError("-o \(output) is a file; folder mode writes into a folder")
        }
        if samePlace(input, output) {
            throw ValidationError("-o \(output) is the input folder; outputs would replace the inputs")
        }
        if let reference, !isFolder(reference) {
            throw ValidationError("--ref \(reference) is not a folder (folder mode compares with references of the same names)")
        }
    }

    private static func samePlace(_ a: String, _ b: String) -> Bool {
        URL(fileURLWithPath: a).resolvingSymlinksInPath().standardizedFileURL
            == URL(fileURLWithPath: b).resolvingSymlinksInPath().standardizedFileURL
    }

    /// The image files (PNG, JPEG) directly in `folder`, by name.
    static func imageNames(in folder: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw ValidationError("cannot list \(folder): \(error.localizedDescription)")
        }
        return names.filter { !$0.hasPrefix(".") && ImageFileFormat(path: $0) != nil }.sorted()
    }

    /// The name `input`'s output gets: its own, or its stem with `format`'s extension when
    /// that is another format.
    static func outputName(_ input: String, format: ImageFileFormat?) -> String {
        guard let format, ImageFileFormat(path: input) != format else { return input }
        let stem = input.lastIndex(of: ".").map { String(input[..<$0]) } ?? input
        return stem + "." + format.fileExtension
    }

    /// Refuses, before any work, two inputs whose outputs would have one name
    /// (`a.png` and `a.jpg` with `--format png`).
    static func checkDistinctOutputs(_ names: [String], format: ImageFileFormat?) throws {
        var inputOf: [String: String] = [:]
        for name in names {
            let output = outputName(name, format: format)
            if let other = inputOf[output] {
                throw ValidationError("\(other) and \(name) would both be written as \(output); "
                                      + "give --format to keep their own formats, or rename one")
            }
            inputOf[output] = name
        }
    }

    /// What became of one image.
    enum Outcome {
        case restored
        /// The output was already complete (a rerun).
        case alreadyComplete
        /// Not restored, or restored but not measured: the message names the file.
        case failed(String)
    }

    /// One image's result, for metrics.csv and the report.
    struct Item {
        let name: String
        /// The output file's name in the output folder.
        let outputName: String
        var outcome: Outcome = .restored
        var quality: QualityPair?
        /// Where the report zooms in, as fractions of the image's size.
        var crop: ZoomCrop?
        var failed: Bool { if case .failed = outcome { true } else { false } }
    }

    func run() throws {
        let names = try Self.imageNames(in: inputFolder)
        guard !names.isEmpty else { throw ValidationError("\(inputFolder) holds no \(ImageFileFormat.extensionList) files") }
        try Self.checkDistinctOutputs(names, format: format)
        do {
            try FileManager.default.createDirectory(atPath: outputFolder, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("cannot create \(outputFolder): \(error.localizedDescription)")
        }
        removeAbandonedTemporaries(of: names)
        let complete = names.map { isComplete($0) }
        let pending = complete.filter { !$0 }.count
        let measuring = referenceFolder != nil || reportPath != nil
        // Complete outputs are only read back to measure them; pending images come after,
        // so the progress bar's time estimate counts restorations alone.
        let order = names.indices.filter { complete[$0] && measuring } + names.indices.filter { !complete[$0] }
        let pendingPixels = names.indices.filter { !complete[$0] }.map { Self.imagePixels(inputPath(names[$0])) }
        let jobs = min(self.jobs ?? Self.defaultJobs(pixels: pendingPixels, threads: threads), max(order.count, 1))
        let kernelThreads = max(1, threads / jobs)
        let jobBudget = budget / jobs
        if verbose {
            print("\(names.count) images, \(pending) to restore: \(jobs) at a time × \(kernelThreads) kernel threads, "
                  + "\(MemoryLimitError.format(jobBudget)) of the memory budget each")
        }

        var items = names.map { Item(name: $0, outputName: Self.outputName($0, format: format), outcome: .alreadyComplete) }
        let lock = NSLock()
        var next = 0
        var restored = 0
        let progress = ProgressBar(label: "images")
        DispatchQueue.concurrentPerform(iterations: jobs) { _ in
            var restoration: ImageRestoration?
            while true {
                let index: Int? = lock.withLock {
                    defer { next += 1 }
                    return next < order.count ? order[next] : nil
                }
                guard let index else { return }
                var item = Item(name: names[index], outputName: Self.outputName(names[index], format: format))
                var notes: (warning: String?, tiling: String?) = (nil, nil)
                do {
                    if restoration == nil { restoration = try makeRestoration(kernelThreads, jobBudget) }
                    (item, notes.warning, notes.tiling) = try process(names[index], complete: complete[index], restoration: restoration!)
                } catch {
                    item.outcome = .failed(describe(error, file: inputPath(names[index])))
                }
                lock.withLock {
                    items[index] = item
                    if let tiling = notes.tiling, verbose { print("\(names[index]): \(tiling)") }
                    if let warning = notes.warning { progress.interrupt(with: "rrun: warning: \(warning)") }
                    if case .failed(let message) = item.outcome { progress.interrupt(with: "rrun: error: \(message)") }
                    if !complete[index] {
                        restored += 1
                        progress.update(restored, pending)
                    }
                }
            }
        }
        progress.finish()

        if let referenceFolder { try writeMetrics(items, referenceFolder: referenceFolder) }
        if let reportPath {
            let report = FolderReport(items: items, inputFolder: inputFolder, outputFolder: outputFolder,
                                      referenceFolder: referenceFolder, reportPath: reportPath)
            try report.write()
            print("report: \(reportPath)")
        }
        let failures = items.filter(\.failed).count
        let done = items.filter { if case .restored = $0.outcome { true } else { false } }.count
        print("restored \(done), already complete \(items.count - done - failures), failed \(failures) "
              + "of \(items.count) images into \(outputFolder)")
        if failures > 0 { throw ExitCode.failure }
    }

    /// Images restored at once when --jobs is not given, for images of `pixels` pixels each.
    /// Small images go one per kernel thread: the kernels of one small image synchronise
    /// at every op and leave cores idle, images do not wait for each other (16 noisy 256²
    /// photos through the demo denoiser, 2 threads: 8–10 % faster). Large images go one at
    /// a time on every thread: sessions side by side each stream their own large arena
    /// through the shared caches (4 photos of 1024²: 10–20 % slower two at a time).
    static func defaultJobs(pixels: [Int], threads: Int) -> Int {
        guard !pixels.isEmpty else { return 1 }
        let median = pixels.sorted()[pixels.count / 2]
        return median <= smallImagePixels ? min(threads, pixels.count) : 1
    }

    /// The largest image (width × height) that `defaultJobs` counts as small.
    static let smallImagePixels = 512 * 512

    /// Width × height from an image file's header without decoding it, or 0 when the
    /// header is not there (the file fails later, when it is decoded).
    static func imagePixels(_ path: String) -> Int {
        guard let handle = FileHandle(forReadingAtPath: path) else { return 0 }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: jpegHeaderSearch) else { return 0 }
        return ImageFileFormat(path: path).map { PixelImage.pixelCount(header: [UInt8](header), format: $0) } ?? 0
    }

    /// How far into a JPEG its start of frame is looked for: past the EXIF and ICC segments
    /// cameras put first (each at most 64 KiB).
    static let jpegHeaderSearch = 1 << 18

    private func inputPath(_ name: String) -> String { inputFolder + "/" + name }
    private func outputPath(_ name: String) -> String { outputFolder + "/" + Self.outputName(name, format: format) }

    /// Deletes the temporary files a killed run left in the output folder: ImageFiles writes
    /// `.<name>.<pid>-<attempt>-<random>.tmp` beside `<name>`, so one for an output name whose
    /// process no longer exists will never be renamed into place.
    private func removeAbandonedTemporaries(of names: [String]) {
        let outputs = Set(names.map { Self.outputName($0, format: format) })
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: outputFolder)) ?? [] {
            guard entry.hasPrefix("."), entry.hasSuffix(".tmp") else { continue }
            let parts = entry.dropFirst().dropLast(4).split(separator: ".")
            guard let tag = parts.last, let pid = tag.split(separator: "-").first.flatMap({ Int32($0) }),
                  outputs.contains(parts.dropLast().joined(separator: ".")),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: outputFolder + "/" + entry)
        }
    }

    /// Whether `name`'s output exists and is not older than its input. Outputs are
    /// renamed into place only when complete, so existing means whole.
    private func isComplete(_ name: String) -> Bool {
        let files = FileManager.default
        guard let output = try? files.attributesOfItem(atPath: outputPath(name)),
              let input = try? files.attributesOfItem(atPath: inputPath(name)),
              output[.type] as? FileAttributeType == .typeRegular,
              let written = output[.modificationDate] as? Date, let changed = input[.modificationDate] as? Date
        else { return false }
        return written >= changed
    }

    /// Restores (or, when complete, reads back) one image, measures it against its
    /// reference and picks the report's crop; also says what a JPEG output left out and the
    /// tiles chosen.
    private func process(_ name: String, complete: Bool, restoration: ImageRestoration) throws
        -> (Item, warning: String?, tiling: String?) {
        var item = Item(name: name, outputName: Self.outputName(name, format: format),
                        outcome: complete ? .alreadyComplete : .restored)
        let input = try PixelImage.read(path: inputPath(name))
        var output: PixelImage
        var warning: String?, tiling: Restorer.Tiling?
        if complete {
            output = try PixelImage.read(path: outputPath(name))
        } else {
            tiling = try restoration.tiling(for: input)
            output = try restoration.restore(input, tiling: tiling!)
            if let outputFormat = ImageFileFormat(path: item.outputName), let loss = output.loss(in: outputFormat) {
                warning = "\(outputPath(name)): \(outputFormat.name) cannot hold \(loss); it is left out (give --format png to keep it)"
                output = output.compatible(with: outputFormat)
            }
            try output.write(path: outputPath(name))
        }
        if reportPath != nil { item.crop = ZoomCrop(mostDetailIn: output, inputWidth: input.width, inputHeight: input.height) }
        if let referenceFolder {
            let path = referenceFolder + "/" + name
            do {
                item.quality = try ImageRestoration.measure(input: input, output: output,
                                                            reference: try PixelImage.read(path: path), referencePath: path)
            } catch {
                // The output is written; only its measurement failed.
                item.outcome = .failed(describe(error, file: path))
            }
        }
        return (item, warning, tiling?.description)
    }

    /// The error's text, starting with `file` unless it names it already.
    private func describe(_ error: any Error, file: String) -> String {
        let text = "\(error)"
        return text.contains(file) ? text : "\(file): \(text)"
    }

    /// OUT_DIR/metrics.csv: a row per image (empty cells where nothing was measured), then
    /// the summary line on stdout.
    private func writeMetrics(_ items: [Item], referenceFolder: String) throws {
        let number = { (value: Double?) in value.map { $0.isFinite ? String(format: "%.4f", $0) : "inf" } ?? "" }
        var csv = "name,input_psnr,input_ssim,output_psnr,output_ssim\n"
        for item in items {
            let q = item.quality
            csv += [csvField(item.name), number(q?.input?.psnr), number(q?.input?.ssim),
                    number(q?.output.psnr), number(q?.output.ssim)].joined(separator: ",") + "\n"
        }
        let path = outputFolder + "/" + Self.metricsName
        try FileBytes.writeAtomically(Array(csv.utf8), to: path) { ImageIOError.fileSystem(file: path, detail: $0) }
        let measured = items.compactMap(\.quality)
        guard !measured.isEmpty else {
            print("no image measured against \(referenceFolder)")
            return
        }
        let mean = { (values: [Double]) in values.reduce(0, +) / Double(values.count) }
        let inputs = measured.compactMap(\.input)
        let before = inputs.count == measured.count
            ? String(format: "PSNR %.2f → %.2f dB, SSIM %.4f → %.4f", mean(inputs.map(\.psnr)), mean(measured.map(\.output.psnr)),
                     mean(inputs.map(\.ssim)), mean(measured.map(\.output.ssim)))
            : String(format: "PSNR %.2f dB, SSIM %.4f", mean(measured.map(\.output.psnr)), mean(measured.map(\.output.ssim)))
        print("mean over \(measured.count) images against \(referenceFolder): \(before) (\(path))")
    }

    /// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
    private func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension RRun.Restore {
    /// Folder mode (see `FolderRestoration`).
    func restoreFolder(_ model: Model, extraInputs: [String: HostTensor]) throws {
        guard let output else { throw ValidationError("folder mode needs -o OUT_DIR") }
        try FolderRestoration(
            inputFolder: inputs[0], outputFolder: output, referenceFolder: ref, reportPath: report, jobs: jobs,
            threads: threads, budget: try memoryBudget(), format: format, verbose: verbose,
            makeRestoration: { threads, budget in
                try imageRestoration(Session(model: model, threads: threads), extraInputs: extraInputs, budget: budget)
            }
        ).run()
    }
}

import ArgumentParser
import Foundation
import Format
import Runtime

extension RRun {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model's version, metadata, inputs and outputs, nodes and tensors.",
            discussion: "With --shape, also plans for that input size and prints the arena it needs.")

        @Argument(help: "The converted model (.rgraph).")
        var model: String

        @Option(help: "Plan for these input shapes (one per graph input, e.g. 1,3,256,256).")
        var shape: [String] = []

        func run() throws {
            try reportingErrors {
                let file = try RGraphReader.read(contentsOf: model)
                print(file.describe())
                guard !shape.isEmpty else { return }
                let session = Session(model: try Model(graph: file.graph), threads: 1)
                let plan = try session.plan(for: try parseShapes(shape))
                print(PlanSummary(plan).description)
            }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time the model on random inputs (scripts/bench/ compares with onnxruntime).")

        @Argument(help: "The converted model (.rgraph).")
        var model: String

        @Option(help: "Input shape, one per graph input (e.g. 1,3,512,512).")
        var shape: [String]

        @Option(help: "Timed runs.")
        var runs: Int = 10

        @Option(help: "Untimed runs first.")
        var warmup: Int = 2

        @Option(help: "Threads for Restore's kernels.")
        var threads: Int = ProcessInfo.processInfo.activeProcessorCount

        @Flag(help: "Print one JSON line: median_ms, times_ms, peak_rss_bytes.")
        var json = false

        func run() throws {
            try reportingErrors {
                let session = Session(model: try loadModel(model), threads: threads)
                var seed: UInt64 = 0x5EED
                let inputs = try parseShapes(shape).map { shape in
                    HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in
                        seed = seed &* 6364136223846793005 &+ 1442695040888963407
                        return Float(seed >> 40) / Float(1 << 24)
                    })
                }
                for _ in 0..<warmup { _ = try session.run(inputs) }
                var times: [Double] = []
                for _ in 0..<max(1, runs) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try session.run(inputs)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                }
                let median = times.sorted()[times.count / 2]
                let rss = peakResidentBytes()
                if json {
                    let list = times.map { String(format: "%.3f", $0) }.joined(separator: ", ")
                    print("{\"median_ms\": \(String(format: "%.3f", median)), \"times_ms\": [\(list)], \"peak_rss_bytes\": \(rss)}")
                } else {
                    print(String(format: "median %.2f ms over %d runs, peak RSS %.1f MiB", median, times.count, Double(rss) / 1048576))
                }
            }
        }
    }
}

/// Parses "1,3,256,256" shapes.
func parseShapes(_ texts: [String]) throws -> [[Int]] {
    try texts.map { text in
        let dims = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ValidationError("a shape is comma-separated sizes like 1,3,256,256, found '\(text)'")
        }
        return dims.compactMap { $0 }
    }
}

/// Peak resident set size of this process, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

/// Plan statistics for `--verbose` and `info --shape`.
struct PlanSummary: CustomStringConvertible {
    let plan: Plan
    init(_ plan: Plan) { self.plan = plan }

    var description: String {
        let mib = { (bytes: Int) in String(format: "%.2f MiB", Double(bytes) / 1048576) }
        return """
            plan for \(plan.inputShapes.map { "\($0)" }.joined(separator: ", ")): \(plan.kernelCount) kernels, \
            \(plan.foldedNodes) nodes evaluated while planning, \(plan.viewNodes) views
              arena \(mib(plan.arenaBytes)) (all intermediates without sharing: \(mib(plan.intermediateBytes)))
            """
    }
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal, with an
/// estimate of the time left from the average time per step so far.
final class ProgressBar {
    private let label: String
    private let enabled = isatty(STDERR_FILENO) != 0
    private let start = Date()
    private var drawn = false

    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        guard enabled, total > 1, done > 0 else { return }
        let width = 30
        let filled = width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let left = Int((Date().timeIntervalSince(start) / Double(done) * Double(total - done)).rounded())
        let estimate = done < total ? String(format: ", %d:%02d left", left / 60, left % 60) : ""
        // "\u{1B}[K" clears what a longer previous line left on the right.
        FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) \(label)\(estimate)\u{1B}[K".utf8))
        drawn = true
    }

    func finish() {
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

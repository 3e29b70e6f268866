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
                // A run verifies only the tensors it reads; inspecting a file verifies them all.
                if let checksums = file.checksums {
                    let count = checksums.unverified.count
                    try checksums.verifyAll()
                    print("checksums: all \(count) tensors match their CRC-64")
                }
                guard !shape.isEmpty else { return }
                let session = Session(model: try Model(file: file), threads: 1)
                let plan = try session.plan(for: try parseShapes(shape))
                print(PlanSummary(plan, model: session.model).description)
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

        @Flag(help: "Print one JSON line: median_ms, times_ms, peak_rss_bytes, cpu_path.")
        var json = false

        @Flag(help: "Time every kernel of the timed runs; print the time per op kind and the slowest nodes.")
        var profile = false

        mutating func validate() throws {
            guard runs >= 1 else { throw ValidationError("--runs must be at least 1, found \(runs)") }
            guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, found \(warmup)") }
            guard (1...Restore.maximumThreads).contains(threads) else {
                throw ValidationError("--threads must be 1 to \(Restore.maximumThreads), found \(threads)")
            }
        }

        func run() throws {
            try reportingErrors {
                let session = Session(model: try loadModel(model), threads: threads)
                var seed: UInt64 = 0x5EED
                let shapes = try parseShapes(shape)
                // Weigh the run and its random inputs before allocating either.
                var inputBytes = 0
                for shape in shapes {
                    guard let count = MemoryLimit.elementCount(shape), let bytes = MemoryLimit.bytes(count, 4),
                          !inputBytes.addingReportingOverflow(bytes).overflow else {
                        throw MemoryLimitError(what: "an input of shape \(shape)", needed: nil, limit: session.memoryLimit,
                                               advice: "use a smaller --shape")
                    }
                    inputBytes += bytes
                }
                _ = try session.checkedPlan(for: shapes, besides: inputBytes)
                let inputs = shapes.map { shape in
                    HostTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in
                        seed = seed &* 6364136223846793005 &+ 1442695040888963407
                        return Float(seed >> 40) / Float(1 << 24)
                    })
                }
                for _ in 0..<warmup { _ = try session.run(inputs) }
                session.profiling = profile
                var times: [Double] = []
                var nodeSeconds: [Int: Double] = [:]
                for _ in 0..<max(1, runs) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try session.run(inputs)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                    for (node, seconds) in session.stepTimes { nodeSeconds[node, default: 0] += seconds }
                }
                if profile {
                    let plan = try session.plan(for: inputs.map(\.shape))
                    print(KernelProfile(graph: session.model.graph, plan: plan, nodeSeconds: nodeSeconds, runs: times.count))
                }
                let median = times.sorted()[times.count / 2]
                let rss = peakResidentBytes()
                if json {
                    let list = times.map { String(format: "%.3f", $0) }.joined(separator: ", ")
                    print("{\"median_ms\": \(String(format: "%.3f", median)), \"times_ms\": [\(list)], \"peak_rss_bytes\": \(rss), "
                          + "\"cpu_path\": \"\(CPUFeatures.name(of: CPUFeatures.level))\"}")
                } else {
                    print(CPUFeatures.summary)
                    print(String(format: "median %.2f ms over %d runs, peak RSS %.1f MiB", median, times.count, Double(rss) / 1048576))
                }
            }
        }
    }
}

/// Where a run's time goes: milliseconds per run by op kind, then the slowest nodes.
struct KernelProfile: CustomStringConvertible {
    let graph: Graph
    let plan: Plan
    let nodeSeconds: [Int: Double]
    let runs: Int
    var slowestShown = 25

    var description: String {
        let total = nodeSeconds.values.reduce(0, +)
        let milliseconds = { (seconds: Double) in seconds * 1000 / Double(max(1, runs)) }
        let share = { (seconds: Double) in total > 0 ? 100 * seconds / total : 0 }
        var byKind: [String: (seconds: Double, count: Int)] = [:]
        for (node, seconds) in nodeSeconds {
            let kind = "\(graph.nodes[node].op)"
            byKind[kind, default: (0, 0)].seconds += seconds
            byKind[kind, default: (0, 0)].count += 1
        }
        var lines = [String(format: "kernels: %.2f ms per run", milliseconds(total)), "by op:"]
        for (kind, entry) in byKind.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            lines.append(String(format: "  %8.2f ms %5.1f%%  %4d× %@", milliseconds(entry.seconds), share(entry.seconds), entry.count, kind))
        }
        lines.append("slowest nodes:")
        for (node, seconds) in nodeSeconds.sorted(by: { $0.value > $1.value }).prefix(slowestShown) {
            let item = graph.nodes[node]
            let shape = item.outputs.first.flatMap { plan.valueShapes[$0] }.map { "\($0)" } ?? "?"
            lines.append(String(format: "  %8.2f ms %5.1f%%  %@ %@ → %@", milliseconds(seconds), share(seconds), "\(item.op)", item.name, shape))
        }
        return lines.joined(separator: "\n")
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
    /// Where the weights the model's kernels use (Winograd-transformed, packed) came from.
    let usage: PreparedWeightUsage
    /// Packed values of the file for kernels this Restore does not have.
    let foreign: [ForeignPackedConstant]

    init(_ plan: Plan, model: Model) {
        self.plan = plan
        self.usage = model.preparedWeightUsage
        self.foreign = model.foreignPackedConstants
    }

    var description: String {
        let mib = { (bytes: Int) in String(format: "%.2f MiB", Double(bytes) / 1048576) }
        var lines = ["""
            plan for \(plan.inputShapes.map { "\($0)" }.joined(separator: ", ")): \(plan.kernelCount) kernels, \
            \(plan.foldedNodes) nodes evaluated while planning, \(plan.viewNodes) views
              arena \(mib(plan.arenaBytes)) (all intermediates without sharing: \(mib(plan.intermediateBytes))), \
            weights prepared by kernels for all plans \(usage.preparedAtLoad) (\(mib(usage.preparedAtLoadBytes))), \
            used in place from the file \(usage.usedFromFile) (\(mib(usage.usedFromFileBytes)))
            """]
        if usage.preparedAtLoad > 0 && (usage.unusedInFile > 0 || !foreign.isEmpty) {
            lines.append("  the file's packed weights are not all for this CPU and Restore: \(usage.preparedAtLoad) "
                         + "prepared at load instead (reconvert with convert --prepare native to skip that)")
        }
        if usage.unusedInFile > 0 {
            lines.append("  \(usage.unusedInFile) packed in the file and not used (made for another CPU level, "
                         + "or for kernels these sizes do not choose)")
        }
        if !foreign.isEmpty {
            lines.append("  \(foreign.count) packed in the file for kernels this Restore does not have: "
                         + foreign.prefix(3).map(\.description).joined(separator: ", ") + (foreign.count > 3 ? ", …" : ""))
        }
        return lines.joined(separator: "\n")
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

    /// Clears the bar so that the next line on the terminal starts clean; it is drawn again
    /// at the next update.
    func clear() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        drawn = false
    }

    /// Prints `line` on stderr on a line of its own; the bar is drawn again at the next update.
    func interrupt(with line: String) {
        let clear = drawn ? "\r\u{1B}[K" : ""
        FileHandle.standardError.write(Data((clear + line + "\n").utf8))
        drawn = false
    }
}

/// Times the iterations of an optimisation (`rrun dip -v`, `rrun dgp -v`): `tick()` after
/// each one; the summary leaves out the first, which also plans and builds the kernels.
final class IterationTimer {
    private var times: [Double] = []
    private var last = Date()

    /// Restarts the clock (after work that is not an iteration).
    func reset() { last = Date() }

    func tick() {
        times.append(Date().timeIntervalSince(last))
        last = Date()
    }

    var summary: String {
        let steady = (times.count > 1 ? Array(times.dropFirst()) : times).sorted()
        guard !steady.isEmpty else { return "iteration: none timed" }
        return String(format: "iteration: median %.1f ms, fastest %.1f ms (%d timed after the first)",
                      steady[steady.count / 2] * 1000, steady[0] * 1000, steady.count)
    }
}

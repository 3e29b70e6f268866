import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// One golden case (format: Tests/Fixtures/README.md): an ONNX model, the inputs of one or
/// more runs, a reference's outputs for them, and the tolerance they are compared under
/// with the reason for it, all described by the folder's `case.json`.
struct GoldenCase {
    /// Why a case folder could not be read.
    struct ReadError: Error, CustomStringConvertible {
        var file: String
        var problem: String
        var description: String { "\(file): \(problem)" }
    }

    /// How far Restore may be from the reference: an output passes when its max abs error
    /// over its largest expected magnitude is at most `relative`, or, when `absolute` is
    /// given, its max abs error is at most `absolute`.
    struct Tolerance: Decodable, CustomStringConvertible {
        var relative: Float
        var absolute: Float?

        func allows(maxAbs: Float, relative measured: Float) -> Bool {
            measured <= relative || absolute.map { maxAbs <= $0 } ?? false
        }

        var description: String { "relative \(relative)" + (absolute.map { ", absolute \($0)" } ?? "") }
    }

    /// The contents of `case.json`.
    struct Description: Decodable {
        /// The ONNX file, relative to the case folder ("model.onnx" when absent).
        var model: String?
        /// What computed the outputs, with its version ("onnxruntime 1.32.0").
        var reference: String
        var tolerance: Tolerance
        /// One line saying why the tolerance is what it is.
        var justification: String
        /// Folders (relative to the case) of the runs, each with `input_<i>.npy` and
        /// `output_<i>.npy`; when absent the case folder itself is the one run.
        var runs: [String]?
        /// Where the runs' input files are when another case shares them (relative path).
        var inputsFrom: String?
        /// The multiple of H and W the model needs (`convert --multiple`), default 1.
        var multiple: Int?
    }

    /// One run: inputs in graph input order, the reference's outputs in graph output order.
    struct Run {
        var name: String
        var inputs: [HostTensor]
        var expected: [HostTensor]
    }

    let name: String
    let folder: URL
    let description: Description

    /// Tests/Fixtures, found from this file's path so no package resources are needed.
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Reads the case in `folder`; `name` defaults to its path under Tests/Fixtures.
    init(_ folder: URL, name: String? = nil) throws {
        self.folder = folder
        let root = Self.fixtures.standardizedFileURL.path + "/"
        let path = folder.standardizedFileURL.path
        self.name = name ?? (path.hasPrefix(root) ? String(path.dropFirst(root.count)) : folder.lastPathComponent)
        let file = folder.appendingPathComponent("case.json")
        do {
            description = try JSONDecoder().decode(Description.self, from: Data(contentsOf: file))
        } catch {
            throw ReadError(file: file.path, problem: "\(error)")
        }
    }

    /// The case at `path` under Tests/Fixtures.
    init(_ path: String) throws {
        try self.init(Self.fixtures.appendingPathComponent(path))
    }

    /// Every case under Tests/Fixtures/`path` (folders holding a case.json), sorted by name.
    static func all(under path: String = "") throws -> [GoldenCase] {
        let root = fixtures.appendingPathComponent(path)
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            throw ReadError(file: root.path, problem: "cannot list the folder")
        }
        return try enumerator.compactMap { $0 as? URL }
            .filter { $0.lastPathComponent == "case.json" }
            .map { try GoldenCase($0.deletingLastPathComponent()) }
            .sorted { $0.name < $1.name }
    }

    var model: URL { folder.appendingPathComponent(description.model ?? "model.onnx") }

    /// The runs, their tensors read from the case's files.
    func runs() throws -> [Run] {
        let inputFolder = description.inputsFrom.map { folder.appendingPathComponent($0) } ?? folder
        return try (description.runs ?? [""]).map { run in
            Run(name: run,
                inputs: try Self.numbered(inputFolder.appendingPathComponent(run), "input"),
                expected: try Self.numbered(folder.appendingPathComponent(run), "output"))
        }
    }

    /// `prefix_0.npy`, `prefix_1.npy` … of `folder`, up to the first missing one.
    private static func numbered(_ folder: URL, _ prefix: String) throws -> [HostTensor] {
        var tensors: [HostTensor] = []
        while true {
            let file = folder.appendingPathComponent("\(prefix)_\(tensors.count).npy")
            guard FileManager.default.fileExists(atPath: file.path) else { return tensors }
            tensors.append(try NumPyFile.read(path: file.path))
        }
    }
}

/// The one check of every golden case: convert the case's model, run it on each run's
/// inputs and compare every output with the reference under the case's tolerance,
/// printing max abs and relative errors.
enum GoldenCheck {
    /// Which graph runs: the importer's, or the simplified one `convert` writes (checked
    /// after a round trip through a .rgraph file).
    enum Stage: String, CaseIterable {
        case imported, simplified
    }

    /// A case's graphs as imported and as simplified.
    struct Converted {
        /// The model's outputs before any pruning: the order of the `output_<i>.npy` files.
        var modelOutputs: [String]
        var imported: Graph
        var simplified: Graph
        var report: Simplifier.Report
    }

    /// Conversions made so far in this test process, by model file and arguments: the
    /// coverage test converts every case the parity tests convert (and two cases share the
    /// demo denoiser's model), and simplifying a Swin in a debug build takes tens of seconds.
    private static var conversions: [String: Converted] = [:]
    private static let conversionsLock = NSLock()

    /// Imports and simplifies `golden`'s model. `kept` prunes the graph to those outputs;
    /// `fixedInputShape` fixes the first input's shape before simplification, as a
    /// fixed-size export would have it.
    static func convert(_ golden: GoldenCase, keeping kept: Set<String>? = nil,
                        fixedInputShape: [Int]? = nil) throws -> Converted {
        let multiple = golden.description.multiple ?? 1
        let key = "\(golden.model.standardizedFileURL.path) \(multiple) \(kept.map { $0.sorted() } ?? []) \(fixedInputShape ?? [])"
        if let converted = conversionsLock.withLock({ conversions[key] }) { return converted }
        let converted = try convertUncached(golden.model, multiple: multiple, keeping: kept, fixedInputShape: fixedInputShape)
        conversionsLock.withLock { conversions[key] = converted }
        return converted
    }

    private static func convertUncached(_ model: URL, multiple: Int, keeping kept: Set<String>?,
                                        fixedInputShape: [Int]?) throws -> Converted {
        var graph = try ONNXImporter().importGraph(at: model)
        let modelOutputs = graph.outputs.map(\.name)
        if let kept {
            graph.outputs.removeAll { !kept.contains($0.name) }
            _ = graph.removeDeadNodes()
        }
        if let fixedInputShape {
            graph.inputs[0].shape = fixedInputShape.map { .fixed($0) }
        }
        var simplified = graph
        let report = try Simplifier.simplify(&simplified, multiple: multiple)
        return Converted(modelOutputs: modelOutputs, imported: graph, simplified: simplified, report: report)
    }

    /// Checks `golden` at `stages`, returning the simplified graph. `kept` and `fixedRun`
    /// (the index of the one run to check, whose input size is then fixed) as in `convert`.
    @discardableResult
    static func assertMatches(_ golden: GoldenCase, outputs kept: Set<String>? = nil, fixedRun: Int? = nil,
                              stages: [Stage] = Stage.allCases, file: StaticString = #filePath, line: UInt = #line) throws -> Graph {
        var runs = try golden.runs()
        XCTAssertFalse(runs.isEmpty, "\(golden.name): no runs", file: file, line: line)
        if let fixedRun { runs = [runs[fixedRun]] }
        let converted = try convert(golden, keeping: kept, fixedInputShape: fixedRun.map { _ in runs[0].inputs[0].shape })
        let label = golden.name + (fixedRun.map { _ in ", fixed \(runs[0].name)" } ?? "")
        print("\(label): \(golden.description.reference), tolerance \(golden.description.tolerance): \(golden.description.justification)")
        print("\(label): imported \(converted.imported.nodes.count) nodes\n\(converted.report)")
        print("\(label): ops after conversion: \(histogram(converted.simplified))")
        for stage in stages {
            let graph = try stage == .imported ? converted.imported : roundTrip(converted.simplified)
            let session = Session(model: try Model(graph: graph), threads: 2)
            for run in runs {
                let start = Date()
                let outputs = try session.run(run.inputs)
                let seconds = Date().timeIntervalSince(start)
                if kept == nil {
                    XCTAssertEqual(graph.outputs.count, run.expected.count, "\(label) \(run.name): outputs", file: file, line: line)
                }
                for (output, actual) in zip(graph.outputs, outputs) {
                    guard let index = converted.modelOutputs.firstIndex(of: output.name), index < run.expected.count else {
                        XCTFail("\(label): no reference for output \(output.name)", file: file, line: line)
                        continue
                    }
                    let parts = [label, stage.rawValue, run.name, "output \(index) \(output.name)"].filter { !$0.isEmpty }
                    assertClose(actual, run.expected[index], golden.description.tolerance,
                                label: parts.joined(separator: " "), seconds: seconds, file: file, line: line)
                }
            }
        }
        return converted.simplified
    }

    /// Compares one output with its reference: same dtype and shape, and values within
    /// `tolerance`; prints the errors.
    static func assertClose(_ actual: HostTensor, _ expected: HostTensor, _ tolerance: GoldenCase.Tolerance,
                            label: String, seconds: Double? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.dtype, expected.dtype, "\(label): dtype", file: file, line: line)
        XCTAssertEqual(actual.shape, expected.shape, "\(label): shape", file: file, line: line)
        let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
        let time = seconds.map { String(format: " (run %.3f s)", $0) } ?? ""
        print("\(label): max abs error \(maxAbs), relative \(relative)\(time)")
        XCTAssertTrue(tolerance.allows(maxAbs: maxAbs, relative: relative),
                      "\(label): max abs error \(maxAbs), relative \(relative) exceed \(tolerance)", file: file, line: line)
    }

    /// `graph` written to a .rgraph file and read back, as `convert` leaves it for `rrun`.
    private static func roundTrip(_ graph: Graph) throws -> Graph {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("golden-\(UUID()).rgraph").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RGraphWriter.write(graph, to: path)
        return try RGraphReader.read(contentsOf: path).graph
    }

    /// "op×count" per op kind, sorted by name.
    static func histogram(_ graph: Graph) -> String {
        var counts: [String: Int] = [:]
        for node in graph.nodes { counts[node.op.rawValue, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
    }
}

import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// The check every model-family parity test makes: a fixture folder (io.json + model.onnx
/// + per-size .npy made by scripts/fixtures/*.py) converted like `convert` does —
/// imported, simplified, written and read back as a .rgraph — and run at every fixture
/// size against onnxruntime's outputs, printing max abs and relative errors.
enum FixtureParity {
    struct Manifest: Decodable {
        struct Case: Decodable {
            var height: Int
            var width: Int
            var inputs: [String: String]
            var outputs: [String: String]
        }
        var multiple: Int?
        var cases: [Case]
    }

    /// Converts a fixture like `convert` does, keeping only `outputs` when given, and
    /// checks every case's kept outputs against onnxruntime's.
    /// With `fixedCase`, the image input is fixed to that case's size before
    /// simplification (as a fixed-size export would have it) and only that case runs;
    /// returns the converted graph.
    @discardableResult
    static func check(_ directory: URL, outputs kept: Set<String>? = nil, fixedCase: Int? = nil, label: String,
                      tolerance: Float, file: StaticString = #filePath, line: UInt = #line) throws -> Graph {
        var manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("io.json")))
        var graph = try ONNXImporter.importModel(at: directory.appendingPathComponent("model.onnx"))
        if let kept {
            graph.outputs.removeAll { !kept.contains($0.name) }
            _ = graph.removeDeadNodes()
        }
        if let fixedCase {
            let size = manifest.cases[fixedCase]
            manifest.cases = [size]
            graph.inputs[0].shape = [.fixed(1), .fixed(3), .fixed(size.height), .fixed(size.width)]
        }
        let imported = graph.nodes.count
        let report = try Simplifier.simplify(&graph, multiple: manifest.multiple ?? 1)
        print("\(label): imported \(imported) nodes\n\(report)")
        print("\(label): ops after conversion: \(histogram(graph))")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parity-\(UUID()).rgraph").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RGraphWriter.write(graph, to: path)
        let model = try Model(graph: try RGraphReader.read(contentsOf: path).graph)
        let session = Session(model: model, threads: 2)
        XCTAssertFalse(manifest.cases.isEmpty, file: file, line: line)
        for testCase in manifest.cases {
            var inputs: [String: HostTensor] = [:]
            for (name, input) in testCase.inputs {
                inputs[name] = try NumPyFile.read(path: directory.appendingPathComponent(input).path)
            }
            let start = Date()
            let outputs = try session.run(inputs)
            let seconds = Date().timeIntervalSince(start)
            for (name, outputFile) in testCase.outputs.sorted(by: { $0.key < $1.key }) where kept?.contains(name) ?? true {
                let expected = try NumPyFile.read(path: directory.appendingPathComponent(outputFile).path)
                guard let actual = outputs[name] else { XCTFail("\(label): no output \(name)", file: file, line: line); continue }
                XCTAssertEqual(actual.shape, expected.shape, "\(label) \(name)", file: file, line: line)
                let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
                print("\(label) \(testCase.height)×\(testCase.width) \(name): max abs error \(maxAbs), relative \(relative) (run \(String(format: "%.3f", seconds)) s)")
                XCTAssertLessThanOrEqual(relative, tolerance, "\(label) \(testCase.height)×\(testCase.width) \(name)", file: file, line: line)
            }
        }
        return graph
    }

    static func histogram(_ graph: Graph) -> String {
        var counts: [String: Int] = [:]
        for node in graph.nodes { counts[node.op.rawValue, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
    }
}

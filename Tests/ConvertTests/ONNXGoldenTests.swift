import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// Every ONNX file that has golden outputs beside it (MODEL.io/, made by
/// scripts/fixtures/make_onnx_references.py with onnxruntime) imported and run by
/// Restore — once as imported and once after the convert-time passes — and compared
/// output by output. This checks the importer's lowering of each op numerically.
final class ONNXGoldenTests: XCTestCase {
    /// fp32, relative to each output's largest magnitude (see ModelParityTests).
    static let tolerance: Float = 1e-4
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Files onnxruntime runs but Restore refuses on purpose (their errors are tested in ONNXImporterTests).
    static let refused: Set<String> = ["unsupported_features.onnx", "opset22.onnx"]

    private func goldenCases(in folder: String) throws -> [URL] {
        let root = Self.fixtures.appendingPathComponent(folder)
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        return enumerator.compactMap { $0 as? URL }
            .filter { $0.pathExtension == "onnx" }
            .filter { FileManager.default.fileExists(atPath: $0.deletingPathExtension().appendingPathExtension("io").path) }
            .sorted { $0.path < $1.path }
    }

    private func numbered(_ folder: URL, _ prefix: String) throws -> [HostTensor] {
        var tensors: [HostTensor] = []
        while true {
            let file = folder.appendingPathComponent("\(prefix)_\(tensors.count).npy")
            guard FileManager.default.fileExists(atPath: file.path) else { return tensors }
            tensors.append(try NumPyFile.read(path: file.path))
        }
    }

    private func check(_ model: URL) throws {
        let name = model.lastPathComponent
        if Self.refused.contains(name) {
            XCTAssertThrowsError(try ONNXImporter.importModel(at: model), "\(name) should be refused")
            return
        }
        let folder = model.deletingPathExtension().appendingPathExtension("io")
        let inputs = try numbered(folder, "input")
        let expected = try numbered(folder, "output")
        let imported = try ONNXImporter.importModel(at: model)
        var simplified = imported
        _ = try Simplifier.simplify(&simplified)
        for (stage, graph) in [("imported", imported), ("simplified", simplified)] {
            let outputs = try Session(model: try Model(graph: graph), threads: 2).run(inputs)
            XCTAssertEqual(outputs.count, expected.count, "\(name) \(stage)")
            for (index, (actual, reference)) in zip(outputs, expected).enumerated() {
                XCTAssertEqual(actual.shape, reference.shape, "\(name) \(stage) output \(index)")
                let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, reference.floats)
                print("\(name) \(stage) output \(index) \(graph.outputs[index].name): max abs error \(maxAbs), relative \(relative)")
                XCTAssertLessThanOrEqual(relative, Self.tolerance, "\(name) \(stage) output \(graph.outputs[index].name)")
            }
        }
    }

    func testImporterFixturesMatchOnnxRuntime() throws {
        let cases = try goldenCases(in: "importer")
        XCTAssertGreaterThanOrEqual(cases.count, 15)
        for model in cases {
            XCTAssertNoThrow(try check(model), model.lastPathComponent)
        }
    }
}

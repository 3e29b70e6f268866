import Foundation
import Format
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// Each model family of Tests/Fixtures/models (made by scripts/fixtures/make_models.py:
/// PyTorch → ONNX, onnxruntime outputs) converted like `convert` does — import, fold,
/// fuse, write and read back a .rgraph — and run at every fixture size against
/// onnxruntime's output.
final class ModelParityTests: XCTestCase {
    /// fp32 tolerance relative to the output's largest magnitude: both runtimes sum the
    /// same products in different orders (GEMM blocking, folded BatchNorm), which moves
    /// results by a few ulps per layer; 1e-4 leaves room for ~20 layers of that.
    static let tolerance: Float = 1e-4

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models")

    private struct Manifest: Decodable {
        struct Case: Decodable {
            var height: Int
            var width: Int
            var inputs: [String: String]
            var outputs: [String: String]
        }
        var multiple: Int?
        var cases: [Case]
    }

    private func checkFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let directory = Self.fixtures.appendingPathComponent(family)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("io.json")))
        var options = ConversionOptions()
        options.multiple = manifest.multiple
        let converted = try Conversion.convert(directory.appendingPathComponent("model.onnx").path, options: options)
        print("\(family): \(converted.report)")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("parity-\(family)-\(UUID()).rgraph").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try RGraphWriter.write(converted.graph, to: path)
        let model = try Model(graph: try RGraphReader.read(contentsOf: path).graph)
        let session = Session(model: model, threads: 2)
        XCTAssertFalse(manifest.cases.isEmpty)
        for testCase in manifest.cases {
            var inputs: [String: HostTensor] = [:]
            for (name, file) in testCase.inputs {
                inputs[name] = try NumPyFile.read(path: directory.appendingPathComponent(file).path)
            }
            let outputs = try session.run(inputs)
            for (name, outputFile) in testCase.outputs {
                let expected = try NumPyFile.read(path: directory.appendingPathComponent(outputFile).path)
                guard let actual = outputs[name] else { XCTFail("\(family): no output \(name)", file: file, line: line); continue }
                XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
                let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
                print("\(family) \(testCase.height)×\(testCase.width) \(name): max abs error \(maxAbs), relative \(relative)")
                XCTAssertLessThanOrEqual(relative, Self.tolerance, "\(family) \(testCase.height)×\(testCase.width)", file: file, line: line)
            }
        }
    }

    func testResGANConditionalGenerator() throws { try checkFamily("resgan") }
    func testDnCNN() throws { try checkFamily("dncnn") }
    func testNAFNet() throws { try checkFamily("nafnet") }
    func testESRGAN() throws { try checkFamily("esrgan") }
    func testConditionedNetwork() throws { try checkFamily("condnet") }
    func testViT() throws { try checkFamily("vit") }
    func testViTWithDecomposedLayerNorm() throws { try checkFamily("vit-opset14") }
    func testViTWithExportedSDPA() throws { try checkFamily("vit-sdpa") }
}

import Foundation
import XCTest

/// Each model family of Tests/Fixtures/models (made by scripts/fixtures/make_models.py,
/// make_vit.py, make_segmenter.py, make_mask2former.py and make_vit_adapter.py: PyTorch →
/// ONNX, onnxruntime outputs) converted like
/// `convert` does — import, fold, fuse, write and read back a .rgraph — and run at every
/// fixture size against onnxruntime's output, under the tolerance of the family's case.json.
final class ModelParityTests: XCTestCase {
    private func checkFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try GoldenCheck.assertMatches(try GoldenCase("models/\(family)"), stages: [.simplified], file: file, line: line)
    }

    func testResGANConditionalGenerator() throws { try checkFamily("resgan") }
    func testDnCNN() throws { try checkFamily("dncnn") }
    func testNAFNet() throws { try checkFamily("nafnet") }
    func testESRGAN() throws { try checkFamily("esrgan") }
    func testConditionedNetwork() throws { try checkFamily("condnet") }
    func testSegmenter() throws { try checkFamily("segmenter") }
    func testViT() throws { try checkFamily("vit") }
    func testViTWithDecomposedLayerNorm() throws { try checkFamily("vit-opset14") }
    func testViTWithExportedSDPA() throws { try checkFamily("vit-sdpa") }
    /// transformers' Mask2Former (Swin backbone): deformable-attention pixel decoder, Einsum mask predictor.
    func testMask2Former() throws { try checkFamily("mask2former/swin-tiny") }
    /// ViT-Adapter + UperNet (scripts/fixtures/vit_adapter.py): logits and the four pyramid levels.
    func testViTAdapterUperNet() throws { try checkFamily("vit-adapter/tiny") }

    /// A realistic model generated on demand into `$variable` (default `folder` in the
    /// temporary directory) by `script --full`; skipped with that advice when absent.
    private func onDemandCase(_ variable: String, folder: String, variant: String, script: String) throws -> GoldenCase {
        let root = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent(folder)
        let directory = root.appendingPathComponent(variant)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("case.json").path) else {
            throw XCTSkip("\(directory.path) is not generated; make it with `.venv/bin/python scripts/fixtures/\(script) "
                + "--full` (.venv from scripts/setup-python.sh) and set \(variable) if it is not in \(root.path)")
        }
        return try GoldenCase(directory, name: "\(folder)/\(variant)")
    }

    /// Mask2Former-Swin-T (hidden 256, 100 queries, 6 encoder and 9 decoder layers) at 224×320.
    func testMask2FormerSwinT() throws {
        try GoldenCheck.assertMatches(try onDemandCase("RESTORE_MASK2FORMER_DIR", folder: "restore-mask2former",
                                                       variant: "swin-t-224x320", script: "make_mask2former.py"),
                                      stages: [.simplified])
    }

    /// ViT-Adapter-S + UperNet (512 channels) at 256×256.
    func testViTAdapterSmallUperNet() throws {
        try GoldenCheck.assertMatches(try onDemandCase("RESTORE_VIT_ADAPTER_DIR", folder: "restore-vit-adapter",
                                                       variant: "small-256", script: "make_vit_adapter.py"),
                                      stages: [.simplified])
    }
}

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
}

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

    private func checkFamily(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try FixtureParity.check(Self.fixtures.appendingPathComponent(family), label: family, tolerance: Self.tolerance,
                                file: file, line: line)
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

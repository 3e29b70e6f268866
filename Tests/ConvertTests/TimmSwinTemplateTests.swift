import Foundation
import ImageFiles
import Runtime
import XCTest
@testable import Convert
@testable import Format

/// The timm Swin classifier template on a random-init checkpoint timm's `save_for_hf` wrote
/// (Tests/Fixtures/checkpoints/swin-timm, scripts/fixtures/make_checkpoints.py): one graph
/// against timm models created at 128×192 and at 192×128.
final class TimmSwinTemplateTests: XCTestCase {
    static let fixture = CheckpointCase("swin-timm")
    /// fp32 through ~15 matmul/norm/softmax steps in another summation order.
    static let tolerance = GoldenCase.Tolerance(relative: 1e-4, absolute: nil)

    func testMatchesTimmAtTwoSizesFromOneGraph() throws {
        let result = try CheckpointCase.convert(Self.fixture.folder.path)
        XCTAssertEqual(result.graph.inputs.map(\.name), ["pixel_values"])
        XCTAssertEqual(result.graph.outputs.map(\.name), ["logits"])
        XCTAssertEqual(result.graph.metadata["restore.multiple"], "64", "patch 4 × 2² × window 4")
        XCTAssertTrue(result.importNotes.first?.contains("swin-timm (detected from names)") ?? false, "\(result.importNotes)")
        func count(_ kind: OpKind) -> Int { result.graph.nodes.filter { $0.op == kind }.count }
        // 6 blocks × (q|k|v, output, fc1, fc2) + 2 mergings + the classifier; one fused
        // window attention per block.
        XCTAssertEqual([count(.windowAttention), count(.linear), count(.layerNorm)], [6, 27, 16])
        for size in UperNetSwinTemplateTests.sizes {
            let input = try NumPyFile.read(path: Self.fixture.file("\(size)/input_0.npy"))
            let output = try Session(model: try Model(graph: result.graph), threads: 2).run([input])[0]
            XCTAssertEqual(output.shape, [1, 5])
            GoldenCheck.assertClose(output, try Self.fixture.reference("\(size)/output_0.npy"), Self.tolerance,
                                    label: "swin-timm \(size) safetensors vs timm 1.0.31 eager (torch 2.15)")
        }
    }

    func testClassifierOfAnotherWidthIsRefusedNamingTheTensor() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swin-timm-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.fixture.edited(into: directory, tensors: { writer in
            writer.remove("head.fc.weight")
            writer.add("head.fc.weight", floats: [Float](repeating: 0.1, count: 5 * 16), shape: [5, 16])
        })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .shapeMismatch(_, "head.fc.weight", [5, 32], [5, 16], _)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
        }
    }
}

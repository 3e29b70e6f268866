import Foundation
import Runtime
import XCTest
@testable import Convert
@testable import Format

/// The BigGAN-PyTorch (G_ema) template on a random-init checkpoint of BigGAN-PyTorch's own
/// Generator (Tests/Fixtures/checkpoints/biggan-pytorch, scripts/fixtures/make_checkpoints.py):
/// the architecture is read from the shapes, the output matches PyTorch eager and the ONNX
/// export of the same function, and `sv0` is skipped as training-only.
final class BigGANPyTorchTemplateTests: XCTestCase {
    static let fixture = CheckpointCase("biggan-pytorch")
    /// fp32; σ comes from one power iteration evaluated in f64 here and f32 in PyTorch, and
    /// the norms are folded into linears of the condition (measured ≲ 2e-6).
    static let tolerance = GoldenCase.Tolerance(relative: 1e-4, absolute: nil)
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("biggan-pytorch-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func testMatchesPyTorchWithTheArchitectureReadFromShapes() throws {
        let result = try CheckpointCase.convert(Self.fixture.folder.path)
        XCTAssertEqual(result.graph.inputs.map(\.name), ["z", "class_vector"])
        XCTAssertEqual(result.graph.inputs.map(\.shape), [[.symbol("batch"), .fixed(20)], [.symbol("batch"), .fixed(5)]])
        XCTAssertTrue(result.importNotes.first?.contains("biggan-pytorch (detected from names)") ?? false, "\(result.importNotes)")
        let skipped = result.importNotes.filter { $0.hasPrefix("skipped training-only tensor") }
        XCTAssertFalse(skipped.isEmpty)
        XCTAssertTrue(skipped.allSatisfy { $0.hasSuffix(".sv0") }, "\(skipped)")
        GoldenCheck.assertClose(try Self.fixture.run(result.graph), try Self.fixture.reference("output_0.npy"), Self.tolerance,
                                label: "biggan-pytorch safetensors vs PyTorch 2.13")
    }

    func testSafetensorsAndONNXOfOneModelGiveOneOutput() throws {
        let fromCheckpoint = try CheckpointCase.convert(Self.fixture.folder.path)
        let fromONNX = try CheckpointCase.convert(Self.fixture.file("model.onnx"))
        print("biggan-pytorch safetensors: \(fromCheckpoint.report.nodesBefore) nodes imported, "
              + "\(fromCheckpoint.graph.nodes.count) after fusion: \(GoldenCheck.histogram(fromCheckpoint.graph))")
        print("biggan-pytorch ONNX: \(fromONNX.report.nodesBefore) nodes imported, "
              + "\(fromONNX.graph.nodes.count) after fusion: \(GoldenCheck.histogram(fromONNX.graph))")
        func count(_ graph: Graph, _ kind: OpKind) -> Int { graph.nodes.filter { $0.op == kind }.count }
        for kind in [OpKind.conv, .linear, .maxPool, .resize] {
            XCTAssertEqual(count(fromCheckpoint.graph, kind), count(fromONNX.graph, kind), "\(kind) nodes")
        }
        XCTAssertEqual(count(fromCheckpoint.graph, .attention), 1)
        XCTAssertLessThanOrEqual(fromCheckpoint.graph.nodes.count, fromONNX.graph.nodes.count)
        GoldenCheck.assertClose(try Self.fixture.run(fromCheckpoint.graph), try Self.fixture.run(fromONNX.graph), Self.tolerance,
                                label: "biggan-pytorch safetensors vs ONNX")
    }

    func testTruncationIsRefusedWithTheReason() {
        XCTAssertThrowsError(try CheckpointCase.convert(Self.fixture.folder.path, truncation: 0.5)) { error in
            guard case .badOption(_, "--truncation", let detail)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("no truncation tables"), detail)
        }
    }

    func testNormInputDisagreeingWithSharedAndZChunkIsRefusedNamingTheTensor() throws {
        let path = try Self.fixture.edited(into: directory, tensors: { writer in
            writer.remove("shared.weight")
            writer.add("shared.weight", floats: [Float](repeating: 0.1, count: 5 * 9), shape: [5, 9])
        })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .shapeMismatch(_, "blocks.0.0.bn1.gain.weight", [32, 13], [32, 12], _)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
        }
    }

    func testAttentionWithoutItsGainIsRefusedNamingTheTensor() throws {
        let path = try Self.fixture.edited(into: directory, tensors: { $0.remove("blocks.2.1.gamma") })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .missingTensor(_, "blocks.2.1.gamma")? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }
}

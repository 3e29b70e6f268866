import Foundation
import ImageFiles
import Runtime
import TestSupport
import XCTest
@testable import Convert
@testable import Format

/// The BigGAN-deep template on a random-init pytorch-pretrained-biggan checkpoint
/// (Tests/Fixtures/checkpoints/biggan-deep, scripts/fixtures/make_checkpoints.py): parity
/// with PyTorch eager at three truncations, the same output as the ONNX export of the same
/// model, and each refusal naming its tensor.
final class BigGANDeepTemplateTests: XCTestCase {
    static let fixture = CheckpointCase("biggan-deep")
    static let folder = fixture.folder
    /// fp32 throughout; the template folds spectral norm, the norms' statistics and γ into
    /// weights, which reorders a few float operations per value (measured ≲ 1e-6).
    static let tolerance = GoldenCase.Tolerance(relative: 1e-4, absolute: nil)
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("biggan-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private func convert(_ path: String, truncation: Double?, architecture: String? = nil) throws -> Conversion.Result {
        try CheckpointCase.convert(path, truncation: truncation, architecture: architecture)
    }

    private func run(_ graph: Graph) throws -> HostTensor { try Self.fixture.run(graph) }

    func testEachTruncationMatchesPyTorch() throws {
        for truncation in [1.0, 0.4, 0.37] {
            let result = try convert(Self.folder.path, truncation: truncation)
            XCTAssertEqual(result.graph.inputs.map(\.name), ["z", "class_vector"])
            XCTAssertEqual(result.graph.outputs.map(\.name), ["image"])
            let expected = try NumPyFile.read(path: Self.folder.appendingPathComponent("t\(truncation)/output_0.npy").path)
            GoldenCheck.assertClose(try run(result.graph), expected, Self.tolerance,
                                    label: "biggan-deep safetensors t=\(truncation) vs PyTorch 2.13")
        }
    }

    func testSafetensorsAndONNXOfOneModelGiveOneOutput() throws {
        let fromCheckpoint = try convert(Self.folder.path, truncation: 0.37)
        let fromONNX = try convert(Self.folder.appendingPathComponent("model.onnx").path, truncation: nil)
        print("biggan-deep safetensors: \(fromCheckpoint.report.nodesBefore) nodes imported, "
              + "\(fromCheckpoint.graph.nodes.count) after fusion: \(GoldenCheck.histogram(fromCheckpoint.graph))")
        print("biggan-deep ONNX: \(fromONNX.report.nodesBefore) nodes imported, "
              + "\(fromONNX.graph.nodes.count) after fusion: \(GoldenCheck.histogram(fromONNX.graph))")
        // The compute-heavy ops are the same fused ops on both paths, and the template emits the
        // self-attention as one `attention` where the ONNX export's bmm/permute/softmax stays
        // two matMuls and a softmax (AttentionFusion does not match that layout).
        func count(_ graph: Graph, _ kind: OpKind) -> Int { graph.nodes.filter { $0.op == kind }.count }
        for kind in [OpKind.conv, .linear, .maxPool, .resize] {
            XCTAssertEqual(count(fromCheckpoint.graph, kind), count(fromONNX.graph, kind), "\(kind) nodes")
        }
        XCTAssertEqual(count(fromCheckpoint.graph, .attention), 1)
        XCTAssertEqual(count(fromCheckpoint.graph, .matMul) + count(fromCheckpoint.graph, .softmax), 0)
        XCTAssertLessThanOrEqual(fromCheckpoint.graph.nodes.count, fromONNX.graph.nodes.count)
        GoldenCheck.assertClose(try run(fromCheckpoint.graph), try run(fromONNX.graph), Self.tolerance,
                                label: "biggan-deep safetensors vs ONNX t=0.37")
    }

    func testTruncationOutsideItsRangeIsRefused() {
        for truncation in [0, 1.5, -0.2] {
            XCTAssertThrowsError(try convert(Self.folder.path, truncation: truncation)) { error in
                guard case .badOption(_, "--truncation", _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            }
        }
    }

    // MARK: Refusals on an edited copy of the checkpoint

    private func editedCheckpoint(config: ((inout [String: Any]) -> Void)? = nil,
                                  tensors edit: (inout SafetensorsWriter) -> Void = { _ in }) throws -> String {
        try Self.fixture.edited(into: directory, config: config, tensors: edit)
    }

    func testMissingTensorIsRefusedByName() throws {
        let path = try editedCheckpoint(tensors: { $0.remove("generator.layers.1.conv_1.weight_u") })
        XCTAssertThrowsError(try convert(path, truncation: 0.4)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .missingTensor(file: directory + "/model.safetensors", tensor: "generator.layers.1.conv_1.weight_u"))
        }
    }

    func testUnexpectedTensorIsRefusedByName() throws {
        let path = try editedCheckpoint(tensors: { $0.add("generator.layers.9.extra", floats: [1, 2], shape: [2]) })
        XCTAssertThrowsError(try convert(path, truncation: 0.4)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .unexpectedTensors(file: directory + "/model.safetensors", tensors: ["generator.layers.9.extra"]))
        }
    }

    func testTrainingOnlyTensorIsSkippedAndListed() throws {
        let path = try editedCheckpoint(tensors: { $0.add("generator.bn.num_batches_tracked", floats: [3], shape: [1]) })
        let result = try convert(path, truncation: 0.4)
        XCTAssertTrue(result.importNotes.contains("skipped training-only tensor generator.bn.num_batches_tracked"),
                      "\(result.importNotes)")
    }

    func testShapeDisagreeingWithTheConfigIsRefusedNamingTheTensor() throws {
        let path = try editedCheckpoint(config: { $0["num_classes"] = 12 })
        XCTAssertThrowsError(try convert(path, truncation: 0.4)) { error in
            guard case .shapeMismatch(_, "embeddings.weight", [16, 12], [16, 10], _)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
        }
    }

    func testInconsistentConfigIsRefusedNamingTheSetting() throws {
        let path = try editedCheckpoint(config: { $0["output_dim"] = 64 })
        XCTAssertThrowsError(try convert(path, truncation: 0.4)) { error in
            guard case .badConfig(let file, let detail)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, directory + "/config.json")
            XCTAssertTrue(detail.contains("output_dim"), detail)
        }
    }

    func testUnknownArchitectureAndUnrecognisedNamesAreRefused() throws {
        XCTAssertThrowsError(try convert(Self.folder.path, truncation: nil, architecture: "stylegan")) { error in
            guard case .unknownArchitecture(_, "stylegan", let known)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(known, ArchitectureTemplates.all.map(\.name))
        }
        let path = try editedCheckpoint(tensors: { $0.remove("generator.gen_z.weight_orig") })
        XCTAssertThrowsError(try convert(path, truncation: nil)) { error in
            guard case .undetectedArchitecture(_, [], _)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testONNXFileRefusesCheckpointOptions() {
        XCTAssertThrowsError(try convert(Self.folder.appendingPathComponent("model.onnx").path, truncation: 0.4)) { error in
            XCTAssertEqual(error as? ConversionError, .optionNeedsCheckpoint(flag: "--truncation", format: "ONNX"))
        }
    }

    func testHalfPrecisionCheckpointKeepsItsStorageTypeUnlessOverridden() throws {
        let path = try editedCheckpoint(tensors: { $0.storeAsFloat16() })
        let kept = try convert(path, truncation: 0.4)
        // The checkpoint's own f16 tensors stay f16; what the template computes from them in
        // f32 (W/σ, the folded norms) is not an f16 value and stays f32, rounded no further.
        let large = kept.graph.orderedConstants.filter { $0.elementCount >= 1024 }
        let half = large.filter { $0.dtype == .float16 }, single = large.filter { $0.dtype == .float32 }
        print("biggan-deep f16 checkpoint, f16 kept: \(half.count) large constants f16, \(single.count) computed ones f32")
        XCTAssertTrue(half.contains { $0.name == "generator.gen_z.bias" }, "\(half.map(\.name))")
        XCTAssertTrue(single.contains { $0.name == "generator.gen_z.weight" }, "\(single.map(\.name))")
        XCTAssertEqual(half.count + single.count, large.count)
        let widened = try CheckpointCase.convert(path, truncation: 0.4, weights: .f32)
        XCTAssertTrue(widened.graph.orderedConstants.allSatisfy { $0.dtype != .float16 })
        // Computation stays f32: either way the f16 checkpoint gives what PyTorch computes in
        // f32 from the same rounded tensors (fp32 tolerance).
        let expected = try NumPyFile.read(path: Self.folder.appendingPathComponent("t0.4/output_f16-weights.npy").path)
        GoldenCheck.assertClose(try run(widened.graph), expected, Self.tolerance,
                                label: "biggan-deep f16 checkpoint, --weights f32, vs PyTorch on the rounded weights")
        GoldenCheck.assertClose(try run(kept.graph), expected, Self.tolerance,
                                label: "biggan-deep f16 checkpoint, f16 storage, vs PyTorch on the rounded weights")
    }
}

/// The other ways a checkpoint is published: one `.safetensors` file with `config.json`
/// beside it, and shards listed by `model.safetensors.index.json`.
final class CheckpointLayoutTests: XCTestCase {
    static let fixture = CheckpointCase("biggan-deep")
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("layout-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func testSafetensorsFileReadsTheConfigBesideIt() throws {
        let result = try CheckpointCase.convert(Self.fixture.file("model.safetensors"), truncation: 0.4)
        GoldenCheck.assertClose(try Self.fixture.run(result.graph), try Self.fixture.reference("t0.4/output_0.npy"),
                                BigGANDeepTemplateTests.tolerance, label: "biggan-deep from model.safetensors")
    }

    func testShardedCheckpointConvertsLikeTheSingleFile() throws {
        let whole = try SafetensorsWriter(copying: SafetensorsFile.read(contentsOf: Self.fixture.file("model.safetensors")))
        let half = whole.tensors.count / 2
        var weightMap: [String: String] = [:]
        for (index, part) in [whole.tensors[..<half], whole.tensors[half...]].enumerated() {
            var shard = whole
            shard.tensors = Array(part)
            let name = "model-0000\(index + 1)-of-00002.safetensors"
            try shard.write(to: directory + "/" + name)
            for tensor in part { weightMap[tensor.name] = name }
        }
        try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": weightMap])
            .write(to: URL(fileURLWithPath: directory + "/model.safetensors.index.json"))
        try FileManager.default.copyItem(atPath: Self.fixture.file("config.json"), toPath: directory + "/config.json")
        let result = try CheckpointCase.convert(directory, truncation: 0.4)
        GoldenCheck.assertClose(try Self.fixture.run(result.graph), try Self.fixture.reference("t0.4/output_0.npy"),
                                BigGANDeepTemplateTests.tolerance, label: "biggan-deep from two shards")
    }
}

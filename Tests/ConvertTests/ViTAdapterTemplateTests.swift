import Foundation
import ImageFiles
import Runtime
import XCTest
@testable import Convert
@testable import Format

/// The ViT-Adapter + UperNet template on a random-init checkpoint under the official code's
/// names, saved as mmseg saves (a .pth's `state_dict`) and converted by
/// scripts/pth_to_safetensors.py (Tests/Fixtures/checkpoints/vit-adapter,
/// scripts/fixtures/make_checkpoints.py; the model of scripts/fixtures/vit_adapter.py):
/// PyTorch eager parity at two non-square sizes from one graph, the same fused ops and
/// output as the ONNX import of the same model, `--head rgb`, the settings config.json
/// overrides, and refusals naming the tensor or setting.
final class ViTAdapterTemplateTests: XCTestCase {
    static let fixture = CheckpointCase("vit-adapter")
    static let sizes = ["64x96", "96x64"]
    /// fp32 through 4 blocks, 10 deformable attentions (bilinear samples summed in another
    /// order), BatchNorm and layer scales folded into weights, the position table resized.
    static let tolerance = GoldenCase.Tolerance(relative: 1e-4, absolute: nil)
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-adapter-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func run(_ graph: Graph, input: String) throws -> [HostTensor] {
        try Session(model: try Model(graph: graph), threads: 2).run([try NumPyFile.read(path: input)])
    }

    func count(_ graph: Graph, _ kind: OpKind) -> Int { graph.nodes.count { $0.op == kind } }

    func testMatchesPyTorchAtTwoSizesFromOneGraph() throws {
        let result = try CheckpointCase.convert(Self.fixture.folder.path)
        XCTAssertEqual(result.graph.inputs.map(\.name), ["pixel_values"])
        XCTAssertEqual(result.graph.outputs.map(\.name), ["logits"])
        XCTAssertEqual(result.graph.metadata["restore.multiple"], "32")
        XCTAssertTrue(result.importNotes.first?.contains("vit-adapter-upernet (detected from names)") ?? false, "\(result.importNotes)")
        let skipped = result.importNotes.filter { $0.hasPrefix("skipped training-only tensor") }
        XCTAssertTrue(skipped.contains { $0.hasSuffix("auxiliary_head.conv_seg.weight") }, "\(skipped)")
        XCTAssertTrue(skipped.contains { $0.hasSuffix("backbone.spm.conv2.1.num_batches_tracked") }, "\(skipped)")
        for size in Self.sizes {
            GoldenCheck.assertClose(try run(result.graph, input: Self.fixture.file("\(size)/input_0.npy"))[0],
                                    try Self.fixture.reference("\(size)/output_0.npy"), Self.tolerance,
                                    label: "vit-adapter-upernet \(size) safetensors vs PyTorch 2.13 eager")
        }
    }

    /// The same model exported to ONNX at 64×96 (Tests/Fixtures/models/vit-adapter/tiny, the
    /// same seed): the template's logits before their final ×4 resize against the export's,
    /// and the fused ops of both conversions.
    func testSafetensorsAndONNXOfOneModelGiveOneOutputWithTheSameFusedOps() throws {
        var fromCheckpoint = try CheckpointCase.convert(Self.fixture.folder.path).graph
        let fromONNX = try Conversion.convert(try GoldenCase("models/vit-adapter/tiny").model.path, options: ConversionOptions()).graph
        print("vit-adapter safetensors: \(fromCheckpoint.nodes.count) nodes: \(GoldenCheck.histogram(fromCheckpoint))")
        print("vit-adapter ONNX: \(fromONNX.nodes.count) nodes after fusion: \(GoldenCheck.histogram(fromONNX))")
        for kind in [OpKind.conv, .convTranspose, .maxPool, .attention, .deformableAttention, .layerNorm, .softmax, .unary] {
            XCTAssertEqual(count(fromCheckpoint, kind), count(fromONNX, kind), "\(kind) nodes")
        }
        // The pyramid pooling is P_h·x·P_wᵀ on both paths: two matMuls per scale from the
        // template (P from the input's size), a matMul and a linear (constant P_wᵀ) from the
        // fixed-size export.
        XCTAssertEqual(count(fromCheckpoint, .linear) + count(fromCheckpoint, .matMul), count(fromONNX, .linear) + count(fromONNX, .matMul))
        XCTAssertEqual(count(fromCheckpoint, .gridSample), 0)
        let resize = try XCTUnwrap(fromCheckpoint.nodes.first { $0.outputs == ["logits"] })
        fromCheckpoint.outputs.append(ValueInfo(name: resize.inputs[0], dtype: .float32, shape: []))
        let input = Self.fixture.file("64x96/input_0.npy")
        let quarter = try run(fromCheckpoint, input: input)[1]
        let exported = try run(fromONNX, input: input)[0]
        XCTAssertEqual(quarter.shape, [1, 3, 16, 24])
        GoldenCheck.assertClose(quarter, exported, Self.tolerance, label: "vit-adapter-upernet 64x96 safetensors vs ONNX import (1/4 logits)")
    }

    /// 3 classes: `--head rgb` keeps the classifier; the output is the logits, bit for bit.
    func testRGBHeadKeepsAThreeClassClassifier() throws {
        var options = ConversionOptions()
        options.head = .rgb
        let rgb = try Conversion.convert(Self.fixture.folder.path, options: options)
        let plain = try CheckpointCase.convert(Self.fixture.folder.path)
        let input = Self.fixture.file("96x64/input_0.npy")
        XCTAssertEqual(try run(rgb.graph, input: input)[0].floats, try run(plain.graph, input: input)[0].floats)
    }

    /// The settings shapes cannot tell come from config.json: without it the official
    /// defaults (64-channel heads, 6 deformable heads × 4 points) do not fit this small
    /// checkpoint, and the refusal names the tensor and the settings to give.
    func testDefaultsThatDoNotFitAreRefusedNamingTheSetting() throws {
        let path = try Self.fixture.edited(into: directory)
        try FileManager.default.removeItem(atPath: path + "/config.json")
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .badConfig(_, let detail)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("num_heads"), detail)
        }
        try Data(#"{"num_heads": 2}"#.utf8).write(to: URL(fileURLWithPath: path + "/config.json"))
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .shapeMismatch(_, let tensor, let expected, let found, let why)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(tensor, "backbone.interactions.0.extractor.attn.attention_weights.weight")
            XCTAssertEqual([expected, found], [[24, 32], [4, 32]])
            XCTAssertTrue(why.contains("deform_num_heads 6 × n_points 4"), why)
        }
        // One of the two given fixes the other: 4 rows per query are 2 heads × 2 points.
        try Data(#"{"num_heads": 2, "n_points": 2}"#.utf8).write(to: URL(fileURLWithPath: path + "/config.json"))
        let converted = try CheckpointCase.convert(path)
        GoldenCheck.assertClose(try run(converted.graph, input: Self.fixture.file("64x96/input_0.npy"))[0],
                                try Self.fixture.reference("64x96/output_0.npy"), Self.tolerance,
                                label: "vit-adapter-upernet with deform_num_heads derived from n_points")
        try Data(#"{"num_heads": 2, "n_points": 2, "interaction_indexes": [[0, 1], [2, 2], [3, 3]]}"#.utf8)
            .write(to: URL(fileURLWithPath: path + "/config.json"))
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .badConfig(_, let detail)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("interaction_indexes"), detail)
        }
    }

    func testMissingUnexpectedAndMisshapedTensorsAreRefusedByName() throws {
        let missing = "backbone.interactions.2.injector.attn.value_proj.bias"
        XCTAssertThrowsError(try CheckpointCase.convert(try Self.fixture.edited(into: directory, tensors: { $0.remove(missing) }))) { error in
            XCTAssertEqual(error as? CheckpointError, .missingTensor(file: self.directory + "/model.safetensors", tensor: missing))
        }
        XCTAssertThrowsError(try CheckpointCase.convert(try Self.fixture.edited(into: directory, tensors: {
            $0.add("backbone.cls_token", floats: Array(repeating: 0.5, count: 32), shape: [1, 1, 32])
        }))) { error in
            XCTAssertEqual(error as? CheckpointError, .unexpectedTensors(file: self.directory + "/model.safetensors", tensors: ["backbone.cls_token"]))
        }
        let misshaped = "backbone.blocks.1.mlp.fc2.weight"
        XCTAssertThrowsError(try CheckpointCase.convert(try Self.fixture.edited(into: directory, tensors: {
            $0.remove(misshaped)
            $0.add(misshaped, floats: Array(repeating: 0.5, count: 32 * 64), shape: [32, 64])
        }))) { error in
            guard case .shapeMismatch(_, misshaped, [32, 128], [32, 64], _)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    /// f16 and bf16 copies of the checkpoint: the kept storage re-stores only the checkpoint's
    /// own values (exactly), and what the template computes (BatchNorm, layer scales and γ
    /// folded, the level embedding in the projections' biases) stays f32, so the output is
    /// that of the same rounded weights widened to f32 (`--weights f32`).
    func testHalfPrecisionCheckpointsComputeAsTheirWidenedWeights() throws {
        for (label, edit) in [("f16", { (writer: inout SafetensorsWriter) in writer.storeAsFloat16() }),
                              ("bf16", { (writer: inout SafetensorsWriter) in writer.storeAsBFloat16() })] {
            let path = try Self.fixture.edited(into: directory, tensors: edit)
            let kept = try CheckpointCase.convert(path), widened = try CheckpointCase.convert(path, weights: .f32)
            let half = kept.graph.orderedConstants.filter { $0.dtype == .float16 || $0.dtype == .bfloat16 }
            XCTAssertTrue(half.contains { $0.name == "backbone.blocks.0.mlp.fc1.weight" }, "\(half.map(\.name))")
            XCTAssertEqual(kept.graph.constants["backbone.spm.conv3.0.weight"]?.dtype, .float32, "BatchNorm folded: computed")
            let input = Self.fixture.file("96x64/input_0.npy")
            GoldenCheck.assertClose(try run(kept.graph, input: input)[0], try run(widened.graph, input: input)[0],
                                    GoldenCase.Tolerance(relative: 1e-6, absolute: nil),
                                    label: "vit-adapter-upernet \(label) checkpoint, \(label) kept vs --weights f32 (\(half.count) constants \(label))")
        }
    }

    /// ViT-Adapter-S + UperNet 512 at 256×320, generated on demand (`make_checkpoints.py
    /// --vit-adapter-full`, ~230 MB): every setting is the official default, no config.json.
    func testViTAdapterSmallMatchesPyTorch() throws {
        let root = ProcessInfo.processInfo.environment["RESTORE_VIT_ADAPTER_CHECKPOINT_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("restore-vit-adapter-checkpoint")
        let folder = root.appendingPathComponent("small")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("256x320/output_0.npy").path) else {
            throw XCTSkip("\(folder.path) is not generated; make it with `.venv/bin/python scripts/fixtures/make_checkpoints.py "
                + "--vit-adapter-full` (.venv from scripts/setup-python.sh) and set RESTORE_VIT_ADAPTER_CHECKPOINT_DIR if it is not in \(root.path)")
        }
        let result = try CheckpointCase.convert(folder.path)
        XCTAssertEqual(count(result.graph, .attention), 12)
        XCTAssertEqual(count(result.graph, .deformableAttention), 10)
        let output = try run(result.graph, input: folder.appendingPathComponent("256x320/input_0.npy").path)[0]
        GoldenCheck.assertClose(output, try NumPyFile.read(path: folder.appendingPathComponent("256x320/output_0.npy").path), Self.tolerance,
                                label: "vit-adapter-upernet ViT-Adapter-S 256x320 safetensors vs PyTorch 2.13 eager")
        // The same model's ONNX export at 256×256 (make_vit_adapter.py --full small, the same
        // seed), when it is generated too: the 1/4 logits of both.
        let exportRoot = ProcessInfo.processInfo.environment["RESTORE_VIT_ADAPTER_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("restore-vit-adapter")
        let export = exportRoot.appendingPathComponent("small-256")
        guard FileManager.default.fileExists(atPath: export.appendingPathComponent("case.json").path) else {
            print("ViT-Adapter-S ONNX comparison skipped: \(export.path) is not generated (make_vit_adapter.py --full small)")
            return
        }
        let golden = try GoldenCase(export, name: "restore-vit-adapter/small-256")
        let run = try XCTUnwrap(golden.runs().first)
        var graph = result.graph
        let resize = try XCTUnwrap(graph.nodes.first { $0.outputs == ["logits"] })
        graph.outputs.append(ValueInfo(name: resize.inputs[0], dtype: .float32, shape: []))
        let quarter = try Session(model: try Model(graph: graph), threads: 2).run(run.inputs)[1]
        let exported = try Session(model: try Model(graph: try GoldenCheck.convert(golden).simplified), threads: 2).run(run.inputs)[0]
        GoldenCheck.assertClose(quarter, exported, Self.tolerance, label: "vit-adapter-upernet ViT-Adapter-S 256x256 safetensors vs ONNX import")
    }
}

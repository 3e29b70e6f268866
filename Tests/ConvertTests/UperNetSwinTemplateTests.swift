import Foundation
import ImageFiles
import Runtime
import XCTest
@testable import Convert
@testable import Format

/// The transformers UperNet + Swin template on a random-init checkpoint written by
/// `save_pretrained` (Tests/Fixtures/checkpoints/upernet-swin, scripts/fixtures/make_checkpoints.py):
/// PyTorch eager parity at two non-square sizes from one graph, the same fused ops as the
/// ONNX import of the same model and the same output, both name spellings, `--head rgb`,
/// and refusals naming the tensor or setting.
final class UperNetSwinTemplateTests: XCTestCase {
    static let fixture = CheckpointCase("upernet-swin")
    static let sizes = ["128x192", "192x128"]
    /// fp32 through ~25 matmul/norm/softmax steps in another summation order (the pyramid
    /// pooling as two matrix products, BatchNorm folded into the convolutions).
    static let tolerance = GoldenCase.Tolerance(relative: 1e-4, absolute: nil)
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("upernet-swin-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func run(_ graph: Graph, size: String) throws -> HostTensor {
        let input = try NumPyFile.read(path: Self.fixture.file("\(size)/input_0.npy"))
        return try Session(model: try Model(graph: graph), threads: 2).run([input])[0]
    }

    func testMatchesPyTorchAtTwoSizesFromOneGraph() throws {
        let result = try CheckpointCase.convert(Self.fixture.folder.path)
        XCTAssertEqual(result.graph.inputs.map(\.name), ["pixel_values"])
        XCTAssertEqual(result.graph.outputs.map(\.name), ["logits"])
        XCTAssertEqual(result.graph.metadata["restore.multiple"], "64", "patch 4 × 2² × window 4")
        XCTAssertTrue(result.importNotes.first?.contains("upernet-swin (detected from names)") ?? false, "\(result.importNotes)")
        let skipped = result.importNotes.filter { $0.hasPrefix("skipped training-only tensor") }
        XCTAssertTrue(skipped.contains { $0.hasSuffix("auxiliary_head.classifier.weight") }, "\(skipped)")
        XCTAssertTrue(skipped.contains { $0.hasSuffix("backbone.swin.layernorm.weight") }, "\(skipped)")
        for size in Self.sizes {
            GoldenCheck.assertClose(try run(result.graph, size: size), try Self.fixture.reference("\(size)/output_0.npy"),
                                    Self.tolerance, label: "upernet-swin \(size) safetensors vs PyTorch 2.13 eager")
        }
    }

    func testSafetensorsAndONNXOfOneModelGiveOneOutputWithTheSameFusedOps() throws {
        let fromCheckpoint = try CheckpointCase.convert(Self.fixture.folder.path)
        var options = ConversionOptions()
        options.contract.multiple = 64
        let fromONNX = try Conversion.convert(Self.fixture.file("model.onnx"), options: options)
        print("upernet-swin safetensors: \(fromCheckpoint.report.nodesBefore) nodes imported, "
              + "\(fromCheckpoint.graph.nodes.count) after fusion: \(GoldenCheck.histogram(fromCheckpoint.graph))")
        print("upernet-swin ONNX: \(fromONNX.report.nodesBefore) nodes imported, "
              + "\(fromONNX.graph.nodes.count) after fusion: \(GoldenCheck.histogram(fromONNX.graph))")
        func count(_ graph: Graph, _ kind: OpKind) -> Int { graph.nodes.filter { $0.op == kind }.count }
        for kind in [OpKind.conv, .linear, .matMul, .windowAttention, .layerNorm, .resize, .attention, .softmax] {
            XCTAssertEqual(count(fromCheckpoint.graph, kind), count(fromONNX.graph, kind), "\(kind) nodes")
        }
        XCTAssertEqual(count(fromCheckpoint.graph, .windowAttention), 6)
        XCTAssertLessThan(fromCheckpoint.graph.nodes.count, fromONNX.graph.nodes.count)
        for size in Self.sizes {
            GoldenCheck.assertClose(try run(fromCheckpoint.graph, size: size), try run(fromONNX.graph, size: size), Self.tolerance,
                                    label: "upernet-swin \(size) safetensors vs ONNX")
        }
    }

    /// transformers ≥ 5.25's module names (`backbone.swin.…`, `q_proj`, `mlp.fc1`, …) give
    /// the same graph as the hub's.
    func testCurrentTransformersNamesAreReadToo() throws {
        let renames = [("attention.self.query", "attention.q_proj"), ("attention.self.key", "attention.k_proj"),
                       ("attention.self.value", "attention.v_proj"), ("attention.output.dense", "attention.o_proj"),
                       ("attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"),
                       ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2")]
        let path = try Self.fixture.edited(into: directory, tensors: { writer in
            for index in writer.tensors.indices {
                var name = writer.tensors[index].name
                for (hub, current) in renames { name = name.replacingOccurrences(of: hub, with: current) }
                if name.hasPrefix("backbone.embeddings.") || name.hasPrefix("backbone.encoder.") {
                    name = "backbone.swin." + name.dropFirst("backbone.".count)
                }
                writer.tensors[index].name = name
            }
        })
        let renamed = try CheckpointCase.convert(path)
        XCTAssertTrue(renamed.importNotes.first?.contains("upernet-swin") ?? false, "\(renamed.importNotes)")
        let hub = try CheckpointCase.convert(Self.fixture.folder.path)
        XCTAssertEqual(try run(renamed.graph, size: Self.sizes[0]).floats, try run(hub.graph, size: Self.sizes[0]).floats)
    }

    /// Three labels: `--head rgb` keeps the classifier, so the output is bit-exact; five
    /// labels with `first3`: the classifier found behind the final resize keeps its first three rows.
    func testRGBHeadWorksOnTheTemplatesGraph() throws {
        var options = ConversionOptions()
        let plain = try Conversion.convert(Self.fixture.folder.path, options: options)
        options.head = .rgb
        let headed = try Conversion.convert(Self.fixture.folder.path, options: options)
        XCTAssertEqual(headed.head, RGBHead.Outcome(channels: 3, replacedClassifier: nil, appendedResize: nil))
        XCTAssertEqual(try run(headed.graph, size: Self.sizes[0]).floats, try run(plain.graph, size: Self.sizes[0]).floats)

        let fiveLabels = try Self.fixture.edited(into: directory, tensors: { writer in
            let weight: [Float] = (0..<80).map { (index: Int) -> Float in Float((index * 37) % 23) / 23 - 0.5 }
            writer.remove("decode_head.classifier.weight")
            writer.remove("decode_head.classifier.bias")
            writer.add("decode_head.classifier.weight", floats: weight, shape: [5, 16, 1, 1])
            writer.add("decode_head.classifier.bias", floats: [0.1, -0.2, 0.3, -0.4, 0.5], shape: [5])
        })
        let five = try Conversion.convert(fiveLabels, options: ConversionOptions())
        options.headInitialisation = .first3
        let firstThree = try Conversion.convert(fiveLabels, options: options)
        XCTAssertEqual(firstThree.head?.channels, 5, "the classifier's own channels")
        XCTAssertNotNil(firstThree.head?.replacedClassifier)
        let all = try run(five.graph, size: Self.sizes[0]), three = try run(firstThree.graph, size: Self.sizes[0])
        XCTAssertEqual(three.shape, [1, 3, 128, 192])
        GoldenCheck.assertClose(three, HostTensor(shape: [1, 3, 128, 192], floats: Array(all.floats.prefix(3 * 128 * 192))),
                                Self.tolerance, label: "upernet-swin --head rgb --head-init first3 vs the 5-label logits' first 3")
    }

    /// A bfloat16 checkpoint against PyTorch running the same rounded weights in f32: with
    /// `--weights f32` the stored values are used as they are; by default the storage stays
    /// bf16 for the checkpoint's own values (passed through, or only rearranged: q | k | v
    /// joined, the relative position tables laid out), while the weights the template
    /// computes (BatchNorm folded into convolutions) are not bf16 values and stay f32, so no
    /// weight is rounded twice. Both are held to the fp32 tolerance.
    func testBFloat16CheckpointKeepsItsStorageAndComputesInFloat32() throws {
        let path = try Self.fixture.edited(into: directory, tensors: { $0.storeAsBFloat16() })
        let reference = try Self.fixture.reference("128x192/output_bf16-weights.npy")
        let widened = try CheckpointCase.convert(path, weights: .f32)
        XCTAssertFalse(widened.graph.orderedConstants.contains { $0.dtype == .bfloat16 })
        GoldenCheck.assertClose(try run(widened.graph, size: Self.sizes[0]), reference, Self.tolerance,
                                label: "upernet-swin bf16 checkpoint, --weights f32, vs PyTorch on the rounded weights")
        let kept = try CheckpointCase.convert(path)
        let constants = Dictionary(uniqueKeysWithValues: kept.graph.orderedConstants.map { ($0.name, $0.dtype) })
        let large = kept.graph.orderedConstants.filter { $0.elementCount >= 1024 }
        print("upernet-swin bf16 checkpoint, bf16 kept: \(large.count { $0.dtype == .bfloat16 }) large constants bf16, "
              + "\(large.count { $0.dtype == .float32 }) computed ones f32")
        XCTAssertEqual(constants["stage3.block1.qkv.weight"], .bfloat16, "joined q | k | v: the checkpoint's values")
        XCTAssertEqual(constants["decode_head.fpn_bottleneck.weight"], .float32, "BatchNorm folded: computed")
        GoldenCheck.assertClose(try run(kept.graph, size: Self.sizes[0]), reference, Self.tolerance,
                                label: "upernet-swin bf16 checkpoint, bf16 storage, vs PyTorch on the rounded weights")
    }

    func testMissingProjectionIsRefusedNamingTheTensor() throws {
        let name = "backbone.encoder.layers.1.blocks.1.attention.self.key.weight"
        let path = try Self.fixture.edited(into: directory, tensors: { $0.remove(name) })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .missingTensor(_, name)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testConfigWindowDisagreeingWithTheTablesIsRefused() throws {
        let path = try Self.fixture.edited(into: directory, config: { settings in
            var backbone = settings["backbone_config"] as? [String: Any] ?? [:]
            backbone["window_size"] = 7
            settings["backbone_config"] = backbone
        })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .shapeMismatch(_, let tensor, [169, 1], [49, 1], let why)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue(tensor.hasSuffix("relative_position_bias_table"), tensor)
            XCTAssertEqual(why, "config window_size 7")
        }
    }

    func testUnexpectedTensorIsRefusedByName() throws {
        let path = try Self.fixture.edited(into: directory, tensors: { $0.add("decode_head.extra.weight", floats: [1], shape: [1]) })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            XCTAssertEqual(error as? CheckpointError, .unexpectedTensors(file: path + "/model.safetensors", tensors: ["decode_head.extra.weight"]))
        }
    }
}

/// The mmsegmentation Swin + UperNet template on a state dict in mmseg's names, saved as a
/// .pth under `state_dict` and converted by scripts/pth_to_safetensors.py
/// (Tests/Fixtures/checkpoints/upernet-swin-mmseg; reference: scripts/fixtures/swin_upernet.py,
/// written from the papers, in PyTorch eager).
final class MMSegUperNetSwinTemplateTests: XCTestCase {
    static let fixture = CheckpointCase("upernet-swin-mmseg")
    static let tolerance = UperNetSwinTemplateTests.tolerance

    func testMatchesPyTorchAtTwoSizesWithMMSegNames() throws {
        let result = try CheckpointCase.convert(Self.fixture.folder.path)
        XCTAssertEqual(result.graph.inputs.map(\.name), ["pixel_values"])
        XCTAssertEqual(result.graph.outputs.map(\.name), ["logits"])
        XCTAssertEqual(result.graph.metadata["restore.multiple"], "64")
        XCTAssertTrue(result.importNotes.first?.contains("upernet-swin-mmseg (detected from names)") ?? false, "\(result.importNotes)")
        let skipped = result.importNotes.filter { $0.hasPrefix("skipped training-only tensor") }
        XCTAssertTrue(skipped.contains { $0.hasSuffix("auxiliary_head.conv_seg.weight") }, "\(skipped)")
        XCTAssertTrue(skipped.contains { $0.hasSuffix("stages.2.blocks.1.attn.w_msa.relative_position_index") }, "\(skipped)")
        func count(_ kind: OpKind) -> Int { result.graph.nodes.filter { $0.op == kind }.count }
        XCTAssertEqual([count(.windowAttention), count(.linear), count(.layerNorm), count(.conv)], [6, 26, 18, 12])
        for size in UperNetSwinTemplateTests.sizes {
            let input = try NumPyFile.read(path: Self.fixture.file("\(size)/input_0.npy"))
            let output = try Session(model: try Model(graph: result.graph), threads: 2).run([input])[0]
            GoldenCheck.assertClose(output, try Self.fixture.reference("\(size)/output_0.npy"), Self.tolerance,
                                    label: "upernet-swin-mmseg \(size) safetensors vs PyTorch 2.13 eager")
        }
    }

    func testMissingStageNormIsRefusedNamingTheTensor() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mmseg-swin-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.fixture.edited(into: directory, tensors: { $0.remove("backbone.stages.1.downsample.reduction.weight") })
        XCTAssertThrowsError(try CheckpointCase.convert(path)) { error in
            guard case .missingTensor(_, "backbone.stages.1.downsample.reduction.weight")? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
        }
    }
}

import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// `convert --head rgb`: a dense-prediction network becomes a three-channel restorer. A
/// 3-channel checkpoint keeps its weights; N ≠ 3 classes need an explicit `--head-init`;
/// a 1/4-resolution output is upsampled bilinearly to the input's size.
final class RGBHeadTests: XCTestCase {
    private let image = ValueInfo(name: "image", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")])

    private func constant(_ name: String, _ shape: [Int], seed: UInt64) -> ConstantTensor {
        ConstantTensor(name: name, shape: shape, floats: xorshiftFloats(count: shape.reduce(1, *), seed: seed))
    }

    /// `resize` as PyTorch's `interpolate(mode="bilinear", align_corners=False)`.
    private let bilinear = {
        var attributes = ResizeAttributes()
        attributes.mode = .linear
        return Op.resize(attributes)
    }()

    /// image → 3×3 conv (8 channels, relu) → 1×1 classifier (`classes` channels, in
    /// `classifierGroups` groups) → logits. With `stride` 4 the features and logits are at
    /// 1/4 resolution.
    private func segmentationGraph(classes: Int, stride: Int = 1, classifierGroups: Int = 1) -> Graph {
        var featureConv = ConvAttributes()
        featureConv.window.pads = [1, 1, 1, 1]
        featureConv.window.strides = [stride, stride]
        featureConv.activation = Activation(function: .relu)
        var classifierConv = ConvAttributes()
        classifierConv.group = classifierGroups
        let features = Node(name: "features", .conv(featureConv), inputs: ["image", "w1", "b1"], outputs: ["f"])
        let classifier = Node(name: "classifier", .conv(classifierConv), inputs: ["f", "w2", "b2"], outputs: ["logits"])
        return Graph(inputs: [image],
                     outputs: [ValueInfo(name: "logits", dtype: .float32,
                                         shape: [.fixed(1), .fixed(classes), .symbol("h"), .symbol("w")])],
                     nodes: [features, classifier],
                     constants: [constant("w1", [8, 3, 3, 3], seed: 1), constant("b1", [8], seed: 2),
                                 constant("w2", [classes, 8 / classifierGroups, 1, 1], seed: 3), constant("b2", [classes], seed: 4)])
    }

    private func input(_ height: Int, _ width: Int) -> HostTensor {
        HostTensor(shape: [1, 3, height, width], floats: xorshiftFloats(count: 3 * height * width, seed: 7))
    }

    private func run(_ graph: Graph, _ x: HostTensor) throws -> HostTensor {
        try Session(model: try Model(graph: graph), threads: 2).run([x])[0]
    }

    func testFiveClassesAreRefusedWithoutAnInitialisation() throws {
        var graph = segmentationGraph(classes: 5)
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: nil)) { error in
            XCTAssertEqual(error as? RGBHeadError, .classesNeedInitialisation(output: "logits", classifier: "classifier", channels: 5))
            let message = "\(error)"
            for part in ["'logits'", "'classifier'", "5 channels", "--head-init first3", "--head-init zero"] {
                XCTAssertTrue(message.contains(part), "\(message) names \(part)")
            }
        }
    }

    func testFirst3KeepsTheFirstThreeClassChannels() throws {
        let original = segmentationGraph(classes: 5)
        var graph = original
        let outcome = try RGBHead.attach(to: &graph, contract: .init(), initialisation: .first3)
        XCTAssertEqual(outcome, RGBHead.Outcome(channels: 5, replacedClassifier: "classifier", appendedResize: nil))
        let x = input(13, 10)
        let expected = try run(original, x).floats.prefix(3 * 13 * 10)
        let actual = try run(graph, x)
        XCTAssertEqual(actual.shape, [1, 3, 13, 10])
        let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, Array(expected))
        print("rgb head first3 vs the original's first 3 channels: max abs error \(maxAbs), relative \(relative)")
        // The same dot products in a 3-row instead of a 5-row GEMM: at most a rounding apart.
        XCTAssertLessThanOrEqual(relative, 1e-6)
        XCTAssertEqual(graph.outputs[0].shape, [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")])
    }

    func testZeroHeadWithResidualRestoresTheIdentity() throws {
        var graph = segmentationGraph(classes: 5)
        _ = try RGBHead.attach(to: &graph, contract: .init(), initialisation: .zero)
        graph.metadata = ["restore.task": "restore", "restore.residual": "true"]
        let restorer = try Restorer(session: Session(model: try Model(graph: graph), threads: 2))
        let pixels = HostTensor(shape: [1, 3, 11, 9], floats: xorshiftFloats(count: 3 * 11 * 9, seed: 8).map { 0.5 + 0.4 * $0 })
        let restored = try restorer.restore(pixels)
        let (maxAbs, relative) = maxAbsAndRelativeError(restored.floats, pixels.floats)
        print("rgb head zero + residual vs the input: max abs error \(maxAbs), relative \(relative)")
        XCTAssertEqual(restored.shape, pixels.shape)
        XCTAssertEqual(maxAbs, 0)
    }

    func testQuarterResolutionOutputIsUpsampledBilinearlyToTheInputSize() throws {
        let original = segmentationGraph(classes: 3, stride: 4)
        var graph = original
        let outcome = try RGBHead.attach(to: &graph, contract: .init(), initialisation: nil)
        XCTAssertEqual(outcome, RGBHead.Outcome(channels: 3, replacedClassifier: nil, appendedResize: "rgb_head.upsample"))
        for (height, width) in [(32, 24), (20, 36)] {
            let x = input(height, width)
            let low = try run(original, x)
            XCTAssertEqual(low.shape, [1, 3, height / 4, width / 4])
            let resize = try OpKind.makeOperator(Node(name: "reference", bilinear, inputs: [], outputs: []))
            let sizes = HostTensor(shape: [2], ints: [Int64(height), Int64(width)])
            let expected = try resize.reference([low, nil, sizes])[0]
            let actual = try run(graph, x)
            XCTAssertEqual(actual.shape, [1, 3, height, width])
            let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
            print("rgb head 1/4 → full \(height)×\(width) vs reference bilinear: max abs error \(maxAbs), relative \(relative)")
            XCTAssertLessThanOrEqual(relative, 1e-6)
        }
    }

    /// `graph` with its logits resized by `factor` (bilinear), as transformers' UperNet
    /// upsamples its 1/4-resolution logits.
    private func upsampled(_ graph: Graph, by factor: Float) -> Graph {
        var graph = graph
        graph.nodes[graph.nodes.count - 1].outputs = ["low"]
        graph.nodes.append(Node(name: "upsample", bilinear, inputs: ["low", "factor"], outputs: ["logits"]))
        graph.setConstant(ConstantTensor(name: "factor", shape: [4], floats: [1, 1, factor, factor]))
        return graph
    }

    func testClassifierIsFoundBehindTheUpsampling() throws {
        var graph = upsampled(segmentationGraph(classes: 5, stride: 4), by: 4)
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: nil)) { error in
            XCTAssertEqual(error as? RGBHeadError, .classesNeedInitialisation(output: "logits", classifier: "classifier", channels: 5))
        }
        let outcome = try RGBHead.attach(to: &graph, contract: .init(), initialisation: .first3)
        XCTAssertEqual(outcome, RGBHead.Outcome(channels: 5, replacedClassifier: "classifier", appendedResize: nil))
        XCTAssertEqual(try run(graph, input(32, 24)).shape, [1, 3, 32, 24])
    }

    func testClassifierWhoseLogitsAreReadElsewhereIsRefused() throws {
        var graph = upsampled(segmentationGraph(classes: 5), by: 1)
        graph.nodes.append(Node(name: "confidence", .softmax(SoftmaxAttributes()), inputs: ["low"], outputs: ["probabilities"]))
        graph.outputs.append(ValueInfo(name: "probabilities", dtype: .float32, shape: graph.outputs[0].shape))
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: .first3)) { error in
            XCTAssertEqual(error as? RGBHeadError, .unsupportedClassifier(node: "classifier", "has its logits also read by confidence"))
        }
    }

    func testGroupedClassifierIsRefused() throws {
        // Keeping 3 of 6 output channels of a 2-group conv would change which inputs each reads.
        var graph = segmentationGraph(classes: 6, classifierGroups: 2)
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: .first3)) { error in
            XCTAssertEqual(error as? RGBHeadError,
                           .unsupportedClassifier(node: "classifier", "needs a constant 4-D weight, group 1 and no residual input"))
        }
    }

    func testOutputNotFromAConvHasNoClassifierToReplace() throws {
        var graph = segmentationGraph(classes: 5)
        graph.nodes[1].outputs = ["raw"]
        graph.nodes.append(Node(name: "squash", .unary(Activation(function: .sigmoid)), inputs: ["raw"], outputs: ["logits"]))
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: .zero)) { error in
            XCTAssertEqual(error as? RGBHeadError, .noClassifier(output: "logits", producer: "squash (unary)"))
        }
    }

    func testOutputLargerThanTheInputIsRefused() throws {
        var graph = upsampled(segmentationGraph(classes: 3), by: 2)
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: nil)) { error in
            guard case RGBHeadError.outputSize(output: "logits", _, _, scale: 1)? = error as? RGBHeadError else {
                return XCTFail("\(error)")
            }
        }
    }

    // MARK: Through `Conversion.convert`, as the `convert` command runs it

    private static let swinFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/swin/upernet-w8")

    /// The transformers UperNet fixture has 3 labels and already upsamples its logits: the
    /// head keeps the checkpoint's weights, so the output is bit-exact.
    func testThreeLabelUperNetKeepsItsWeightsBitExact() throws {
        let path = Self.swinFixture.appendingPathComponent("model.onnx").path
        var options = ConversionOptions()
        options.contract.multiple = 8
        let plain = try Conversion.convert(path, options: options)
        options.head = .rgb
        let headed = try Conversion.convert(path, options: options)
        XCTAssertEqual(headed.head, RGBHead.Outcome(channels: 3, replacedClassifier: nil, appendedResize: nil))
        let x = try NumPyFile.read(path: Self.swinFixture.appendingPathComponent("72x104/input_0.npy").path)
        let before = try run(plain.graph, x)
        let after = try run(headed.graph, x)
        let (maxAbs, relative) = maxAbsAndRelativeError(after.floats, before.floats)
        print("Swin + UperNet (3 labels) with --head rgb vs without: max abs error \(maxAbs), relative \(relative)")
        XCTAssertEqual(after.shape, [1, 3, 72, 104])
        XCTAssertEqual(after.floats, before.floats)
    }

    func testConvertRecordsTheRestorationContract() throws {
        let path = Self.swinFixture.appendingPathComponent("model.onnx").path
        var options = ConversionOptions()
        options.contract.multiple = 8
        options.head = .rgb
        options.contract.range = .signed
        options.contract.mean = [0.5, 0.5, 0.5]
        options.contract.std = [0.25, 0.25, 0.25]
        options.contract.residual = true
        let defaultTask = try Conversion.convert(path, options: options).graph
        XCTAssertEqual(defaultTask.metadata["restore.task"], "restore")
        let contract = try RestorationContract(graph: defaultTask)
        XCTAssertEqual(contract.range, .signed)
        XCTAssertEqual(contract.std, [0.25, 0.25, 0.25])
        XCTAssertTrue(contract.residual)
        XCTAssertEqual(contract.multiple, 8)
        options.contract.task = .denoise
        XCTAssertEqual(try Conversion.convert(path, options: options).graph.metadata["restore.task"], "denoise")
    }

    /// A 5-class segmenter with 1/4-resolution logits (scripts/fixtures/make_segmenter.py).
    private static let segmenter = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/segmenter")

    func testConvertRefusesFiveClassesWithoutHeadInit() throws {
        var options = ConversionOptions()
        options.head = .rgb
        XCTAssertThrowsError(try Conversion.convert(Self.segmenter.appendingPathComponent("model.onnx").path,
                                                    options: options)) { error in
            guard case RGBHeadError.classesNeedInitialisation(output: "logits", _, channels: 5)? = error as? RGBHeadError else {
                return XCTFail("\(error)")
            }
            print("convert --head rgb on the 5-class segmenter: \(error)")
        }
    }

    /// `--head rgb --head-init first3` on the segmenter: onnxruntime's logits, first three
    /// channels, upsampled by the resize op's reference kernel, at every fixture size.
    func testConvertFirst3UpsamplesTheFirstThreeLogitsOfTheReference() throws {
        var options = ConversionOptions()
        options.head = .rgb
        options.headInitialisation = .first3
        options.contract.task = .denoise
        let converted = try Conversion.convert(Self.segmenter.appendingPathComponent("model.onnx").path, options: options)
        XCTAssertEqual(converted.head, RGBHead.Outcome(channels: 5, replacedClassifier: "/classifier/Conv",
                                                       appendedResize: "rgb_head.upsample"))
        XCTAssertEqual(converted.graph.metadata["restore.task"], "denoise")
        let session = Session(model: try Model(graph: converted.graph), threads: 2)
        let resize = try OpKind.makeOperator(Node(name: "reference", bilinear, inputs: [], outputs: []))
        for size in ["32x24", "20x36"] {
            let x = try NumPyFile.read(path: Self.segmenter.appendingPathComponent("\(size)/input_0.npy").path)
            let logits = try NumPyFile.read(path: Self.segmenter.appendingPathComponent("\(size)/output_0.npy").path)
            let plane = logits.shape[2] * logits.shape[3]
            let firstThree = HostTensor(shape: [1, 3, logits.shape[2], logits.shape[3]],
                                        floats: Array(logits.floats.prefix(3 * plane)))
            let sizes = HostTensor(shape: [2], ints: [Int64(x.shape[2]), Int64(x.shape[3])])
            let expected = try resize.reference([firstThree, nil, sizes])[0]
            let actual = try session.run([x])[0]
            XCTAssertEqual(actual.shape, x.shape)
            let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
            print("convert --head rgb --head-init first3, segmenter \(size) vs onnxruntime's logits[:3] upsampled: "
                  + "max abs error \(maxAbs), relative \(relative)")
            // Three small convs in float32 against onnxruntime's: a few roundings apart.
            XCTAssertLessThanOrEqual(relative, 1e-5)
        }
    }

    func testHeadInitialisationWithoutAHeadIsRefused() throws {
        var options = ConversionOptions()
        options.headInitialisation = .zero
        let path = Self.swinFixture.appendingPathComponent("model.onnx").path
        XCTAssertThrowsError(try Conversion.convert(path, options: options)) { error in
            XCTAssertEqual(error as? ConversionError, .headInitialisationWithoutHead)
        }
    }

    // MARK: Mask2Former: the head on the pixel decoder's mask features

    /// The tiny Mask2Former (scripts/fixtures/make_mask2former.py): fixed 64×96 input, mask
    /// features [1, 32, 16, 24] saved from onnxruntime beside the case as mask_features.npy.
    private static let mask2former = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/mask2former/swin-tiny")
    private static let maskFeatures = "/model/model/pixel_level_module/decoder/mask_projection/Conv_output_0"

    private func convertMask2Former(_ configure: (inout ConversionOptions) -> Void) throws -> Conversion.Result {
        var options = ConversionOptions()
        options.head = .rgb
        configure(&options)
        return try Conversion.convert(Self.mask2former.appendingPathComponent("model.onnx").path, options: options)
    }

    private func mask2formerCase(_ file: String) throws -> HostTensor {
        try NumPyFile.read(path: Self.mask2former.appendingPathComponent("64x96/\(file)").path)
    }

    func testMask2FormerNeedsAnExplicitHeadChoice() throws {
        XCTAssertThrowsError(try convertMask2Former { _ in }) { error in
            XCTAssertEqual(error as? RGBHeadError,
                           .maskHeadChoice(features: Self.maskFeatures, channels: 32, queries: 8, conflicting: false))
            let message = "\(error)"
            for part in ["Mask2Former", "--head-init zero", "--head-queries A,B,C", "8 queries"] {
                XCTAssertTrue(message.contains(part), "\(message) names \(part)")
            }
        }
        XCTAssertThrowsError(try convertMask2Former { $0.headInitialisation = .zero; $0.headQueries = [0, 1, 2] }) { error in
            XCTAssertEqual(error as? RGBHeadError,
                           .maskHeadChoice(features: Self.maskFeatures, channels: 32, queries: 8, conflicting: true))
        }
        XCTAssertThrowsError(try convertMask2Former { $0.headQueries = [0, 8, 2] }) { error in
            XCTAssertEqual(error as? RGBHeadError, .maskQueries([0, 8, 2], available: 8))
        }
    }

    /// `--head-init zero --residual`: the only output is [1, 3, 64, 96], the network outputs
    /// zeros, so the restorer gives back its input; the transformer decoder, read by nothing,
    /// is gone.
    func testMask2FormerZeroHeadWithResidualIsTheIdentity() throws {
        let converted = try convertMask2Former {
            $0.headInitialisation = .zero
            $0.contract.residual = true
            $0.contract.range = .signed
        }
        XCTAssertEqual(converted.head, RGBHead.Outcome(channels: 32, replacedClassifier: "rgb_head.conv",
                                                       appendedResize: "rgb_head.upsample", maskFeatures: Self.maskFeatures,
                                                       droppedOutputs: ["class_queries_logits", "masks_queries_logits"]))
        print("convert --head rgb --head-init zero on Mask2Former: \(converted.head!)")
        let graph = converted.graph
        XCTAssertEqual(graph.outputs.map(\.name), ["rgb"])
        XCTAssertEqual(graph.outputs[0].shape, [.fixed(1), .fixed(3), .fixed(64), .fixed(96)])
        XCTAssertFalse(graph.nodes.contains { $0.name.contains("transformer_module") }, "the transformer decoder is removed")
        let session = Session(model: try Model(graph: graph), threads: 2)
        let raw = try session.run([try mask2formerCase("input_0.npy")])[0]
        XCTAssertEqual(raw.shape, [1, 3, 64, 96])
        XCTAssertTrue(raw.floats.allSatisfy { $0 == 0 })
        let restorer = try Restorer(session: session)
        let pixels = HostTensor(shape: [1, 3, 64, 96], floats: xorshiftFloats(count: 3 * 64 * 96, seed: 9).map { 0.5 + 0.4 * $0 })
        let restored = try restorer.restore(pixels)
        let (maxAbs, relative) = maxAbsAndRelativeError(restored.floats, pixels.floats)
        print("Mask2Former rgb head zero + residual vs the input: max abs error \(maxAbs), relative \(relative)")
        XCTAssertEqual(restored.shape, pixels.shape)
        XCTAssertLessThanOrEqual(maxAbs, 1e-6)
    }

    /// With random weights in place of the zeros, the head is exactly a 1×1 conv of the mask
    /// features followed by the bilinear upsampling: checked against onnxruntime's mask
    /// features, the conv written out here and the resize op's reference kernel.
    func testMask2FormerHeadIsTheOneByOneConvOfTheMaskFeatures() throws {
        var graph = try convertMask2Former { $0.headInitialisation = .zero }.graph
        let channels = 32
        let weight = xorshiftFloats(count: 3 * channels, seed: 21), bias = xorshiftFloats(count: 3, seed: 22)
        graph.setConstant(ConstantTensor(name: "rgb_head.conv.weight", shape: [3, channels, 1, 1], floats: weight))
        graph.setConstant(ConstantTensor(name: "rgb_head.conv.bias", shape: [3], floats: bias))
        let features = try mask2formerCase("mask_features.npy")
        XCTAssertEqual(features.shape, [1, channels, 16, 24])
        let plane = 16 * 24
        var projected = [Float](repeating: 0, count: 3 * plane)
        for output in 0..<3 {
            for pixel in 0..<plane {
                var sum = Double(bias[output])
                for channel in 0..<channels {
                    sum += Double(weight[output * channels + channel]) * Double(features.floats[channel * plane + pixel])
                }
                projected[output * plane + pixel] = Float(sum)
            }
        }
        let resize = try OpKind.makeOperator(Node(name: "reference", bilinear, inputs: [], outputs: []))
        let expected = try resize.reference([HostTensor(shape: [1, 3, 16, 24], floats: projected), nil,
                                             HostTensor(shape: [2], ints: [64, 96])])[0]
        let actual = try run(graph, try mask2formerCase("input_0.npy"))
        XCTAssertEqual(actual.shape, [1, 3, 64, 96])
        let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
        print("Mask2Former rgb head (random 1×1 conv) vs onnxruntime's mask features through that conv, upsampled: "
              + "max abs error \(maxAbs), relative \(relative)")
        // The whole Swin + deformable pixel decoder against onnxruntime, as the parity test.
        XCTAssertLessThanOrEqual(relative, 1e-4)
    }

    /// `--head-queries 5,0,2`: those channels of onnxruntime's mask logits, upsampled.
    func testMask2FormerChosenQueriesAreThoseMaskLogitsUpsampled() throws {
        let converted = try convertMask2Former { $0.headQueries = [5, 0, 2] }
        XCTAssertEqual(converted.head?.maskQueries, [5, 0, 2])
        XCTAssertEqual(converted.head?.channels, 8)
        let masks = try mask2formerCase("output_1.npy")
        XCTAssertEqual(masks.shape, [1, 8, 16, 24])
        let plane = 16 * 24
        let chosen = [5, 0, 2].flatMap { query in masks.floats[query * plane..<(query + 1) * plane] }
        let resize = try OpKind.makeOperator(Node(name: "reference", bilinear, inputs: [], outputs: []))
        let expected = try resize.reference([HostTensor(shape: [1, 3, 16, 24], floats: chosen), nil,
                                             HostTensor(shape: [2], ints: [64, 96])])[0]
        let actual = try run(converted.graph, try mask2formerCase("input_0.npy"))
        let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
        print("Mask2Former rgb head, queries 5,0,2 vs onnxruntime's mask logits upsampled: max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-4)
        // first3 is queries 0, 1, 2.
        XCTAssertEqual(try convertMask2Former { $0.headInitialisation = .first3 }.head?.maskQueries, [0, 1, 2])
    }

    func testNamedLikeMask2FormerWithoutTheMaskProductIsRefused() throws {
        var graph = segmentationGraph(classes: 5)
        graph.nodes[1].outputs = ["masks_queries_logits"]
        graph.outputs[0].name = "masks_queries_logits"
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: .zero)) { error in
            XCTAssertEqual(error as? RGBHeadError, .noMaskFeatures)
            XCTAssertTrue("\(error)".contains("einsum('bqc,bchw->bqhw')"), "\(error)")
        }
    }

    func testQueriesAreRefusedForAModelWithoutMaskFeatures() throws {
        var graph = segmentationGraph(classes: 5)
        XCTAssertThrowsError(try RGBHead.attach(to: &graph, contract: .init(), initialisation: nil, queries: [0, 1, 2])) { error in
            XCTAssertEqual(error as? RGBHeadError, .queriesWithoutMaskFeatures)
        }
    }

    // MARK: ViT-Adapter + UperNet: the UperNet head

    /// The tiny ViT-Adapter + UperNet (scripts/fixtures/make_vit_adapter.py) has 3 classes at
    /// 1/4 resolution: its classifier is kept and its logits upsampled; checked against
    /// onnxruntime's logits through the resize op's reference kernel.
    func testViTAdapterUperNetKeepsItsClassifierAndIsUpsampled() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models/vit-adapter/tiny")
        var options = ConversionOptions()
        options.head = .rgb
        let converted = try Conversion.convert(folder.appendingPathComponent("model.onnx").path, options: options)
        XCTAssertEqual(converted.head, RGBHead.Outcome(channels: 3, replacedClassifier: nil, appendedResize: "rgb_head.upsample"))
        let x = try NumPyFile.read(path: folder.appendingPathComponent("64x96/input_0.npy").path)
        let logits = try NumPyFile.read(path: folder.appendingPathComponent("64x96/output_0.npy").path)
        XCTAssertEqual(logits.shape, [1, 3, 16, 24])
        let resize = try OpKind.makeOperator(Node(name: "reference", bilinear, inputs: [], outputs: []))
        let expected = try resize.reference([logits, nil, HostTensor(shape: [2], ints: [64, 96])])[0]
        let actual = try run(converted.graph, x)
        XCTAssertEqual(actual.shape, [1, 3, 64, 96])
        let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
        print("ViT-Adapter + UperNet --head rgb vs onnxruntime's logits upsampled: max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-4)
    }
}

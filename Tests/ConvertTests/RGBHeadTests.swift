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
}

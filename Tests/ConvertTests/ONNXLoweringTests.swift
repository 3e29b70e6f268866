import Format
import Foundation
import XCTest
@testable import Convert

/// ONNX nodes become the Restore nodes of OpKind.swift's contract, in every opset form.
final class ONNXLoweringTests: XCTestCase {
    private func clip(min: Float, max: Float) -> Op {
        .unary(Activation(function: .clip, min: min, max: max))
    }

    func testOpset10AttributesBecomeConstantsOrStayAttributes() throws {
        let graph = try ImporterFixtures.load("opset10.onnx")
        XCTAssertEqual(try graph.producer(of: "clip").operation, clip(min: -0.5, max: 2))

        let split = try graph.producer(of: "split_a")
        XCTAssertEqual(split.operation, .split(SplitAttributes(axis: 1, numOutputs: 2)))
        XCTAssertEqual(split.outputs, ["split_a", "split_b"])
        XCTAssertEqual(try graph.ints(split.inputs[1]), [1, 3])

        XCTAssertEqual(try graph.producer(of: "squeeze").operation, .squeeze(SqueezeAttributes(axes: [0])))
        XCTAssertEqual(try graph.producer(of: "reduce").operation,
                       .reduce(ReduceAttributes(function: .mean, axes: [2, 3], keepDims: true)))

        let pad = try graph.producer(of: "pad")
        XCTAssertEqual(pad.operation, .pad(PadAttributes(mode: .reflect)))
        XCTAssertEqual(pad.inputs.count, 2)
        XCTAssertEqual(try graph.ints(pad.inputs[1]), [0, 0, 1, 1, 0, 0, 1, 1])
        XCTAssertTrue(graph.isTopologicallySorted)
    }

    /// Softmax before opset 13 normalises the flattened trailing axes together.
    func testOldSoftmaxOverInnerAxesIsFlattenedAndReshapedBack() throws {
        let graph = try ImporterFixtures.load("opset10.onnx")
        let reshape = try graph.producer(of: "softmax")
        XCTAssertEqual(reshape.operation, .reshape(ReshapeAttributes()))
        let rows = try graph.producer(of: reshape.inputs[0])
        XCTAssertEqual(rows.operation, .softmax(SoftmaxAttributes(axis: -1)))
        let flatten = try graph.producer(of: rows.inputs[0])
        XCTAssertEqual(flatten.operation, .flatten(FlattenAttributes(axis: 1)))
        XCTAssertEqual(flatten.inputs, ["x"])
        let shape = try graph.producer(of: reshape.inputs[1])
        XCTAssertEqual(shape.operation, .shape(ShapeAttributes()))
        XCTAssertEqual(shape.inputs, ["x"])
    }

    func testOpset9SliceAttributesAndUpsample() throws {
        let graph = try ImporterFixtures.load("opset9.onnx")
        let slice = try graph.producer(of: "slice")
        XCTAssertEqual(slice.operation, .slice)
        XCTAssertEqual(try slice.inputs.dropFirst().map { try graph.ints($0) }, [[1], [3], [1]])
        let upsample = try graph.producer(of: "upsample")
        XCTAssertEqual(upsample.inputs, ["x", "scales"])
        guard case .resize(let resize) = upsample.operation else { return XCTFail("upsample is \(upsample.operation)") }
        XCTAssertEqual(resize.coordinateTransformationMode, .asymmetric)
        XCTAssertEqual(resize.nearestMode, .floor)
    }

    func testOpset11ConstantInputsBecomeAttributes() throws {
        let graph = try ImporterFixtures.load("opset11.onnx")
        XCTAssertEqual(try graph.producer(of: "clip").operation, clip(min: -0.5, max: 2))
        XCTAssertNil(graph.constants["lo"], "a bound turned attribute leaves no constant behind")
        XCTAssertEqual(try graph.ints(try graph.producer(of: "split_b").inputs[1]), [1, 3])
        XCTAssertEqual(try graph.producer(of: "squeeze").operation, .squeeze(SqueezeAttributes(axes: [0])))
        guard case .reduce(let reduce) = try graph.producer(of: "reduce").operation else { return XCTFail("reduce is no reduce") }
        XCTAssertFalse(reduce.keepDims)

        let pad = try graph.producer(of: "pad")
        XCTAssertEqual(pad.inputs, ["x", "pads", "pad_value"])
        XCTAssertEqual(pad.operation, .pad(PadAttributes(mode: .constant)))

        let resize = try graph.producer(of: "resize")
        XCTAssertEqual(resize.inputs, ["x", "scales"], "the empty roi is dropped")
        var nearestAsymmetric = ResizeAttributes()
        nearestAsymmetric.mode = .nearest
        nearestAsymmetric.coordinateTransformationMode = .asymmetric
        nearestAsymmetric.nearestMode = .floor
        XCTAssertEqual(resize.operation, .resize(nearestAsymmetric))

        // axis 3 of a rank-4 input is the last axis: same as opset 13's softmax.
        XCTAssertEqual(try graph.producer(of: "softmax").operation, .softmax(SoftmaxAttributes(axis: -1)))
        XCTAssertEqual(try graph.producer(of: "softmax_flat").op, .reshape)
    }

    func testOpset13SplitSqueezeReduceResizeSoftmax() throws {
        let graph = try ImporterFixtures.load("opset13.onnx")
        XCTAssertEqual(try graph.producer(of: "split_a").inputs, ["x", "split_sizes"])
        let even = try graph.producer(of: "even_a")
        XCTAssertEqual(even.inputs, ["x"])
        XCTAssertEqual(even.operation, .split(SplitAttributes(axis: 1, numOutputs: 2)))
        XCTAssertEqual(try graph.producer(of: "squeeze").operation, .squeeze(SqueezeAttributes(axes: [0])))
        guard case .reduce(let reduce) = try graph.producer(of: "reduce").operation else { return XCTFail("reduce is no reduce") }
        XCTAssertEqual(reduce.axes, [1])
        XCTAssertEqual(try graph.producer(of: "reduce_sum").operation,
                       .reduce(ReduceAttributes(function: .sum, axes: [2, 3], keepDims: false)))
        let resize = try graph.producer(of: "resize")
        XCTAssertEqual(resize.inputs, ["x", "", "sizes"])
        guard case .resize(let attributes) = resize.operation else { return XCTFail("resize is \(resize.operation)") }
        XCTAssertEqual(attributes.mode, .linear)
        XCTAssertEqual(attributes.coordinateTransformationMode, .halfPixel)
        XCTAssertEqual(try graph.producer(of: "softmax").operation, .softmax(SoftmaxAttributes(axis: 1)))
        XCTAssertNil(graph.constants["squeeze_axes"])
    }

    func testOpset18SplitReducePadResize() throws {
        let graph = try ImporterFixtures.load("opset18.onnx")
        let split = try graph.producer(of: "split_a")
        XCTAssertEqual(split.inputs, ["x"])
        XCTAssertEqual(split.operation, .split(SplitAttributes(axis: 2, numOutputs: 3)))
        guard case .reduce(let reduce) = try graph.producer(of: "reduce").operation else { return XCTFail("reduce is no reduce") }
        XCTAssertEqual(reduce.axes, [2, 3])
        XCTAssertEqual(try graph.producer(of: "reduce_noop").operation, .unary(.identity))
        XCTAssertEqual(try graph.producer(of: "pad").inputs, ["x", "pads", "", "pad_axes"])
        XCTAssertEqual(try graph.producer(of: "pad").operation, .pad(PadAttributes(mode: .edge)))
        let resize = try graph.producer(of: "resize")
        XCTAssertEqual(resize.inputs, ["x", "scales"])
        guard case .resize(let attributes) = resize.operation else { return XCTFail("resize is \(resize.operation)") }
        XCTAssertEqual(attributes.mode, .cubic)
        XCTAssertEqual(attributes.cubicCoeffA, -0.5)
    }

    func testBatchNormalizationBecomesAPerChannelScaleAndShift() throws {
        let graph = try ImporterFixtures.load("batchnorm.onnx")
        XCTAssertEqual(graph.nodes.map(\.op), [.conv, .binary, .binary, .unary])
        let add = try graph.producer(of: "bn")
        XCTAssertEqual(add.operation, .binary(.add))
        let mul = try graph.producer(of: add.inputs[0])
        XCTAssertEqual(mul.operation, .binary(.mul))
        XCTAssertEqual(mul.inputs[0], "c")

        let (scale, bias, mean, variance, epsilon): ([Float], [Float], [Float], [Float], Float) =
            ([1.5, 0.5], [0.25, -1.0], [0.1, -0.2], [4.0, 0.25], 1e-3)
        let expectedScale = (0..<2).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
        let expectedShift = (0..<2).map { bias[$0] - mean[$0] * expectedScale[$0] }
        let scaleTensor = try XCTUnwrap(graph.constants[mul.inputs[1]])
        let shiftTensor = try XCTUnwrap(graph.constants[add.inputs[1]])
        XCTAssertEqual(scaleTensor.shape, [2, 1, 1])
        XCTAssertEqual(shiftTensor.shape, [2, 1, 1])
        let errors = zip(scaleTensor.floatValues() + shiftTensor.floatValues(), expectedScale + expectedShift).map { abs($0 - $1) }
        let maxError = errors.max() ?? 0
        print("  batchnorm constants: max abs error \(maxError)")
        XCTAssertLessThan(maxError, 1e-6)
        XCTAssertNil(graph.constants["mean"], "statistics folded into the constants are dropped")
        XCTAssertEqual(graph.inputs.map(\.name), ["x"], "a graph input that is an initializer is a constant")
        XCTAssertEqual(graph.constants["w"]?.shape, [2, 3, 1, 1])
    }

    func testGemmWithConstantWeightsBecomesLinear() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        let gemm = try graph.producer(of: "gemm")
        XCTAssertEqual(gemm.operation, .linear(LinearAttributes()))
        XCTAssertEqual(gemm.inputs[0], "flat")
        let weight = try XCTUnwrap(graph.constants[gemm.inputs[1]])
        // B is [K=4, N=3]; W = alpha·Bᵀ is [N, K].
        XCTAssertEqual(weight.shape, [3, 4])
        XCTAssertEqual(weight.floatValues(), [2, 8, 14, 20, 4, 10, 16, 22, 6, 12, 18, 24])
        XCTAssertEqual(try graph.floats(gemm.inputs[2]), [0.5, -0.5, 1])

        let transposed = try graph.producer(of: "gemm_t")
        XCTAssertEqual(transposed.operation, .linear(LinearAttributes()))
        XCTAssertEqual(transposed.inputs, ["flat", "gemm_bt"], "transB=1 with alpha 1 uses B as stored")
    }

    func testGemmWithComputedWeightsBecomesMatMulAndScale() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        let scale = try graph.producer(of: "gemm_dynamic")
        XCTAssertEqual(scale.operation, .binary(.mul))
        XCTAssertEqual(try graph.floats(scale.inputs[1]), [3])
        let matMul = try graph.producer(of: scale.inputs[0])
        XCTAssertEqual(matMul.operation, .matMul)
        XCTAssertEqual(matMul.inputs, ["flat", "flat_t"])
    }

    func testConvolutionPoolingAndLayoutOps() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        // stride 2·(4−1) + 3 − 8 = 1 pixel of padding in total, the odd one at the begin.
        var deconv = ConvTransposeAttributes()
        deconv.window.strides = [2, 2]
        deconv.window.pads = [1, 1, 0, 0]
        XCTAssertEqual(try graph.producer(of: "deconv").operation, .convTranspose(deconv))

        XCTAssertEqual(try graph.producer(of: "gap").operation,
                       .reduce(ReduceAttributes(function: .mean, axes: [2, 3], keepDims: true)))

        var pool = PoolAttributes()
        pool.kernelShape = [3, 3]
        pool.window.strides = [2, 2]
        pool.window.pads = [1, 1, 1, 1]
        pool.ceilMode = true
        XCTAssertEqual(try graph.producer(of: "pool").operation, .maxPool(pool))
        XCTAssertEqual(try graph.producer(of: "d2s").operation,
                       .depthToSpace(DepthToSpaceAttributes(blockSize: 2, mode: .columnRowDepth)))
        let layerNorm = try graph.producer(of: "ln")
        XCTAssertEqual(layerNorm.inputs, ["x", "ln_scale", ""])
        XCTAssertEqual(layerNorm.operation, .layerNorm(LayerNormAttributes(axis: -1, epsilon: 1e-6)))
        XCTAssertEqual(try graph.producer(of: "leaky").operation, .unary(Activation(function: .leakyRelu, alpha: 0.2)))
        XCTAssertEqual(try graph.producer(of: "x_shape").operation, .shape(ShapeAttributes(start: 2, end: nil)))
        XCTAssertEqual(try graph.producer(of: "x_shape_f").operation, .cast(CastAttributes(to: .float32)))
    }

    func testIdentityAndDropoutAreRemovedAndVariadicMaxIsChained() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        XCTAssertFalse(graph.nodes.contains { $0.outputs.contains("x_alias") || $0.outputs.contains("x_dropped") })
        let last = try graph.producer(of: "max3")
        XCTAssertEqual(last.operation, .binary(.max))
        XCTAssertEqual(last.inputs[1], "ln")
        let first = try graph.producer(of: last.inputs[0])
        XCTAssertEqual(first.inputs, ["x", "x"], "Identity and Dropout outputs are renamed to x")
        // An Identity that writes a graph output keeps the output's name.
        let output = try graph.producer(of: "x_out")
        XCTAssertEqual(output.name, "identity_out")
        XCTAssertEqual(output.operation, .unary(.identity))
        XCTAssertTrue(graph.isTopologicallySorted)
    }
}

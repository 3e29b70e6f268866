import Format
import Foundation
import XCTest
@testable import Convert

/// ONNX nodes become the Restore nodes of OpKind.swift's contract, in every opset form.
final class ONNXLoweringTests: XCTestCase {
    private func function(_ node: Node) -> String? {
        if case .string(let name)? = node.attributes["function"] { name } else { nil }
    }

    func testOpset10AttributesBecomeConstantsOrStayAttributes() throws {
        let graph = try ImporterFixtures.load("opset10.onnx")
        let clip = try graph.producer(of: "clip")
        XCTAssertEqual(clip.op, .unary)
        XCTAssertEqual(clip.attributes, ["function": .string("clip"), "min": .float(-0.5), "max": .float(2)])

        let split = try graph.producer(of: "split_a")
        XCTAssertEqual(split.op, .split)
        XCTAssertEqual(split.outputs, ["split_a", "split_b"])
        XCTAssertEqual(split.attributes, ["axis": .int(1), "numOutputs": .int(2)])
        XCTAssertEqual(try graph.ints(split.inputs[1]), [1, 3])

        XCTAssertEqual(try graph.producer(of: "squeeze").attributes, ["axes": .ints([0])])
        XCTAssertEqual(try graph.producer(of: "reduce").attributes,
                       ["function": .string("mean"), "axes": .ints([2, 3]), "keepDims": .int(1)])

        let pad = try graph.producer(of: "pad")
        XCTAssertEqual(pad.attributes, ["mode": .string("reflect")])
        XCTAssertEqual(pad.inputs.count, 2)
        XCTAssertEqual(try graph.ints(pad.inputs[1]), [0, 0, 1, 1, 0, 0, 1, 1])
        XCTAssertTrue(graph.isTopologicallySorted)
    }

    /// Softmax before opset 13 normalises the flattened trailing axes together.
    func testOldSoftmaxOverInnerAxesIsFlattenedAndReshapedBack() throws {
        let graph = try ImporterFixtures.load("opset10.onnx")
        let reshape = try graph.producer(of: "softmax")
        XCTAssertEqual(reshape.op, .reshape)
        let rows = try graph.producer(of: reshape.inputs[0])
        XCTAssertEqual(rows.op, .softmax)
        XCTAssertEqual(rows.attributes, ["axis": .int(-1)])
        let flatten = try graph.producer(of: rows.inputs[0])
        XCTAssertEqual(flatten.op, .flatten)
        XCTAssertEqual(flatten.attributes, ["axis": .int(1)])
        XCTAssertEqual(flatten.inputs, ["x"])
        let shape = try graph.producer(of: reshape.inputs[1])
        XCTAssertEqual(shape.op, .shape)
        XCTAssertEqual(shape.inputs, ["x"])
    }

    func testOpset9SliceAttributesAndUpsample() throws {
        let graph = try ImporterFixtures.load("opset9.onnx")
        let slice = try graph.producer(of: "slice")
        XCTAssertEqual(slice.op, .slice)
        XCTAssertEqual(try slice.inputs.dropFirst().map { try graph.ints($0) }, [[1], [3], [1]])
        let upsample = try graph.producer(of: "upsample")
        XCTAssertEqual(upsample.op, .resize)
        XCTAssertEqual(upsample.inputs, ["x", "scales"])
        XCTAssertEqual(upsample.attributes["coordinateTransformationMode"], .string("asymmetric"))
        XCTAssertEqual(upsample.attributes["nearestMode"], .string("floor"))
    }

    func testOpset11ConstantInputsBecomeAttributes() throws {
        let graph = try ImporterFixtures.load("opset11.onnx")
        XCTAssertEqual(try graph.producer(of: "clip").attributes,
                       ["function": .string("clip"), "min": .float(-0.5), "max": .float(2)])
        XCTAssertNil(graph.constants["lo"], "a bound turned attribute leaves no constant behind")
        XCTAssertEqual(try graph.ints(try graph.producer(of: "split_b").inputs[1]), [1, 3])
        XCTAssertEqual(try graph.producer(of: "squeeze").attributes, ["axes": .ints([0])])
        XCTAssertEqual(try graph.producer(of: "reduce").attributes["keepDims"], .int(0))

        let pad = try graph.producer(of: "pad")
        XCTAssertEqual(pad.inputs, ["x", "pads", "pad_value"])
        XCTAssertEqual(pad.attributes, ["mode": .string("constant")])

        let resize = try graph.producer(of: "resize")
        XCTAssertEqual(resize.inputs, ["x", "scales"], "the empty roi is dropped")
        XCTAssertEqual(resize.attributes, ["mode": .string("nearest"), "coordinateTransformationMode": .string("asymmetric"),
                                           "nearestMode": .string("floor")])

        // axis 3 of a rank-4 input is the last axis: same as opset 13's softmax.
        let softmax = try graph.producer(of: "softmax")
        XCTAssertEqual(softmax.op, .softmax)
        XCTAssertEqual(softmax.attributes, ["axis": .int(-1)])
        XCTAssertEqual(try graph.producer(of: "softmax_flat").op, .reshape)
    }

    func testOpset13SplitSqueezeReduceResizeSoftmax() throws {
        let graph = try ImporterFixtures.load("opset13.onnx")
        XCTAssertEqual(try graph.producer(of: "split_a").inputs, ["x", "split_sizes"])
        let even = try graph.producer(of: "even_a")
        XCTAssertEqual(even.inputs, ["x"])
        XCTAssertEqual(even.attributes, ["axis": .int(1), "numOutputs": .int(2)])
        XCTAssertEqual(try graph.producer(of: "squeeze").attributes, ["axes": .ints([0])])
        XCTAssertEqual(try graph.producer(of: "reduce").attributes["axes"], .ints([1]))
        XCTAssertEqual(try graph.producer(of: "reduce_sum").attributes,
                       ["function": .string("sum"), "axes": .ints([2, 3]), "keepDims": .int(0)])
        let resize = try graph.producer(of: "resize")
        XCTAssertEqual(resize.inputs, ["x", "", "sizes"])
        XCTAssertEqual(resize.attributes["mode"], .string("linear"))
        XCTAssertEqual(resize.attributes["coordinateTransformationMode"], .string("half_pixel"))
        XCTAssertEqual(try graph.producer(of: "softmax").attributes, ["axis": .int(1)])
        XCTAssertNil(graph.constants["squeeze_axes"])
    }

    func testOpset18SplitReducePadResize() throws {
        let graph = try ImporterFixtures.load("opset18.onnx")
        let split = try graph.producer(of: "split_a")
        XCTAssertEqual(split.inputs, ["x"])
        XCTAssertEqual(split.attributes, ["axis": .int(2), "numOutputs": .int(3)])
        XCTAssertEqual(try graph.producer(of: "reduce").attributes["axes"], .ints([2, 3]))
        let noop = try graph.producer(of: "reduce_noop")
        XCTAssertEqual(noop.op, .unary)
        XCTAssertEqual(function(noop), "identity")
        XCTAssertEqual(try graph.producer(of: "pad").inputs, ["x", "pads", "", "pad_axes"])
        XCTAssertEqual(try graph.producer(of: "pad").attributes, ["mode": .string("edge")])
        let resize = try graph.producer(of: "resize")
        XCTAssertEqual(resize.inputs, ["x", "scales"])
        XCTAssertEqual(resize.attributes["mode"], .string("cubic"))
        XCTAssertEqual(resize.attributes["cubicCoeffA"], .float(-0.5))
    }

    func testBatchNormalizationBecomesAPerChannelScaleAndShift() throws {
        let graph = try ImporterFixtures.load("batchnorm.onnx")
        XCTAssertEqual(graph.nodes.map(\.op), [.conv, .binary, .binary, .unary])
        let add = try graph.producer(of: "bn")
        XCTAssertEqual(function(add), "add")
        let mul = try graph.producer(of: add.inputs[0])
        XCTAssertEqual(function(mul), "mul")
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
        XCTAssertEqual(gemm.op, .linear)
        XCTAssertEqual(gemm.inputs[0], "flat")
        let weight = try XCTUnwrap(graph.constants[gemm.inputs[1]])
        // B is [K=4, N=3]; W = alpha·Bᵀ is [N, K].
        XCTAssertEqual(weight.shape, [3, 4])
        XCTAssertEqual(weight.floatValues(), [2, 8, 14, 20, 4, 10, 16, 22, 6, 12, 18, 24])
        XCTAssertEqual(try graph.floats(gemm.inputs[2]), [0.5, -0.5, 1])

        let transposed = try graph.producer(of: "gemm_t")
        XCTAssertEqual(transposed.op, .linear)
        XCTAssertEqual(transposed.inputs, ["flat", "gemm_bt"], "transB=1 with alpha 1 uses B as stored")
    }

    func testGemmWithComputedWeightsBecomesMatMulAndScale() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        let scale = try graph.producer(of: "gemm_dynamic")
        XCTAssertEqual(function(scale), "mul")
        XCTAssertEqual(try graph.floats(scale.inputs[1]), [3])
        let matMul = try graph.producer(of: scale.inputs[0])
        XCTAssertEqual(matMul.op, .matMul)
        XCTAssertEqual(matMul.inputs, ["flat", "flat_t"])
    }

    func testConvolutionPoolingAndLayoutOps() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        let deconv = try graph.producer(of: "deconv")
        XCTAssertEqual(deconv.op, .convTranspose)
        // stride 2·(4−1) + 3 − 8 = 1 pixel of padding in total, the odd one at the begin.
        XCTAssertEqual(deconv.attributes, ["strides": .ints([2, 2]), "pads": .ints([1, 1, 0, 0])])

        let gap = try graph.producer(of: "gap")
        XCTAssertEqual(gap.op, .reduce)
        XCTAssertEqual(gap.attributes, ["function": .string("mean"), "axes": .ints([2, 3]), "keepDims": .int(1)])

        XCTAssertEqual(try graph.producer(of: "pool").attributes, [
            "kernelShape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceilMode": .int(1),
        ])
        XCTAssertEqual(try graph.producer(of: "d2s").attributes, ["blockSize": .int(2), "mode": .string("CRD")])
        let layerNorm = try graph.producer(of: "ln")
        XCTAssertEqual(layerNorm.inputs, ["x", "ln_scale", ""])
        XCTAssertEqual(layerNorm.attributes, ["axis": .int(-1), "epsilon": .float(1e-6)])
        XCTAssertEqual(try graph.producer(of: "leaky").attributes, ["function": .string("leakyRelu"), "alpha": .float(0.2)])
        XCTAssertEqual(try graph.producer(of: "x_shape").attributes, ["start": .int(2)])
        XCTAssertEqual(try graph.producer(of: "x_shape_f").attributes, ["to": .string("f32")])
    }

    func testIdentityAndDropoutAreRemovedAndVariadicMaxIsChained() throws {
        let graph = try ImporterFixtures.load("misc_ops.onnx")
        XCTAssertFalse(graph.nodes.contains { $0.outputs.contains("x_alias") || $0.outputs.contains("x_dropped") })
        let last = try graph.producer(of: "max3")
        XCTAssertEqual(function(last), "max")
        XCTAssertEqual(last.inputs[1], "ln")
        let first = try graph.producer(of: last.inputs[0])
        XCTAssertEqual(first.inputs, ["x", "x"], "Identity and Dropout outputs are renamed to x")
        // An Identity that writes a graph output keeps the output's name.
        let output = try graph.producer(of: "x_out")
        XCTAssertEqual(output.name, "identity_out")
        XCTAssertEqual(function(output), "identity")
        XCTAssertTrue(graph.isTopologicallySorted)
    }
}

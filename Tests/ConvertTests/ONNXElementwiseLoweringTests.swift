import Format
import Foundation
import XCTest
@testable import Convert

/// The table entries of element-wise, normalisation and shape ops (elementwise_ops.onnx, opset 20).
final class ONNXElementwiseLoweringTests: XCTestCase {
    func testEachOpBecomesItsRestoreOpWithParameters() throws {
        let graph = try ImporterFixtures.load("elementwise_ops.onnx")
        var averagePool = PoolAttributes()
        averagePool.kernelShape = [2, 2]
        averagePool.countIncludePad = true
        averagePool.window.autoPad = .sameUpper
        var conv = ConvAttributes()
        conv.group = 2
        conv.window.dilations = [2, 2]
        conv.window.pads = [2, 2, 2, 2]
        let expected: [(String, Op)] = [
            ("gelu", .unary(Activation(function: .geluTanh))),
            ("gelu_erf", .unary(Activation(function: .gelu))),
            ("elu", .unary(Activation(function: .elu, alpha: 0.5))),
            ("hard_sigmoid", .unary(Activation(function: .hardSigmoid, alpha: 0.2, beta: 0.5))),
            ("softplus", .unary(Activation(function: .softplus))),
            ("erf", .unary(Activation(function: .erf))),
            ("prelu", .binary(.prelu)),
            ("pow", .binary(.pow)),
            ("greater", .binary(.greater)),
            ("not", .unary(Activation(function: .not))),
            ("where", .where),
            ("concat", .concat(ConcatAttributes(axis: 1))),
            ("expand", .expand),
            ("tile", .tile),
            ("instance_norm", .instanceNorm(InstanceNormAttributes(epsilon: 1e-4))),
            ("filled", .constantOfShape(ConstantOfShapeAttributes(value: 7, dtype: .int64))),
            ("range", .range),
            ("s2d", .spaceToDepth(SpaceToDepthAttributes(blockSize: 2))),
            ("avg", .averagePool(averagePool)),
            ("conv", .conv(conv)),
        ]
        for (output, operation) in expected {
            let node = try graph.producer(of: output)
            XCTAssertEqual(node.operation, operation, output)
            XCTAssertEqual(node.name, output, "the Restore node keeps the ONNX node's name")
        }
        XCTAssertEqual(try graph.producer(of: "where").inputs, ["greater", "x", "two"])
        XCTAssertEqual(try graph.producer(of: "range").inputs, ["start", "limit", "delta"])
    }

    func testHardSwishIsInputTimesHardSigmoid() throws {
        let graph = try ImporterFixtures.load("elementwise_ops.onnx")
        let product = try graph.producer(of: "hard_swish")
        XCTAssertEqual(product.operation, .binary(.mul))
        let gate = try graph.producer(of: product.inputs[1])
        XCTAssertEqual(product.inputs[0], "x")
        XCTAssertEqual(gate.operation, .unary(Activation(function: .hardSigmoid, alpha: 1.0 / 6, beta: 0.5)))
    }

    func testVariadicSumAndBinaryMinAreChains() throws {
        let graph = try ImporterFixtures.load("elementwise_ops.onnx")
        let sum = try graph.producer(of: "sum3")
        XCTAssertEqual(sum.operation, .binary(.add))
        XCTAssertEqual(try graph.producer(of: sum.inputs[0]).inputs, ["x", "x"])
        XCTAssertEqual(try graph.producer(of: "min2").inputs, ["x", "slope"])
    }
}

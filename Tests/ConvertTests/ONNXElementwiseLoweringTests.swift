import Format
import Foundation
import XCTest
@testable import Convert

/// The table entries of element-wise, normalisation and shape ops (elementwise_ops.onnx, opset 20).
final class ONNXElementwiseLoweringTests: XCTestCase {
    func testEachOpBecomesItsRestoreOpWithParameters() throws {
        let graph = try ImporterFixtures.load("elementwise_ops.onnx")
        let expected: [(String, OpKind, [String: Attribute])] = [
            ("gelu", .unary, ["function": .string("geluTanh")]),
            ("gelu_erf", .unary, ["function": .string("gelu")]),
            ("elu", .unary, ["function": .string("elu"), "alpha": .float(0.5)]),
            ("hard_sigmoid", .unary, ["function": .string("hardSigmoid"), "alpha": .float(0.2), "beta": .float(0.5)]),
            ("softplus", .unary, ["function": .string("softplus")]),
            ("erf", .unary, ["function": .string("erf")]),
            ("prelu", .binary, ["function": .string("prelu")]),
            ("pow", .binary, ["function": .string("pow")]),
            ("greater", .binary, ["function": .string("greater")]),
            ("not", .unary, ["function": .string("not")]),
            ("where", .where, [:]),
            ("concat", .concat, ["axis": .int(1)]),
            ("expand", .expand, [:]),
            ("tile", .tile, [:]),
            ("instance_norm", .instanceNorm, ["epsilon": .float(1e-4)]),
            ("filled", .constantOfShape, ["value": .float(7), "dtype": .string("i64")]),
            ("range", .range, [:]),
            ("s2d", .spaceToDepth, ["blockSize": .int(2)]),
            ("avg", .averagePool, ["kernelShape": .ints([2, 2]), "countIncludePad": .int(1), "autoPad": .string("same_upper")]),
            ("conv", .conv, ["group": .int(2), "dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])]),
        ]
        for (output, op, attributes) in expected {
            let node = try graph.producer(of: output)
            XCTAssertEqual(node.op, op, output)
            XCTAssertEqual(node.attributes, attributes, output)
            XCTAssertEqual(node.name, output, "the Restore node keeps the ONNX node's name")
        }
        XCTAssertEqual(try graph.producer(of: "where").inputs, ["greater", "x", "two"])
        XCTAssertEqual(try graph.producer(of: "range").inputs, ["start", "limit", "delta"])
    }

    func testHardSwishIsInputTimesHardSigmoid() throws {
        let graph = try ImporterFixtures.load("elementwise_ops.onnx")
        let product = try graph.producer(of: "hard_swish")
        XCTAssertEqual(product.attributes, ["function": .string("mul")])
        let gate = try graph.producer(of: product.inputs[1])
        XCTAssertEqual(product.inputs[0], "x")
        XCTAssertEqual(gate.attributes, ["function": .string("hardSigmoid"), "alpha": .float(1.0 / 6), "beta": .float(0.5)])
    }

    func testVariadicSumAndBinaryMinAreChains() throws {
        let graph = try ImporterFixtures.load("elementwise_ops.onnx")
        let sum = try graph.producer(of: "sum3")
        XCTAssertEqual(sum.attributes, ["function": .string("add")])
        XCTAssertEqual(try graph.producer(of: sum.inputs[0]).inputs, ["x", "x"])
        XCTAssertEqual(try graph.producer(of: "min2").inputs, ["x", "slope"])
    }
}

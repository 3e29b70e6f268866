import Format
import Foundation
import XCTest
@testable import Convert

/// Models written by PyTorch's exporters (make_importer_cases.py, torch_exports) import
/// completely: every node lowers, the order is topological, weights are found.
final class ONNXTorchExportTests: XCTestCase {
    @discardableResult
    private func checkImport(_ name: String, inputShape: [Dim], expectedOps: Set<OpKind>) throws -> Graph {
        let graph = try ImporterFixtures.load(name)
        XCTAssertEqual(graph.inputs, [ValueInfo(name: "x", dtype: .float32, shape: inputShape)], name)
        XCTAssertEqual(graph.outputs.map(\.name), ["y"], name)
        XCTAssertTrue(graph.isTopologicallySorted, name)
        let ops = Set(graph.nodes.map(\.op))
        XCTAssertTrue(expectedOps.isSubset(of: ops), "\(name): missing \(expectedOps.subtracting(ops))")
        XCTAssertTrue(graph.constants.values.contains { $0.shape == [4, 3, 3, 3] }, "\(name): head weight")
        print("  \(name): \(graph.nodes.count) nodes, \(graph.constants.count) constants, ops \(ops.map(\.rawValue).sorted())")
        return graph
    }

    private let restorerOps: Set<OpKind> = [.conv, .convTranspose, .resize, .maxPool, .averagePool, .pad, .depthToSpace,
                                           .softmax, .matMul, .reduce, .concat, .unary, .binary]

    func testTorchScriptExportAtOpset11() throws {
        try checkImport("torch_opset11.onnx", inputShape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")],
                        expectedOps: restorerOps)
    }

    func testTorchScriptExportAtOpset17() throws {
        try checkImport("torch_opset17.onnx", inputShape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")],
                        expectedOps: restorerOps.union([.layerNorm]))
    }

    func testDynamoExportWithExternalWeights() throws {
        let graph = try checkImport("torch_dynamo18.onnx", inputShape: [.fixed(1), .fixed(3), .fixed(16), .fixed(16)],
                                    expectedOps: restorerOps.union([.layerNorm]))
        let weight = try XCTUnwrap(graph.constants["head.weight"])
        XCTAssertEqual(weight.dtype, .float32)
        XCTAssertTrue(weight.floatValues().contains { $0 != 0 }, "weights come from the .data file")
    }
}

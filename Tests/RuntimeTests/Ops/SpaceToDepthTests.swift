import Format
import XCTest
@testable import Runtime

/// spaceToDepth: fast against reference and inverse of depthToSpace in both modes (against
/// onnxruntime: Tests/Fixtures/ops).
final class SpaceToDepthTests: XCTestCase {
    private func node(block: Int, mode: String = "DCR") -> Node {
        try! Node(name: "spaceToDepth", op: .spaceToDepth, inputs: ["X"], outputs: ["Y"],
                  attributes: ["blockSize": .int(block), "mode": .string(mode)])
    }

    func testFastMatchesReference() throws {
        try KernelHarness.assertFastMatchesReference(node(block: 2), [KernelHarness.random([2, 3, 14, 18], seed: 1)])
        try KernelHarness.assertFastMatchesReference(node(block: 3), [KernelHarness.random([1, 1, 3, 195], seed: 2)])
        try KernelHarness.assertFastMatchesReference(node(block: 2, mode: "CRD"), [KernelHarness.random([2, 3, 14, 18], seed: 4)])
    }

    func testInvertsDepthToSpaceOfTheSameMode() throws {
        let x = KernelHarness.random([2, 3, 6, 4], seed: 3)
        for mode in ["DCR", "CRD"] {
            let deep = try OpKind.makeOperator(node(block: 2, mode: mode)).reference([x])[0]
            let back = try! Node(name: "d2s", op: .depthToSpace, inputs: ["X"], outputs: ["Y"],
                                 attributes: ["blockSize": .int(2), "mode": .string(mode)])
            XCTAssertEqual(try OpKind.makeOperator(back).reference([deep])[0], x, mode)
        }
    }

    /// CRD keeps each input channel's b² pixels together: channel c·4 + i·2 + j.
    func testColumnRowDepthOrder() throws {
        let x = HostTensor(shape: [1, 2, 2, 2], floats: [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(try OpKind.makeOperator(node(block: 2, mode: "CRD")).reference([x]),
                       [HostTensor(shape: [1, 8, 1, 1], floats: [1, 2, 3, 4, 5, 6, 7, 8])])
        XCTAssertEqual(try OpKind.makeOperator(node(block: 2)).reference([x]),
                       [HostTensor(shape: [1, 8, 1, 1], floats: [1, 5, 2, 6, 3, 7, 4, 8])])
    }
}

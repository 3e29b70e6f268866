import Format
import XCTest
@testable import Runtime

/// spaceToDepth: fast against reference and inverse of DCR depthToSpace (against onnxruntime:
/// Tests/Fixtures/ops).
final class SpaceToDepthTests: XCTestCase {
    private func node(block: Int) -> Node {
        try! Node(name: "spaceToDepth", op: .spaceToDepth, inputs: ["X"], outputs: ["Y"], attributes: ["blockSize": .int(block)])
    }

    func testFastMatchesReference() throws {
        try KernelHarness.assertFastMatchesReference(node(block: 2), [KernelHarness.random([2, 3, 14, 18], seed: 1)])
        try KernelHarness.assertFastMatchesReference(node(block: 3), [KernelHarness.random([1, 1, 3, 195], seed: 2)])
    }

    func testInvertsDepthToSpaceDCR() throws {
        let x = KernelHarness.random([2, 3, 6, 4], seed: 3)
        let deep = try OpKind.makeOperator(node(block: 2)).reference([x])[0]
        let back = try! Node(name: "d2s", op: .depthToSpace, inputs: ["X"], outputs: ["Y"],
                        attributes: ["blockSize": .int(2), "mode": .string("DCR")])
        XCTAssertEqual(try OpKind.makeOperator(back).reference([deep])[0], x)
    }
}

import Format
import XCTest
@testable import Runtime

/// depthToSpace in both modes: fast against reference (against onnxruntime: Tests/Fixtures/ops).
final class DepthToSpaceTests: XCTestCase {
    private func node(block: Int, mode: String) -> Node {
        try! Node(name: "depthToSpace", op: .depthToSpace, inputs: ["X"], outputs: ["Y"],
             attributes: ["blockSize": .int(block), "mode": .string(mode)])
    }

    func testFastMatchesReference() throws {
        for mode in ["DCR", "CRD"] {
            try KernelHarness.assertFastMatchesReference(node(block: 2, mode: mode), [KernelHarness.random([2, 12, 7, 9], seed: 1)])
            try KernelHarness.assertFastMatchesReference(node(block: 3, mode: mode), [KernelHarness.random([1, 9, 1, 65], seed: 2)])
            try KernelHarness.assertFastMatchesReference(node(block: 1, mode: mode), [KernelHarness.random([1, 3, 5, 4], seed: 3)])
        }
    }

    func testMovesIntegerElements() throws {
        let x = HostTensor(shape: [1, 4, 1, 1], ints: [10, 11, 12, 13])
        XCTAssertEqual(try OpKind.makeOperator(node(block: 2, mode: "DCR")).reference([x])[0],
                       HostTensor(shape: [1, 1, 2, 2], ints: [10, 11, 12, 13]))
        let crd = HostTensor(shape: [1, 8, 1, 1], ints: [0, 1, 2, 3, 4, 5, 6, 7])
        // DCR: channel (i·2+j)·C + c; CRD: channel c·4 + i·2 + j.
        XCTAssertEqual(try OpKind.makeOperator(node(block: 2, mode: "DCR")).reference([crd])[0].ints, [0, 2, 4, 6, 1, 3, 5, 7])
        XCTAssertEqual(try OpKind.makeOperator(node(block: 2, mode: "CRD")).reference([crd])[0].ints, [0, 1, 2, 3, 4, 5, 6, 7])
    }

    func testRejectsChannelsNotMultipleOfBlockArea() {
        XCTAssertThrowsError(try OpKind.makeOperator(node(block: 2, mode: "DCR")).outputs(for: [ValueFact(dtype: .float32, shape: [1, 6, 2, 2])]))
    }
}

import Format
import XCTest
@testable import Runtime

/// pad in every mode: fast against reference and integer elements (against onnxruntime:
/// Tests/Fixtures/ops).
final class PadTests: XCTestCase {
    private func node(_ mode: String, value: Bool = false, axes: Bool = false) -> Node {
        try! Node(name: "pad", op: .pad, inputs: ["X", "pads", value ? "value" : "", axes ? "axes" : ""],
             outputs: ["Y"], attributes: ["mode": .string(mode)])
    }

    private func pads(_ values: [Int64]) -> HostTensor { HostTensor(shape: [values.count], ints: values) }

    func testFastMatchesReferenceInEveryMode() throws {
        for mode in ["constant", "reflect", "edge"] {
            let x = KernelHarness.random([2, 3, 7, 9], seed: 1)
            try KernelHarness.assertFastMatchesReference(node(mode), [x, pads([0, 1, 2, 3, 1, 0, 4, 5])])
            try KernelHarness.assertFastMatchesReference(node(mode), [KernelHarness.random([1, 63, 65], seed: 2), pads([0, 3, 1, 1, 2, 7])])
            try KernelHarness.assertFastMatchesReference(node(mode), [KernelHarness.random([65], seed: 3), pads([4, 2])])
            try KernelHarness.assertFastMatchesReference(node(mode), [KernelHarness.random([1, 1, 1, 1], seed: 4), pads([0, 0, 0, 0, 0, 0, 0, 0])])
        }
    }

    func testConstantValueAndNegativePads() throws {
        let x = KernelHarness.random([1, 3, 6, 7], seed: 5)
        let value = HostTensor(shape: [], floats: [0.75])
        try KernelHarness.assertFastMatchesReference(node("constant", value: true), [x, pads([0, -1, 2, -2, 0, 0, -1, 1]), value])
        try KernelHarness.assertFastMatchesReference(node("edge"), [x, pads([0, 0, -2, 3, 0, 0, 1, -3])])
    }

    func testAxesInput() throws {
        let x = KernelHarness.random([2, 5, 6], seed: 6)
        try KernelHarness.assertFastMatchesReference(node("reflect", axes: true),
                                                     [x, pads([1, 2, 3, 2]), nil, HostTensor(shape: [2], ints: [-1, 1])])
    }

    func testReflectBeyondOneMirrorImage() throws {
        // [1 2 3] reflected by 5 on the left repeats the mirror with period 4, as numpy.pad.
        let x = HostTensor(shape: [3], ints: [1, 2, 3])
        XCTAssertEqual(try OpKind.makeOperator(node("reflect")).reference([x, pads([5, 0])])[0].ints, [2, 1, 2, 3, 2, 1, 2, 3])
    }

    func testPadsIntegerTensors() throws {
        let x = HostTensor(shape: [2, 2], ints: [1, 2, 3, 4])
        let value = HostTensor(shape: [], ints: [9])
        XCTAssertEqual(try OpKind.makeOperator(node("constant", value: true)).reference([x, pads([0, 1, 1, 0]), value])[0],
                       HostTensor(shape: [3, 3], ints: [9, 1, 2, 9, 3, 4, 9, 9, 9]))
        XCTAssertEqual(try OpKind.makeOperator(node("edge")).reference([x, pads([1, 0, 0, 1])])[0].ints, [1, 2, 2, 1, 2, 2, 3, 4, 4])
    }

    func testRejectsWrongPadCount() {
        XCTAssertThrowsError(try OpKind.makeOperator(node("constant")).reference([HostTensor(shape: [2, 2], floats: [1, 2, 3, 4]), pads([1, 1])]))
    }
}

import Format
import XCTest
@testable import Runtime

/// The fast max pooling against the reference loops (against onnxruntime: Tests/Fixtures/ops).
final class MaxPoolTests: XCTestCase {
    private func check(_ shape: [Int], _ attributes: [String: Attribute], seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let node = try! Node(name: "maxPool", op: .maxPool, inputs: ["X"], outputs: ["Y"], attributes: attributes)
        try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random(shape, seed: seed)], file: file, line: line)
    }

    func testOddShapesAndWindows() throws {
        try check([1, 1, 1, 1], ["kernelShape": .ints([1, 1])], seed: 1)
        // No interior column: every window touches the padding.
        try check([1, 2, 3, 2], ["kernelShape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])], seed: 9)
        try check([2, 3, 63, 65], ["kernelShape": .ints([2, 2]), "strides": .ints([2, 2])], seed: 2)
        try check([1, 4, 65, 63], ["kernelShape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 3)
        try check([1, 2, 17, 15], ["kernelShape": .ints([3, 2]), "dilations": .ints([2, 2]), "pads": .ints([2, 0, 1, 1])], seed: 4)
    }

    func testCeilModeAndAutoPad() throws {
        try check([2, 2, 10, 7], ["kernelShape": .ints([3, 3]), "strides": .ints([2, 2]), "ceilMode": .int(1)], seed: 5)
        try check([1, 1, 6, 6], ["kernelShape": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                                 "ceilMode": .int(1)], seed: 6)
        for mode in ["same_upper", "same_lower", "valid"] {
            try check([1, 2, 7, 8], ["kernelShape": .ints([3, 2]), "strides": .ints([2, 2]), "autoPad": .string(mode)], seed: 7)
        }
    }

    func testCeilModeDropsWindowStartingInEndPadding() throws {
        // 5 pixels, pad 1+1, kernel 2, stride 2: ceil((5+2-2)/2)+1 = 4 windows, but the 4th
        // would start at 6 = input + left pad, wholly in the end padding, so ONNX keeps 3.
        // With 6 pixels the 4th window starts at 6 < 7 and stays.
        let node = try! Node(name: "maxPool", op: .maxPool, inputs: ["X"], outputs: ["Y"],
                        attributes: ["kernelShape": .ints([2, 2]), "strides": .ints([2, 2]),
                                     "pads": .ints([1, 1, 1, 1]), "ceilMode": .int(1)])
        let shape = try OpKind.makeOperator(node).outputs(for: [ValueFact(dtype: .float32, shape: [1, 1, 6, 6])])[0].shape
        XCTAssertEqual(shape, [1, 1, 4, 4])
        let shape5 = try OpKind.makeOperator(node).outputs(for: [ValueFact(dtype: .float32, shape: [1, 1, 5, 5])])[0].shape
        XCTAssertEqual(shape5, [1, 1, 3, 3])
    }
}

import Format
import XCTest
@testable import Runtime

final class SplitTests: XCTestCase {
    func testFastMatchesReferenceWithSizes() throws {
        let cases: [([Int], Int, [Int64])] = [
            ([65], 0, [1, 63, 1]), ([7, 63], 1, [31, 0, 32]), ([3, 65, 7], -2, [7, 58]),
            ([2, 3, 5, 7, 9], 4, [2, 7]), ([1, 7, 1, 63], 0, [1]),
        ]
        for (seed, (shape, axis, sizes)) in cases.enumerated() {
            let node = LayoutTesting.node(.split, "split\(shape)", inputs: 2, outputs: sizes.count, ["axis": .int(axis)])
            try KernelHarness.assertFastMatchesReference(
                node, [KernelHarness.random(shape, seed: UInt64(seed + 1)), LayoutTesting.ints(sizes)], planTime: [1])
        }
    }

    func testFastMatchesReferenceWithEqualParts() throws {
        for (seed, (shape, axis, parts)) in [([63, 7], 0, 3), ([7, 65], 1, 4), ([2, 3, 65, 5], -2, 2)].enumerated() {
            let node = LayoutTesting.node(.split, "split\(shape)", outputs: parts, ["axis": .int(axis), "numOutputs": .int(parts)])
            try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random(shape, seed: UInt64(seed + 1))])
        }
    }

    /// ONNX 18: parts of ceil(size / parts), the last one smaller.
    func testUnevenPartsLeaveTheLastOneSmaller() throws {
        let node = LayoutTesting.node(.split, "s", outputs: 3, ["numOutputs": .int(3)])
        let output = try LayoutTesting.reference(node, [LayoutTesting.ints([1, 2, 3, 4, 5, 6, 7])])
        XCTAssertEqual(output, [LayoutTesting.ints([1, 2, 3]), LayoutTesting.ints([4, 5, 6]), LayoutTesting.ints([7])])
    }

    func testSplitsIntegersBySizes() throws {
        let node = LayoutTesting.node(.split, "s", inputs: 2, outputs: 2)
        let output = try LayoutTesting.reference(node, [LayoutTesting.ints([1, 3, 64, 48]), LayoutTesting.ints([2, 2])])
        XCTAssertEqual(output, [LayoutTesting.ints([1, 3]), LayoutTesting.ints([64, 48])])
    }

    func testBadSizesAndRuntimeSizesNameTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.split, "bad_split", inputs: 2, outputs: 2))
        let x = ValueFact(dtype: .float32, shape: [5, 2])
        LayoutTesting.assertError(naming: "bad_split") { _ = try op.outputs(for: [x, ValueFact(LayoutTesting.ints([2, 2]))]) }
        LayoutTesting.assertError(naming: "bad_split") { _ = try op.outputs(for: [x, ValueFact(dtype: .int64, shape: [2])]) }
        XCTAssertThrowsError(try op.outputs(for: [x, ValueFact(dtype: .int64, shape: [2])])) {
            XCTAssertEqual($0 as? OpError, .notPlanTime(node: "bad_split", input: 1))
        }
    }

    func testPartCountDisagreeingWithOutputsNamesTheNode() throws {
        LayoutTesting.assertError(naming: "bad_split") {
            _ = try OpKind.makeOperator(LayoutTesting.node(.split, "bad_split", outputs: 2, ["numOutputs": .int(3)]))
        }
        let op = try OpKind.makeOperator(LayoutTesting.node(.split, "bad_split", inputs: 2, outputs: 2))
        LayoutTesting.assertError(naming: "bad_split") {
            _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [6]), ValueFact(LayoutTesting.ints([2, 2, 2]))])
        }
    }
}

import Format
import XCTest
@testable import Runtime

final class ExpandTests: XCTestCase {
    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], [Int64])] = [
            ([1], [7, 63]), ([65, 1], [3, 1, 63]), ([7, 1, 65], [1]), ([1, 3, 1, 1], [2, 1, 63, 65]),
            ([7], [2, 3, 1, 5, 7]), ([63, 65], [63, 65]),
        ]
        for (seed, (shape, target)) in cases.enumerated() {
            let node = LayoutTesting.node(.expand, "expand\(shape)to\(target)", inputs: 2)
            try KernelHarness.assertFastMatchesReference(
                node, [KernelHarness.random(shape, seed: UInt64(seed + 1)), LayoutTesting.ints(target)], planTime: [1])
        }
    }

    /// Bidirectional: a 1 in the target keeps the input's size; ranks may grow.
    func testBroadcastsBothWays() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.expand, "e", inputs: 2))
        let output = try op.outputs(for: [ValueFact(dtype: .float32, shape: [3, 1]), ValueFact(LayoutTesting.ints([2, 1, 4]))])
        XCTAssertEqual(output[0].shape, [2, 3, 4])
    }

    func testReferenceRepeatsIntegers() throws {
        let output = try LayoutTesting.reference(LayoutTesting.node(.expand, "e", inputs: 2),
                                                 [HostTensor(shape: [2, 1], ints: [4, 9]), LayoutTesting.ints([1, 3])])
        XCTAssertEqual(output, [HostTensor(shape: [2, 3], ints: [4, 4, 4, 9, 9, 9])])
    }

    func testIncompatibleShapeNamesTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.expand, "bad_expand", inputs: 2))
        LayoutTesting.assertError(naming: "bad_expand") {
            _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [3, 2]), ValueFact(LayoutTesting.ints([3, 4]))])
        }
        LayoutTesting.assertError(naming: "bad_expand") {
            _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [3]), ValueFact(dtype: .int64, shape: [1])])
        }
    }
}

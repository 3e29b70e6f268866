import Format
import XCTest
@testable import Runtime

final class GatherTests: XCTestCase {
    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], Int, HostTensor)] = [
            ([65], 0, HostTensor(shape: [], ints: [-1])),
            ([7, 63], 0, LayoutTesting.ints([6, 0, -7, 3])),
            ([7, 63], 1, HostTensor(shape: [2, 2], ints: [62, 0, -63, 5])),
            ([2, 65, 3, 1], -2, LayoutTesting.ints([2, 2, 0])),
            ([2, 3, 1, 7, 5], 3, HostTensor(shape: [], ints: [4])),
            ([3, 5], 1, LayoutTesting.ints([])),
        ]
        for (seed, (shape, axis, indices)) in cases.enumerated() {
            let node = LayoutTesting.node(.gather, "gather\(shape)a\(axis)", inputs: 2, ["axis": .int(axis)])
            try KernelHarness.assertFastMatchesReference(
                node, [KernelHarness.random(shape, seed: UInt64(seed + 1)), indices], planTime: [1])
        }
    }

    /// Shape → Gather(-1): the W of an NCHW input as a scalar.
    func testPicksAScalarDimensionFromAShape() throws {
        let node = LayoutTesting.node(.gather, "g", inputs: 2, ["axis": .int(0)])
        let output = try LayoutTesting.reference(node, [LayoutTesting.ints([1, 3, 64, 48]), HostTensor(shape: [], ints: [-1])])
        XCTAssertEqual(output, [HostTensor(shape: [], ints: [48])])
    }

    func testOutOfRangeIndexAndRuntimeIndicesNameTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.gather, "bad_gather", inputs: 2, ["axis": .int(1)]))
        let data = ValueFact(dtype: .float32, shape: [2, 3])
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(LayoutTesting.ints([3]))]) }
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(LayoutTesting.ints([-4]))]) }
        XCTAssertThrowsError(try op.outputs(for: [data, ValueFact(dtype: .int64, shape: [1])])) {
            XCTAssertEqual($0 as? OpError, .notPlanTime(node: "bad_gather", input: 1))
        }
    }
}

import Format
import XCTest
@testable import Runtime

final class RangeTests: XCTestCase {
    private let node = LayoutTesting.node(.range, "bad_range", inputs: 3)

    private func scalars(_ values: [Int64]) -> [HostTensor?] { values.map { HostTensor(shape: [], ints: [$0]) } }
    private func scalars(_ values: [Float]) -> [HostTensor?] { values.map { HostTensor(shape: [], floats: [$0]) } }

    func testIntegerRanges() throws {
        XCTAssertEqual(try LayoutTesting.reference(node, scalars([0, 5, 1] as [Int64])), [LayoutTesting.ints([0, 1, 2, 3, 4])])
        XCTAssertEqual(try LayoutTesting.reference(node, scalars([10, 1, -3] as [Int64])), [LayoutTesting.ints([10, 7, 4])])
        XCTAssertEqual(try LayoutTesting.reference(node, scalars([1, 8, 3] as [Int64])), [LayoutTesting.ints([1, 4, 7])])
        XCTAssertEqual(try LayoutTesting.reference(node, scalars([3, 1, 1] as [Int64])), [LayoutTesting.ints([])])
    }

    func testFloatRange() throws {
        let output = try LayoutTesting.reference(node, scalars([0.5, 2, 0.5] as [Float]))
        XCTAssertEqual(output, [HostTensor(shape: [3], floats: [0.5, 1, 1.5])])
    }

    func testFastMatchesReference() throws {
        try KernelHarness.assertFastMatchesReference(node, scalars([-3, 60, 0.7] as [Float]), planTime: [0, 1, 2])
    }

    func testZeroDeltaAndRuntimeLimitNameTheNode() throws {
        LayoutTesting.assertError(naming: "bad_range") { _ = try LayoutTesting.reference(node, scalars([0, 5, 0] as [Int64])) }
        let op = try OpKind.makeOperator(node)
        let one = ValueFact(HostTensor(shape: [], ints: [1]))
        XCTAssertThrowsError(try op.outputs(for: [one, ValueFact(dtype: .int64, shape: []), one])) {
            XCTAssertEqual($0 as? OpError, .notPlanTime(node: "bad_range", input: 1))
        }
    }
}

import Format
import XCTest
@testable import Runtime

final class FlattenTests: XCTestCase {
    private func outputShape(_ input: [Int], axis: Int) throws -> [Int] {
        let op = try OpKind.makeOperator(LayoutTesting.node(.flatten, "bad_flatten", ["axis": .int(axis)]))
        XCTAssertTrue(op.isView)
        return try op.outputs(for: [ValueFact(dtype: .float32, shape: input)])[0].shape
    }

    func testSplitsAxesAtAxis() throws {
        XCTAssertEqual(try outputShape([2, 3, 4, 5], axis: 0), [1, 120])
        XCTAssertEqual(try outputShape([2, 3, 4, 5], axis: 1), [2, 60])
        XCTAssertEqual(try outputShape([2, 3, 4, 5], axis: 4), [120, 1])
        XCTAssertEqual(try outputShape([2, 3, 4, 5], axis: -1), [24, 5])
        XCTAssertEqual(try outputShape([2, 3, 4, 5], axis: -4), [1, 120])
    }

    func testOutOfRangeAxisNamesTheNode() throws {
        LayoutTesting.assertError(naming: "bad_flatten") { _ = try outputShape([2, 3], axis: 3) }
        LayoutTesting.assertError(naming: "bad_flatten") { _ = try outputShape([2, 3], axis: -3) }
    }

    func testReferenceKeepsIntegers() throws {
        let input = HostTensor(shape: [2, 1, 2], ints: [1, 0, 1, 1], dtype: .bool)
        let output = try LayoutTesting.reference(LayoutTesting.node(.flatten, "f"), [input])
        XCTAssertEqual(output, [HostTensor(shape: [2, 2], ints: [1, 0, 1, 1], dtype: .bool)])
    }

    /// For a view the harness checks the shape rule against the reference kernel.
    func testShapeRuleMatchesReferenceOnOddShapes() throws {
        for (seed, (shape, attribute)) in [([7], 1), ([63, 65], 0), ([1, 7, 63], -1), ([2, 3, 1, 5, 7], 3)].enumerated() {
            try KernelHarness.assertFastMatchesReference(LayoutTesting.node(.flatten, "flatten\(shape)", ["axis": .int(attribute)]),
                                                         [KernelHarness.random(shape, seed: UInt64(seed + 1))])
        }
    }
}

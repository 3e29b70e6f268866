import Format
import XCTest
@testable import Runtime

final class UnsqueezeTests: XCTestCase {
    private func outputShape(_ input: [Int], axes: [Int]) throws -> [Int] {
        let op = try OpKind.makeOperator(LayoutTesting.node(.unsqueeze, "bad_unsqueeze", ["axes": .ints(axes)]))
        XCTAssertTrue(op.isView)
        return try op.outputs(for: [ValueFact(dtype: .float32, shape: input)])[0].shape
    }

    func testInsertsAxesAtOutputPositions() throws {
        XCTAssertEqual(try outputShape([3, 5], axes: [0, -1]), [1, 3, 5, 1])
        XCTAssertEqual(try outputShape([3, 5], axes: [3, 1]), [3, 1, 5, 1])
        XCTAssertEqual(try outputShape([], axes: [0]), [1])
        XCTAssertEqual(try outputShape([7, 63, 65, 2], axes: [-3]), [7, 63, 1, 65, 2])
    }

    func testRepeatedOrOutOfRangeAxesNameTheNode() throws {
        LayoutTesting.assertError(naming: "bad_unsqueeze") { _ = try outputShape([3], axes: [0, -3]) }
        LayoutTesting.assertError(naming: "bad_unsqueeze") { _ = try outputShape([3], axes: [2]) }
    }

    /// Turning a gathered scalar dimension back into a 1-D list for Concat.
    func testReferenceKeepsIntegers() throws {
        let output = try LayoutTesting.reference(LayoutTesting.node(.unsqueeze, "u", ["axes": .ints([0])]),
                                                 [HostTensor(shape: [], ints: [64])])
        XCTAssertEqual(output, [LayoutTesting.ints([64])])
    }

    /// For a view the harness checks the shape rule against the reference kernel.
    func testShapeRuleMatchesReferenceOnOddShapes() throws {
        for (seed, (shape, attribute)) in [([7], [0]), ([63, 65], [1, -1]), ([1, 7, 63], [3]), ([2, 3, 5, 7], [-5])].enumerated() {
            try KernelHarness.assertFastMatchesReference(LayoutTesting.node(.unsqueeze, "unsqueeze\(shape)", ["axes": .ints(attribute)]),
                                                         [KernelHarness.random(shape, seed: UInt64(seed + 1))])
        }
    }
}

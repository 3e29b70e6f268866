import Format
import XCTest
@testable import Runtime

final class SqueezeTests: XCTestCase {
    private func outputShape(_ input: [Int], axes: [Int]) throws -> [Int] {
        let op = try OpKind.makeOperator(LayoutTesting.node(.squeeze, "bad_squeeze", ["axes": .ints(axes)]))
        XCTAssertTrue(op.isView)
        return try op.outputs(for: [ValueFact(dtype: .float32, shape: input)])[0].shape
    }

    func testRemovesListedOrAllUnitAxes() throws {
        XCTAssertEqual(try outputShape([1, 3, 1, 5], axes: [-2, 0]), [3, 5])
        XCTAssertEqual(try outputShape([1, 3, 1, 5], axes: [2]), [1, 3, 5])
        XCTAssertEqual(try outputShape([1, 3, 1, 5], axes: []), [3, 5])
        XCTAssertEqual(try outputShape([1], axes: []), [])
    }

    func testSqueezingAWideAxisNamesTheNode() throws {
        LayoutTesting.assertError(naming: "bad_squeeze") { _ = try outputShape([1, 3], axes: [1]) }
        LayoutTesting.assertError(naming: "bad_squeeze") { _ = try outputShape([1, 3], axes: [2]) }
    }

    func testReferenceKeepsIntegers() throws {
        let output = try LayoutTesting.reference(LayoutTesting.node(.squeeze, "s", ["axes": .ints([0])]), [LayoutTesting.ints([48])])
        XCTAssertEqual(output, [HostTensor(shape: [], ints: [48])])
    }

    /// For a view the harness checks the shape rule against the reference kernel.
    func testShapeRuleMatchesReferenceOnOddShapes() throws {
        for (seed, (shape, attribute)) in [([1], []), ([7, 1], [-1]), ([1, 63, 1, 65], [0, 2]), ([2, 1, 3, 1, 5], [])].enumerated() {
            try KernelHarness.assertFastMatchesReference(LayoutTesting.node(.squeeze, "squeeze\(shape)", ["axes": .ints(attribute)]),
                                                         [KernelHarness.random(shape, seed: UInt64(seed + 1))])
        }
    }
}

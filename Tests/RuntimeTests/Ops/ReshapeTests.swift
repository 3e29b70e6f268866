import Format
import XCTest
@testable import Runtime

final class ReshapeTests: XCTestCase {
    private func outputShape(_ input: [Int], _ target: [Int64], allowZero: Int = 0) throws -> [Int] {
        let op = try OpKind.makeOperator(LayoutTesting.node(.reshape, "bad_reshape", inputs: 2, ["allowZero": .int(allowZero)]))
        return try op.outputs(for: [ValueFact(dtype: .float32, shape: input), ValueFact(LayoutTesting.ints(target))])[0].shape
    }

    /// For a view the harness checks the shape rule against the reference kernel.
    func testShapeRuleMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], [Int64])] = [([7], [7, 1]), ([63, 65], [65, -1]), ([1, 7, 63], [0, 0, 9, -1]),
                                         ([2, 3, 5, 7, 1], [-1]), ([65], [1, 5, 1, 13, 1])]
        for (seed, (shape, target)) in cases.enumerated() {
            try KernelHarness.assertFastMatchesReference(LayoutTesting.node(.reshape, "reshape\(shape)", inputs: 2),
                                                         [KernelHarness.random(shape, seed: UInt64(seed + 1)), LayoutTesting.ints(target)],
                                                         planTime: [1])
        }
    }

    func testZeroCopiesAndMinusOneInfers() throws {
        XCTAssertEqual(try outputShape([2, 3, 4], [0, -1]), [2, 12])
        XCTAssertEqual(try outputShape([1, 3, 63, 65], [0, 0, -1]), [1, 3, 4095])
        XCTAssertEqual(try outputShape([7], [-1, 1, 7]), [1, 1, 7])
        XCTAssertEqual(try outputShape([2, 0, 3], [3, 0, 2], allowZero: 1), [3, 0, 2])
        XCTAssertEqual(try outputShape([2, 0, 3], [0, -1], allowZero: 0), [2, 0])
    }

    func testImpossibleShapesNameTheNode() throws {
        for target: [Int64] in [[5, -1], [-1, -1], [2, 3, 5], [0, 0, 0, 0, 0], [-2, 12]] {
            LayoutTesting.assertError(naming: "bad_reshape") { _ = try outputShape([2, 3, 4], target) }
        }
        LayoutTesting.assertError(naming: "bad_reshape") { _ = try outputShape([2, 0, 3], [0, -1], allowZero: 1) }
    }

    func testRuntimeShapeNamesTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.reshape, "bad_reshape", inputs: 2))
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [4]), ValueFact(dtype: .int64, shape: [2])])) {
            XCTAssertEqual($0 as? OpError, .notPlanTime(node: "bad_reshape", input: 1))
        }
    }

    func testReferenceKeepsIntegers() throws {
        let output = try LayoutTesting.reference(LayoutTesting.node(.reshape, "r", inputs: 2),
                                                 [LayoutTesting.ints([1, 3, 64, 48]), LayoutTesting.ints([2, -1])])
        XCTAssertEqual(output, [HostTensor(shape: [2, 2], ints: [1, 3, 64, 48])])
    }

    /// The planner aliases a view's buffer; its kernel, run on its own, is a plain copy.
    func testIsAViewWhoseKernelCopies() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.reshape, "r", inputs: 2))
        XCTAssertTrue(op.isView)
        let input = KernelHarness.random([7, 9, 65], seed: 3)
        let facts = [ValueFact(dtype: .float32, shape: input.shape), ValueFact(LayoutTesting.ints([-1]))]
        let kernel = try op.kernel(inputs: facts, outputs: try op.outputs(for: facts))
        var output = [Float](repeating: .nan, count: input.count)
        input.floats.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                kernel.run(KernelIO(inputs: [source.baseAddress, nil], outputs: [destination.baseAddress!],
                                    scratch: nil, pool: ThreadPool(threads: 2)))
            }
        }
        XCTAssertEqual(output, input.floats)
    }
}

import Format
import XCTest
@testable import Runtime

final class SliceTests: XCTestCase {
    private func sliceInputs(_ x: HostTensor, _ starts: [Int64], _ ends: [Int64], _ axes: [Int64]?, _ steps: [Int64]?) -> [HostTensor?] {
        [x, LayoutTesting.ints(starts), LayoutTesting.ints(ends), axes.map(LayoutTesting.ints), steps.map(LayoutTesting.ints)]
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], [Int64], [Int64], [Int64]?, [Int64]?)] = [
            ([65], [1], [64], nil, nil),
            ([63, 65], [-60, 2], [.max, -1], [0, 1], [2, 3]),
            ([7, 63], [.max], [.min], [1], [-1]),                // full reversal
            ([1, 7, 65], [5, 100], [0, -100], [-2, 2], [-2, -7]),
            ([2, 3, 7, 9, 5], [0, 1], [1, 3], [0, 3], nil),
            ([2, 3, 7, 9, 5], [4], [4], [4], [1]),               // empty
            ([7, 9], [2], [.max], [0], [.max]),                  // one row by a step that overflows × stride
            ([7, 9], [-1], [.min], [0], [.min]),                 // the same backwards (plan fuzzer's crash)
        ]
        for (seed, (shape, starts, ends, axes, steps)) in cases.enumerated() {
            let node = LayoutTesting.node(.slice, "slice\(shape)", inputs: 5)
            try KernelHarness.assertFastMatchesReference(
                node, sliceInputs(KernelHarness.random(shape, seed: UInt64(seed + 1)), starts, ends, axes, steps),
                planTime: [1, 2, 3, 4])
        }
    }

    /// The H and W of a shape, as exported models take them: shape[2:], shape[-1:].
    func testSlicesShapeIntegers() throws {
        let node = LayoutTesting.node(.slice, "s", inputs: 5)
        let shape = LayoutTesting.ints([1, 3, 64, 48])
        XCTAssertEqual(try LayoutTesting.reference(node, sliceInputs(shape, [2], [.max], nil, nil)), [LayoutTesting.ints([64, 48])])
        XCTAssertEqual(try LayoutTesting.reference(node, sliceInputs(shape, [-1], [.max], [0], nil)), [LayoutTesting.ints([48])])
        XCTAssertEqual(try LayoutTesting.reference(node, sliceInputs(shape, [-1], [.min], [0], [-2])), [LayoutTesting.ints([48, 3])])
    }

    func testClampsPerOnnx() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.slice, "s", inputs: 5))
        func shape(_ starts: [Int64], _ ends: [Int64], _ steps: [Int64]) throws -> [Int] {
            try op.outputs(for: [ValueFact(dtype: .float32, shape: [10]), ValueFact(LayoutTesting.ints(starts)),
                                 ValueFact(LayoutTesting.ints(ends)), nil, ValueFact(LayoutTesting.ints(steps))])[0].shape
        }
        XCTAssertEqual(try shape([-100], [100], [1]), [10])
        XCTAssertEqual(try shape([100], [-100], [-1]), [10])
        XCTAssertEqual(try shape([9], [.min], [-3]), [4])
        XCTAssertEqual(try shape([3], [2], [1]), [0])
        XCTAssertEqual(try shape([.min], [.max], [4]), [3])
        XCTAssertEqual(try shape([2], [.max], [.max]), [1])
        XCTAssertEqual(try shape([-1], [.min], [.min]), [1])
    }

    func testZeroStepAndRuntimeStartsNameTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.slice, "bad_slice", inputs: 5))
        let x = ValueFact(dtype: .float32, shape: [4])
        let one = ValueFact(LayoutTesting.ints([1]))
        LayoutTesting.assertError(naming: "bad_slice") {
            _ = try op.outputs(for: [x, one, one, nil, ValueFact(LayoutTesting.ints([0]))])
        }
        LayoutTesting.assertError(naming: "bad_slice") {
            _ = try op.outputs(for: [x, one, one, ValueFact(LayoutTesting.ints([1])), nil])
        }
        XCTAssertThrowsError(try op.outputs(for: [x, ValueFact(dtype: .int64, shape: [1]), one])) {
            XCTAssertEqual($0 as? OpError, .notPlanTime(node: "bad_slice", input: 1))
        }
    }
}

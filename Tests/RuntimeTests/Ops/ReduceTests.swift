import Format
import XCTest
@testable import Runtime

final class ReduceTests: XCTestCase {
    private func node(_ function: String, axes: [Int], keepDims: Int) -> Node {
        .mathTest(.reduce, "reduce_\(function)_\(axes)_\(keepDims)", inputs: 1,
                  ["function": .string(function), "axes": .ints(axes), "keepDims": .int(keepDims)])
    }

    func testFastMatchesReferenceForEveryFunctionAndAxisPattern() throws {
        let cases: [([Int], [Int])] = [
            ([7], []), ([65], [0]), ([1], [0]),
            ([5, 13], [1]), ([5, 13], [0]), ([5, 13], [-1, -2]),
            ([2, 3, 5, 7], [1]), ([2, 3, 5, 7], [2, 3]), ([2, 3, 5, 7], [0, 2]), ([2, 3, 5, 7], [0, 3]),
            ([2, 3, 1, 5, 7], [1, 3]), ([2, 3, 1, 5, 7], [2]), ([2, 3, 1, 5, 7], []),
        ]
        for function in ["mean", "sum", "max", "min", "prod"] {
            for (index, (shape, axes)) in cases.enumerated() {
                for keepDims in [0, 1] {
                    try KernelHarness.assertFastMatchesReference(node(function, axes: axes, keepDims: keepDims),
                                                                 [KernelHarness.random(shape, seed: UInt64(index + 1))])
                }
            }
        }
    }

    func testFastSplitsLargeTensorsAcrossThreads() throws {
        let x = KernelHarness.random([4, 64, 65, 7], seed: 3)
        for (function, axes) in [("mean", [2, 3]), ("sum", []), ("max", [0]), ("min", [1])] {
            try KernelHarness.assertFastMatchesReference(node(function, axes: axes, keepDims: 1), [x])
        }
    }

    func testShapeKeepsOrDropsReducedAxes() throws {
        let x = ValueFact(dtype: .float32, shape: [2, 3, 5, 7])
        XCTAssertEqual(try OpKind.makeOperator(node("mean", axes: [1, -1], keepDims: 1)).outputs(for: [x])[0].shape, [2, 1, 5, 1])
        XCTAssertEqual(try OpKind.makeOperator(node("mean", axes: [1, -1], keepDims: 0)).outputs(for: [x])[0].shape, [2, 5])
        XCTAssertEqual(try OpKind.makeOperator(node("sum", axes: [], keepDims: 0)).outputs(for: [x])[0].shape, [])
    }

    func testIntegerReductionsAreExact() throws {
        let x = HostTensor(shape: [2, 3], ints: [1, -7, 3, 4, 5, 6])
        let expected: [String: [Int64]] = ["sum": [5, -2, 9], "max": [4, 5, 6], "min": [1, -7, 3], "mean": [2, -1, 4],
                                           "prod": [4, -35, 18]]
        for (function, values) in expected {
            let y = try OpKind.makeOperator(node(function, axes: [0], keepDims: 0)).reference([x])[0]
            XCTAssertEqual(y, HostTensor(shape: [3], ints: values), function)
        }
    }

    func testFastKernelTruncatesTheMeanOfIntegerInputs() throws {
        for function in ["mean", "sum", "max", "min", "prod"] {
            try KernelHarness.assertFastMatchesReference(node(function, axes: [1], keepDims: 0), [.mathRandomInts([3, 7, 5], seed: 2)])
        }
        // A sum that is an exact multiple of the count: 1/7 rounds below 1/7 in Float.
        let sevens = HostTensor(shape: [1, 7], ints: Array(repeating: -1, count: 7))
        XCTAssertEqual(try KernelHarness.runFast(node("mean", axes: [1], keepDims: 0), [sevens])[0].floats, [-1])
    }

    func testRepeatedAxisThrowsNamingTheNode() throws {
        let op = try OpKind.makeOperator(node("sum", axes: [1, -1], keepDims: 1))
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [3, 4])])) { error in
            XCTAssertTrue("\(error)".contains("reduce_sum"), "\(error)")
        }
    }
}

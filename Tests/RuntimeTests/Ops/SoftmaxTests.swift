import Format
import XCTest
@testable import Runtime

final class SoftmaxTests: XCTestCase {
    private func node(axis: Int) -> Node {
        .mathTest(.softmax, "softmax_\(axis)", inputs: 1, ["axis": .int(axis)])
    }

    func testFastMatchesReferenceOnOddShapesAndEveryAxis() throws {
        let shapes = [[1], [7], [65], [3, 63], [2, 7, 3, 5], [2, 1, 3, 5, 7]]
        for (index, shape) in shapes.enumerated() {
            for axis in -shape.count..<shape.count {
                try KernelHarness.assertFastMatchesReference(node(axis: axis),
                                                             [KernelHarness.random(shape, seed: UInt64(index + 1)).mathMapped { $0 * 8 }])
            }
        }
    }

    func testFastSplitsLargeTensorsAcrossThreads() throws {
        let x = KernelHarness.random([2, 8, 65, 63], seed: 4)
        try KernelHarness.assertFastMatchesReference(node(axis: -1), [x])
        try KernelHarness.assertFastMatchesReference(node(axis: 1), [x])
        // One image, softmax over channels: 600 columns make three strips, the last partial.
        try KernelHarness.assertFastMatchesReference(node(axis: 1), [KernelHarness.random([1, 9, 20, 30], seed: 5)])
    }

    func testLargeLogitsStayFiniteAndSumToOne() throws {
        // Without subtracting the max, exp(1000) overflows to infinity and gives NaN.
        let x = KernelHarness.random([4, 33], seed: 2).mathMapped { $0 * 100 + 1000 }
        for y in [try OpKind.makeOperator(node(axis: -1)).reference([x])[0], try KernelHarness.runFast(node(axis: -1), [x])[0]] {
            XCTAssertTrue(y.floats.allSatisfy(\.isFinite))
            for row in 0..<4 {
                XCTAssertEqual(y.floats[(row * 33)..<((row + 1) * 33)].reduce(0, +), 1, accuracy: 1e-5)
            }
        }
    }
}

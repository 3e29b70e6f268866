import Format
import XCTest
@testable import Runtime

final class MatMulTests: XCTestCase {
    private let node = Node.mathTest(.matMul, "matMul", inputs: 2)

    func testFastMatchesReferenceOnOddShapesAndEveryPromotionAndBroadcast() throws {
        let cases: [([Int], [Int])] = [
            ([7], [7]), ([7], [7, 5]), ([3, 7], [7]), ([1, 1], [1, 1]), ([63, 65], [65, 7]), ([65, 1], [1, 63]),
            ([2, 3, 5, 7], [7, 4]),          // shared B: one tall product
            ([2, 1, 5, 7], [3, 7, 4]),       // batch axes broadcast on both sides
            ([5, 7], [2, 7, 4]),             // shared A
            ([2, 3, 5, 7], [7]),             // batched matrix · vector
            ([7], [2, 3, 7, 4]),             // vector · batched matrix
            ([1, 2, 1, 3, 5, 7], [2, 1, 7, 1]),
        ]
        for (index, (a, b)) in cases.enumerated() {
            let seed = UInt64(index + 1)
            try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random(a, seed: seed), KernelHarness.random(b, seed: seed + 10)])
        }
    }

    func testFastSplitsLargeProductsAcrossThreads() throws {
        for (a, b) in [([3, 65, 130], [130, 63]),      // shared B, rows split
                       ([1, 300, 65], [1, 65, 70]),    // one matrix, rows split
                       ([2, 3, 100, 65], [3, 65, 63]),  // many matrices
                       ([1, 100, 256], [1, 256, 4480]), // fewer rows than columns: columns split in 48s
                       ([1, 20, 300], [300, 100])] {    // the last column block partial
            try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random(a, seed: 1), KernelHarness.random(b, seed: 2)])
        }
    }

    func testOutputShapeDropsPromotedAxes() throws {
        let op = try OpKind.makeOperator(node)
        func shape(_ a: [Int], _ b: [Int]) throws -> [Int] {
            try op.outputs(for: [ValueFact(dtype: .float32, shape: a), ValueFact(dtype: .float32, shape: b)])[0].shape
        }
        XCTAssertEqual(try shape([7], [7]), [])
        XCTAssertEqual(try shape([7], [7, 5]), [5])
        XCTAssertEqual(try shape([2, 3, 7], [7]), [2, 3])
        XCTAssertEqual(try shape([2, 1, 5, 7], [3, 7, 4]), [2, 3, 5, 4])
    }

    func testMismatchedInnerDimensionsThrowNamingTheNode() throws {
        XCTAssertThrowsError(try OpKind.makeOperator(node).outputs(for: [ValueFact(dtype: .float32, shape: [3, 4]),
                                                                          ValueFact(dtype: .float32, shape: [5, 2])])) { error in
            XCTAssertTrue("\(error)".contains("'matMul'"), "\(error)")
        }
    }
}

import Format
import XCTest
@testable import Runtime

final class TileTests: XCTestCase {
    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], [Int64])] = [
            ([7], [3]), ([1, 65], [7, 1]), ([63, 1], [1, 65]), ([2, 3, 5], [2, 1, 3]),
            ([1, 7, 1, 3], [2, 1, 63, 1]), ([2, 1, 3, 1, 2], [1, 3, 1, 2, 2]), ([3, 4], [0, 2]),
        ]
        for (seed, (shape, repeats)) in cases.enumerated() {
            let node = LayoutTesting.node(.tile, "tile\(shape)x\(repeats)", inputs: 2)
            try KernelHarness.assertFastMatchesReference(
                node, [KernelHarness.random(shape, seed: UInt64(seed + 1)), LayoutTesting.ints(repeats)], planTime: [1])
        }
    }

    func testReferenceRepeatsIntegers() throws {
        let output = try LayoutTesting.reference(LayoutTesting.node(.tile, "t", inputs: 2),
                                                 [HostTensor(shape: [1, 2], ints: [1, 2]), LayoutTesting.ints([2, 2])])
        XCTAssertEqual(output, [HostTensor(shape: [2, 4], ints: [1, 2, 1, 2, 1, 2, 1, 2])])
    }

    func testWrongRepeatCountNamesTheNode() throws {
        let op = try OpKind.makeOperator(LayoutTesting.node(.tile, "bad_tile", inputs: 2))
        LayoutTesting.assertError(naming: "bad_tile") {
            _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [3, 2]), ValueFact(LayoutTesting.ints([3]))])
        }
        // Counts whose product with the size overflows (the plan fuzzer's crash) are refused.
        LayoutTesting.assertError(naming: "bad_tile") {
            _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [3, 2]), ValueFact(LayoutTesting.ints([.max / 2, 1]))])
        }
    }
}

import Format
import XCTest
@testable import Runtime

final class WhereTests: XCTestCase {
    private let node = Node.mathTest(.where, "where", inputs: 3)

    func testFastMatchesReferenceForEveryBroadcastingPattern() throws {
        let patterns: [([Int], [Int], [Int])] = [
            ([3, 65], [3, 65], [3, 65]),          // same shape
            ([5, 1], [2, 5, 7], [7]),             // column condition, row Y
            ([], [7], [7]),                       // scalar condition
            ([2, 3, 5, 7], [3, 1, 1], []),        // per-channel X, scalar Y
            ([63], [1], [7, 63]),                 // both sides
            ([2, 1, 3, 1, 5], [4, 1, 1, 1], [1, 5]), // rank 5
            ([1], [1], [1]),
        ]
        for (index, (c, x, y)) in patterns.enumerated() {
            let seed = UInt64(index + 1)
            try KernelHarness.assertFastMatchesReference(node, [.mathRandomMask(c, seed: seed), KernelHarness.random(x, seed: seed + 10),
                                                                KernelHarness.random(y, seed: seed + 20)])
        }
    }

    func testFloatConditionOfZerosAndOnesSelectsLikeBool() throws {
        let mask = HostTensor.mathRandomMask([4, 9], seed: 2)
        let (x, y) = (KernelHarness.random([4, 9], seed: 3), KernelHarness.random([9], seed: 4))
        let op = try OpKind.makeOperator(node)
        XCTAssertEqual(try op.reference([HostTensor(shape: mask.shape, floats: mask.floats), x, y]), try op.reference([mask, x, y]))
        try KernelHarness.assertFastMatchesReference(node, [HostTensor(shape: mask.shape, floats: mask.floats), x, y])
    }

    func testFastSplitsLargeTensorsAcrossThreads() throws {
        try KernelHarness.assertFastMatchesReference(node, [.mathRandomMask([2, 16, 65, 1], seed: 1),
                                                            KernelHarness.random([2, 16, 65, 63], seed: 2),
                                                            KernelHarness.random([63], seed: 3)])
    }

    func testIntegerValuesKeepTheirType() throws {
        let y = try OpKind.makeOperator(node).reference([HostTensor(shape: [3], ints: [1, 0, 1], dtype: .bool),
                                                         HostTensor(shape: [3], ints: [4, 5, 6]), HostTensor(shape: [], ints: [-1])])[0]
        XCTAssertEqual(y, HostTensor(shape: [3], ints: [4, -1, 6]))
    }

    func testMixingFloatAndIntegerValuesThrowsNamingTheNode() throws {
        XCTAssertThrowsError(try OpKind.makeOperator(node).reference([HostTensor(shape: [1], ints: [1], dtype: .bool),
                                                                      HostTensor(shape: [1], floats: [4]), HostTensor(shape: [1], ints: [1])])) { error in
            XCTAssertTrue("\(error)".contains("'where'"), "\(error)")
        }
    }
}

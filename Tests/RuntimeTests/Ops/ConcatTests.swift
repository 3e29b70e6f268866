import Format
import XCTest
@testable import Runtime

final class ConcatTests: XCTestCase {
    func testFastMatchesReferenceOnEveryAxis() throws {
        let base = [3, 7, 1, 5, 2]
        var seed: UInt64 = 1
        for rank in 1...5 {
            for axis in -rank..<rank {
                let normalized = axis < 0 ? axis + rank : axis
                let inputs = [1, 65, 0, 7].map { size -> HostTensor? in
                    var shape = Array(base.prefix(rank))
                    shape[normalized] = size
                    seed += 1
                    return KernelHarness.random(shape, seed: seed)
                }
                let node = LayoutTesting.node(.concat, "concat_r\(rank)_a\(axis)", inputs: 4, ["axis": .int(axis)])
                try KernelHarness.assertFastMatchesReference(node, inputs)
            }
        }
    }

    func testJoinsShapeIntegersExactly() throws {
        let node = LayoutTesting.node(.concat, "c", inputs: 3, ["axis": .int(0)])
        let output = try LayoutTesting.reference(node, [LayoutTesting.ints([1, 3]), LayoutTesting.ints([64]), LayoutTesting.ints([48])])
        XCTAssertEqual(output, [LayoutTesting.ints([1, 3, 64, 48])])
    }

    func testMismatchedInputsNameTheNode() throws {
        let node = LayoutTesting.node(.concat, "bad_concat", inputs: 2, ["axis": .int(1)])
        let op = try OpKind.makeOperator(node)
        let a = ValueFact(dtype: .float32, shape: [2, 3])
        LayoutTesting.assertError(naming: "bad_concat") { _ = try op.outputs(for: [a, ValueFact(dtype: .float32, shape: [3, 3])]) }
        LayoutTesting.assertError(naming: "bad_concat") { _ = try op.outputs(for: [a, ValueFact(dtype: .int64, shape: [2, 3])]) }
        LayoutTesting.assertError(naming: "bad_concat") { _ = try op.outputs(for: [a, ValueFact(dtype: .float32, shape: [2])]) }
        let badAxis = try OpKind.makeOperator(LayoutTesting.node(.concat, "bad_concat", inputs: 2, ["axis": .int(2)]))
        LayoutTesting.assertError(naming: "bad_concat") { _ = try badAxis.outputs(for: [a, a]) }
    }
}

import Format
import XCTest
@testable import Runtime

/// reverseSequence: fast against reference, the reference against ONNX's examples
/// (against onnxruntime: Tests/Fixtures/ops/reversesequence_*).
final class ReverseSequenceTests: XCTestCase {
    private func node(_ name: String, batchAxis: Int, timeAxis: Int) -> Node {
        LayoutTesting.node(.reverseSequence, name, inputs: 2, ["batchAxis": .int(batchAxis), "timeAxis": .int(timeAxis)])
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        try KernelHarness.assertFastMatchesReference(node("time_major", batchAxis: 1, timeAxis: 0),
                                                     [KernelHarness.random([7, 3, 65], seed: 1), HostTensor(shape: [3], ints: [7, 0, 4])],
                                                     planTime: [1], tolerance: 0)
        try KernelHarness.assertFastMatchesReference(node("batch_major", batchAxis: 0, timeAxis: 1),
                                                     [KernelHarness.random([2, 63], seed: 2), HostTensor(shape: [2], ints: [1, 62])],
                                                     planTime: [1], tolerance: 0)
    }

    /// ONNX's two examples.
    func testReversesThePrefixOfEachSequence() throws {
        let x = HostTensor(shape: [4, 4], floats: (0..<16).map(Float.init))
        XCTAssertEqual(try LayoutTesting.reference(node("r", batchAxis: 1, timeAxis: 0), [x, HostTensor(shape: [4], ints: [4, 3, 2, 1])]),
                       [HostTensor(shape: [4, 4], floats: [12, 9, 6, 3, 8, 5, 2, 7, 4, 1, 10, 11, 0, 13, 14, 15])])
        XCTAssertEqual(try LayoutTesting.reference(node("r", batchAxis: 0, timeAxis: 1), [x, HostTensor(shape: [4], ints: [1, 2, 3, 4])]),
                       [HostTensor(shape: [4, 4], floats: [0, 1, 2, 3, 5, 4, 6, 7, 10, 9, 8, 11, 15, 14, 13, 12])])
    }

    func testBadLengthsNameTheNode() throws {
        let op = try OpKind.makeOperator(node("bad_reverse", batchAxis: 1, timeAxis: 0))
        let x = ValueFact(dtype: .float32, shape: [3, 2])
        LayoutTesting.assertError(naming: "bad_reverse") { _ = try op.outputs(for: [x, ValueFact(HostTensor(shape: [2], ints: [1, 4]))]) }
        LayoutTesting.assertError(naming: "bad_reverse") { _ = try op.outputs(for: [x, ValueFact(HostTensor(shape: [3], ints: [1, 1, 1]))]) }
    }
}

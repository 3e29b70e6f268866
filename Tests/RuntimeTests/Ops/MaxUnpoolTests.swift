import Format
import XCTest
@testable import Runtime

/// maxUnpool: fast against reference, the reference against a worked example (against
/// onnxruntime, with indices from its MaxPool: Tests/Fixtures/ops/maxunpool_*).
final class MaxUnpoolTests: XCTestCase {
    private func node(_ name: String, inputs: Int = 2) -> Node {
        LayoutTesting.node(.maxUnpool, name, inputs: inputs, ["kernelShape": .ints([2, 2]), "strides": .ints([2, 2])])
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        // Every other position of a [2, 3, 14, 130] output, some named twice (the last wins).
        let x = KernelHarness.random([2, 3, 7, 65], seed: 1)
        let outputCount = 2 * 3 * 14 * 130
        let positions: [Int64] = (0..<x.count).map { (element: Int) -> Int64 in Int64((element * 4 + element / 9) % outputCount) }
        try KernelHarness.assertFastMatchesReference(node("unpool"), [x, HostTensor(shape: x.shape, ints: positions)],
                                                     planTime: [1], tolerance: 0)
        let shape = HostTensor(shape: [4], ints: [2, 3, 15, 131])
        try KernelHarness.assertFastMatchesReference(node("unpool_shape", inputs: 3), [x, HostTensor(shape: x.shape, ints: positions), shape],
                                                     planTime: [1, 2], tolerance: 0)
    }

    /// ONNX's example: a 2×2 map back into 4×4, zeros elsewhere.
    func testPlacesValuesAndZeroes() throws {
        let output = try LayoutTesting.reference(node("u"), [HostTensor(shape: [1, 1, 2, 2], floats: [1, 2, 3, 4]),
                                                             HostTensor(shape: [1, 1, 2, 2], ints: [5, 7, 13, 15])])
        XCTAssertEqual(output, [HostTensor(shape: [1, 1, 4, 4], floats: [0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4])])
    }

    func testBadIndicesNameTheNode() throws {
        let op = try OpKind.makeOperator(node("bad_unpool", inputs: 3))
        let x = ValueFact(dtype: .float32, shape: [1, 1, 2, 2])
        let indices = ValueFact(HostTensor(shape: [1, 1, 2, 2], ints: [0, 1, 2, 16]))
        LayoutTesting.assertError(naming: "bad_unpool") { _ = try op.outputs(for: [x, indices, nil]) }
        XCTAssertEqual(try op.outputs(for: [x, indices, ValueFact(HostTensor(shape: [4], ints: [1, 1, 5, 5]))]).first?.shape, [1, 1, 5, 5])
        LayoutTesting.assertError(naming: "bad_unpool") {
            _ = try op.outputs(for: [x, indices, ValueFact(HostTensor(shape: [4], ints: [1, 2, 5, 5]))])
        }
    }

    /// The plan fuzzer's find: an output shape input whose element count overflows trapped
    /// in the shape rule; it, and attributes whose output size overflows, are errors now.
    func testOutputShapesThatOverflowAreErrors() throws {
        let x = ValueFact(dtype: .float32, shape: [1, 1, 2, 2])
        let indices = ValueFact(HostTensor(shape: [1, 1, 2, 2], ints: [0, 1, 2, 3]))
        let op = try OpKind.makeOperator(node("huge_unpool", inputs: 3))
        LayoutTesting.assertError(naming: "huge_unpool") {
            _ = try op.outputs(for: [x, indices, ValueFact(HostTensor(shape: [4], ints: [1, 1, 1 << 40, 1 << 40]))])
        }
        let strided = try OpKind.makeOperator(LayoutTesting.node(.maxUnpool, "strided_unpool", inputs: 2,
                                                                 ["kernelShape": .ints([2, 2]), "strides": .ints([Int.max, 2])]))
        LayoutTesting.assertError(naming: "strided_unpool") { _ = try strided.outputs(for: [x, indices]) }
    }
}

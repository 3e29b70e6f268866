import Format
import XCTest
@testable import Runtime

/// gatherND: fast against reference, the reference against ONNX's examples (against
/// onnxruntime: Tests/Fixtures/ops/gathernd_*).
final class GatherNDTests: XCTestCase {
    private func node(_ name: String, batchDims: Int = 0) -> Node {
        LayoutTesting.node(.gatherND, name, inputs: 2, ["batchDims": .int(batchDims)])
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        // Whole rows, single elements, and slices per batch entry.
        try KernelHarness.assertFastMatchesReference(node("rows"), [KernelHarness.random([7, 63], seed: 1),
                                                                    HostTensor(shape: [5, 1], ints: [6, 0, -7, 3, 3])],
                                                     planTime: [1], tolerance: 0)
        try KernelHarness.assertFastMatchesReference(node("elements"), [KernelHarness.random([3, 5, 7], seed: 2),
                                                                        HostTensor(shape: [2, 3], ints: [0, 4, 6, -1, -1, -1])],
                                                     planTime: [1], tolerance: 0)
        try KernelHarness.assertFastMatchesReference(node("batched", batchDims: 1),
                                                     [KernelHarness.random([2, 3, 65], seed: 3),
                                                      HostTensor(shape: [2, 3, 1], ints: [2, 0, 1, -1, 1, 0])],
                                                     planTime: [1], tolerance: 0)
    }

    /// ONNX's examples 2 and 5.
    func testPicksSlices() throws {
        let data = HostTensor(shape: [2, 2], floats: [0, 1, 2, 3])
        XCTAssertEqual(try LayoutTesting.reference(node("g"), [data, HostTensor(shape: [2, 1], ints: [1, 0])]),
                       [HostTensor(shape: [2, 2], floats: [2, 3, 0, 1])])
        let cube = HostTensor(shape: [2, 2, 2], floats: [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(try LayoutTesting.reference(node("g", batchDims: 1), [cube, HostTensor(shape: [2, 1], ints: [1, 0])]),
                       [HostTensor(shape: [2, 2], floats: [2, 3, 4, 5])])
    }

    func testBadIndicesNameTheNode() throws {
        let op = try OpKind.makeOperator(node("bad_gather", batchDims: 1))
        let data = ValueFact(dtype: .float32, shape: [2, 3])
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [3, 1], ints: [0, 1, 2]))]) }
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [2, 1], ints: [0, 3]))]) }
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [2, 2], ints: [0, 1, 1, 0]))]) }
    }
}

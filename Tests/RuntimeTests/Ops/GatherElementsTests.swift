import Format
import XCTest
@testable import Runtime

/// gatherElements: fast against reference, the reference against ONNX's examples (against
/// onnxruntime: Tests/Fixtures/ops/gatherelements_*).
final class GatherElementsTests: XCTestCase {
    private func node(_ name: String, axis: Int) -> Node {
        LayoutTesting.node(.gatherElements, name, inputs: 2, ["axis": .int(axis)])
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], Int, [Int])] = [([7, 63], 1, [5, 65]), ([3, 5, 7], -3, [4, 5, 1]), ([1, 65, 2], 2, [1, 63, 2])]
        for (seed, (shape, axis, indexShape)) in cases.enumerated() {
            let size = shape[(axis + shape.count) % shape.count]
            let count = indexShape.reduce(1, *)
            let indices = HostTensor(shape: indexShape, ints: (0..<count).map { Int64(($0 * 7 + seed) % (2 * size) - size) })
            try KernelHarness.assertFastMatchesReference(node("gather\(shape)", axis: axis),
                                                         [KernelHarness.random(shape, seed: UInt64(seed + 1)), indices],
                                                         planTime: [1], tolerance: 0)
        }
    }

    /// ONNX's examples: axis 1 with a repeated index, axis 0 with a negative one.
    func testPicksAlongTheAxis() throws {
        let data = HostTensor(shape: [2, 2], floats: [1, 2, 3, 4])
        XCTAssertEqual(try LayoutTesting.reference(node("g", axis: 1), [data, HostTensor(shape: [2, 2], ints: [0, 0, 1, 0])]),
                       [HostTensor(shape: [2, 2], floats: [1, 1, 4, 3])])
        let grid = HostTensor(shape: [3, 3], floats: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(try LayoutTesting.reference(node("g", axis: 0), [grid, HostTensor(shape: [2, 3], ints: [-1, -2, 0, -2, 0, 0])]),
                       [HostTensor(shape: [2, 3], floats: [7, 5, 3, 4, 2, 3])])
    }

    func testBadIndicesNameTheNode() throws {
        let op = try OpKind.makeOperator(node("bad_gather", axis: 1))
        let data = ValueFact(dtype: .float32, shape: [2, 3])
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [2, 1], ints: [0, 3]))]) }
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [3, 1], ints: [0, 1, 2]))]) }
        LayoutTesting.assertError(naming: "bad_gather") { _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [2], ints: [0, 1]))]) }
    }
}

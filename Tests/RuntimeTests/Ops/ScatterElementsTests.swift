import Format
import XCTest
@testable import Runtime

/// scatterElements: fast against reference for every reduction, the reference against
/// ONNX's examples (against onnxruntime: Tests/Fixtures/ops/scatter*).
final class ScatterElementsTests: XCTestCase {
    private func node(_ name: String, axis: Int, reduction: ScatterND.Reduction = .none) -> Node {
        LayoutTesting.node(.scatterElements, name, inputs: 3, ["axis": .int(axis), "reduction": .string(reduction.rawValue)])
    }

    func testFastMatchesReferenceOnOddShapesForEveryReduction() throws {
        let cases: [([Int], Int, [Int])] = [([7, 63], 0, [9, 63]), ([3, 5, 7], -1, [2, 5, 7]), ([1, 65], 1, [1, 65])]
        for reduction in ScatterND.Reduction.allCases {
            for (seed, (shape, axis, indexShape)) in cases.enumerated() {
                let size = shape[(axis + shape.count) % shape.count]
                let count = indexShape.reduce(1, *)
                let indices = HostTensor(shape: indexShape, ints: (0..<count).map { Int64(($0 * 5 + seed) % (2 * size) - size) })
                try KernelHarness.assertFastMatchesReference(
                    node("scatter\(shape)\(reduction)", axis: axis, reduction: reduction),
                    [KernelHarness.random(shape, seed: UInt64(seed + 1)), indices,
                     KernelHarness.random(indexShape, seed: UInt64(seed + 50))],
                    planTime: [1], tolerance: 0)
            }
        }
    }

    /// ONNX's example (axis 1, one row), and repeated targets applied in order.
    func testWritesAlongTheAxis() throws {
        let output = try LayoutTesting.reference(node("s", axis: 1), [
            HostTensor(shape: [1, 5], floats: [1, 2, 3, 4, 5]), HostTensor(shape: [1, 2], ints: [1, 3]),
            HostTensor(shape: [1, 2], floats: [1.1, 2.1]),
        ])
        XCTAssertEqual(output, [HostTensor(shape: [1, 5], floats: [1, 1.1, 3, 2.1, 5])])
        let data = HostTensor(shape: [2, 2], floats: [1, 2, 3, 4])
        let indices = HostTensor(shape: [2, 2], ints: [1, -1, 1, 0])
        let updates = HostTensor(shape: [2, 2], floats: [10, 20, 30, 40])
        XCTAssertEqual(try LayoutTesting.reference(node("s", axis: 0), [data, indices, updates]),
                       [HostTensor(shape: [2, 2], floats: [1, 40, 30, 20])])
        XCTAssertEqual(try LayoutTesting.reference(node("s", axis: 0, reduction: .add), [data, indices, updates]),
                       [HostTensor(shape: [2, 2], floats: [1, 42, 43, 24])])
        XCTAssertEqual(try LayoutTesting.reference(node("s", axis: 0, reduction: .max), [data, indices, updates]),
                       [HostTensor(shape: [2, 2], floats: [1, 40, 30, 20])])
    }

    func testBadShapesNameTheNode() throws {
        let op = try OpKind.makeOperator(node("bad_scatter", axis: 0))
        let data = ValueFact(dtype: .float32, shape: [3, 2])
        let indices = ValueFact(HostTensor(shape: [1, 2], ints: [0, 2]))
        XCTAssertNoThrow(try op.outputs(for: [data, indices, ValueFact(dtype: .float32, shape: [1, 2])]))
        LayoutTesting.assertError(naming: "bad_scatter") { _ = try op.outputs(for: [data, indices, ValueFact(dtype: .float32, shape: [2, 1])]) }
        LayoutTesting.assertError(naming: "bad_scatter") {
            _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [1, 1], ints: [3])), ValueFact(dtype: .float32, shape: [1, 1])])
        }
    }
}

import Format
import XCTest
@testable import Runtime

final class ScatterNDTests: XCTestCase {
    private func node(_ name: String, reduction: ScatterND.Reduction = .none) -> Node {
        LayoutTesting.node(.scatterND, name, inputs: 3, ["reduction": .string(reduction.rawValue)])
    }

    func testFastMatchesReferenceOnOddShapesForEveryReduction() throws {
        let cases: [([Int], HostTensor)] = [
            // Whole rows of a matrix, one repeated (the later update wins) and one negative.
            ([7, 63], HostTensor(shape: [4, 1], ints: [6, 0, -7, 3])),
            // Single elements of a rank-3 tensor.
            ([3, 5, 7], HostTensor(shape: [2, 2, 3], ints: [0, 0, 0, 2, 4, 6, 1, 2, 3, -1, -1, -1])),
            // Planes of an NHWC mask, as PyTorch exports `mask[:, a:b, c:d, :] = v`.
            ([1, 9, 13, 1], HostTensor(shape: [3, 2, 3], ints: [0, 7, 11, 0, 7, 12, 0, 8, 11, 0, 8, 12, 0, 0, 0, 0, 1, 1])),
            // k = 0: every update replaces the whole tensor.
            ([2, 65], HostTensor(shape: [2, 0], ints: [])),
        ]
        for reduction in ScatterND.Reduction.allCases {
            for (seed, (shape, indices)) in cases.enumerated() {
                let depth = indices.shape.last ?? 0
                let updatesShape = Array(indices.shape.dropLast()) + Array(shape[depth...])
                try KernelHarness.assertFastMatchesReference(
                    node("scatter\(shape)\(reduction)", reduction: reduction),
                    [KernelHarness.random(shape, seed: UInt64(seed + 1)), indices,
                     KernelHarness.random(updatesShape, seed: UInt64(seed + 100))],
                    planTime: [1])
            }
        }
    }

    /// The ONNX specification's first example: single elements of a vector.
    func testReplacesElementsAtTheIndices() throws {
        let output = try LayoutTesting.reference(node("s"), [
            HostTensor(shape: [8], floats: [1, 2, 3, 4, 5, 6, 7, 8]),
            HostTensor(shape: [4, 1], ints: [4, 3, 1, 7]),
            HostTensor(shape: [4], floats: [9, 10, 11, 12]),
        ])
        XCTAssertEqual(output, [HostTensor(shape: [8], floats: [1, 11, 3, 10, 9, 6, 7, 12])])
    }

    func testRepeatedIndicesApplyInOrder() throws {
        let data = LayoutTesting.ints([1, 2, 3])
        let indices = HostTensor(shape: [3, 1], ints: [1, 1, -1])
        let updates = LayoutTesting.ints([5, 7, 4])
        XCTAssertEqual(try LayoutTesting.reference(node("s"), [data, indices, updates]), [LayoutTesting.ints([1, 7, 4])])
        XCTAssertEqual(try LayoutTesting.reference(node("s", reduction: .add), [data, indices, updates]), [LayoutTesting.ints([1, 14, 7])])
        XCTAssertEqual(try LayoutTesting.reference(node("s", reduction: .mul), [data, indices, updates]), [LayoutTesting.ints([1, 70, 12])])
        XCTAssertEqual(try LayoutTesting.reference(node("s", reduction: .max), [data, indices, updates]), [LayoutTesting.ints([1, 7, 4])])
        XCTAssertEqual(try LayoutTesting.reference(node("s", reduction: .min), [data, indices, updates]), [LayoutTesting.ints([1, 2, 3])])
    }

    func testMismatchedShapesAndRuntimeIndicesNameTheNode() throws {
        let op = try OpKind.makeOperator(node("bad_scatter"))
        let data = ValueFact(dtype: .float32, shape: [4, 5])
        let rows = ValueFact(HostTensor(shape: [2, 1], ints: [0, 3]))
        XCTAssertNoThrow(try op.outputs(for: [data, rows, ValueFact(dtype: .float32, shape: [2, 5])]))
        LayoutTesting.assertError(naming: "bad_scatter") { _ = try op.outputs(for: [data, rows, ValueFact(dtype: .float32, shape: [2, 4])]) }
        LayoutTesting.assertError(naming: "bad_scatter") { _ = try op.outputs(for: [data, rows, ValueFact(dtype: .int64, shape: [2, 5])]) }
        LayoutTesting.assertError(naming: "bad_scatter") {
            _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [1, 1], ints: [4])), ValueFact(dtype: .float32, shape: [1, 5])])
        }
        LayoutTesting.assertError(naming: "bad_scatter") {
            _ = try op.outputs(for: [data, ValueFact(HostTensor(shape: [1, 3], ints: [0, 0, 0])), ValueFact(dtype: .float32, shape: [1])])
        }
        XCTAssertThrowsError(try op.outputs(for: [data, ValueFact(dtype: .int64, shape: [2, 1]), ValueFact(dtype: .float32, shape: [2, 5])])) {
            XCTAssertEqual($0 as? OpError, .notPlanTime(node: "bad_scatter", input: 1))
        }
        XCTAssertThrowsError(try Node(name: "s", op: .scatterND, inputs: ["x0", "x1", "x2"], outputs: ["y0"],
                                      attributes: ["reduction": .string("sum")])) { error in
            guard case .badAttribute(node: "s", attribute: "reduction", _, found: "\"sum\"")? = error as? GraphError else {
                return XCTFail("\(error)")
            }
        }
    }
}

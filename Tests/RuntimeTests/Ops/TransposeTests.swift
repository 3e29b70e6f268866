import Format
import XCTest
@testable import Runtime

final class TransposeTests: XCTestCase {
    func testFastMatchesReferenceOnOddShapes() throws {
        let cases: [([Int], [Int])] = [
            ([7], [0]), ([1, 7], [1, 0]), ([63, 65], [1, 0]), ([65, 63], []),
            ([2, 3, 7, 65], [0, 2, 3, 1]),          // NCHW → NHWC
            ([1, 65, 7, 63], [0, 3, 1, 2]),         // NHWC → NCHW
            ([1, 7, 40, 20], [0, 2, 3, 1]),         // NCHW → NHWC, several partial tiles
            ([1, 30, 5, 257], [0, 3, 1, 2]),        // NHWC → NCHW, C beyond one tile
            ([3, 7, 5], [0, 1, 2]),                 // identity
            ([5, 65, 33], [2, 0, 1]), ([7, 1, 63], []),
            ([2, 3, 1, 4, 5], [4, 1, 3, 0, 2]), ([3, 5, 7, 2, 9], [0, 1, 2, 4, 3]),
        ]
        for (seed, (shape, perm)) in cases.enumerated() {
            let node = LayoutTesting.node(.transpose, "transpose\(shape)", ["perm": .ints(perm)])
            try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random(shape, seed: UInt64(seed + 1))])
        }
    }

    /// Axis merging is what makes the fast paths: identity is one contiguous run and
    /// NCHW → NHWC a batch of [C, H·W] → [H·W, C] transposes.
    func testFastPathsMergeAxes() throws {
        func copy(_ shape: [Int], _ perm: [Int]) -> StridedCopy {
            let strides = ShapeRules.strides(shape)
            let outputShape = perm.map { shape[$0] }
            return StridedCopy(shape: outputShape, sourceStrides: perm.map { strides[$0] },
                               destinationStrides: ShapeRules.strides(outputShape))
        }
        let identity = copy([2, 3, 5, 7], [0, 1, 2, 3])
        XCTAssertEqual(identity.shape, [210])
        XCTAssertEqual(identity.sourceStrides, [1])
        let toNHWC = copy([2, 3, 5, 7], [0, 2, 3, 1])
        XCTAssertEqual(toNHWC.shape, [2, 35, 3])
        XCTAssertEqual(toNHWC.sourceStrides, [105, 1, 35])
        let toNCHW = copy([2, 5, 7, 3], [0, 3, 1, 2])
        XCTAssertEqual(toNCHW.shape, [2, 3, 35])
        XCTAssertEqual(toNCHW.sourceStrides, [105, 1, 3])
    }

    func testReferenceTransposesIntegersExactly() throws {
        let input = HostTensor(shape: [2, 3], ints: [1, 2, 3, 4, 5, 6])
        let output = try LayoutTesting.reference(LayoutTesting.node(.transpose, "t"), [input])
        XCTAssertEqual(output, [HostTensor(shape: [3, 2], ints: [1, 4, 2, 5, 3, 6])])
    }

    func testNegativePermutationEntriesCountFromTheEnd() throws {
        let fact = ValueFact(dtype: .float32, shape: [2, 3, 4])
        let op = try OpKind.makeOperator(LayoutTesting.node(.transpose, "t", ["perm": .ints([-1, 0, 1])]))
        XCTAssertEqual(try op.outputs(for: [fact]).map(\.shape), [[4, 2, 3]])
    }

    func testBadPermutationNamesTheNode() throws {
        let fact = ValueFact(dtype: .float32, shape: [2, 3, 4])
        for perm in [[0, 1], [0, 0, 1], [0, 1, 3]] {
            let op = try OpKind.makeOperator(LayoutTesting.node(.transpose, "bad_perm", ["perm": .ints(perm)]))
            LayoutTesting.assertError(naming: "bad_perm") { _ = try op.outputs(for: [fact]) }
        }
    }
    /// A transpose that keeps the order of the axes longer than 1 (nn.MultiheadAttention's
    /// [1, L, E] ↔ [L, 1, E] with one image) leaves the elements in place: the plan makes
    /// it a view of its input, no kernel; any other permutation still copies.
    func testTransposeMovingOnlySizeOneAxesIsAView() throws {
        let cases: [(shape: [Int], perm: [Int], view: Bool)] = [
            ([1, 256, 8], [1, 0, 2], true), ([256, 1, 8], [1, 0, 2], true), ([3, 1, 1, 5], [0, 2, 3, 1], true),
            ([1, 4, 1, 6], [2, 1, 0, 3], true), ([2, 256, 8], [1, 0, 2], false), ([1, 3, 256, 8], [0, 1, 3, 2], false),
            ([3, 1, 5], [], false),
        ]
        for (shape, perm, view) in cases {
            let node = try Node(name: "transpose", op: .transpose, inputs: ["x"], outputs: ["y"],
                                attributes: ["perm": .ints(perm)])
            let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: shape.map { .fixed($0) })],
                              outputs: [ValueInfo(name: "y", dtype: .float32, shape: [])], nodes: [node])
            let session = Session(model: try Model(graph: graph), threads: 1)
            let input = KernelHarness.random(shape, seed: 9)
            let plan = try session.plan(for: [shape])
            XCTAssertEqual(plan.kernelCount, view ? 0 : 1, "\(shape) perm \(perm)")
            XCTAssertEqual(plan.viewNodes, view ? 1 : 0, "\(shape) perm \(perm)")
            let expected = try OpKind.makeOperator(node).reference([input])[0]
            let output = try session.run([input])[0]
            XCTAssertEqual(output.shape, expected.shape)
            XCTAssertEqual(output.floats, expected.floats, "\(shape) perm \(perm)")
        }
    }
}

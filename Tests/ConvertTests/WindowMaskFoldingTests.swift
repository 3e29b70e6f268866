import Format
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// `WindowMaskFolding` alone, on the shifted-window attention of Swin's paper/mmseg layout:
/// the mask added through a 5-D view of the scores must move into the attention bias so
/// that `AttentionFusion` fuses the block, with the same result; a batch of more than one
/// image (where the view is not a no-op) is left alone.
final class WindowMaskFoldingTests: XCTestCase {
    /// Windows, heads, tokens per window, head size.
    private let (windows, heads, tokens, depth) = (4, 2, 9, 8)

    private func binary(_ name: String, _ function: BinaryFunction, _ a: String, _ b: String) -> Node {
        Node(name: name, .binary(function), inputs: [a, b], outputs: [name])
    }

    /// softmax(reshape(reshape(Q·Kᵀ·scale (+ bias), view) + mask, back)) · V, Q/K/V [4, 2, 9, 8].
    private func maskedAttention(bias: Bool, view: [Int], mask: [Int]) -> Graph {
        let scores = [windows, heads, tokens, tokens]
        var nodes = [
            Node(name: "keyT", .transpose(TransposeAttributes(perm: [0, 1, 3, 2])), inputs: ["k"], outputs: ["keyT"]),
            Node(name: "scores", .matMul, inputs: ["q", "keyT"], outputs: ["scores"]),
            binary("scaled", .mul, "scores", "scale"),
        ]
        if bias { nodes.append(binary("biased", .add, "scaled", "bias")) }
        nodes += [
            Node(name: "viewed", .reshape(ReshapeAttributes()), inputs: [bias ? "biased" : "scaled", "view"], outputs: ["viewed"]),
            binary("masked", .add, "viewed", "mask"),
            Node(name: "back", .reshape(ReshapeAttributes()), inputs: ["masked", "back_shape"], outputs: ["back"]),
            Node(name: "softmax", .softmax(SoftmaxAttributes(axis: -1)), inputs: ["back"], outputs: ["weights"]),
            Node(name: "context", .matMul, inputs: ["weights", "v"], outputs: ["y"]),
        ]
        let maskCount = mask.reduce(1, *)
        let constants = [
            ConstantTensor(name: "scale", shape: [], floats: [1 / Float(depth).squareRoot()]),
            ConstantTensor(name: "bias", shape: [1, heads, tokens, tokens],
                           floats: xorshiftFloats(count: heads * tokens * tokens, seed: 5)),
            // Swin's mask: 0 within a region, -100 across regions.
            ConstantTensor(name: "mask", shape: mask, floats: (0..<maskCount).map { $0 % 3 == 0 ? -100 : 0 }),
            ConstantTensor(name: "view", shape: [5], ints: view.map(Int64.init)),
            ConstantTensor(name: "back_shape", shape: [4], ints: scores.map(Int64.init)),
        ]
        let inputs = ["q", "k", "v"].map { ValueInfo(name: $0, dtype: .float32, shape: [windows, heads, tokens, depth].map { .fixed($0) }) }
        return Graph(inputs: inputs, outputs: [ValueInfo(name: "y", dtype: .float32, shape: [])], nodes: nodes,
                     constants: constants.filter { bias || $0.name != "bias" })
    }

    private func shapes(_ graph: Graph) throws -> SampledShapes {
        let session = Session(model: try Model(graph: graph), threads: 1)
        return SampledShapes(samples: try Simplifier.sampleShapes(graph, multiple: 1).map { try session.plan(for: $0).valueShapes })
    }

    private func run(_ graph: Graph) throws -> [Float] {
        let inputs = (0..<3).map { index in
            HostTensor(shape: [windows, heads, tokens, depth], floats: xorshiftFloats(count: windows * heads * tokens * depth,
                                                                                      seed: UInt64(30 + index)).map { $0 * 3 })
        }
        return try Session(model: try Model(graph: graph), threads: 2).run(inputs)[0].floats
    }

    func testMaskAddedThroughAWindowViewFoldsSoThatAttentionFuses() throws {
        for bias in [true, false] {
            let before = maskedAttention(bias: bias, view: [1, windows, heads, tokens, tokens], mask: [1, windows, 1, tokens, tokens])
            var after = before
            XCTAssertEqual(try WindowMaskFolding.run(&after, shapes: shapes(before)), 1)
            XCTAssertFalse(after.nodes.contains { $0.op == .reshape && $0.name == "viewed" }, "the 5-D view is gone")
            XCTAssertEqual(try AttentionFusion.run(&after, shapes: shapes(after)), 1, "bias \(bias)")
            XCTAssertEqual(after.nodes.filter { $0.op == .softmax }.count, 0)
            let expected = try run(before)
            let actual = try run(after)
            let (maxAbs, relative) = maxAbsAndRelativeError(actual, expected)
            print("window mask folded (bias \(bias)) + attention fused vs decomposed: max abs error \(maxAbs), relative \(relative)")
            // Only the order of the bias and mask additions changes, then the fused kernel's sums.
            XCTAssertLessThan(relative, 1e-5)
        }
    }

    func testBatchOfTwoImagesIsLeftAlone() throws {
        // 4 windows as 2 images × 2 windows: the mask repeats per image, which a 4-D bias could not say.
        let before = maskedAttention(bias: true, view: [2, 2, heads, tokens, tokens], mask: [1, 2, 1, tokens, tokens])
        var after = before
        XCTAssertEqual(try WindowMaskFolding.run(&after, shapes: shapes(before)), 0)
        XCTAssertEqual(after.nodes, before.nodes)
    }

    func testMaskCombinedByAnotherFunctionIsLeftAlone() throws {
        // u · m, or scores − bias under the view: not the additions that fold into one bias.
        let masked = maskedAttention(bias: true, view: [1, windows, heads, tokens, tokens], mask: [1, windows, 1, tokens, tokens])
        for (name, operation) in [("masked", Op.binary(.mul)), ("biased", .binary(.sub))] {
            let before = masked.replacingOperation(of: name, with: operation)
            var after = before
            XCTAssertEqual(try WindowMaskFolding.run(&after, shapes: shapes(before)), 0, name)
            XCTAssertEqual(after.nodes, before.nodes, name)
        }
    }

    func testPerHeadMaskFoldsToo() throws {
        // [1, nW, h, N, N] still broadcasts to the scores [nW, h, N, N] once the view is gone.
        let before = maskedAttention(bias: true, view: [1, windows, heads, tokens, tokens], mask: [1, windows, heads, tokens, tokens])
        var after = before
        XCTAssertEqual(try WindowMaskFolding.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(try AttentionFusion.run(&after, shapes: shapes(after)), 1)
        let (maxAbs, relative) = maxAbsAndRelativeError(try run(after), try run(before))
        print("per-head window mask folded + attention fused vs decomposed: max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThan(relative, 1e-5)
    }
}

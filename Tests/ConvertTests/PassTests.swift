import Format
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// Each rewrite pass alone: it must fire on its pattern, leave other graphs alone and
/// keep the graph's result (checked by running both graphs on random inputs).
final class PassTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> [Float] {
        xorshiftFloats(count: shape.reduce(1, *), seed: seed)
    }

    private func constant(_ name: String, _ shape: [Int], seed: UInt64, offset: Float = 0) -> ConstantTensor {
        ConstantTensor(name: name, shape: shape, floats: random(shape, seed: seed).map { $0 + offset })
    }

    /// A 3×3 conv padded to keep the size, with `activation` fused and the residual added
    /// before or after it.
    private func paddedConv(activation: Activation = .identity, residualBeforeActivation: Bool = false) -> Op {
        var conv = ConvAttributes()
        conv.window.pads = [1, 1, 1, 1]
        conv.activation = activation
        conv.residualBeforeActivation = residualBeforeActivation
        return .conv(conv)
    }

    /// x → conv → ×s → +b → relu → (+ x) → y, all per-channel, 4 channels.
    private func convChain(residualAfterActivation: Bool) -> Graph {
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .symbol("H"), .symbol("W")])
        var nodes = [
            Node(name: "conv", paddedConv(), inputs: ["x", "w", "b"], outputs: ["c"]),
            Node(name: "scale", .binary(.mul), inputs: ["c", "s"], outputs: ["m"]),
            Node(name: "shift", .binary(.add), inputs: ["m", "t"], outputs: ["a"]),
        ]
        if residualAfterActivation {
            nodes += [
                Node(name: "relu", .unary(Activation(function: .relu)), inputs: ["a"], outputs: ["r"]),
                Node(name: "skip", .binary(.add), inputs: ["x", "r"], outputs: ["y"]),
            ]
        } else {
            nodes += [
                Node(name: "skip", .binary(.add), inputs: ["a", "x"], outputs: ["r"]),
                Node(name: "relu", .unary(Activation(function: .relu)), inputs: ["r"], outputs: ["y"]),
            ]
        }
        return Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: x.shape)], nodes: nodes,
                     constants: [constant("w", [4, 4, 3, 3], seed: 1), constant("b", [4], seed: 2),
                                 constant("s", [4, 1, 1], seed: 3, offset: 1.5), constant("t", [1, 4, 1, 1], seed: 4)])
    }

    private func run(_ graph: Graph, shape: [Int]) throws -> [Float] {
        let session = Session(model: try Model(graph: graph), threads: 2)
        return try session.run([HostTensor(shape: shape, floats: random(shape, seed: 9))])[0].floats
    }

    private func assertSameResult(_ before: Graph, _ after: Graph, shape: [Int] = [1, 4, 9, 7],
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try run(before, shape: shape)
        let actual = try run(after, shape: shape)
        var maxAbs: Float = 0
        for (a, e) in zip(actual, expected) { maxAbs = max(maxAbs, abs(a - e)) }
        let scale = expected.map(abs).max() ?? 1
        print("pass result max abs error \(maxAbs), relative \(maxAbs / scale)")
        // Folding rescales weights: a few float32 roundings per output, far below 1e-5 relative.
        XCTAssertLessThan(maxAbs / scale, 1e-5, file: file, line: line)
    }

    func testBatchNormStyleAffineFoldsIntoConvolution() throws {
        let before = convChain(residualAfterActivation: false)
        var after = before
        XCTAssertEqual(try ChannelAffineFolding.run(&after), 2)
        XCTAssertEqual(after.nodes.map(\.op), [.conv, .binary, .unary])
        XCTAssertNil(after.constants["s"])
        try assertSameResult(before, after)
    }

    func testAffineOfAnotherFunctionIsNotFolded() throws {
        // A power, or a maximum, of the conv output by a per-channel constant is no affine map.
        let power = convChain(residualAfterActivation: false).replacingOperation(of: "scale", with: .binary(.pow))
        var after = power
        XCTAssertEqual(try ChannelAffineFolding.run(&after), 0)
        XCTAssertEqual(after.nodes, power.nodes)

        let maximum = convChain(residualAfterActivation: false).replacingOperation(of: "shift", with: .binary(.max))
        after = maximum
        XCTAssertEqual(try ChannelAffineFolding.run(&after), 1, "the multiply folds, the maximum stays")
        XCTAssertEqual(after.nodes.map(\.operation), [paddedConv(), .binary(.max), .binary(.add), .unary(Activation(function: .relu))])
        try assertSameResult(maximum, after)
    }

    func testResidualBeforeActivationFusesIntoOneConvolution() throws {
        let before = convChain(residualAfterActivation: false)
        var after = before
        let report = try Simplifier.simplify(&after)
        print(report)
        XCTAssertEqual(after.nodes.map(\.operation), [paddedConv(activation: Activation(function: .relu),
                                                                   residualBeforeActivation: true)])
        XCTAssertEqual(after.nodes[0].inputs.last, "x")
        try assertSameResult(before, after)
    }

    func testResidualAfterActivationFusesIntoOneConvolution() throws {
        let before = convChain(residualAfterActivation: true)
        var after = before
        _ = try Simplifier.simplify(&after)
        XCTAssertEqual(after.nodes.map(\.operation), [paddedConv(activation: Activation(function: .relu),
                                                                   residualBeforeActivation: false)])
        XCTAssertEqual(after.nodes[0].inputs.last, "x")
        try assertSameResult(before, after)
    }

    func testSubtractionAfterConvolutionIsNotAResidual() throws {
        // conv(x) − x has the residual's shape but is no residual add.
        let before = convChain(residualAfterActivation: false).replacingOperation(of: "skip", with: .binary(.sub))
        var after = before
        _ = try Simplifier.simplify(&after)
        XCTAssertEqual(after.nodes.map(\.operation), [paddedConv(), .binary(.sub), .unary(Activation(function: .relu))])
        try assertSameResult(before, after)
    }

    func testUnaryFunctionThatIsNoActivationIsNotFused() throws {
        // |conv(x)| stays a node: abs is not among the activations a convolution applies.
        let before = convChain(residualAfterActivation: true).replacingOperation(of: "relu", with: .unary(Activation(function: .abs)))
        var after = before
        _ = try Simplifier.simplify(&after)
        XCTAssertEqual(after.nodes.map(\.operation), [paddedConv(), .unary(Activation(function: .abs)), .binary(.add)])
        try assertSameResult(before, after)
    }

    func testBroadcastAddIsNotFusedAsResidual() throws {
        // conv(x) + v where v is [1,4,1,1] computed from data: a broadcast, not a residual.
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .symbol("H"), .symbol("W")])
        let graph = Graph(
            inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: x.shape)],
            nodes: [
                Node(name: "pool", .reduce(ReduceAttributes(function: .mean, axes: [2, 3], keepDims: true)), inputs: ["x"],
                     outputs: ["v"]),
                Node(name: "conv", .conv(ConvAttributes()), inputs: ["x", "w"], outputs: ["c"]),
                Node(name: "add", .binary(.add), inputs: ["c", "v"], outputs: ["y"]),
            ],
            constants: [constant("w", [4, 4, 1, 1], seed: 5)])
        var after = graph
        _ = try Simplifier.simplify(&after)
        XCTAssertEqual(after.nodes.map(\.op), [.reduce, .conv, .binary])
        try assertSameResult(graph, after)
    }

    func testSharedConvolutionOutputIsNotFused() throws {
        // The conv output is read twice, so neither reader may be folded into it.
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .fixed(5), .fixed(5)])
        let graph = Graph(
            inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: x.shape)],
            nodes: [
                Node(name: "conv", .conv(ConvAttributes()), inputs: ["x", "w"], outputs: ["c"]),
                Node(name: "relu", .unary(Activation(function: .relu)), inputs: ["c"], outputs: ["r"]),
                Node(name: "add", .binary(.add), inputs: ["c", "r"], outputs: ["y"]),
            ],
            constants: [constant("w", [4, 4, 1, 1], seed: 6)])
        var after = graph
        _ = try Simplifier.simplify(&after)
        XCTAssertEqual(after.nodes.map(\.op), [.conv, .unary, .binary])
    }

    func testConstantSubgraphFoldsAway() throws {
        // Shape arithmetic on constants: reshape target computed by concat of constants.
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(6)])
        let graph = Graph(
            inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(3), .fixed(4)])],
            nodes: [
                Node(name: "target", .concat(ConcatAttributes(axis: 0)), inputs: ["three", "minusOne"], outputs: ["shape"]),
                Node(name: "reshape", .reshape(ReshapeAttributes()), inputs: ["x", "shape"], outputs: ["y"]),
            ],
            constants: [ConstantTensor(name: "three", shape: [1], ints: [3]), ConstantTensor(name: "minusOne", shape: [1], ints: [-1])])
        var after = graph
        XCTAssertEqual(try ConstantFolding.run(&after), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.reshape])
        XCTAssertEqual(try after.constantValue("shape"), HostTensor(shape: [2], ints: [3, -1]))
    }

    func testStaticShapesFoldShapeArithmetic() throws {
        // y = reshape(x, shape(x)[0..1] ++ [-1]) with fixed dims: the target folds to a constant.
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(4)])
        let graph = Graph(
            inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(2), .fixed(12)])],
            nodes: [
                Node(name: "shape", .shape(ShapeAttributes(start: 0, end: 1)), inputs: ["x"], outputs: ["s"]),
                Node(name: "target", .concat(ConcatAttributes(axis: 0)), inputs: ["s", "minusOne"], outputs: ["t"]),
                Node(name: "reshape", .reshape(ReshapeAttributes()), inputs: ["x", "t"], outputs: ["y"]),
            ],
            constants: [ConstantTensor(name: "minusOne", shape: [1], ints: [-1])])
        var after = graph
        let report = try Simplifier.simplify(&after)
        print(report)
        XCTAssertEqual(after.nodes.map(\.op), [.reshape])
        XCTAssertEqual(try after.constantValue("t"), HostTensor(shape: [2], ints: [2, -1]))
    }
}

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

    /// x → conv → ×s → +b → relu → (+ x) → y, all per-channel, 4 channels.
    private func convChain(residualAfterActivation: Bool) -> Graph {
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .symbol("H"), .symbol("W")])
        var nodes = [
            try! Node(name: "conv", op: .conv, inputs: ["x", "w", "b"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            try! Node(name: "scale", op: .binary, inputs: ["c", "s"], outputs: ["m"], attributes: ["function": .string("mul")]),
            try! Node(name: "shift", op: .binary, inputs: ["m", "t"], outputs: ["a"], attributes: ["function": .string("add")]),
        ]
        if residualAfterActivation {
            nodes += [
                try! Node(name: "relu", op: .unary, inputs: ["a"], outputs: ["r"], attributes: ["function": .string("relu")]),
                try! Node(name: "skip", op: .binary, inputs: ["x", "r"], outputs: ["y"], attributes: ["function": .string("add")]),
            ]
        } else {
            nodes += [
                try! Node(name: "skip", op: .binary, inputs: ["a", "x"], outputs: ["r"], attributes: ["function": .string("add")]),
                try! Node(name: "relu", op: .unary, inputs: ["r"], outputs: ["y"], attributes: ["function": .string("relu")]),
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

    func testResidualBeforeActivationFusesIntoOneConvolution() throws {
        let before = convChain(residualAfterActivation: false)
        var after = before
        let report = try Simplifier.simplify(&after)
        print(report)
        XCTAssertEqual(after.nodes.map(\.op), [.conv])
        XCTAssertEqual(after.nodes[0].attributes["activation"], .string("relu"))
        XCTAssertEqual(after.nodes[0].attributes["residualBeforeActivation"], .int(1))
        XCTAssertEqual(after.nodes[0].inputs.last, "x")
        try assertSameResult(before, after)
    }

    func testResidualAfterActivationFusesIntoOneConvolution() throws {
        let before = convChain(residualAfterActivation: true)
        var after = before
        _ = try Simplifier.simplify(&after)
        XCTAssertEqual(after.nodes.map(\.op), [.conv])
        XCTAssertEqual(after.nodes[0].attributes["residualBeforeActivation"], .int(0))
        try assertSameResult(before, after)
    }

    func testBroadcastAddIsNotFusedAsResidual() throws {
        // conv(x) + v where v is [1,4,1,1] computed from data: a broadcast, not a residual.
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(4), .symbol("H"), .symbol("W")])
        let graph = Graph(
            inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: x.shape)],
            nodes: [
                try! Node(name: "pool", op: .reduce, inputs: ["x"], outputs: ["v"],
                     attributes: ["function": .string("mean"), "axes": .ints([2, 3]), "keepDims": .int(1)]),
                try! Node(name: "conv", op: .conv, inputs: ["x", "w"], outputs: ["c"]),
                try! Node(name: "add", op: .binary, inputs: ["c", "v"], outputs: ["y"], attributes: ["function": .string("add")]),
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
                try! Node(name: "conv", op: .conv, inputs: ["x", "w"], outputs: ["c"]),
                try! Node(name: "relu", op: .unary, inputs: ["c"], outputs: ["r"], attributes: ["function": .string("relu")]),
                try! Node(name: "add", op: .binary, inputs: ["c", "r"], outputs: ["y"], attributes: ["function": .string("add")]),
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
                try! Node(name: "target", op: .concat, inputs: ["three", "minusOne"], outputs: ["shape"], attributes: ["axis": .int(0)]),
                try! Node(name: "reshape", op: .reshape, inputs: ["x", "shape"], outputs: ["y"]),
            ],
            constants: [ConstantTensor(name: "three", shape: [1], ints: [3]), ConstantTensor(name: "minusOne", shape: [1], ints: [-1])])
        var after = graph
        XCTAssertEqual(try ConstantFolding.run(&after), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.reshape])
        XCTAssertEqual(after.constants["shape"].map { HostTensor($0) }, HostTensor(shape: [2], ints: [3, -1]))
    }

    func testStaticShapesFoldShapeArithmetic() throws {
        // y = reshape(x, shape(x)[0..1] ++ [-1]) with fixed dims: the target folds to a constant.
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(4)])
        let graph = Graph(
            inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(2), .fixed(12)])],
            nodes: [
                try! Node(name: "shape", op: .shape, inputs: ["x"], outputs: ["s"], attributes: ["end": .int(1)]),
                try! Node(name: "target", op: .concat, inputs: ["s", "minusOne"], outputs: ["t"], attributes: ["axis": .int(0)]),
                try! Node(name: "reshape", op: .reshape, inputs: ["x", "t"], outputs: ["y"]),
            ],
            constants: [ConstantTensor(name: "minusOne", shape: [1], ints: [-1])])
        var after = graph
        let report = try Simplifier.simplify(&after)
        print(report)
        XCTAssertEqual(after.nodes.map(\.op), [.reshape])
        XCTAssertEqual(after.constants["t"].map { HostTensor($0) }, HostTensor(shape: [2], ints: [2, -1]))
    }
}

import Format
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// The recognisers of decomposed layers (layer norm, GELU/SiLU, linear, attention), each
/// alone on a hand-built graph of the pattern as exporters write it: the pass must fire,
/// leave near-misses alone and keep the result (both graphs run on random inputs).
final class FusionPassTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> [Float] {
        xorshiftFloats(count: shape.reduce(1, *), seed: seed)
    }

    private func constant(_ name: String, _ shape: [Int], seed: UInt64, offset: Float = 0) -> ConstantTensor {
        ConstantTensor(name: name, shape: shape, floats: random(shape, seed: seed).map { $0 + offset })
    }

    private func scalar(_ name: String, _ value: Float) -> ConstantTensor {
        ConstantTensor(name: name, shape: [], floats: [value])
    }

    private func binary(_ name: String, _ function: BinaryFunction, _ a: String, _ b: String, _ output: String? = nil) -> Node {
        Node(name: name, .binary(function), inputs: [a, b], outputs: [output ?? name])
    }

    private func unary(_ name: String, _ function: UnaryFunction, _ x: String, _ output: String? = nil) -> Node {
        Node(name: name, .unary(Activation(function: function)), inputs: [x], outputs: [output ?? name])
    }

    /// Runs `pass` on each near miss of `graph`, node `name` computing another function,
    /// and checks that it rewrites nothing.
    private func assertNearMissesLeftAlone(_ graph: Graph, _ nearMisses: [(String, Op)], pass: (inout Graph) throws -> Int,
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        for (name, operation) in nearMisses {
            let before = graph.replacingOperation(of: name, with: operation)
            var after = before
            XCTAssertEqual(try pass(&after), 0, "\(name) as \(operation)", file: file, line: line)
            XCTAssertEqual(after.nodes, before.nodes, "\(name) as \(operation)", file: file, line: line)
        }
    }

    private func graph(inputs: [(String, [Int])], nodes: [Node], constants: [ConstantTensor], output: String = "y") -> Graph {
        Graph(inputs: inputs.map { ValueInfo(name: $0.0, dtype: .float32, shape: $0.1.map { .fixed($0) }) },
              outputs: [ValueInfo(name: output, dtype: .float32, shape: [])], nodes: nodes, constants: constants)
    }

    /// The graph's value shapes at the simplifier's sample sizes, as passes see them.
    private func shapes(_ graph: Graph) throws -> SampledShapes {
        let session = Session(model: try Model(graph: graph), threads: 1)
        return SampledShapes(samples: try Simplifier.sampleShapes(graph, multiple: 1).map { try session.plan(for: $0).valueShapes })
    }

    private func run(_ graph: Graph, scale: Float) throws -> [Float] {
        let session = Session(model: try Model(graph: graph), threads: 2)
        let inputs = graph.inputs.enumerated().map { index, info in
            let shape = info.shape.map { if case .fixed(let size) = $0 { size } else { 1 } }
            return HostTensor(shape: shape, floats: random(shape, seed: UInt64(20 + index)).map { $0 * scale })
        }
        return try session.run(inputs)[0].floats
    }

    /// Runs both graphs on the same random inputs (scaled by `scale`) and compares.
    private func assertSameResult(_ before: Graph, _ after: Graph, scale: Float = 3, tolerance: Float = 1e-5,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try run(before, scale: scale)
        let actual = try run(after, scale: scale)
        XCTAssertEqual(expected.count, actual.count, file: file, line: line)
        let (maxAbs, relative) = maxAbsAndRelativeError(actual, expected)
        print("fused vs decomposed: max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThan(relative, tolerance, file: file, line: line)
    }

    // MARK: Layer norm

    private enum SquareForm { case power, product }
    private enum DivisionForm { case divide, reciprocal }

    /// mean → sub → square → mean → +ε → sqrt → divide → ·γ → +β over `axes` of x.
    private func layerNormGraph(shape: [Int], axes: [Int], parameterShape: [Int], square: SquareForm = .power,
                                division: DivisionForm = .divide, gammaFirst: Bool = false) -> Graph {
        let reduce = { (name: String, x: String) in
            Node(name: name, .reduce(ReduceAttributes(function: .mean, axes: axes, keepDims: true)), inputs: [x], outputs: [name])
        }
        var nodes = [reduce("mean", "x"), binary("centre", .sub, "x", "mean")]
        nodes.append(square == .power ? binary("square", .pow, "centre", "two") : binary("square", .mul, "centre", "centre"))
        nodes += [reduce("variance", "square"), binary("shift", .add, "variance", "epsilon"), unary("root", .sqrt, "shift")]
        if division == .divide {
            nodes.append(binary("normalised", .div, "centre", "root"))
        } else {
            nodes += [unary("inverse", .reciprocal, "root"), binary("normalised", .mul, "inverse", "centre")]
        }
        nodes.append(gammaFirst ? binary("scaled", .mul, "gamma", "normalised") : binary("scaled", .mul, "normalised", "gamma"))
        nodes.append(binary("shifted", .add, "scaled", "beta", "y"))
        return graph(inputs: [("x", shape)], nodes: nodes,
                     constants: [scalar("two", 2), scalar("epsilon", 1e-5), constant("gamma", parameterShape, seed: 1, offset: 1),
                                 constant("beta", parameterShape, seed: 2)])
    }

    func testLayerNormOverLastAxisFuses() throws {
        let before = layerNormGraph(shape: [2, 5, 16], axes: [-1], parameterShape: [16])
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.operation), [.layerNorm(LayerNormAttributes(axis: -1, epsilon: 1e-5))])
        try assertSameResult(before, after)
    }

    func testLayerNormWithSelfProductAndReciprocalFuses() throws {
        // transformers-style variants: d·d for the square, reciprocal then multiply, γ on the left, positive axis.
        let before = layerNormGraph(shape: [3, 24], axes: [1], parameterShape: [1, 24], square: .product,
                                    division: .reciprocal, gammaFirst: true)
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.layerNorm])
        try assertSameResult(before, after)
    }

    func testChannelLayerNormOfNCHWFusesBetweenTransposes() throws {
        // NAFNet's LayerNorm2d: mean over channels, γ and β viewed as [1, C, 1, 1].
        let before = layerNormGraph(shape: [1, 6, 5, 7], axes: [1], parameterShape: [1, 6, 1, 1], gammaFirst: true)
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.transpose, .layerNorm, .transpose])
        try assertSameResult(before, after)
    }

    func testNAFNetLayerNormFunctionFuses() throws {
        // NAFNet's own LayerNorm2d (an autograd.Function) exports x − μ twice and views γ, β
        // as [1, C, 1, 1] with C read from x's shape.
        let x = "x"
        let channelMean = ReduceAttributes(function: .mean, axes: [1], keepDims: true)
        let nodes = [
            Node(name: "channels", .shape(ShapeAttributes(start: 1, end: 2)), inputs: [x], outputs: ["channels"]),
            Node(name: "target", .concat(ConcatAttributes(axis: 0)), inputs: ["oneDim", "channels", "oneDim", "oneDim"],
                 outputs: ["target"]),
            Node(name: "gammaView", .reshape(ReshapeAttributes()), inputs: ["gamma", "target"], outputs: ["gammaView"]),
            Node(name: "betaView", .reshape(ReshapeAttributes()), inputs: ["beta", "target"], outputs: ["betaView"]),
            Node(name: "mean", .reduce(channelMean), inputs: [x], outputs: ["mean"]),
            binary("centreForSquare", .sub, x, "mean"), binary("square", .pow, "centreForSquare", "two"),
            Node(name: "variance", .reduce(channelMean), inputs: ["square"], outputs: ["variance"]),
            binary("shift", .add, "variance", "epsilon"), unary("root", .sqrt, "shift"),
            binary("centre", .sub, x, "mean"), binary("normalised", .div, "centre", "root"),
            binary("scaled", .mul, "gammaView", "normalised"), binary("shifted", .add, "scaled", "betaView", "y"),
        ]
        let before = graph(inputs: [(x, [1, 6, 5, 7])], nodes: nodes,
                           constants: [scalar("two", 2), scalar("epsilon", 1e-6), constant("gamma", [6], seed: 7, offset: 1),
                                       constant("beta", [6], seed: 8), ConstantTensor(name: "oneDim", shape: [1], ints: [1])])
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.transpose, .layerNorm, .transpose])
        try assertSameResult(before, after)
    }

    func testMeanOverAMiddleAxisIsNotALayerNorm() throws {
        // Axis 1 of a rank-3 tensor is neither the last axis nor NCHW channels.
        let before = layerNormGraph(shape: [2, 6, 5], axes: [1], parameterShape: [6, 1])
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 0)
        XCTAssertEqual(after.nodes, before.nodes)
    }

    func testParameterVaryingOffTheNormalisedAxisStaysOutside() throws {
        // γ of shape [5, 16] varies along rows too: the normalisation fuses, the multiply does not.
        let before = layerNormGraph(shape: [2, 5, 16], axes: [-1], parameterShape: [5, 16])
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.layerNorm, .binary, .binary])
        XCTAssertEqual(after.nodes[0].input(1), nil)
        try assertSameResult(before, after)
    }

    func testLayerNormWithAnotherFunctionIsLeftAlone() throws {
        // Each near miss differs from the pattern in one node's function only: a maximum
        // or sum where a mean is, a sum where the centring subtraction is, and so on.
        let overLastAxis = { (function: ReduceAttributes.Function) in
            Op.reduce(ReduceAttributes(function: function, axes: [-1], keepDims: true))
        }
        try assertNearMissesLeftAlone(layerNormGraph(shape: [2, 5, 16], axes: [-1], parameterShape: [16]), [
            ("mean", overLastAxis(.max)), ("variance", overLastAxis(.sum)), ("centre", .binary(.add)), ("square", .binary(.mul)),
            ("shift", .binary(.sub)), ("root", .unary(Activation(function: .exp))), ("normalised", .binary(.mul)),
        ]) { graph in
            let sampled = try shapes(graph)
            return try LayerNormFusion.run(&graph, shapes: sampled)
        }
    }

    func testCentredValueReadElsewhereBlocksLayerNorm() throws {
        var before = layerNormGraph(shape: [2, 16], axes: [-1], parameterShape: [16])
        before.nodes.append(binary("leak", .add, "y", "centre", "z"))
        before.outputs[0].name = "z"
        var after = before
        XCTAssertEqual(try LayerNormFusion.run(&after, shapes: shapes(before)), 0)
    }

    // MARK: GELU and SiLU

    /// gelu(x) = x·0.5·(1+erf(x/√2)) in one of PyTorch's / transformers' orders.
    private func erfGELUGraph(divide: Bool, halfFirst: Bool, root: Float = Float(2.0.squareRoot())) -> Graph {
        var nodes = [divide ? binary("scaled", .div, "x", "root") : binary("scaled", .mul, "inverseRoot", "x"),
                     unary("erf", .erf, "scaled"), binary("plusOne", .add, "one", "erf")]
        if halfFirst {
            nodes += [binary("halfX", .mul, "x", "half"), binary("product", .mul, "halfX", "plusOne", "y")]
        } else {
            nodes += [binary("product", .mul, "x", "plusOne"), binary("halved", .mul, "product", "half", "y")]
        }
        return graph(inputs: [("x", [2, 3, 17])], nodes: nodes,
                     constants: [scalar("root", root), scalar("inverseRoot", 1 / root), scalar("one", 1), scalar("half", 0.5)])
    }

    func testErfGELUFusesInExportedOrders() throws {
        for (divide, halfFirst) in [(true, false), (false, true), (true, true), (false, false)] {
            let before = erfGELUGraph(divide: divide, halfFirst: halfFirst)
            var after = before
            XCTAssertEqual(try GELUFusion.run(&after), 1, "divide \(divide), half first \(halfFirst)")
            XCTAssertEqual(after.nodes, [unary("erf", .gelu, "x", "y")])
            try assertSameResult(before, after)
        }
    }

    func testGELUWithAnotherFunctionIsLeftAlone() throws {
        // x·√2 where x/√2 is, (1 + erf)·x + 0.5 where a product is, tanh where erf is …
        try assertNearMissesLeftAlone(erfGELUGraph(divide: true, halfFirst: false), [
            ("scaled", .binary(.mul)), ("erf", .unary(Activation(function: .tanh))), ("plusOne", .binary(.sub)),
            ("product", .binary(.add)), ("halved", .binary(.add)),
        ], pass: GELUFusion.run)
        try assertNearMissesLeftAlone(tanhGELUGraph(power: false), [
            ("square", .binary(.add)), ("cubic", .binary(.add)), ("inner", .binary(.sub)), ("argument", .binary(.div)),
            ("tanh", .unary(Activation(function: .erf))), ("halfX", .binary(.add)),
        ], pass: GELUFusion.run)
        try assertNearMissesLeftAlone(graph(inputs: [("x", [3, 9])],
                                            nodes: [unary("sigmoid", .sigmoid, "x"), binary("gate", .mul, "x", "sigmoid", "y")],
                                            constants: []),
                                      [("sigmoid", .unary(Activation(function: .tanh))), ("gate", .binary(.add))],
                                      pass: GELUFusion.run)
    }

    func testErfOfOtherScaleIsNotGELU() throws {
        let before = erfGELUGraph(divide: true, halfFirst: false, root: 2)
        var after = before
        XCTAssertEqual(try GELUFusion.run(&after), 0)
        XCTAssertEqual(after.nodes, before.nodes)
    }

    /// 0.5·x·(1+tanh(√(2/π)·(x + 0.044715·x³))), x³ as pow or as x·x·x.
    private func tanhGELUGraph(power: Bool) -> Graph {
        var nodes = power ? [binary("cube", .pow, "x", "three")]
                          : [binary("square", .mul, "x", "x"), binary("cube", .mul, "square", "x")]
        nodes += [binary("cubic", .mul, "cube", "kappa"), binary("inner", .add, "x", "cubic"),
                  binary("argument", .mul, "beta", "inner"), unary("tanh", .tanh, "argument"),
                  binary("plusOne", .add, "tanh", "one"), binary("halfX", .mul, "half", "x"),
                  binary("product", .mul, "halfX", "plusOne", "y")]
        return graph(inputs: [("x", [4, 33])], nodes: nodes,
                     constants: [scalar("three", 3), scalar("kappa", 0.044715), scalar("beta", Float((2 / Double.pi).squareRoot())),
                                 scalar("one", 1), scalar("half", 0.5)])
    }

    func testTanhGELUFuses() throws {
        for power in [true, false] {
            let before = tanhGELUGraph(power: power)
            var after = before
            XCTAssertEqual(try GELUFusion.run(&after), 1)
            XCTAssertEqual(after.nodes, [unary("tanh", .geluTanh, "x", "y")])
            try assertSameResult(before, after)
        }
    }

    func testSiLUFusesOnlyWhenGatingItsOwnInput() throws {
        let before = graph(inputs: [("x", [3, 9])], nodes: [unary("sigmoid", .sigmoid, "x"), binary("gate", .mul, "x", "sigmoid", "y")],
                           constants: [])
        var after = before
        XCTAssertEqual(try GELUFusion.run(&after), 1)
        XCTAssertEqual(after.nodes, [unary("sigmoid", .silu, "x", "y")])
        try assertSameResult(before, after)

        // sigmoid(x)·w gates another value: a GLU-style gate, not SiLU.
        var gate = graph(inputs: [("x", [3, 9])], nodes: [unary("sigmoid", .sigmoid, "x"), binary("gate", .mul, "w", "sigmoid", "y")],
                         constants: [constant("w", [3, 9], seed: 3)])
        XCTAssertEqual(try GELUFusion.run(&gate), 0)
    }

    // MARK: Linear

    private func linearGraph(biasShape: [Int]) -> Graph {
        graph(inputs: [("x", [2, 7, 12])],
              nodes: [Node(name: "xw", .matMul, inputs: ["x", "w"], outputs: ["xw"]), binary("biased", .add, "b", "xw", "y")],
              constants: [constant("w", [12, 10], seed: 4), constant("b", biasShape, seed: 5)])
    }

    func testMatMulAndBiasVectorBecomeLinear() throws {
        let before = linearGraph(biasShape: [10])
        var after = before
        XCTAssertEqual(try LinearFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.linear])
        XCTAssertEqual(after.nodes[0].input(1).flatMap { after.constants[$0]?.shape }, [10, 12])
        XCTAssertNil(after.constants["w"])
        try assertSameResult(before, after)
    }

    func testBiasVaryingAlongRowsStaysAnAdd() throws {
        let before = linearGraph(biasShape: [7, 10])
        var after = before
        XCTAssertEqual(try LinearFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.linear, .binary])
        XCTAssertEqual(after.nodes[0].inputs.count, 2)
        try assertSameResult(before, after)
    }

    func testBiasSubtractedFromAProductStaysASubtraction() throws {
        // b − x·W: the product becomes a linear, the subtraction is no bias add.
        let before = linearGraph(biasShape: [10]).replacingOperation(of: "biased", with: .binary(.sub))
        var after = before
        XCTAssertEqual(try LinearFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.operation), [.linear(LinearAttributes()), .binary(.sub)])
        XCTAssertEqual(after.nodes[0].inputs.count, 2)
        try assertSameResult(before, after)
    }

    func testProductOfTwoActivationsIsNotLinear() throws {
        let before = graph(inputs: [("x", [3, 4])], nodes: [
            Node(name: "transpose", .transpose(TransposeAttributes(perm: [1, 0])), inputs: ["x"], outputs: ["xt"]),
            Node(name: "gram", .matMul, inputs: ["x", "xt"], outputs: ["y"]),
        ], constants: [])
        var after = before
        XCTAssertEqual(try LinearFusion.run(&after, shapes: shapes(before)), 0)
    }

    func testSimplifierFusesDecomposedGELUIntoLinear() throws {
        // matMul + bias, then an erf GELU: the recognisers run before activation fusion, so all of it is one node.
        var before = linearGraph(biasShape: [10])
        before.nodes[1].outputs = ["biased"]
        let gelu = erfGELUGraph(divide: true, halfFirst: false)
        before.nodes += gelu.nodes.map { node in
            var node = node
            node.inputs = node.inputs.map { $0 == "x" ? "biased" : $0 }
            return node
        }
        for name in ["root", "one", "half"] { before.setConstant(gelu.constants[name]!) }
        var after = before
        print(try Simplifier.simplify(&after))
        XCTAssertEqual(after.nodes.map(\.operation), [.linear(LinearAttributes(activation: Activation(function: .gelu)))])
        try assertSameResult(before, after)
    }

    // MARK: Attention

    /// Where the 1/√d goes: scores / √d (transformers' eager attention), scores · 1/√d,
    /// or Q and Kᵀ each · d^(-1/4) (PyTorch's exported scaled_dot_product_attention).
    private enum AttentionScaling { case divideScores, multiplyScores, multiplyQueryAndKeys }

    /// softmax(Q·Kᵀ / √d (+ bias)) · V with Q, V [2, 3, 7, 8]; Kᵀ is transpose(k, perm)
    /// of an input k of `keyShape`, or k itself when `perm` is nil.
    private func attentionGraph(bias: [Int]?, keyShape: [Int] = [2, 3, 7, 8], perm: [Int]? = [0, 1, 3, 2],
                                softmaxAxis: Int = -1, scaling: AttentionScaling = .divideScores) -> Graph {
        var nodes: [Node] = []
        if let perm { nodes.append(Node(name: "keyT", .transpose(TransposeAttributes(perm: perm)), inputs: ["k"], outputs: ["keyT"])) }
        switch scaling {
        case .divideScores:
            nodes += [Node(name: "scores", .matMul, inputs: ["q", perm == nil ? "k" : "keyT"], outputs: ["scores"]),
                      binary("scaled", .div, "scores", "scale")]
        case .multiplyScores:
            nodes += [Node(name: "scores", .matMul, inputs: ["q", perm == nil ? "k" : "keyT"], outputs: ["scores"]),
                      binary("scaled", .mul, "inverseScale", "scores")]
        case .multiplyQueryAndKeys:
            nodes += [binary("scaledQ", .mul, "q", "rootScale"), binary("scaledK", .mul, perm == nil ? "k" : "keyT", "rootScale"),
                      Node(name: "scores", .matMul, inputs: ["scaledQ", "scaledK"], outputs: ["scaled"])]
        }
        if bias != nil { nodes.append(binary("biased", .add, "bias", "scaled")) }
        nodes += [
            Node(name: "softmax", .softmax(SoftmaxAttributes(axis: softmaxAxis)), inputs: [bias == nil ? "scaled" : "biased"],
                 outputs: ["weights"]),
            Node(name: "cast", .cast(CastAttributes(to: .float32)), inputs: ["weights"], outputs: ["probabilities"]),
            Node(name: "context", .matMul, inputs: ["probabilities", "v"], outputs: ["y"]),
        ]
        var constants = [scalar("scale", Float(8.0.squareRoot())), scalar("inverseScale", 1 / Float(8.0.squareRoot())),
                         scalar("rootScale", Float(pow(8.0, -0.25)))]
        if let bias { constants.append(constant("bias", bias, seed: 6)) }
        return graph(inputs: [("q", [2, 3, 7, 8]), ("k", keyShape), ("v", [2, 3, 7, 8])], nodes: nodes, constants: constants)
    }

    func testEagerAttentionFuses() throws {
        let cases: [([Int]?, AttentionScaling)] = [([3, 7, 7], .divideScores), (nil, .multiplyScores), ([2, 1, 1, 7], .multiplyScores),
                                                   (nil, .multiplyQueryAndKeys), ([7], .multiplyQueryAndKeys)]
        for (bias, scaling) in cases {
            let before = attentionGraph(bias: bias, scaling: scaling)
            var after = before
            XCTAssertEqual(try AttentionFusion.run(&after, shapes: shapes(before)), 1)
            XCTAssertEqual(after.nodes.map(\.op), [.attention])
            XCTAssertEqual(after.nodes[0].inputs, ["q", "k", "v"] + (bias == nil ? [] : ["bias"]))
            guard case .attention(let attention) = after.nodes[0].operation else { return XCTFail("not an attention node") }
            XCTAssertEqual(attention.scale, 1 / Float(8.0.squareRoot()), accuracy: 1e-7)
            try assertSameResult(before, after)
        }
    }

    func testKeyTransposeMergedWithHeadSplitFuses() throws {
        // The exporter turns K [B, S, H, D] → [B, H, S, D] → Kᵀ into one transpose [0, 2, 3, 1];
        // the fused graph keeps a transpose [0, 2, 1, 3] making K.
        let before = attentionGraph(bias: nil, keyShape: [2, 7, 3, 8], perm: [0, 2, 3, 1])
        var after = before
        XCTAssertEqual(try AttentionFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.transpose, .attention])
        XCTAssertEqual(after.nodes[0].operation, .transpose(TransposeAttributes(perm: [0, 2, 1, 3])))
        try assertSameResult(before, after)
    }

    func testSoftmaxOverAnotherAxisOrKeysNotTransposedIsNotAttention() throws {
        // Softmax over the queries; Kᵀ given directly rather than made by a transpose.
        for before in [attentionGraph(bias: nil, softmaxAxis: 2), attentionGraph(bias: nil, keyShape: [2, 3, 8, 7], perm: nil)] {
            var after = before
            XCTAssertEqual(try AttentionFusion.run(&after, shapes: shapes(before)), 0)
            XCTAssertEqual(after.nodes, before.nodes)
        }
    }

    func testAttentionWithAnotherFunctionIsLeftAlone() throws {
        // Scores minus the scale, or times the bias: not a scaled, biased product.
        let attention = attentionGraph(bias: [3, 7, 7])
        try assertNearMissesLeftAlone(attention, [("scaled", .binary(.sub)), ("biased", .binary(.mul))]) { graph in
            let sampled = try shapes(graph)
            return try AttentionFusion.run(&graph, shapes: sampled)
        }
    }

    func testBiasThatWouldEnlargeScoresIsNotFused() throws {
        // A [5, 1, 1, 1, 7] bias adds a leading axis to the scores: the fused op could not express it.
        let before = attentionGraph(bias: [5, 1, 1, 1, 7])
        var after = before
        XCTAssertEqual(try AttentionFusion.run(&after, shapes: shapes(before)), 0)
        XCTAssertEqual(after.nodes, before.nodes)
    }

    // MARK: Attention applied from the right (SAGAN, BigGAN)

    /// y = G · softmax(Q · Kᵀ)ᵀ with Q [2, 7, 4], Kᵀ [2, 4, 5] (no transpose node: the keys
    /// come channels first), G [2, 3, 5]; with `valuesFirst` false the transposed
    /// probabilities are the left operand instead, of G [2, 7, 3].
    private func transposedAttentionGraph(softmaxAxis: Int = -1, valuesFirst: Bool = true) -> Graph {
        let nodes = [
            Node(name: "scores", .matMul, inputs: ["q", "kT"], outputs: ["scores"]),
            Node(name: "softmax", .softmax(SoftmaxAttributes(axis: softmaxAxis)), inputs: ["scores"], outputs: ["p"]),
            Node(name: "pT", .transpose(TransposeAttributes(perm: [0, 2, 1])), inputs: ["p"], outputs: ["pT"]),
            Node(name: "context", .matMul, inputs: valuesFirst ? ["g", "pT"] : ["pT", "g"], outputs: ["y"]),
        ]
        return graph(inputs: [("q", [2, 7, 4]), ("kT", [2, 4, 5]), ("g", valuesFirst ? [2, 3, 5] : [2, 7, 3])],
                     nodes: nodes, constants: [])
    }

    func testAttentionAppliedFromTheRightFuses() throws {
        let before = transposedAttentionGraph()
        var unchanged = before
        XCTAssertEqual(try AttentionFusion.run(&unchanged, shapes: shapes(before)), 0, "the transformers' pass leaves it")
        var after = before
        XCTAssertEqual(try TransposedAttentionFusion.run(&after, shapes: shapes(before)), 1)
        XCTAssertEqual(after.nodes.map(\.op), [.transpose, .transpose, .attention, .transpose])
        XCTAssertEqual(after.nodes[2].inputs, ["q", "softmax.key", "softmax.value"])
        XCTAssertEqual(after.nodes[3].outputs, ["y"])
        try assertSameResult(before, after)
    }

    func testAttentionFromTheRightNearMissesAreLeftAlone() throws {
        // Softmax over the queries, or the transposed probabilities as the left operand
        // (pᵀ [2, 5, 7] times G [2, 7, 3]: another product).
        for before in [transposedAttentionGraph(softmaxAxis: 1), transposedAttentionGraph(valuesFirst: false)] {
            var after = before
            XCTAssertEqual(try TransposedAttentionFusion.run(&after, shapes: shapes(before)), 0)
            XCTAssertEqual(after.nodes, before.nodes)
        }
    }

    // MARK: Attention reading interleaved heads

    /// Q, K, V [2, 5, 3, 4] (batch, tokens, heads, head dim) split into heads by
    /// transposes [0, 2, 1, 3], attention, the heads merged back by `mergePerm` and a
    /// reshape to [2, 5, 12]; with `unitReshape` each split is also viewed as [2, 3, 5, 1, 4]
    /// → [2, 3, 5, 4] as nn.MultiheadAttention's export adds and drops unit axes.
    private func headSplitGraph(mergePerm: [Int] = [0, 2, 1, 3], unitReshape: Bool = false, bias: Bool = false) -> Graph {
        var nodes: [Node] = []
        var constants = [ConstantTensor(name: "merged", shape: [3], ints: [2, 5, 12])]
        for name in ["q", "k", "v"] {
            nodes.append(Node(name: "\(name).split", .transpose(TransposeAttributes(perm: [0, 2, 1, 3])),
                              inputs: [name], outputs: ["\(name).heads"]))
            if unitReshape {
                constants.append(ConstantTensor(name: "\(name).shape", shape: [4], ints: [2, 3, 5, 4]))
                nodes.append(Node(name: "\(name).view", .reshape(ReshapeAttributes()), inputs: ["\(name).heads", "\(name).shape"],
                                  outputs: ["\(name).viewed"]))
            }
        }
        let operands = ["q", "k", "v"].map { unitReshape ? "\($0).viewed" : "\($0).heads" }
        nodes += [
            Node(name: "attention", .attention(AttentionAttributes(scale: 0.5)), inputs: operands + (bias ? ["bias"] : []),
                 outputs: ["attended"]),
            Node(name: "merge", .transpose(TransposeAttributes(perm: mergePerm)), inputs: ["attended"], outputs: ["merged.heads"]),
            Node(name: "reshape", .reshape(ReshapeAttributes()), inputs: ["merged.heads", "merged"], outputs: ["y"]),
        ]
        return graph(inputs: [("q", [2, 5, 3, 4]), ("k", [2, 5, 3, 4]), ("v", [2, 5, 3, 4])] + (bias ? [("bias", [5, 5])] : []),
                     nodes: nodes, constants: constants)
    }

    func testAttentionReadsInterleavedHeadsInsteadOfTransposes() throws {
        for unitReshape in [false, true] {
            let before = headSplitGraph(unitReshape: unitReshape)
            var after = before
            XCTAssertEqual(try AttentionHeadLayoutFusion.run(&after, shapes: shapes(before)), 1)
            XCTAssertEqual(after.nodes.map(\.op), [.attention, .reshape])
            XCTAssertEqual(after.nodes[0].inputs, ["q", "k", "v"])
            XCTAssertEqual(after.nodes[0].operation, .attention(AttentionAttributes(scale: 0.5, headsInterleaved: true)))
            XCTAssertEqual(after.nodes[1].inputs[0], "attended")
            try assertSameResult(before, after)
        }
    }

    func testHeadMergeInAnotherOrderOrABiasKeepsTheTransposes() throws {
        // Merging [0, 1, 2, 3] (no merge) or [2, 1, 0, 3] (batch after tokens) is another element
        // order; a bias would have to follow the layout.
        for before in [headSplitGraph(mergePerm: [0, 1, 2, 3]), headSplitGraph(mergePerm: [2, 1, 0, 3]), headSplitGraph(bias: true)] {
            var after = before
            XCTAssertEqual(try AttentionHeadLayoutFusion.run(&after, shapes: shapes(before)), 0)
            XCTAssertEqual(after.nodes, before.nodes)
        }
    }
}

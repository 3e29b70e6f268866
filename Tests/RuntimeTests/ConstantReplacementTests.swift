import Format
import TestSupport
import XCTest
@testable import Runtime

/// `Model.replaceConstant`: kernels whose weights were prepared once per model (Winograd U,
/// GEMM panels) follow new values on the next run, and the stale prepared weights are freed.
final class ConstantReplacementTests: XCTestCase {
    private static let tolerance: Float = 1e-4

    /// x [1, 16, 24, 24] → 3×3 conv (W [32, 16, 3, 3], bias [32]): Winograd, with U prepared from W.
    private func convolution() throws -> (graph: Graph, node: Node, input: HostTensor, weightShape: [Int]) {
        let node = try Node(name: "conv", op: .conv, inputs: ["x", "W", "B"], outputs: ["y"],
                            attributes: ["pads": .ints([1, 1, 1, 1])])
        let weightShape = [32, 16, 3, 3]
        let graph = Graph(
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(16), .symbol("H"), .symbol("W")])],
            outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(1), .fixed(32), .symbol("H"), .symbol("W")])],
            nodes: [node],
            constants: [ConstantTensor(name: "W", shape: weightShape, floats: KernelHarness.random(weightShape, seed: 1).floats),
                        ConstantTensor(name: "B", shape: [32], floats: KernelHarness.random([32], seed: 2).floats)])
        return (graph, node, KernelHarness.random([1, 16, 24, 24], seed: 3), weightShape)
    }

    /// x [1, 64, 96] → linear (W [80, 96], bias [80]): GEMM with Wᵀ packed in panels on the AVX2 and AVX-512 paths.
    private func linear() throws -> (graph: Graph, node: Node, input: HostTensor, weightShape: [Int]) {
        let node = try Node(name: "linear", op: .linear, inputs: ["x", "W", "B"], outputs: ["y"])
        let weightShape = [80, 96]
        let graph = Graph(
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .symbol("T"), .fixed(96)])],
            outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(1), .symbol("T"), .fixed(80)])],
            nodes: [node],
            constants: [ConstantTensor(name: "W", shape: weightShape, floats: KernelHarness.random(weightShape, seed: 4).floats),
                        ConstantTensor(name: "B", shape: [80], floats: KernelHarness.random([80], seed: 5).floats)])
        return (graph, node, KernelHarness.random([1, 64, 96], seed: 6), weightShape)
    }

    /// The node's reference kernel on `input` with the graph's constants, W and B replaced by
    /// `weights` and `bias` when given.
    private func reference(_ node: Node, _ graph: Graph, _ input: HostTensor, weights: [Float]? = nil,
                           bias: [Float]? = nil) throws -> [Float] {
        let w = try XCTUnwrap(graph.constants["W"]), b = try XCTUnwrap(graph.constants["B"])
        return try OpKind.makeOperator(node).reference([
            input, HostTensor(shape: w.shape, floats: weights ?? w.floatValues()),
            HostTensor(shape: b.shape, floats: bias ?? b.floatValues()),
        ])[0].floats
    }

    private func assertClose(_ actual: [Float], _ expected: [Float], _ label: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        let (maxAbs, relative) = maxAbsAndRelativeError(actual, expected)
        print("\(label): max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThanOrEqual(relative, Self.tolerance, label, file: file, line: line)
    }

    /// Plans and runs, replaces W, runs again: the output follows the new W, the prepared
    /// weights of the old W are freed at once and those of the new W take their place.
    private func assertReplacedWeightIsFollowed(
        _ setup: (graph: Graph, node: Node, input: HostTensor, weightShape: [Int]), prepares: Bool,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let model = try Model(graph: setup.graph)
        let session = Session(model: model, threads: 2)
        let before = try session.run([setup.input])[0]
        assertClose(before.floats, try reference(setup.node, setup.graph, setup.input), "\(setup.node.name) before",
                    file: file, line: line)
        let preparedBytes = model.preparedWeightBytes
        XCTAssertEqual(preparedBytes > 0, prepares, "prepared \(preparedBytes) bytes", file: file, line: line)

        let newWeights = KernelHarness.random(setup.weightShape, seed: 99).floats
        try model.replaceConstant("W", with: newWeights)
        XCTAssertEqual(model.constantGeneration("W"), 1, file: file, line: line)
        XCTAssertEqual(model.constantGeneration("B"), 0, file: file, line: line)
        XCTAssertEqual(model.preparedWeightBytes, 0, "the stale prepared weights are freed", file: file, line: line)

        let after = try session.run([setup.input])[0]
        XCTAssertEqual(model.preparedWeightBytes, preparedBytes, "one prepared form of the new W", file: file, line: line)
        assertClose(after.floats, try reference(setup.node, setup.graph, setup.input, weights: newWeights),
                    "\(setup.node.name) after replacement", file: file, line: line)
        XCTAssertGreaterThan(maxAbsAndRelativeError(after.floats, before.floats).relative, 0.1, file: file, line: line)
    }

    func testWinogradConvolutionFollowsReplacedWeights() throws {
        try assertReplacedWeightIsFollowed(try convolution(), prepares: true)
    }

    func testLinearWithPackedPanelsFollowsReplacedWeights() throws {
        try assertReplacedWeightIsFollowed(try linear(), prepares: GEMM.packs())
    }

    /// A bias is small enough to be read as a value while planning: the plan made before
    /// the replacement is dropped, in every session of the model.
    func testReplacedBiasReachesEverySession() throws {
        let setup = try linear()
        let model = try Model(graph: setup.graph)
        let sessions = [Session(model: model, threads: 1), Session(model: model, threads: 2)]
        for session in sessions { _ = try session.run([setup.input]) }
        let bias = (0..<80).map { Float($0) }
        try model.replaceConstant("B", with: bias)
        let expected = try reference(setup.node, setup.graph, setup.input, bias: bias)
        for session in sessions {
            assertClose(try session.run([setup.input])[0].floats, expected, "linear with a replaced bias")
            XCTAssertEqual(session.cachedPlans.count, 1)
        }
    }

    func testReplacementsThatDoNotFitAreRefusedNamingTheConstant() throws {
        var graph = try linear().graph
        graph.setConstant(ConstantTensor(name: "shape", shape: [2], ints: [1, 2]))
        let model = try Model(graph: graph)
        for (name, count) in [("absent", 1), ("W", 7), ("shape", 2)] {
            XCTAssertThrowsError(try model.replaceConstant(name, with: [Float](repeating: 0, count: count))) { error in
                guard case .constantReplacement(name, _)? = error as? ModelError else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains("'\(name)'"), "\(error)")
            }
            XCTAssertEqual(model.constantGeneration(name), 0)
        }
    }

    /// An int8 linear weight runs the int8 kernel (activations rounded per row: within a
    /// percent of the f32 result, Int8WeightsTests checks the exact bound); replaced by
    /// trained f32 values it is an f32 weight from then on, and the result is f32's again.
    func testInt8WeightsRunInt8UntilReplacedByF32Values() throws {
        let setup = try linear()
        let w = try XCTUnwrap(setup.graph.constants["W"])
        let (weights, scales) = Int8Scales.quantize(name: "W", shape: w.shape, values: w.floatValues(), axis: 0,
                                                    scalesName: "W.scales")
        var graph = setup.graph
        graph.setConstant(weights)
        graph.setConstant(scales)
        let dequantized = try graph.floatValues(of: weights)
        let model = try Model(graph: graph)
        let session = Session(model: model, threads: 2)
        let expected = try reference(setup.node, setup.graph, setup.input, weights: dequantized)
        let (_, relative) = maxAbsAndRelativeError(try session.run([setup.input])[0].floats, expected)
        print("int8 linear before replacement: relative error \(relative)")
        XCTAssertLessThan(relative, 1e-2)
        // Training starts from the weight's values, not its raw int8 bytes.
        let trainable = try TrainableWeights(model: model, names: ["W"])
        withExtendedLifetime(trainable) { XCTAssertEqual(Array(trainable.buffers[0]), dequantized) }
        try model.replaceConstant("W", with: dequantized)
        assertClose(try session.run([setup.input])[0].floats, expected, "int8 linear replaced by f32 values")
    }

    func testInt8WeightWithoutItsScalesIsRefusedWhenTheModelLoads() throws {
        var graph = try linear().graph
        graph.setConstant(Int8Scales.quantize(name: "W", shape: [80, 96], values: [Float](repeating: 1, count: 80 * 96),
                                              axis: 0, scalesName: "W.scales").weights)
        XCTAssertThrowsError(try Model(graph: graph)) { error in
            guard case .invalidConstant("W", let detail)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("W.scales"), detail)
        }
    }
}

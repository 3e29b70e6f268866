import Format
import TestSupport
import XCTest
@testable import Runtime

/// The receptive field a restorer derives its overlap from, the tiles it picks against a
/// memory budget, and what a session refuses before running: inputs of another type and
/// runs larger than its memory limit.
final class MemoryAndTilingTests: XCTestCase {
    private let image = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")])

    /// `layers` convolutions of `kernel`×`kernel` (dilation `dilation`), then `tail` on the result.
    private func convStack(layers: Int, kernel: Int, dilation: Int = 1, stride: Int = 1, tail: Node? = nil) -> Graph {
        var nodes: [Node] = []
        var constants: [ConstantTensor] = []
        var value = "x"
        for layer in 0..<layers {
            let weight = "w\(layer)", output = "c\(layer)"
            constants.append(ConstantTensor(name: weight, shape: [3, 3, kernel, kernel],
                                            floats: Array(repeating: 1 / Float(9 * kernel * kernel), count: 9 * kernel * kernel)))
            let pad = (kernel - 1) * dilation / 2
            nodes.append(try! Node(name: "conv\(layer)", op: .conv, inputs: [value, weight], outputs: [output],
                                   attributes: ["pads": .ints([pad, pad, pad, pad]), "dilations": .ints([dilation, dilation]),
                                                "strides": .ints([layer == 0 ? stride : 1, layer == 0 ? stride : 1])]))
            value = output
        }
        if var tail {
            tail.inputs[0] = value
            nodes.append(tail)
            value = tail.outputs[0]
        }
        return Graph(inputs: [image], outputs: [ValueInfo(name: value, dtype: .float32, shape: [])], nodes: nodes,
                     constants: constants)
    }

    private func radius(_ graph: Graph) -> Int? {
        ReceptiveField.radius(of: graph, from: "x", to: graph.outputs[0].name)
    }

    func testReceptiveFieldOfConvolutionStacks() throws {
        XCTAssertEqual(radius(convStack(layers: 5, kernel: 3)), 5)
        XCTAssertEqual(radius(convStack(layers: 2, kernel: 5)), 4)
        XCTAssertEqual(radius(convStack(layers: 3, kernel: 3, dilation: 2)), 6)
        // After a stride-2 layer every later pixel of reach is two input pixels.
        XCTAssertEqual(radius(convStack(layers: 3, kernel: 3, stride: 2)), 1 + 2 + 2)
        let relu = try Node(name: "act", op: .unary, inputs: ["?"], outputs: ["y"], attributes: ["function": .string("relu")])
        XCTAssertEqual(radius(convStack(layers: 2, kernel: 3, tail: relu)), 2)
    }

    func testReceptiveFieldIsNotDerivedThroughOpsThatMixEveryPosition() throws {
        let norm = try Node(name: "norm", op: .instanceNorm, inputs: ["?", "scale", "bias"], outputs: ["y"], attributes: [:])
        var graph = convStack(layers: 2, kernel: 3, tail: norm)
        graph = Graph(inputs: graph.inputs, outputs: graph.outputs, nodes: graph.nodes,
                      constants: graph.constants.values.sorted { $0.name < $1.name } + [
                        ConstantTensor(name: "scale", shape: [3], floats: [1, 1, 1]),
                        ConstantTensor(name: "bias", shape: [3], floats: [0, 0, 0])])
        XCTAssertNil(radius(graph))
    }

    func testOverlapComesFromTheReceptiveFieldAndTilesFromTheBudget() throws {
        let session = Session(model: try Model(graph: convStack(layers: 4, kernel: 3)), threads: 1)
        let restorer = try Restorer(session: session)
        XCTAssertEqual(restorer.receptiveFieldRadius, 4)
        let roomy = try restorer.tiling(height: 200, width: 300, budget: 1 << 30, imageBytes: 0)
        XCTAssertEqual([roomy.tileHeight, roomy.tileWidth, roomy.overlap], [200, 300, 16])
        // A byte less than the whole image needs forces tiles.
        let budget = roomy.estimatedBytes - 1
        let tight = try restorer.tiling(height: 200, width: 300, budget: budget, imageBytes: 0)
        XCTAssertLessThan(min(tight.tileHeight, 200) * min(tight.tileWidth, 300), 200 * 300)
        XCTAssertLessThanOrEqual(tight.estimatedBytes, budget)
        XCTAssertEqual(tight.tileReason, "the largest tile that fits the memory budget")
        // The tiled result equals the whole image's: the overlap covers the receptive field.
        let input = HostTensor(shape: [1, 3, 200, 300], floats: KernelHarness.random([1, 3, 200, 300], seed: 3).floats)
        let whole = try restorer.restore(input, budget: 1 << 30)
        let tiled = try restorer.restore(input, budget: budget)
        let (maxAbs, _) = maxAbsAndRelativeError(tiled.floats, whole.floats)
        print("\(tight) vs whole: max abs \(maxAbs)")
        XCTAssertLessThan(maxAbs, 1e-5)
        // 70000²: one full-size value alone passes the planner's per-value limit, so the whole
        // image is not a candidate, and tiles are chosen instead of failing.
        let huge = try restorer.tiling(height: 70000, width: 70000, budget: 1 << 30, imageBytes: 0)
        XCTAssertLessThan(huge.tileHeight, 70000)
        XCTAssertThrowsError(try restorer.tiling(height: 200, width: 300, budget: 1 << 20, imageBytes: 2 << 20)) { error in
            XCTAssertTrue("\(error)".contains("the 300×200 input and its output image needs 2.0 MiB"), "\(error)")
        }
        XCTAssertThrowsError(try restorer.tiling(height: 200, width: 300, budget: 1000, imageBytes: 0)) { error in
            XCTAssertTrue(error is MemoryLimitError, "\(error)")
        }
        XCTAssertThrowsError(try restorer.tiling(height: 200, width: 300, tile: 1, budget: 1 << 30, imageBytes: 0)) { error in
            XCTAssertEqual(error as? RestoreError, .tileTooSmall(1, minimum: Restorer.minimumTile))
        }
    }

    func testSessionRefusesInputsOfAnotherTypeAndRunsOverItsMemoryLimit() throws {
        let session = Session(model: try Model(graph: convStack(layers: 1, kernel: 3)), threads: 1)
        let integers = HostTensor(shape: [1, 3, 4, 4], ints: Array(repeating: 1, count: 48))
        XCTAssertThrowsError(try session.run(["x": integers])) { error in
            XCTAssertEqual(error as? ModelError, .inputType(input: "x", expected: .float32, found: "int64"))
            XCTAssertTrue("\(error)".contains("x.astype(np.float32)"), "\(error)")
        }
        session.memoryLimit = 1000
        XCTAssertThrowsError(try session.run(["x": HostTensor(shape: [1, 3, 64, 64], floats: Array(repeating: 0, count: 3 * 64 * 64))])) { error in
            XCTAssertTrue("\(error)".contains("more than the 1000 B it may take"), "\(error)")
        }
    }
}

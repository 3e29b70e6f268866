import Format
import TestSupport
import XCTest
@testable import Runtime

final class RestorerTests: XCTestCase {
    private let image = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")])

    /// y = conv(x) with a k×k kernel of random weights (3 → 3 channels, same padding).
    private func convModel(kernel k: Int, metadata: [String: String] = [:]) -> Graph {
        let weights = KernelHarness.random([3, 3, k, k], seed: 11).floats.map { $0 / Float(k * k) }
        return Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
            nodes: [Node(name: "conv", op: .conv, inputs: ["x", "w"], outputs: ["y"],
                         attributes: ["pads": .ints(Array(repeating: k / 2, count: 4))])],
            constants: [ConstantTensor(name: "w", shape: [3, 3, k, k], floats: weights)],
            metadata: metadata)
    }

    private func restorer(_ graph: Graph) throws -> Restorer {
        try Restorer(session: Session(model: try Model(graph: graph), threads: 2))
    }

    private func pixels(_ h: Int, _ w: Int) -> HostTensor {
        HostTensor(shape: [1, 3, h, w], floats: KernelHarness.random([1, 3, h, w], seed: 5).floats.map { ($0 + 1) / 2 })
    }

    func testTileOriginsCoverTheImageWithTheLastTileFlush() {
        XCTAssertEqual(Restorer.tileStarts(size: 100, tile: 40, overlap: 8), [0, 32, 60])
        XCTAssertEqual(Restorer.tileStarts(size: 40, tile: 40, overlap: 8), [0])
        XCTAssertEqual(Restorer.tileStarts(size: 10, tile: 40, overlap: 8), [0])
    }

    func testReflectIndexMirrorsWithoutRepeatingTheEdge() {
        XCTAssertEqual((0..<9).map { Restorer.reflect($0, size: 4) }, [0, 1, 2, 3, 2, 1, 0, 1, 2])
        XCTAssertEqual(Restorer.reflect(5, size: 1), 0)
    }

    func testTilesOfAPointwiseModelMatchTheWholeImage() throws {
        let restorer = try self.restorer(convModel(kernel: 1))
        let input = pixels(37, 53)
        let whole = try restorer.restore(input)
        let tiled = try restorer.restore(input, tile: 16, overlap: 4)
        let (maxAbs, _) = maxAbsAndRelativeError(tiled.floats, whole.floats)
        print("pointwise tiles vs whole: max abs \(maxAbs)")
        XCTAssertLessThan(maxAbs, 1e-5)
    }

    func testFeatheredTilesOfA3x3ModelShowNoSeam() throws {
        let restorer = try self.restorer(convModel(kernel: 3))
        let input = pixels(40, 40)
        let whole = try restorer.restore(input)
        let tiled = try restorer.restore(input, tile: 24, overlap: 8)
        let (maxAbs, _) = maxAbsAndRelativeError(tiled.floats, whole.floats)
        print("3×3 tiles vs whole: max abs \(maxAbs)")
        // Only pixels within one pixel of a tile edge see reflected instead of true
        // neighbours, and feathering gives them a weight of at most 1/9 there.
        XCTAssertLessThan(maxAbs, 0.05)
    }

    func testContractMapsRangeNormalisationAndResidual() throws {
        // An identity conv with range -1,1, mean/std and residual: out = in + in, in model space.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
            nodes: [Node(name: "copy", op: .unary, inputs: ["x"], outputs: ["y"], attributes: ["function": .string("identity")])],
            metadata: ["restore.range": "-1,1", "restore.mean": "0.1,0.2,0.3", "restore.std": "0.5,0.5,2",
                       "restore.residual": "true", "restore.multiple": "8"])
        let restorer = try self.restorer(graph)
        let input = pixels(5, 7)
        let output = try restorer.restore(input)
        XCTAssertEqual(output.shape, [1, 3, 5, 7])
        let (low, high): (Float, Float) = (-1, 1)
        let mean: [Float] = [0.1, 0.2, 0.3], std: [Float] = [0.5, 0.5, 2]
        for c in 0..<3 {
            for i in 0..<35 {
                let p = input.floats[c * 35 + i]
                let normalised = (p * (high - low) + low - mean[c]) / std[c]
                let expected = (2 * normalised * std[c] + mean[c] - low) / (high - low)
                XCTAssertEqual(output.floats[c * 35 + i], expected, accuracy: 1e-5)
            }
        }
    }

    func testBadMetadataIsRefusedNamingTheKey() {
        let graph = convModel(kernel: 1, metadata: ["restore.range": "0,2"])
        XCTAssertThrowsError(try restorer(graph)) { error in
            XCTAssertTrue("\(error)".contains("restore.range"), "\(error)")
        }
    }

    func testFixedSizeModelRunsInTilesOfItsSize() throws {
        var graph = convModel(kernel: 1)
        graph.inputs[0].shape = [.fixed(1), .fixed(3), .fixed(16), .fixed(16)]
        graph.outputs[0].shape = graph.inputs[0].shape
        let restorer = try self.restorer(graph)
        var calls = 0
        let output = try restorer.restore(pixels(20, 9), overlap: 4) { _, _ in calls += 1 }
        XCTAssertEqual(output.shape, [1, 3, 20, 9])
        XCTAssertEqual(calls, 2)
        XCTAssertThrowsError(try restorer.restore(pixels(20, 9), tile: 8))
    }
}

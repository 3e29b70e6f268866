import Foundation
import TestSupport
import XCTest
@testable import Format

/// Int8 weights with their scales: quantized, written as version 1.1, read back and
/// dequantized; and refused by the writer when their scales do not fit.
final class WeightLayoutTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try FileManager.default.removeItem(atPath: directory) }

    private func randomValues(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -2...2, using: &generator) }
    }

    /// Every dequantized value is within half a step (scale / 2) of the original, per channel.
    func testPerChannelInt8RoundTripsThroughAFileAndDequantizesWithinHalfAStep() throws {
        let shape = [5, 3, 3, 3]
        var values = randomValues(shape.reduce(1, *), seed: 7)
        for index in 27..<54 { values[index] *= 0.01 }  // a channel of small weights keeps its precision
        let (weights, scales) = Int8Scales.quantize(name: "conv.weight", shape: shape, values: values, axis: 0,
                                                    scalesName: "conv.weight.scales")
        let graph = Graph(constants: [weights, scales, ConstantTensor(name: "bias", shape: [5], floats: [1, 2, 3, 4, 5])])
        let path = directory + "/int8.rgraph"
        try RGraphWriter.write(graph, to: path)
        let file = try RGraphReader.read(contentsOf: path)
        XCTAssertEqual(file.version, RGraphVersion.current)
        assertSameGraph(file.graph, graph)
        let read = try XCTUnwrap(file.graph.constants["conv.weight"])
        XCTAssertEqual(read.layout, .int8Symmetric(Int8Scales(tensor: "conv.weight.scales", axis: 0)))
        XCTAssertTrue(file.describe().hasSuffix("quantized (int8 with scales): 1 tensor"), file.describe())
        let dequantized = try file.graph.floatValues(of: read)
        let steps = scales.float32Elements
        for (index, (value, original)) in zip(dequantized, values).enumerated() {
            XCTAssertLessThanOrEqual(abs(value - original), steps[index / 27] / 2 * 1.0001, "element \(index)")
        }
        let worst = zip(dequantized, values).map { abs($0 - $1) }.max() ?? 0
        print("int8 per-channel: max abs error \(worst), scales \(Array(steps))")
        XCTAssertLessThan(steps[1], steps[0] / 10)
    }

    func testPerTensorInt8DequantizesWithOneScale() throws {
        let (weights, scales) = Int8Scales.quantize(name: "w", shape: [2, 2], values: [127, -63.5, 0, 1], axis: nil,
                                                    scalesName: "w.scale")
        XCTAssertEqual(scales.shape, [])
        XCTAssertEqual(Array(weights.bytes.bindMemory(to: Int8.self)), [127, -64, 0, 1])
        let graph = Graph(constants: [weights, scales])
        XCTAssertEqual(try graph.floatValues(of: weights), [127, -64, 0, 1])
    }


    func testWriterRefusesInt8WeightsWhoseScalesDoNotFit() throws {
        let (weights, scales) = Int8Scales.quantize(name: "w", shape: [2, 3], values: randomValues(6, seed: 3), axis: 0,
                                                    scalesName: "w.scales")
        let wrongLength = ConstantTensor(name: "w.scales", shape: [3], floats: [1, 1, 1])
        let infinite = ConstantTensor(name: "w.scales", shape: [2], floats: [1, .infinity])
        for (label, graph) in [("missing", Graph(constants: [weights])),
                               ("wrong-length", Graph(constants: [weights, wrongLength])),
                               ("infinite", Graph(constants: [weights, infinite]))] {
            let path = directory + "/\(label).rgraph"
            XCTAssertThrowsError(try RGraphWriter.write(graph, to: path), label) { error in
                guard case .invalidQuantization(path, "w", _)? = error as? RGraphError else { return XCTFail("\(label): \(error)") }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), label)
        }
        XCTAssertNoThrow(try RGraphWriter.write(Graph(constants: [weights, scales]), to: directory + "/fits.rgraph"))
    }

    func testRemovingUnusedConstantsKeepsTheScalesOfUsedWeights() throws {
        let (weights, scales) = Int8Scales.quantize(name: "w", shape: [2, 3], values: randomValues(6, seed: 4), axis: 0,
                                                    scalesName: "w.scales")
        var graph = Graph(outputs: [ValueInfo(name: "w", dtype: .float32, shape: [.fixed(2), .fixed(3)])],
                          constants: [weights, scales, ConstantTensor(name: "unused", shape: [1], floats: [0])])
        graph.removeUnusedConstants()
        XCTAssertEqual(graph.constantOrder, ["w", "w.scales"])
    }
}

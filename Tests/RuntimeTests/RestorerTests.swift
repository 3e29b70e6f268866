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
            nodes: [try! Node(name: "conv", op: .conv, inputs: ["x", "w"], outputs: ["y"],
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
        XCTAssertEqual(TileAxis.starts(size: 100, tile: 40, overlap: 8), [0, 32, 60])
        XCTAssertEqual(TileAxis.starts(size: 40, tile: 40, overlap: 8), [0])
        XCTAssertEqual(TileAxis.starts(size: 10, tile: 40, overlap: 8), [0])
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

    func testContractMapsRangeNormalisationAndResidual() throws {
        // An identity conv with range -1,1, mean/std and residual: out = in + in, in model space.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
            nodes: [try! Node(name: "copy", op: .unary, inputs: ["x"], outputs: ["y"], attributes: ["function": .string("identity")])],
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

    func testFeatherWeightsSumToOneAtEveryPosition() {
        var axes = 0
        for scale in 1...3 {
            for tile in [1, 2, 3, 5, 8, 16, 33] {
                for overlap in 0..<tile {
                    for size in 1...70 {
                        let axis = TileAxis(size: size, tile: tile, overlap: overlap, scale: scale)
                        var sums = [Float](repeating: 0, count: size * scale)
                        for (start, weights) in zip(axis.starts, axis.weights) {
                            XCTAssertTrue(weights.allSatisfy { $0 >= 0 && $0 <= 1 })
                            for (p, weight) in weights.enumerated() { sums[start * scale + p] += weight }
                        }
                        let worst = sums.map { abs($0 - 1) }.max() ?? .infinity
                        XCTAssertLessThanOrEqual(worst, 1e-6, "size \(size), tile \(tile), overlap \(overlap), scale \(scale)")
                        axes += 1
                    }
                }
            }
        }
        print("feather weights sum to one on \(axes) tilings of an axis")
        // On a grid the weights are products of the two axes', so they sum to one too.
        let rows = TileAxis(size: 50, tile: 16, overlap: 6, scale: 2), columns = TileAxis(size: 37, tile: 16, overlap: 9, scale: 2)
        var grid = [Float](repeating: 0, count: 100 * 74)
        for (r, y) in rows.starts.enumerated() {
            for (c, x) in columns.starts.enumerated() {
                for (ty, wy) in rows.weights[r].enumerated() {
                    for (tx, wx) in columns.weights[c].enumerated() { grid[(2 * y + ty) * 74 + 2 * x + tx] += wy * wx }
                }
            }
        }
        XCTAssertLessThanOrEqual(grid.map { abs($0 - 1) }.max() ?? .infinity, 1e-6)
    }

    func testFeatheringDiscardsTheOuterQuarterOfEachOverlapAndRampsAcrossTheMiddle() {
        // Tiles of 20 with overlap 8 over 32: starts 0 and 12, sharing pixels 12..<20.
        let axis = TileAxis(size: 32, tile: 20, overlap: 8, scale: 1)
        XCTAssertEqual(axis.starts, [0, 12])
        let later: [Float] = [0, 0, 0.2, 0.4, 0.6, 0.8, 1, 1]
        XCTAssertLessThanOrEqual(maxAbsAndRelativeError(Array(axis.weights[1][0..<8]), later).maxAbs, 1e-6)
        XCTAssertLessThanOrEqual(maxAbsAndRelativeError(Array(axis.weights[0][12..<20]), later.reversed()).maxAbs, 1e-6)
        XCTAssertTrue(axis.weights[0][0..<12].allSatisfy { $0 == 1 })
        XCTAssertTrue(axis.weights[1][8...].allSatisfy { $0 == 1 })
    }

    /// A 9×9 receptive field (four 3×3 convolutions: radius 4) and an overlap of 16, whose
    /// discarded quarter is 4 pixels: every output pixel that counts saw what it sees in the
    /// whole image, so tiles match it up to rounding.
    func testTilesMatchTheWholeImageWhenTheReceptiveFieldFitsTheDiscardedQuarter() throws {
        var graph = convModel(kernel: 3)
        graph.nodes = (0..<4).map { i in
            try! Node(name: "conv\(i)", op: .conv, inputs: [i == 0 ? "x" : "h\(i)", "w"], outputs: [i == 3 ? "y" : "h\(i + 1)"],
                 attributes: ["pads": .ints([1, 1, 1, 1])])
        }
        let restorer = try self.restorer(graph)
        let input = pixels(45, 61)
        let whole = try restorer.restore(input)
        let exact = try restorer.restore(input, tile: 24, overlap: 16)
        let (maxAbs, _) = maxAbsAndRelativeError(exact.floats, whole.floats)
        let blended = try restorer.restore(input, tile: 24, overlap: 8)
        let (blendedMaxAbs, _) = maxAbsAndRelativeError(blended.floats, whole.floats)
        print("radius-4 model, tiles of 24 vs whole: max abs \(maxAbs) with overlap 16, \(blendedMaxAbs) with overlap 8")
        XCTAssertLessThan(maxAbs, 1e-6)
        XCTAssertGreaterThan(blendedMaxAbs, 1e-4, "with a 2-pixel discarded quarter, reflected padding shows")
    }

    /// Restoring a `PixelImage` (integers in, integers out, a band of float accumulators)
    /// gives exactly what the float tensor path gives once stored at the image's bit depth:
    /// gray, alpha, 8 and 16 bits, super-resolution, residual and padding to a multiple.
    func testPixelImagesRestoreLikeTheirFloatTensors() throws {
        let upscaler = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("H2"), .symbol("W2")])],
            nodes: [try! Node(name: "expand", op: .conv, inputs: ["x", "w"], outputs: ["deep"], attributes: ["pads": .ints([1, 1, 1, 1])]),
                    try! Node(name: "shuffle", op: .depthToSpace, inputs: ["deep"], outputs: ["y"], attributes: ["blockSize": .int(2)])],
            constants: [ConstantTensor(name: "w", shape: [12, 3, 3, 3], floats: KernelHarness.random([12, 3, 3, 3], seed: 3).floats.map { $0 / 9 })],
            metadata: ["restore.scale": "2"])
        let residual = convModel(kernel: 3, metadata: ["restore.residual": "true", "restore.multiple": "8", "restore.range": "-1,1"])
        for (name, graph) in [("×2 upscaler", upscaler), ("residual, multiple 8", residual)] {
            let restorer = try self.restorer(graph)
            for colorType in PixelImage.ColorType.allCases {
                for bitDepth in [8, 16] {
                    let (height, width) = (29, 38)
                    let count = height * width * colorType.channels
                    let samples = KernelHarness.random([count], seed: UInt64(bitDepth + colorType.channels)).floats.map { ($0 + 1) / 2 }
                    let picture = PixelImage(width: width, height: height, bitDepth: bitDepth, colorType: colorType, samples: samples)
                    var calls: [Int] = []
                    let restored = try restorer.restore(picture, tile: 16, overlap: 6) { done, total in calls.append(done); XCTAssertEqual(total, 12) }
                    let expected = try picture.withRGB(try restorer.restore(picture.rgbTensor(), tile: 16, overlap: 6))
                    XCTAssertEqual(restored, expected, "\(name), \(colorType), \(bitDepth)-bit")
                    XCTAssertEqual(calls, Array(1...12), "3 tile rows × 4 tile columns")
                }
            }
        }
    }
}

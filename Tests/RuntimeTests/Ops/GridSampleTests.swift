import Format
import XCTest
@testable import Runtime

/// gridSample: the fast kernel against the reference on odd shapes in every mode, and
/// the reference against values worked out by hand. Parity with onnxruntime is in the
/// ONNX golden cases.
final class GridSampleTests: XCTestCase {
    private func node(_ mode: GridSampleAttributes.Mode, _ padding: GridSampleAttributes.PaddingMode, alignCorners: Bool) -> Node {
        Node(name: "grid_\(mode)_\(padding)_\(alignCorners)",
             .gridSample(GridSampleAttributes(mode: mode, paddingMode: padding, alignCorners: alignCorners)),
             inputs: ["X", "grid"], outputs: ["Y"])
    }

    /// A grid reaching up to 1.7 past the border, so every padding mode is exercised
    /// (reflection more than once over the width-1 and height-1 inputs).
    private func grid(_ shape: [Int], seed: UInt64) -> HostTensor {
        KernelHarness.random(shape, seed: seed).mathMapped { $0 * 2.7 }
    }

    func testFastMatchesReferenceInEveryModeOnOddShapes() throws {
        let shapes: [(x: [Int], grid: [Int])] = [([1, 1, 1, 1], [1, 3, 5, 2]), ([2, 3, 7, 9], [2, 5, 4, 2]),
                                                  ([1, 5, 1, 17], [1, 1, 65, 2]), ([1, 2, 33, 1], [1, 300, 1, 2])]
        for mode in GridSampleAttributes.Mode.allCases {
            for padding in GridSampleAttributes.PaddingMode.allCases {
                for alignCorners in [false, true] {
                    for (index, shape) in shapes.enumerated() {
                        let seed = UInt64(index * 10)
                        try KernelHarness.assertFastMatchesReference(
                            node(mode, padding, alignCorners: alignCorners),
                            [KernelHarness.random(shape.x, seed: seed + 1), grid(shape.grid, seed: seed + 2)])
                    }
                }
            }
        }
    }

    /// On a 2×3 input: the corners' centres, the midpoint between pixels, and points past
    /// the border under each padding mode (ONNX's definition worked out by hand).
    func testReferenceSamplesWhereONNXSays() throws {
        let x = HostTensor(shape: [1, 1, 2, 3], floats: [0, 1, 2, 10, 11, 12])
        func sample(_ points: [(Float, Float)], _ mode: GridSampleAttributes.Mode, _ padding: GridSampleAttributes.PaddingMode,
                    alignCorners: Bool) throws -> [Float] {
            let grid = HostTensor(shape: [1, 1, points.count, 2], floats: points.flatMap { [$0.0, $0.1] })
            return try OpKind.makeOperator(node(mode, padding, alignCorners: alignCorners)).reference([x, grid])[0].floats
        }
        // alignCorners: −1 and 1 are the corner pixels' centres; (0, 0) is column 1, halfway
        // between the rows (1 and 11).
        XCTAssertEqual(try sample([(-1, -1), (1, 1), (0, 0)], .linear, .zeros, alignCorners: true), [0, 12, 6])
        // Without: −1 is the outer edge, half a pixel outside; zeros padding halves the corner.
        XCTAssertEqual(try sample([(-1, -1)], .linear, .zeros, alignCorners: false), [0])
        XCTAssertEqual(try sample([(1, 1)], .linear, .zeros, alignCorners: false), [12 / 4])
        XCTAssertEqual(try sample([(1, 1)], .linear, .border, alignCorners: false), [12])
        // With alignCorners the columns span [0, 2]: x = 3 is pixel 4, mirrored at 2 back to 0.
        XCTAssertEqual(try sample([(3, -1)], .linear, .reflection, alignCorners: true), [0])
        // Nearest rounds halves to even: x = 0 → column 1 exactly; y = 0 → row 0.5 → 0.
        XCTAssertEqual(try sample([(0, 0)], .nearest, .zeros, alignCorners: true), [1])
    }

    /// NaN, ±infinity and huge coordinates (a broken grid) read the padding instead of
    /// trapping when the coordinate becomes an index.
    func testBrokenGridValuesReadThePadding() throws {
        let x = KernelHarness.random([1, 2, 3, 4], seed: 40).mathMapped { $0 + 2 }
        let values: [Float] = [.nan, .infinity, -.infinity, 1e30, -1e30, 3e9, 0.25, .nan]
        let grid = HostTensor(shape: [1, 2, 2, 2], floats: values)
        for mode in GridSampleAttributes.Mode.allCases {
            for padding in GridSampleAttributes.PaddingMode.allCases {
                for alignCorners in [false, true] {
                    let sample = node(mode, padding, alignCorners: alignCorners)
                    try KernelHarness.assertFastMatchesReference(sample, [x, grid])
                    let y = try OpKind.makeOperator(sample).reference([x, grid])[0].floats
                    XCTAssertTrue(y.allSatisfy(\.isFinite), "\(sample.name): \(y)")
                    if padding == .zeros { XCTAssertEqual(y[0], 0, "\(sample.name): NaN reads zero padding") }
                }
            }
        }
    }

    /// Volumetric X [N,C,D,H,W] with grid points (x, y, z), linear and nearest.
    func testVolumetricFastMatchesReferenceOnOddShapes() throws {
        let shapes: [(x: [Int], grid: [Int])] = [([1, 1, 1, 1, 1], [1, 2, 3, 5, 3]), ([2, 3, 4, 5, 6], [2, 3, 2, 7, 3]),
                                                  ([1, 2, 5, 1, 3], [1, 1, 1, 300, 3])]
        for mode in [GridSampleAttributes.Mode.linear, .nearest] {
            for padding in GridSampleAttributes.PaddingMode.allCases {
                for alignCorners in [false, true] {
                    for (index, shape) in shapes.enumerated() {
                        let seed = UInt64(100 + index * 10)
                        try KernelHarness.assertFastMatchesReference(
                            node(mode, padding, alignCorners: alignCorners),
                            [KernelHarness.random(shape.x, seed: seed + 1), grid(shape.grid, seed: seed + 2)])
                    }
                }
            }
        }
    }

    /// Hand-worked values: trilinear sampling at the centre of a 2×2×2 volume is the mean
    /// of its corners; the nearest sample rounds each axis; cubic convolution reproduces a
    /// linear ramp exactly where all 4×4 taps lie inside (Keys' kernel sums to 1 and is
    /// symmetric), and a constant image everywhere with border padding.
    func testVolumetricAndCubicReferenceSampleWhereONNXSays() throws {
        let cube = HostTensor(shape: [1, 1, 2, 2, 2], floats: [0, 1, 2, 3, 4, 5, 6, 7])
        func sample(_ x: HostTensor, _ points: [[Float]], _ mode: GridSampleAttributes.Mode,
                    _ padding: GridSampleAttributes.PaddingMode, alignCorners: Bool) throws -> [Float] {
            let grid = HostTensor(shape: [1] + (x.shape.count == 5 ? [1, 1] : [1]) + [points.count, points[0].count],
                                  floats: points.flatMap { $0 })
            return try OpKind.makeOperator(node(mode, padding, alignCorners: alignCorners)).reference([x, grid])[0].floats
        }
        XCTAssertEqual(try sample(cube, [[0, 0, 0]], .linear, .zeros, alignCorners: true), [3.5])
        // x = 1 is column 1, y = −1 row 0, z = 1 depth 1: element 4 + 1.
        XCTAssertEqual(try sample(cube, [[1, -1, 1]], .nearest, .zeros, alignCorners: true), [5])
        // Without alignCorners z = −1 is depth −0.5, halfway to the zero padding: half the
        // mean of depth 0 (0, 1, 2, 3) read at the centre of its plane.
        XCTAssertEqual(try sample(cube, [[0, 0, -1]], .linear, .zeros, alignCorners: false), [0.75])

        let ramp = HostTensor(shape: [1, 1, 5, 8], floats: (0..<40).map { Float($0 % 8) })
        // alignCorners: x ∈ [−1, 1] spans columns 0…7; x = −1 + 2·3.3/7 is column 3.3, read
        // from columns 2…5 with Keys' weights at t = 0.3 (A = −0.75): −0.11025, 0.83125,
        // 0.32625, −0.04725 (sum 1), so 2·w₀ + 3·w₁ + 4·w₂ + 5·w₃ = 3.342.
        let column = try sample(ramp, [[-1 + 2 * 3.3 / 7, 0]], .cubic, .zeros, alignCorners: true)[0]
        XCTAssertEqual(column, 3.342, accuracy: 1e-5)
        let constant = HostTensor(shape: [1, 1, 3, 4], floats: Array(repeating: 2.5, count: 12))
        for point: [Float] in [[-1, -1], [0.9, 0.95], [1.6, -1.8]] {
            XCTAssertEqual(try sample(constant, [point], .cubic, .border, alignCorners: false)[0], 2.5, accuracy: 1e-5)
        }
        // Border padding clamps each sample, not the point (onnxruntime, PyTorch): column
        // −0.7 reads columns −2…1 as 0, 0, 0, 1 of the ramp, so only the last weight (the
        // kernel at distance 1.7) counts — ONNX's reference would clamp the point to 0.
        let beforeEdge = try sample(ramp, [[-1 + 2 * -0.7 / 7, 0]], .cubic, .border, alignCorners: true)[0]
        XCTAssertEqual(beforeEdge, -0.04725, accuracy: 1e-5)
    }

    func testRefusesMismatchedShapes() {
        let op = try? OpKind.makeOperator(node(.linear, .zeros, alignCorners: false))
        XCTAssertThrowsError(try op?.outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 4, 4]),
                                                   ValueFact(dtype: .float32, shape: [1, 2, 2, 3])]))
        XCTAssertThrowsError(try op?.outputs(for: [ValueFact(dtype: .float32, shape: [2, 3, 4, 4]),
                                                   ValueFact(dtype: .float32, shape: [1, 2, 2, 2])]))
        // A volume needs (x, y, z) points, and cubic sampling of a volume is not defined.
        XCTAssertThrowsError(try op?.outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 4, 4, 4]),
                                                   ValueFact(dtype: .float32, shape: [1, 2, 2, 2, 2])]))
        let cubic = try? OpKind.makeOperator(node(.cubic, .zeros, alignCorners: false))
        XCTAssertThrowsError(try cubic?.outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 4, 4, 4]),
                                                      ValueFact(dtype: .float32, shape: [1, 2, 2, 2, 3])]))
    }
}

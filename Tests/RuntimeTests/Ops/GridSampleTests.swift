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

    func testRefusesMismatchedShapes() {
        let op = try? OpKind.makeOperator(node(.linear, .zeros, alignCorners: false))
        XCTAssertThrowsError(try op?.outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 4, 4]),
                                                   ValueFact(dtype: .float32, shape: [1, 2, 2, 3])]))
        XCTAssertThrowsError(try op?.outputs(for: [ValueFact(dtype: .float32, shape: [2, 3, 4, 4]),
                                                   ValueFact(dtype: .float32, shape: [1, 2, 2, 2])]))
    }
}

import Format
import TestSupport
import XCTest
@testable import Runtime

/// deformableAttention: the fast kernel against the reference (which runs gridSample's
/// reference per level) on odd shapes in every sampling mode, the reference against a
/// value worked out by hand, and shape errors naming the node. Parity with onnxruntime is
/// in the Mask2Former and ViT-Adapter model cases, where the fusion pass makes this op.
final class DeformableAttentionTests: XCTestCase {
    private func node(heads: Int, levels: [Int], _ sampling: GridSampleAttributes = GridSampleAttributes()) -> Node {
        Node(name: "msda_\(heads)_\(levels.count / 2)_\(sampling.mode)_\(sampling.paddingMode)_\(sampling.alignCorners)",
             .deformableAttention(DeformableAttentionAttributes(heads: heads, levelShapes: levels, sampling: sampling)),
             inputs: ["value", "grid", "weights"], outputs: ["Y"])
    }

    /// value [B, S, heads·D], grid [B, Q, heads, L, P, 2] reaching 1.35 past the maps, weights [B, Q, heads, L·P].
    private func inputs(batch: Int, levels: [Int], heads: Int, width: Int, queries: Int, points: Int,
                        seed: UInt64) -> [HostTensor?] {
        let tokens = stride(from: 0, to: levels.count, by: 2).reduce(0) { $0 + levels[$1] * levels[$1 + 1] }
        let levelCount = levels.count / 2
        return [KernelHarness.random([batch, tokens, heads * width], seed: seed),
                KernelHarness.random([batch, queries, heads, levelCount, points, 2], seed: seed + 1).mathMapped { $0 * 2.7 },
                KernelHarness.random([batch, queries, heads, levelCount * points], seed: seed + 2)]
    }

    func testFastMatchesReferenceOnOddShapesInEveryMode() throws {
        let cases: [(batch: Int, levels: [Int], heads: Int, width: Int, queries: Int, points: Int)] = [
            (1, [1, 1], 1, 1, 1, 1),
            (2, [7, 5, 3, 4, 1, 1], 3, 5, 7, 3),
            (1, [9, 13, 5, 7], 2, 63, 65, 4),
            (1, [16, 24, 8, 12, 4, 6], 8, 32, 33, 4),
        ]
        // Cubic is gridSample's only: deformable attention's attributes refuse it.
        XCTAssertThrowsError(try DeformableAttentionAttributes(heads: 1, levelShapes: [2, 2],
                                                               sampling: GridSampleAttributes(mode: .cubic, paddingMode: .zeros,
                                                                                              alignCorners: false))
            .validate(node: "msda_cubic"))
        for mode in GridSampleAttributes.Mode.allCases where mode != .cubic {
            for padding in GridSampleAttributes.PaddingMode.allCases {
                for alignCorners in [false, true] {
                    for (index, c) in cases.enumerated() {
                        let sampling = GridSampleAttributes(mode: mode, paddingMode: padding, alignCorners: alignCorners)
                        try KernelHarness.assertFastMatchesReference(
                            node(heads: c.heads, levels: c.levels, sampling),
                            inputs(batch: c.batch, levels: c.levels, heads: c.heads, width: c.width, queries: c.queries,
                                   points: c.points, seed: UInt64(index * 10)))
                    }
                }
            }
        }
    }

    /// The taps are summed by `restore_weighted_row_sum` in blocks of 64, 32 and 16 channels
    /// and a scalar tail: every CPU path gives the same floats, within float rounding of the
    /// reference (which samples each level with gridSample's reference and sums in another
    /// order, hence 1e-5 relative rather than equality).
    func testEveryCPUPathGivesTheSameFloats() throws {
        let levels = [6, 5, 3, 2]
        for width in [1, 5, 16, 17, 32, 48, 63, 64, 79, 130] {
            let x = inputs(batch: 2, levels: levels, heads: 2, width: width, queries: 9, points: 3, seed: UInt64(width))
            let op = try XCTUnwrap(try OpKind.makeOperator(node(heads: 2, levels: levels)) as? DeformableAttention)
            let (geometry, samplers) = try op.samplers(x.map { $0.map { ValueFact(dtype: .float32, shape: $0.shape) } })
            let expected = try op.reference(x)[0]
            var results: Set<[UInt32]> = []
            for cpu in CPUFeatures.supportedLevels {
                let kernel = DeformableAttentionKernel(geometry: geometry, samplers: samplers, cpu: cpu)
                let y = KernelHarness.run(kernel, x, outputFacts: [ValueFact(dtype: .float32, shape: expected.shape)])[0]
                let (maxAbs, relative) = maxAbsAndRelativeError(y.floats, expected.floats)
                print("deformableAttention width \(width) (\(CPUFeatures.name(of: cpu))): max abs error \(maxAbs), relative \(relative)")
                XCTAssertLessThanOrEqual(relative, 1e-5, "width \(width), \(cpu)")
                results.insert(y.floats.map(\.bitPattern))
            }
            XCTAssertEqual(results.count, 1, "width \(width): the CPU paths differ")
        }
    }

    /// Bilinear sampling with zero padding lists its taps in C: the same floats as
    /// GridSampler's taps, on every CPU path and both corner alignments, with grid points
    /// far outside the maps, on their edges, NaN and ±infinity (zero padding: no taps).
    func testBilinearTapsListedInCGiveGridSamplersFloats() throws {
        let levels = [7, 5, 3, 4, 1, 1]
        for alignCorners in [false, true] {
            var x = inputs(batch: 2, levels: levels, heads: 3, width: 33, queries: 11, points: 4, seed: 70)
            var grid = x[1]!.floats
            for (index, special) in [Float.nan, .infinity, -.infinity, 1, -1, 40, -40].enumerated() {
                grid[index * 13 % grid.count] = special
            }
            x[1] = HostTensor(shape: x[1]!.shape, floats: grid)
            let sampling = GridSampleAttributes(mode: .linear, paddingMode: .zeros, alignCorners: alignCorners)
            let op = try XCTUnwrap(try OpKind.makeOperator(node(heads: 3, levels: levels, sampling)) as? DeformableAttention)
            let (geometry, samplers) = try op.samplers(x.map { $0.map { ValueFact(dtype: .float32, shape: $0.shape) } })
            let expected = try op.reference(x)[0]
            for cpu in CPUFeatures.supportedLevels {
                var kernel = DeformableAttentionKernel(geometry: geometry, samplers: samplers, cpu: cpu)
                let facts = [ValueFact(dtype: .float32, shape: expected.shape)]
                let inC = KernelHarness.run(kernel, x, outputFacts: facts)[0]
                kernel.listsBilinearTapsInC = false
                let inSwift = KernelHarness.run(kernel, x, outputFacts: facts)[0]
                XCTAssertEqual(inC.floats.map(\.bitPattern), inSwift.floats.map(\.bitPattern),
                               "align corners \(alignCorners), \(CPUFeatures.name(of: cpu))")
                let (maxAbs, relative) = maxAbsAndRelativeError(inC.floats, expected.floats)
                print("deformableAttention taps in C (\(CPUFeatures.name(of: cpu)), align corners \(alignCorners)): "
                      + "max abs error \(maxAbs), relative \(relative)")
                XCTAssertLessThanOrEqual(relative, 1e-5)
            }
        }
    }

    /// Two levels (2×2 and 1×1), one head of two channels, one query with one point per
    /// level. Level 0's point is the map's centre, the mean of its four pixels; level 1's
    /// is its one pixel's centre. Weighted 0.25 and 0.75.
    func testReferenceWeighsEachLevelsSample() throws {
        // Tokens: level 0 (row-major 2×2) then level 1; channels (c0, c1) per token.
        let value = HostTensor(shape: [1, 5, 2], floats: [1, 10, 2, 20, 3, 30, 4, 40, 100, 1000])
        let grid = HostTensor(shape: [1, 1, 1, 2, 1, 2], floats: [0, 0, 0, 0])
        let weights = HostTensor(shape: [1, 1, 1, 2, 1], floats: [0.25, 0.75])
        let y = try OpKind.makeOperator(node(heads: 1, levels: [2, 2, 1, 1])).reference([value, grid, weights])[0]
        XCTAssertEqual(y.shape, [1, 1, 2])
        let expected: [Float] = [0.25 * 2.5 + 0.75 * 100, 0.25 * 25 + 0.75 * 1000]
        XCTAssertEqual(y.floats, expected)
    }

    func testMismatchedShapesAreRefusedNamingTheNode() throws {
        let op = try OpKind.makeOperator(node(heads: 2, levels: [2, 3]))
        let grid = ValueFact(dtype: .float32, shape: [1, 4, 2, 1, 2, 2])
        let weights = ValueFact(dtype: .float32, shape: [1, 4, 2, 1, 2])
        // S must be the levels' 6 tokens; channels a multiple of the heads; B and Q agree.
        for value in [[1, 5, 8], [1, 6, 7]] {
            LayoutTesting.assertError(naming: "msda_2_1_linear_zeros_false") {
                _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: value), grid, weights])
            }
        }
        LayoutTesting.assertError(naming: "msda_2_1_linear_zeros_false") {
            _ = try op.outputs(for: [ValueFact(dtype: .float32, shape: [1, 6, 8]), grid,
                                     ValueFact(dtype: .float32, shape: [1, 3, 2, 1, 2])])
        }
        XCTAssertEqual(try op.outputs(for: [ValueFact(dtype: .float32, shape: [1, 6, 8]), grid, weights]).map(\.shape), [[1, 4, 8]])
    }

    /// The levels' sizes as input 3 (plan-time i64 [L, 2]), as a graph built for any input
    /// size computes them: the same output as the attribute, from the fast kernel and the
    /// reference; neither or both given, or a malformed input 3, is refused naming the node.
    func testLevelSizesFromInputThreeMatchTheAttribute() throws {
        let levels = [7, 5, 3, 4, 1, 1]
        let fixed = node(heads: 3, levels: levels)
        let computed = Node(name: "msda_sizes", .deformableAttention(DeformableAttentionAttributes(heads: 3, levelShapes: [],
                                                                                                    sampling: GridSampleAttributes())),
                            inputs: ["value", "grid", "weights", "sizes"], outputs: ["Y"])
        let sizes = HostTensor(shape: [3, 2], ints: levels.map { Int64($0) })
        let given = inputs(batch: 2, levels: levels, heads: 3, width: 5, queries: 7, points: 3, seed: 40)
        let expected = try OpKind.makeOperator(fixed).reference(given)[0]
        let reference = try OpKind.makeOperator(computed).reference(given + [sizes])[0]
        XCTAssertEqual(reference.floats, expected.floats)
        try KernelHarness.assertFastMatchesReference(computed, given + [sizes], planTime: [3])
        let facts = given.map { ValueFact(dtype: .float32, shape: $0!.shape) }
        XCTAssertEqual(try OpKind.makeOperator(computed).outputs(for: facts + [ValueFact(sizes)]).map(\.shape), [[2, 7, 15]])
        LayoutTesting.assertError(naming: "msda_sizes") { _ = try OpKind.makeOperator(computed).outputs(for: facts) }
        LayoutTesting.assertError(naming: fixed.name) { _ = try OpKind.makeOperator(fixed).outputs(for: facts + [ValueFact(sizes)]) }
        LayoutTesting.assertError(naming: "msda_sizes") {
            _ = try OpKind.makeOperator(computed).outputs(for: facts + [ValueFact(HostTensor(shape: [6], ints: levels.map { Int64($0) }))])
        }
        // A size computed at run time, not while planning, cannot lay out the levels.
        LayoutTesting.assertError(naming: "msda_sizes") {
            _ = try OpKind.makeOperator(computed).outputs(for: facts + [ValueFact(dtype: .int64, shape: [3, 2])])
        }
    }
}

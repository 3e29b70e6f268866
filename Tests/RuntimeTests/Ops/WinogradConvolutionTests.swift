import Format
import TestSupport
import XCTest
@testable import Runtime

/// The Winograd F(4×4, 3×3) kernel against the reference convolution loops.
///
/// Tolerance 1e-4 of the output's largest magnitude: F(4×4, 3×3) rounds ~20× worse than
/// direct summation in float32 (transforms scale by up to 8 and 1/24); measured ~5e-6 at
/// 64 channels and ~1e-5 at 256, so 1e-4 leaves room without hiding a wrong tap, which
/// shows up at ~1e-1.
final class WinogradConvolutionTests: XCTestCase {
    private static let tolerance: Float = 1e-4

    /// Runs the Winograd kernel itself (also below the dispatch threshold) on random
    /// X [N,C,H,W] and W [M,C,3,3] and compares it with the reference, once per variant of
    /// its transforms this CPU runs (generic and AVX2 here; AVX-512 CPUs run both too).
    private func check(x: [Int], outChannels: Int, pads: [Int] = [1, 1, 1, 1], activation: [String: Attribute] = [:],
                       bias: Bool = true, residual: Bool = false, residualBeforeActivation: Bool = false,
                       tilesPerBlock: Int? = nil, constantWeights: Bool = false,
                       expectedSchedule: WinogradConvolutionKernel.Schedule? = nil, seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        var attributes = activation
        attributes["pads"] = .ints(pads)
        attributes["residualBeforeActivation"] = .int(residualBeforeActivation ? 1 : 0)
        let node = try! Node(name: "winograd", op: .conv, inputs: ["X", "W", bias ? "B" : "", residual ? "R" : ""],
                        outputs: ["Y"], attributes: attributes)
        let op = try XCTUnwrap(OpKind.makeOperator(node) as? Convolution)
        let weightShape = [outChannels, x[1], 3, 3]
        var inputs: [HostTensor?] = [KernelHarness.random(x, seed: seed), KernelHarness.random(weightShape, seed: seed + 1),
                                     bias ? KernelHarness.random([outChannels], seed: seed + 2) : nil]
        let geometry = try op.geometry(input: x, weight: weightShape)
        let outputShape = [x[0], outChannels, geometry.outputHeight, geometry.outputWidth]
        if residual { inputs.append(KernelHarness.random(outputShape, seed: seed + 3)) }
        let layout = ConvolutionKernel.Layout(batch: x[0], inChannels: x[1], outChannels: outChannels, group: 1,
                                              geometry: geometry, hasBias: bias, hasResidual: residual)
        // A constant W is transformed once, as the planner has the model do.
        let expected = try op.reference(inputs)[0]
        for cpu in CPUFeatures.supportedLevels {
            let store = PreparedWeightStore()
            let kernel = inputs[1]!.floats.withUnsafeBufferPointer { weights in
                let constants = constantWeights
                    ? ConstantInputs(weights: [nil, ConstantWeight(name: "W", shape: weightShape, floats: weights.baseAddress!)], store: store) : .none
                return WinogradConvolutionKernel(layout: layout, epilogue: op.epilogue, constants: constants,
                                                 tilesPerBlock: tilesPerBlock, cpu: cpu)
            }
            XCTAssertEqual(kernel.transformedWeights != nil, constantWeights, file: file, line: line)
            if let expectedSchedule { XCTAssertEqual(kernel.schedule, expectedSchedule, file: file, line: line) }
            let actual = withExtendedLifetime(store) {
                KernelHarness.run(kernel, inputs, outputFacts: [ValueFact(dtype: .float32, shape: outputShape)])[0]
            }
            XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
            let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
            print("winograd (\(CPUFeatures.name(of: cpu))) X \(x) → \(outChannels), pads \(pads), \(kernel.tilesPerBlock) tiles/block, \(kernel.schedule)\(constantWeights ? ", U made once" : ""): max abs error \(maxAbs), relative \(relative)")
            XCTAssertLessThanOrEqual(relative, Self.tolerance, "Winograd (\(cpu)) differs from reference", file: file, line: line)
        }
    }

    func testOddShapesAndChannels() throws {
        try check(x: [1, 1, 1, 1], outChannels: 1, seed: 1)
        try check(x: [1, 3, 5, 5], outChannels: 16, seed: 2)
        try check(x: [1, 16, 7, 5], outChannels: 3, seed: 3)
        try check(x: [1, 17, 63, 65], outChannels: 16, seed: 4)
        try check(x: [1, 64, 65, 63], outChannels: 17, seed: 5)
        try check(x: [2, 16, 13, 30], outChannels: 17, seed: 6)
    }

    func testRealisticChannelCount() throws {
        try check(x: [1, 64, 31, 33], outChannels: 64, seed: 7)
    }

    func testPadding() throws {
        try check(x: [1, 16, 7, 9], outChannels: 16, pads: [0, 0, 0, 0], seed: 8)
        try check(x: [1, 3, 3, 3], outChannels: 5, pads: [0, 0, 0, 0], seed: 9)
        try check(x: [2, 17, 11, 6], outChannels: 16, pads: [0, 2, 1, 0], seed: 10)
        try check(x: [1, 16, 5, 7], outChannels: 3, pads: [2, 1, 0, 2], seed: 11)
        try check(x: [1, 3, 6, 10], outChannels: 4, pads: [2, 2, 2, 2], bias: false, seed: 12)
    }

    /// Small blocks start mid tile row and span several tile rows; 3 and 11 tiles leave
    /// partial SIMD groups.
    func testBlocksAcrossTileRows() throws {
        try check(x: [2, 16, 19, 23], outChannels: 16, tilesPerBlock: 8, seed: 13)
        try check(x: [1, 3, 9, 5], outChannels: 4, pads: [0, 1, 1, 1], tilesPerBlock: 3, seed: 14)
        try check(x: [1, 9, 37, 45], outChannels: 5, tilesPerBlock: 11, seed: 15)
    }

    /// W given as a model constant: U is made once at plan time instead of on every run.
    func testWeightsTransformedOnceMatchReference() throws {
        try check(x: [1, 17, 63, 65], outChannels: 16, constantWeights: true, seed: 30)
        try check(x: [2, 16, 19, 23], outChannels: 16, tilesPerBlock: 8, constantWeights: true, seed: 31)
    }

    /// Past the model's budget for prepared weights, U is made per run again into scratch,
    /// with the same result; what is prepared stays within the budget.
    func testWeightsOverTheBudgetAreTransformedPerRun() throws {
        let store = PreparedWeightStore(budgetBytes: 36 * 16 * 17 * 4 + 100)
        let node = try! Node(name: "winograd", op: .conv, inputs: ["X", "W"], outputs: ["Y"], attributes: ["pads": .ints([1, 1, 1, 1])])
        let op = try OpKind.makeOperator(node)
        let x = KernelHarness.random([1, 17, 30, 30], seed: 36)
        let fits = KernelHarness.random([16, 17, 3, 3], seed: 37), tooLarge = KernelHarness.random([17, 17, 3, 3], seed: 38)
        for (weights, prepared) in [(fits, true), (tooLarge, false)] {
            let facts: [ValueFact?] = [ValueFact(dtype: .float32, shape: x.shape), ValueFact(dtype: .float32, shape: weights.shape)]
            let outputFacts = try op.outputs(for: facts)
            let kernel = try weights.floats.withUnsafeBufferPointer { pointer in
                try op.kernel(inputs: facts, outputs: outputFacts,
                              constants: ConstantInputs(weights: [nil, ConstantWeight(name: "W\(weights.shape[0])", shape: weights.shape,
                                                                                 floats: pointer.baseAddress!)],
                                                       store: store))
            }
            let winograd = try XCTUnwrap(kernel as? WinogradConvolutionKernel)
            XCTAssertEqual(winograd.transformedWeights != nil, prepared)
            let actual = KernelHarness.run(kernel, [x, weights], outputFacts: outputFacts)[0]
            let (_, relative) = maxAbsAndRelativeError(actual.floats, try op.reference([x, weights])[0].floats)
            XCTAssertLessThanOrEqual(relative, Self.tolerance)
        }
        XCTAssertEqual(store.bytes, 36 * 16 * 17 * 4)
    }

    /// A U larger than 4 MB makes the workers share each block: transforms split by tile
    /// row and channel range, the 36 GEMMs by point. Blocks of 8 and 13 tiles start mid
    /// tile row and span several.
    func testSharedBlocksMatchReference() throws {
        try check(x: [1, 200, 21, 26], outChannels: 150, expectedSchedule: .sharedBlock, seed: 32)
        try check(x: [2, 200, 19, 23], outChannels: 151, tilesPerBlock: 8, expectedSchedule: .sharedBlock, seed: 33)
        try check(x: [1, 201, 30, 17], outChannels: 152, activation: ["activation": .string("relu")], residual: true,
                  tilesPerBlock: 13, constantWeights: true, expectedSchedule: .sharedBlock, seed: 34)
        try check(x: [1, 128, 19, 23], outChannels: 128, expectedSchedule: .blockPerWorker, seed: 35)
    }

    /// Segments of a block: runs within one tile row, in order, covering the block once.
    func testBlockSegmentsCoverTheBlockRowByRow() {
        for (firstTile, tiles, columns) in [(0, 10, 4), (3, 9, 4), (5, 1, 7), (6, 14, 7), (0, 0, 3), (2, 2, 3)] {
            let segments = BlockSegments(firstTile: firstTile, tiles: tiles, tileColumns: columns)
            var covered: [Int] = []
            for segment in segments {
                XCTAssertEqual(segment.offset, covered.count)
                XCTAssertLessThanOrEqual(segment.firstColumn + segment.length, columns)
                XCTAssertGreaterThan(segment.length, 0)
                covered += (0..<segment.length).map { segment.tileRow * columns + segment.firstColumn + $0 }
            }
            XCTAssertEqual(covered, Array(firstTile..<(firstTile + tiles)), "block \(firstTile)+\(tiles) of rows of \(columns)")
        }
    }

    /// Every epilogue with and without a residual (before and after the activation).
    func testActivationsAndResidual() throws {
        let activations: [[String: Attribute]] = [
            [:], ["activation": .string("relu")],
            ["activation": .string("leakyRelu"), "alpha": .float(0.2)],
            ["activation": .string("clip"), "min": .float(-2), "max": .float(2)],
            ["activation": .string("sigmoid")], ["activation": .string("silu")],
            ["activation": .string("gelu")], ["activation": .string("tanh")],
        ]
        for (index, activation) in activations.enumerated() {
            // Without a residual, identity and ReLU run inside the output transform.
            try check(x: [1, 16, 9, 11], outChannels: 16, activation: activation, seed: 40 + UInt64(index))
            for before in [false, true] {
                try check(x: [1, 16, 9, 11], outChannels: 16, activation: activation, residual: true,
                          residualBeforeActivation: before, seed: 20 + UInt64(index))
            }
        }
    }

    /// The conv op picks Winograd for 3×3 stride-1 convolutions with ≥ 8 input channels and
    /// ≥ 32 output tiles, im2col otherwise; through the op, Winograd matches the reference.
    func testDispatch() throws {
        func kernel(_ x: [Int], _ w: [Int], _ attributes: [String: Attribute]) throws -> any Kernel {
            let node = try! Node(name: "conv", op: .conv, inputs: ["X", "W"], outputs: ["Y"], attributes: attributes)
            let facts: [ValueFact?] = [ValueFact(dtype: .float32, shape: x), ValueFact(dtype: .float32, shape: w)]
            let op = try OpKind.makeOperator(node)
            return try op.kernel(inputs: facts, outputs: try op.outputs(for: facts))
        }
        let pads: [String: Attribute] = ["pads": .ints([1, 1, 1, 1])]
        XCTAssertTrue(try kernel([1, 64, 32, 32], [64, 64, 3, 3], pads) is WinogradConvolutionKernel)
        XCTAssertTrue(try kernel([1, 8, 26, 34], [16, 8, 3, 3], [:]) is WinogradConvolutionKernel)  // 6×8 tiles
        XCTAssertTrue(try kernel([1, 8, 8, 8], [16, 8, 3, 3], [:]) is ConvolutionKernel)  // 6×6 output: 4 tiles
        XCTAssertTrue(try kernel([1, 64, 32, 32], [3, 64, 3, 3], pads) is WinogradConvolutionKernel)
        XCTAssertTrue(try kernel([1, 3, 32, 32], [64, 3, 3, 3], pads) is ConvolutionKernel)
        XCTAssertTrue(try kernel([1, 64, 32, 32], [64, 64, 3, 3], ["strides": .ints([2, 2])]) is ConvolutionKernel)
        XCTAssertTrue(try kernel([1, 64, 32, 32], [64, 64, 3, 3], ["dilations": .ints([2, 2])]) is ConvolutionKernel)
        XCTAssertTrue(try kernel([1, 64, 32, 32], [64, 32, 3, 3], ["group": .int(2)]) is ConvolutionKernel)
        XCTAssertTrue(try kernel([1, 2048, 24, 24], [512, 2048, 3, 3], pads) is WinogradConvolutionKernel)
        XCTAssertTrue(try kernel([1, 2048, 16, 16], [512, 2048, 3, 3], pads) is ConvolutionKernel)  // 16 tiles
        XCTAssertTrue(try kernel([1, 4096, 24, 24], [512, 4096, 3, 3], pads) is ConvolutionKernel)

        let node = try! Node(name: "conv", op: .conv, inputs: ["X", "W", "B", "R"], outputs: ["Y"],
                        attributes: ["pads": .ints([1, 1, 1, 1]), "activation": .string("relu")])
        let inputs: [HostTensor?] = [KernelHarness.random([2, 32, 21, 26], seed: 40), KernelHarness.random([16, 32, 3, 3], seed: 41),
                                     KernelHarness.random([16], seed: 42), KernelHarness.random([2, 16, 21, 26], seed: 43)]
        try KernelHarness.assertFastMatchesReference(node, inputs, tolerance: Self.tolerance)
        try KernelHarness.assertFastMatchesReference(node, inputs, constants: [1], tolerance: Self.tolerance)
    }
}

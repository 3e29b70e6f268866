import Format
import XCTest
@testable import Runtime

/// The fast transposed convolution (GEMM + col2im) against the reference scatter loops,
/// (against onnxruntime: the golden cases of Tests/Fixtures/ops).
final class ConvTransposeTests: XCTestCase {
    /// Checks X [N,C,H,W], W [C,M/group,kH,kW] with bias.
    private func check(x: [Int], w: [Int], _ attributes: [String: Attribute] = [:], bias: Bool = true,
                       seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let group = attributes["group"].flatMap { if case .int(let v) = $0 { v } else { nil } } ?? 1
        let node = try! Node(name: "convTranspose", op: .convTranspose, inputs: ["X", "W", bias ? "B" : ""],
                        outputs: ["Y"], attributes: attributes)
        try KernelHarness.assertFastMatchesReference(
            node, [KernelHarness.random(x, seed: seed), KernelHarness.random(w, seed: seed + 1),
                   bias ? KernelHarness.random([w[1] * group], seed: seed + 2) : nil], file: file, line: line)
    }

    func testOddShapes() throws {
        try check(x: [1, 1, 1, 1], w: [1, 3, 1, 1], seed: 1)
        try check(x: [1, 3, 7, 9], w: [3, 4, 3, 3], ["pads": .ints([1, 1, 1, 1])], seed: 2)
        try check(x: [2, 4, 31, 33], w: [4, 5, 4, 4], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 3)
        try check(x: [1, 2, 63, 65], w: [2, 3, 2, 2], ["strides": .ints([2, 2])], bias: false, seed: 4)
    }

    func testSeveralPixelTilesSplittingRows() throws {
        // 64 output channels × 4×4 taps = 1024 column rows: a 1 MB tile holds 256 input
        // pixels, so 20×21 pixels take two tiles split inside a row.
        try check(x: [2, 4, 20, 21], w: [4, 64, 4, 4], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 10)
    }

    func testGroupsDilationsOutputPaddingAndAsymmetricPads() throws {
        try check(x: [2, 4, 9, 8], w: [4, 3, 3, 2], ["group": .int(2), "dilations": .ints([2, 2]), "pads": .ints([0, 1, 2, 0])], seed: 5)
        try check(x: [1, 3, 5, 6], w: [3, 2, 3, 3], ["strides": .ints([2, 3]), "pads": .ints([1, 0, 1, 2]),
                                                     "outputPadding": .ints([1, 2])], seed: 6)
        try check(x: [1, 6, 7, 5], w: [6, 1, 3, 3], ["group": .int(6), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 7)
    }

    func testAutoPadAndActivation() throws {
        for mode in ["same_upper", "same_lower", "valid"] {
            try check(x: [1, 2, 5, 4], w: [2, 3, 3, 3], ["strides": .ints([2, 2]), "autoPad": .string(mode),
                                                         "activation": .string("leakyRelu"), "alpha": .float(0.1)], seed: 8)
        }
        try check(x: [1, 2, 5, 4], w: [2, 3, 4, 4], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                                                     "activation": .string("relu")], seed: 9)
    }

    func testOutputSizeFollowsOnnx() throws {
        // stride·(in−1) + outputPadding + (k−1)·dilation + 1 − pads: 2·4 + 1 + 2·2 + 1 − 2 = 12.
        let node = try! Node(name: "convTranspose", op: .convTranspose, inputs: ["X", "W"], outputs: ["Y"],
                        attributes: ["strides": .ints([2, 2]), "dilations": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                                     "outputPadding": .ints([1, 0])])
        let facts: [ValueFact?] = [ValueFact(dtype: .float32, shape: [1, 2, 5, 5]), ValueFact(dtype: .float32, shape: [2, 3, 3, 3])]
        XCTAssertEqual(try OpKind.makeOperator(node).outputs(for: facts)[0].shape, [1, 3, 12, 11])
    }
}

import Format
import XCTest
@testable import Runtime

/// The fast convolution (pointwise, depthwise and tiled im2col paths) against the
/// reference loops (against onnxruntime: the golden cases of Tests/Fixtures/ops).
final class ConvTests: XCTestCase {
    private func conv(_ attributes: [String: Attribute], bias: Bool = true, residual: Bool = false) -> Node {
        try! Node(name: "conv", op: .conv, inputs: ["X", "W", bias ? "B" : "", residual ? "R" : ""],
             outputs: ["Y"], attributes: attributes)
    }

    /// Checks one case: X [N,C,H,W], W [M,C/group,kH,kW], with bias and optional residual.
    private func check(x: [Int], w: [Int], _ attributes: [String: Attribute] = [:],
                       bias: Bool = true, residual: Bool = false, seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let node = conv(attributes, bias: bias, residual: residual)
        let xTensor = KernelHarness.random(x, seed: seed)
        let wTensor = KernelHarness.random(w, seed: seed + 1)
        var inputs: [HostTensor?] = [xTensor, wTensor, bias ? KernelHarness.random([w[0]], seed: seed + 2) : nil]
        if residual {
            let shape = try OpKind.makeOperator(node).outputs(for: inputs.map { $0.map { ValueFact(dtype: .float32, shape: $0.shape) } })[0].shape
            inputs.append(KernelHarness.random(shape, seed: seed + 3))
        }
        try KernelHarness.assertFastMatchesReference(node, inputs, file: file, line: line)
    }

    func testGeneralOnOddShapes() throws {
        try check(x: [1, 3, 7, 7], w: [5, 3, 3, 3], ["pads": .ints([1, 1, 1, 1])], seed: 1)
        try check(x: [2, 4, 63, 65], w: [8, 4, 3, 3], ["pads": .ints([1, 1, 1, 1])], seed: 2)
        try check(x: [1, 1, 1, 1], w: [3, 1, 1, 1], bias: false, seed: 3)
        try check(x: [1, 2, 65, 17], w: [3, 2, 5, 3], ["pads": .ints([2, 1, 2, 1])], seed: 4)
    }

    func testSeveralPixelTilesSplittingRows() throws {
        // K = 64·9 rows of im2col: a 1 MB tile holds 448 pixels, so 33×35 output pixels take
        // three tiles whose edges fall inside output rows.
        let kernel = ConvolutionKernel(layout: .init(batch: 1, inChannels: 64, outChannels: 5, group: 1,
                                                     geometry: try XCTUnwrap(OpKind.makeOperator(conv(["pads": .ints([1, 1, 1, 1])])) as? Convolution)
                                                         .geometry(input: [1, 64, 33, 35], weight: [5, 64, 3, 3]),
                                                     hasBias: true, hasResidual: false),
                                       epilogue: ConvolutionEpilogue(activation: .identity, residualBeforeActivation: false))
        XCTAssertLessThan(kernel.tilePixels, 33 * 35 / 2)
        try check(x: [1, 64, 33, 35], w: [5, 64, 3, 3], ["pads": .ints([1, 1, 1, 1])], residual: true, seed: 40)
    }

    /// An image's pixel tiles come in a multiple of the workers, so that no worker waits for
    /// another's larger share; a single im2col tile stays whole (its workers split the
    /// output channels), a single pointwise tile is split by pixels when large enough.
    func testTilesComeInMultiplesOfTheWorkers() {
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(192, pixels: 256, workers: 2, pointwise: false), 128)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(224, pixels: 256, workers: 2, pointwise: false), 128)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(448, pixels: 33 * 35, workers: 2, pointwise: false), 304)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(448, pixels: 896, workers: 2, pointwise: false), 448)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(64, pixels: 64, workers: 2, pointwise: false), 64)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(4096, pixels: 4096, workers: 2, pointwise: true), 2048)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(256, pixels: 256, workers: 2, pointwise: true), 256)
        XCTAssertEqual(ConvolutionKernel.evenTilePixels(192, pixels: 256, workers: 1, pointwise: false), 192)
    }

    /// On the AVX2 and AVX-512 paths the im2col tile is written in the GEMM kernel's panels:
    /// bit for bit the plain rows packed by `GEMM.pack` (zeros past the last pixel), for
    /// tiles that start and end inside output rows, with padding, strides and dilations.
    func testIm2colPanelsAreThePackedRows() throws {
        guard GEMM.packs(), case .gemmPanels(let width, _) = GEMM.packedLayout else {
            throw XCTSkip("the generic path gives OpenBLAS plain rows, which it packs itself")
        }
        let cases: [(x: [Int], w: [Int], attributes: [String: Attribute])] = [
            ([1, 3, 13, 11], [4, 3, 3, 3], ["pads": .ints([1, 1, 1, 1])]),
            ([1, 2, 20, 23], [4, 2, 4, 2], ["strides": .ints([2, 3]), "pads": .ints([0, 2, 1, 0])]),
            ([1, 2, 17, 19], [3, 2, 3, 3], ["dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])]),
        ]
        for (x, w, attributes) in cases {
            let geometry = try XCTUnwrap(OpKind.makeOperator(conv(attributes)) as? Convolution).geometry(input: x, weight: w)
            let kernel = ConvolutionKernel(layout: .init(batch: 1, inChannels: x[1], outChannels: w[0], group: 1,
                                                         geometry: geometry, hasBias: true, hasResidual: false),
                                           epilogue: ConvolutionEpilogue(activation: .identity, residualBeforeActivation: false))
            XCTAssertEqual(kernel.panelWidth, width)
            let input = KernelHarness.random(x, seed: 50).floats
            let depth = kernel.layout.columnRows, all = geometry.outputPixels
            for (first, pixels) in [(0, all), (5, 37), (all - 21, 21)] {
                let count = GEMM.packedCount(k: depth, n: pixels)
                var rows = [Float](repeating: .nan, count: depth * pixels)
                var panels = [Float](repeating: .nan, count: count), packed = [Float](repeating: .nan, count: count)
                input.withUnsafeBufferPointer { x in
                    kernel.im2col(x.baseAddress!, firstPixel: first, pixels: pixels, panelWidth: pixels, into: &rows)
                    kernel.im2col(x.baseAddress!, firstPixel: first, pixels: pixels, panelWidth: width, into: &panels)
                }
                GEMM.pack(k: depth, n: pixels, b: rows, ldb: pixels, transposed: false, into: &packed)
                XCTAssertEqual(panels.map(\.bitPattern), packed.map(\.bitPattern), "X \(x), W \(w), pixels \(first)..<\(first + pixels)")
            }
        }
    }

    func testStridesDilationsAndAsymmetricPads() throws {
        try check(x: [1, 3, 63, 65], w: [4, 3, 3, 3], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], seed: 5)
        try check(x: [1, 3, 33, 31], w: [4, 3, 3, 3], ["dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])], seed: 6)
        try check(x: [1, 3, 20, 23], w: [4, 3, 4, 2], ["strides": .ints([2, 3]), "pads": .ints([0, 2, 1, 0])], seed: 7)
        try check(x: [1, 2, 9, 9], w: [2, 2, 1, 1], ["strides": .ints([2, 2])], seed: 8)
    }

    func testAutoPad() throws {
        for mode in ["same_upper", "same_lower", "valid"] {
            try check(x: [1, 3, 7, 9], w: [4, 3, 4, 4], ["autoPad": .string(mode), "strides": .ints([2, 2])], seed: 9)
            try check(x: [1, 3, 7, 8], w: [4, 3, 3, 3], ["autoPad": .string(mode)], seed: 10)
        }
    }

    func testGroupsAndDepthwise() throws {
        try check(x: [2, 4, 15, 17], w: [6, 2, 3, 3], ["group": .int(2), "pads": .ints([1, 1, 1, 1])], seed: 11)
        try check(x: [2, 8, 63, 65], w: [8, 1, 3, 3], ["group": .int(8), "pads": .ints([1, 1, 1, 1])], seed: 12)
        try check(x: [1, 4, 17, 19], w: [8, 1, 5, 5], ["group": .int(4), "strides": .ints([2, 2]),
                                                        "dilations": .ints([2, 1]), "pads": .ints([3, 1, 0, 2])], seed: 13)
    }

    func testPointwise() throws {
        try check(x: [2, 16, 63, 65], w: [7, 16, 1, 1], seed: 14)
        try check(x: [1, 16, 37, 41], w: [13, 16, 1, 1], seed: 16)  // one tile, split by pixels
        try check(x: [1, 8, 65, 65], w: [8, 4, 1, 1], ["group": .int(2)], residual: true, seed: 15)
    }

    func testActivationsAndResidual() throws {
        let activations: [[String: Attribute]] = [
            ["activation": .string("relu")],
            ["activation": .string("leakyRelu"), "alpha": .float(0.2)],
            ["activation": .string("clip"), "min": .float(-0.5), "max": .float(0.5)],
            ["activation": .string("sigmoid")], ["activation": .string("silu")],
            ["activation": .string("gelu")], ["activation": .string("geluTanh")], ["activation": .string("tanh")],
            ["activation": .string("elu"), "alpha": .float(0.5)], ["activation": .string("hardSigmoid")],
            ["activation": .string("softplus")],
        ]
        for (index, activation) in activations.enumerated() {
            for before in [0, 1] {
                var attributes = activation
                attributes["pads"] = .ints([1, 1, 1, 1])
                attributes["residualBeforeActivation"] = .int(before)
                try check(x: [1, 3, 7, 9], w: [4, 3, 3, 3], attributes, residual: true, seed: 20 + UInt64(index))
                attributes["group"] = .int(3)
                try check(x: [1, 3, 7, 9], w: [3, 1, 3, 3], attributes, residual: true, seed: 30 + UInt64(index))
            }
        }
    }

    func testRejectsChannelMismatch() {
        let node = conv([:])
        let facts: [ValueFact?] = [ValueFact(dtype: .float32, shape: [1, 3, 8, 8]),
                                   ValueFact(dtype: .float32, shape: [4, 2, 3, 3]), nil]
        XCTAssertThrowsError(try OpKind.makeOperator(node).outputs(for: facts))
    }
}

import Format
import TestSupport
import XCTest
@testable import Runtime

final class LayerNormTests: XCTestCase {
    private func node(axis: Int, scale: Bool, bias: Bool) -> Node {
        .mathTest(.layerNorm, "layerNorm_\(axis)", inputs: 3, absent: Set((scale ? [] : [1]) + (bias ? [] : [2])),
                  ["axis": .int(axis), "epsilon": .float(1e-5)])
    }

    func testFastMatchesReferenceWithAndWithoutScaleAndBias() throws {
        // (X shape, axis, scale/bias shape: the normalised shape or one that broadcasts to it)
        let cases: [([Int], Int, [Int])] = [
            ([7], -1, [7]), ([1, 65], -1, [65]), ([3, 63], 1, [63]), ([2, 3, 5, 7], -2, [5, 7]),
            ([2, 3, 5, 7], -2, [7]), ([2, 3, 5, 7], 1, [3, 1, 1]), ([2, 3, 1, 5, 7], 2, [1, 5, 7]),
            ([1, 3, 5, 7], 0, [1, 5, 1]),
        ]
        for (index, (shape, axis, parameterShape)) in cases.enumerated() {
            let seed = UInt64(index + 1)
            let x = KernelHarness.random(shape, seed: seed)
            let scale = KernelHarness.random(parameterShape, seed: seed + 10).mathMapped { $0 + 1.5 }
            let bias = KernelHarness.random(parameterShape, seed: seed + 20)
            for (hasScale, hasBias) in [(true, true), (true, false), (false, true), (false, false)] {
                try KernelHarness.assertFastMatchesReference(node(axis: axis, scale: hasScale, bias: hasBias),
                                                             [x, hasScale ? scale : nil, hasBias ? bias : nil])
            }
        }
    }

    /// Not centered (ONNX RMSNormalization): X / √(mean(X²) + ε) · scale, the fast kernel
    /// against the reference and the reference against the formula.
    func testRootMeanSquareNormalisationIsNotCentered() throws {
        let rms = Node.mathTest(.layerNorm, "rmsNorm", inputs: 2,
                                ["axis": .int(-2), "epsilon": .float(1e-3), "centered": .int(0)])
        let x = KernelHarness.random([2, 3, 5, 7], seed: 7).mathMapped { $0 + 0.5 }
        let scale = KernelHarness.random([5, 7], seed: 8)
        try KernelHarness.assertFastMatchesReference(rms, [x, scale])
        try KernelHarness.assertFastMatchesReference(rms, [KernelHarness.random([3, 4096, 65], seed: 9), KernelHarness.random([65], seed: 10)])
        let y = try OpKind.makeOperator(rms).reference([x, scale])[0].floats
        let values = x.floats, weights = scale.floats
        for row in 0..<6 {
            let elements = values[(row * 35)..<((row + 1) * 35)].map(Double.init)
            let root = (elements.map { $0 * $0 }.reduce(0, +) / 35 + 1e-3).squareRoot()
            for j in 0..<35 {
                XCTAssertEqual(Double(y[row * 35 + j]), elements[j] / root * Double(weights[j]), accuracy: 1e-5)
            }
        }
    }

    func testFastSplitsLargeTensorsAcrossThreads() throws {
        try KernelHarness.assertFastMatchesReference(node(axis: -1, scale: true, bias: true), [
            KernelHarness.random([2, 4096, 65], seed: 1), KernelHarness.random([65], seed: 2), KernelHarness.random([65], seed: 3)])
    }

    func testLargeMeanKeepsSmallDeviationsAccurate() throws {
        // A mean of 1000 with deviations of ±1: E[x²]−E[x]² in Float would lose most digits
        // (errors near 1e-1). Two passes leave only the rounding of the Float mean, at most
        // ulp(1000)/2 ≈ 3e-5 on x − mean, i.e. up to 1e-4 of the normalised values (std 0.58).
        let x = KernelHarness.random([4, 1001], seed: 5).mathMapped { $0 + 1000 }
        let y = try KernelHarness.runFast(node(axis: -1, scale: false, bias: false), [x, nil, nil])[0]
        let expected = try OpKind.makeOperator(node(axis: -1, scale: false, bias: false)).reference([x, nil, nil])[0]
        let (maxAbs, relative) = maxAbsAndRelativeError(y.floats, expected.floats)
        print("layerNorm around 1000: max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThan(relative, 1e-4)
    }

    /// Every CPU path the machine runs (the C rows of AVX2 and AVX-512, the Swift loops),
    /// centered or not, with and without scale and bias, rows with and without an 8-lane
    /// tail, and a mean of 1000 (the float deviation x − mean is kept on every path).
    func testEveryCPUPathMatchesTheReference() throws {
        let cases: [(shape: [Int], centered: Bool, offset: Float, tolerance: Float)] = [
            ([5, 7], true, 0, 1e-5), ([3, 192], true, 0, 1e-5), ([2, 65], false, 0.5, 1e-5), ([4, 1001], true, 1000, 1e-4),
        ]
        for (index, c) in cases.enumerated() {
            let size = c.shape[1], seed = UInt64(100 + 10 * index)
            let x = KernelHarness.random(c.shape, seed: seed).mathMapped { $0 + c.offset }
            let scale = KernelHarness.random([size], seed: seed + 1).mathMapped { $0 + 1.5 }
            let bias = KernelHarness.random([size], seed: seed + 2)
            for (hasScale, hasBias) in [(true, true), (true, false), (false, true), (false, false)] {
                let node = Node.mathTest(.layerNorm, "layerNorm_paths", inputs: 3,
                                         absent: Set((hasScale ? [] : [1]) + (hasBias ? [] : [2])),
                                         ["axis": .int(-1), "epsilon": .float(1e-5), "centered": .int(c.centered ? 1 : 0)])
                let op = try OpKind.makeOperator(node)
                let inputs = [x, hasScale ? scale : nil, hasBias ? bias : nil]
                let expected = try op.reference(inputs)[0]
                let facts = inputs.map { $0.map { ValueFact(dtype: .float32, shape: $0.shape) } }
                for cpu in CPUFeatures.supportedLevels {
                    var kernel = try XCTUnwrap(try op.kernel(inputs: facts, outputs: [ValueFact(dtype: .float32, shape: c.shape)])
                                               as? LayerNormalizationKernel)
                    kernel.cpu = cpu
                    let actual = KernelHarness.run(kernel, inputs, outputFacts: [ValueFact(dtype: .float32, shape: c.shape)])[0]
                    let (maxAbs, relative) = maxAbsAndRelativeError(actual.floats, expected.floats)
                    print("layerNorm (\(CPUFeatures.name(of: cpu))) \(c.shape) centered \(c.centered) scale \(hasScale) bias \(hasBias): max abs error \(maxAbs), relative \(relative)")
                    XCTAssertLessThanOrEqual(relative, c.tolerance, "layerNorm (\(cpu)) differs from reference")
                }
            }
        }
    }

    func testScaleThatDoesNotBroadcastThrowsNamingTheNode() throws {
        let op = try OpKind.makeOperator(node(axis: -1, scale: true, bias: false))
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [3, 8]), ValueFact(dtype: .float32, shape: [3, 8]), nil])) { error in
            XCTAssertTrue("\(error)".contains("layerNorm_-1"), "\(error)")
        }
    }
}

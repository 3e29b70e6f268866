import Format
import Foundation
import XCTest
@testable import Runtime

final class SoftmaxTests: XCTestCase {
    private func node(axis: Int) -> Node {
        .mathTest(.softmax, "softmax_\(axis)", inputs: 1, ["axis": .int(axis)])
    }

    func testFastMatchesReferenceOnOddShapesAndEveryAxis() throws {
        let shapes = [[1], [7], [65], [3, 63], [2, 7, 3, 5], [2, 1, 3, 5, 7]]
        for (index, shape) in shapes.enumerated() {
            for axis in -shape.count..<shape.count {
                try KernelHarness.assertFastMatchesReference(node(axis: axis),
                                                             [KernelHarness.random(shape, seed: UInt64(index + 1)).mathMapped { $0 * 8 }])
            }
        }
    }

    func testFastSplitsLargeTensorsAcrossThreads() throws {
        let x = KernelHarness.random([2, 8, 65, 63], seed: 4)
        try KernelHarness.assertFastMatchesReference(node(axis: -1), [x])
        try KernelHarness.assertFastMatchesReference(node(axis: 1), [x])
        // One image, softmax over channels: 600 columns make three strips, the last partial.
        try KernelHarness.assertFastMatchesReference(node(axis: 1), [KernelHarness.random([1, 9, 20, 30], seed: 5)])
    }

    func testLargeLogitsStayFiniteAndSumToOne() throws {
        // Without subtracting the max, exp(1000) overflows to infinity and gives NaN.
        let x = KernelHarness.random([4, 33], seed: 2).mathMapped { $0 * 100 + 1000 }
        for y in [try OpKind.makeOperator(node(axis: -1)).reference([x])[0], try KernelHarness.runFast(node(axis: -1), [x])[0]] {
            XCTAssertTrue(y.floats.allSatisfy(\.isFinite))
            for row in 0..<4 {
                XCTAssertEqual(y.floats[(row * 33)..<((row + 1) * 33)].reduce(0, +), 1, accuracy: 1e-5)
            }
        }
    }

    /// The row kernel (softmax over the last axis, attention's scores) on every path this
    /// CPU runs, against softmax in double precision, in place and not: lengths around the
    /// 8- and 16-lane widths, logits up to ±40. Tolerance 1e-6 absolute on values in [0, 1]:
    /// the vector exp (activation_vector.h) is within 1.6 ulp of exp.
    func testRowKernelMatchesDoublePrecisionOnEveryPath() {
        for cpu in CPUFeatures.supportedLevels {
            for length in [1, 3, 7, 8, 9, 15, 16, 17, 49, 64, 1024] {
                let x = KernelHarness.random([length], seed: UInt64(length)).floats.map { $0 * 40 }
                let maximum = x.map(Double.init).max()!
                let exps = x.map { Foundation.exp(Double($0) - maximum) }
                let expected = exps.map { $0 / exps.reduce(0, +) }
                var separate = [Float](repeating: .nan, count: length), inPlace = x
                x.withUnsafeBufferPointer { source in
                    separate.withUnsafeMutableBufferPointer {
                        SoftmaxKernel.softmaxRow(source.baseAddress!, $0.baseAddress!, length: length, cpu: cpu)
                    }
                }
                inPlace.withUnsafeMutableBufferPointer {
                    SoftmaxKernel.softmaxRow($0.baseAddress!, $0.baseAddress!, length: length, cpu: cpu)
                }
                let worst = zip(separate, expected).map { abs(Double($0) - $1) }.max()!
                print("softmax row (\(CPUFeatures.name(of: cpu))) of \(length): max abs error \(worst)")
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(cpu), length \(length)")
                XCTAssertEqual(separate, inPlace, "\(cpu), length \(length): in place differs")
            }
        }
    }

    /// The vector exp's relative error over [−87, 0] (where every logit minus its row's
    /// maximum lands), against double: rows of logit 0 and 1023 logits of [s, s + 1), for
    /// s = −87 … −1; y[i] / y[0] = exp(x[i]) · (1/sum) / (1/sum) up to two roundings, so its
    /// relative error is ≤ 2e-7 (exp ≤ 1.6 ulp, plus 1 ulp); −∞ (a masked score) gives
    /// exactly 0, and NaN stays NaN.
    func testVectorExpIsAccurateMaskedScoresAreZeroAndNaNStays() {
        for cpu in CPUFeatures.supportedLevels where cpu >= .avx2 {
            var worst = 0.0
            for start in stride(from: -87.0, to: 0, by: 1) {
                let x = [Float(0)] + (0..<1023).map { Float(start + Double($0) / 1023) }
                var y = [Float](repeating: .nan, count: x.count)
                x.withUnsafeBufferPointer { source in
                    y.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRow(source.baseAddress!, $0.baseAddress!, length: x.count, cpu: cpu) }
                }
                for i in 1..<x.count {
                    let expected = Foundation.exp(Double(x[i]))
                    worst = max(worst, abs(Double(y[i]) / Double(y[0]) - expected) / expected)
                }
            }
            print("softmax row (\(CPUFeatures.name(of: cpu))) over logits in [-87, 0]: max relative error \(worst)")
            XCTAssertLessThanOrEqual(worst, 2e-7, "\(cpu)")
            var masked: [Float] = [0.5, -.infinity, 2, -.infinity, -100, 1, 0, 3, -.infinity]
            masked.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRow($0.baseAddress!, $0.baseAddress!, length: $0.count, cpu: cpu) }
            XCTAssertEqual([masked[1], masked[3], masked[4], masked[8]], [0, 0, 0, 0], "\(cpu): exp(−∞) and exp(−103) are 0")
            XCTAssertEqual(masked.reduce(0, +), 1, accuracy: 1e-6)
            var poisoned: [Float] = [0.5, .nan, 2, 1, 0, 3, 1, 1, 1, 1]
            poisoned.withUnsafeMutableBufferPointer { SoftmaxKernel.softmaxRow($0.baseAddress!, $0.baseAddress!, length: $0.count, cpu: cpu) }
            XCTAssertTrue(poisoned[1].isNaN, "\(cpu): NaN stays NaN")
        }
    }
}

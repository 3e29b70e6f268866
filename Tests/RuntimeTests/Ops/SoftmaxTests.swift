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
    /// the vector expf is within 4 ulp of the scalar one.
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
}

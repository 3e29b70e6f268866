import Format
import XCTest
@testable import Runtime

/// The fast instance normalisation against the double-precision reference (against
/// onnxruntime: the golden cases of Tests/Fixtures/ops).
final class InstanceNormTests: XCTestCase {
    private func check(_ shape: [Int], epsilon: Float = 1e-5, offset: Float = 0, seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let node = try! Node(name: "instanceNorm", op: .instanceNorm, inputs: ["X", "S", "B"], outputs: ["Y"],
                        attributes: ["epsilon": .float(epsilon)])
        var x = KernelHarness.random(shape, seed: seed)
        x.elements = .float(x.floats.map { $0 + offset })
        try KernelHarness.assertFastMatchesReference(
            node, [x, KernelHarness.random([shape[1]], seed: seed + 1), KernelHarness.random([shape[1]], seed: seed + 2)],
            file: file, line: line)
    }

    func testOddShapes() throws {
        try check([1, 1, 1, 1], epsilon: 0.1, seed: 1)
        try check([2, 3, 7, 9], seed: 2)
        try check([1, 4, 63, 65], seed: 3)
        try check([2, 2, 65], seed: 4)
    }

    func testLargeMeanKeepsAccuracy() throws {
        // Mean 100 against a spread of ±1: a one-pass E[x²] − E[x]² in float would lose
        // every digit of the variance here.
        try check([1, 2, 129, 131], offset: 100, seed: 5)
    }
}

import Format
import XCTest
@testable import Runtime

/// The fast average pooling against the reference loops (against onnxruntime: the golden cases
/// of Tests/Fixtures/ops, checked by ConvertTests' GoldenCaseTests).
final class AveragePoolTests: XCTestCase {
    private func check(_ shape: [Int], _ attributes: [String: Attribute], seed: UInt64,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        for include in [0, 1] {
            var attributes = attributes
            attributes["countIncludePad"] = .int(include)
            let node = try! Node(name: "averagePool", op: .averagePool, inputs: ["X"], outputs: ["Y"], attributes: attributes)
            try KernelHarness.assertFastMatchesReference(node, [KernelHarness.random(shape, seed: seed)], file: file, line: line)
        }
    }

    func testOddShapesAndWindows() throws {
        try check([1, 1, 1, 1], ["kernelShape": .ints([1, 1])], seed: 1)
        // No interior column: every window touches the padding.
        try check([1, 2, 3, 2], ["kernelShape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])], seed: 9)
        try check([2, 3, 63, 65], ["kernelShape": .ints([2, 2]), "strides": .ints([2, 2])], seed: 2)
        try check([1, 4, 65, 63], ["kernelShape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 2, 0, 1])], seed: 3)
        try check([1, 2, 17, 15], ["kernelShape": .ints([3, 2]), "dilations": .ints([2, 2]), "pads": .ints([2, 0, 1, 1])], seed: 4)
    }

    func testCeilModeAndAutoPad() throws {
        try check([2, 2, 10, 7], ["kernelShape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]),
                                  "ceilMode": .int(1)], seed: 5)
        for mode in ["same_upper", "same_lower", "valid"] {
            try check([1, 2, 7, 8], ["kernelShape": .ints([3, 2]), "strides": .ints([2, 2]), "autoPad": .string(mode)], seed: 6)
        }
    }
}

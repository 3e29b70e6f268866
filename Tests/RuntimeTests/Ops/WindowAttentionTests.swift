import Format
import XCTest
@testable import Runtime

final class WindowAttentionTests: XCTestCase {
    private func node(_ name: String, windowSize: Int, shift: Int, heads: Int, scale: Float, bias: Bool) -> Node {
        try! Node(name: name, op: .windowAttention, inputs: ["qkv"] + (bias ? ["bias"] : []), outputs: ["y"],
             attributes: ["windowSize": .int(windowSize), "shift": .int(shift), "heads": .int(heads), "scale": .float(scale)])
    }

    func testFastMatchesReferenceOnOddShapes() throws {
        // 14 × 21 with window 7: 2 × 3 windows, so the shift wraps rows and columns
        // differently; batch 2 so windows of the second image index the bias after nW.
        var seed: UInt64 = 300
        for shift in [0, 3] {
            for heads in [1, 3] {
                let (batch, height, width, windowSize, depth) = (2, 14, 21, 7, 5)
                let channels = heads * depth
                let windows = batch * (height / windowSize) * (width / windowSize)
                let tokens = windowSize * windowSize
                let qkv = KernelHarness.random([batch, height, width, 3 * channels], seed: seed)
                let biasShapes = [[heads, tokens, tokens], [windows, heads, tokens, tokens], [windows, 1, tokens, tokens]]
                for biasShape in biasShapes {
                    let bias = KernelHarness.random(biasShape, seed: seed + 1).mathMapped { $0 * 3 }
                    try KernelHarness.assertFastMatchesReference(
                        node("window_s\(shift)_h\(heads)_bias\(biasShape.map(String.init).joined(separator: "x"))", windowSize: windowSize,
                             shift: shift, heads: heads, scale: 1.7, bias: true), [qkv, bias])
                }
                try KernelHarness.assertFastMatchesReference(
                    node("window_s\(shift)_h\(heads)_nobias", windowSize: windowSize, shift: shift, heads: heads, scale: 0.9, bias: false),
                    [qkv])
                seed += 2
            }
        }
    }

    func testFewWindowsOfManyHeadsSplitHeadsIntoGroups() throws {
        // Two windows of 5 heads: the kernel splits the heads into work items (uneven
        // groups), as for Swin's last stage; shift 2 wraps within the 7 × 14 grid.
        let tokens = 49
        let qkv = KernelHarness.random([1, 7, 14, 3 * 5 * 4], seed: 310)
        let bias = KernelHarness.random([2, 5, tokens, tokens], seed: 311).mathMapped { $0 * 3 }
        try KernelHarness.assertFastMatchesReference(
            node("few_windows", windowSize: 7, shift: 2, heads: 5, scale: 0.6, bias: true), [qkv, bias])
    }

    func testWindowOfOneTokenPassesValuesThrough() throws {
        // A 1 × 1 window attends only to itself: Y = v, whatever the shift.
        let qkv = KernelHarness.random([1, 3, 5, 6], seed: 320)
        for kernel in [false, true] {
            let op = node("single", windowSize: 1, shift: 2, heads: 2, scale: 1, bias: false)
            let y = kernel ? try KernelHarness.runFast(op, [qkv])[0] : try OpKind.makeOperator(op).reference([qkv])[0]
            let expected = stride(from: 0, to: qkv.count, by: 6).flatMap { qkv.floats[($0 + 4)..<($0 + 6)] }
            XCTAssertEqual(y.floats, expected)
        }
    }

    /// The roll's direction, independently of the reference: with a bias that lets every
    /// query see only its window's first token, each token's output is the value of the
    /// token the rolled grid puts at its window's top-left corner, the input's
    /// ((wy·ws + shift) mod H, (wx·ws + shift) mod W).
    func testShiftRollsTheGridUpAndLeft() throws {
        let (height, width, windowSize, shift) = (4, 6, 2, 1)
        let tokens = windowSize * windowSize
        let qkv = KernelHarness.random([1, height, width, 3], seed: 330)
        let bias = HostTensor(shape: [tokens, tokens], floats: (0..<(tokens * tokens)).map { $0 % tokens == 0 ? 0 : -1e9 })
        let op = node("roll", windowSize: windowSize, shift: shift, heads: 1, scale: 1, bias: true)
        for y in try [OpKind.makeOperator(op).reference([qkv, bias])[0], KernelHarness.runFast(op, [qkv, bias])[0]] {
            for row in 0..<height {
                for column in 0..<width {
                    // The token's place in the rolled grid, then its window's corner.
                    let rolledRow = (row - shift + height) % height, rolledColumn = (column - shift + width) % width
                    let cornerRow = (rolledRow / windowSize * windowSize + shift) % height
                    let cornerColumn = (rolledColumn / windowSize * windowSize + shift) % width
                    XCTAssertEqual(y.floats[row * width + column], qkv.floats[(cornerRow * width + cornerColumn) * 3 + 2],
                                   "token (\(row), \(column))")
                }
            }
        }
    }

    func testGridNotAMultipleOfTheWindowIsRejected() throws {
        let op = try OpKind.makeOperator(node("bad", windowSize: 7, shift: 3, heads: 1, scale: 1, bias: false))
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [1, 14, 20, 6])]))
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [1, 14, 14, 7])]))
    }
}

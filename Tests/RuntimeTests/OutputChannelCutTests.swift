import Format
import XCTest
@testable import Runtime

/// The planner's output channel cut (`OutputChannelCut`): a convolution or linear layer
/// whose only consumer is a Slice of its output channels computes only those, and the Slice
/// runs no kernel. Each case is checked against the same graph with the cut prevented (the
/// producer's output also a graph output): the kept channels must be the same floats on
/// the AVX2 and AVX-512 paths (run with `RESTORE_CPU=avx2` and `generic` for the others).
final class OutputChannelCutTests: XCTestCase {
    /// x → producer (W, B) → "full" → slice (axis, start..<end, step) → "kept"; with
    /// `exposeFull` the producer's output is a graph output too, which forbids the cut.
    private func graph(producer: Node, input: [Dim], weight: [Int], axis: Int, start: Int, end: Int,
                       step: Int = 1, exposeFull: Bool) -> Graph {
        let slice = try! Node(name: "slice", op: .slice, inputs: ["full", "starts", "ends", "axes", "steps"],
                              outputs: ["kept"])
        let outputs = [ValueInfo(name: "kept", dtype: .float32, shape: [])]
            + (exposeFull ? [ValueInfo(name: "full", dtype: .float32, shape: [])] : [])
        return Graph(
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: input)], outputs: outputs, nodes: [producer, slice],
            constants: [
                ConstantTensor(name: "W", shape: weight, floats: KernelHarness.random(weight, seed: 11).floats),
                ConstantTensor(name: "B", shape: [weight[0]], floats: KernelHarness.random([weight[0]], seed: 12).floats),
                ConstantTensor(name: "starts", shape: [1], ints: [Int64(start)]),
                ConstantTensor(name: "ends", shape: [1], ints: [Int64(end)]),
                ConstantTensor(name: "axes", shape: [1], ints: [Int64(axis)]),
                ConstantTensor(name: "steps", shape: [1], ints: [Int64(step)]),
            ])
    }

    private func convolution(activation: String = "relu") -> Node {
        try! Node(name: "conv", op: .conv, inputs: ["x", "W", "B"], outputs: ["full"],
                  attributes: ["pads": .ints([1, 1, 1, 1]), "activation": .string(activation)])
    }

    private let linear = try! Node(name: "linear", op: .linear, inputs: ["x", "W", "B"], outputs: ["full"])

    /// Runs both graphs; returns (kernels with the cut, kernels without).
    private func assertCutKeepsTheFloats(_ cut: Graph, _ whole: Graph, input: HostTensor,
                                         file: StaticString = #filePath, line: UInt = #line) throws -> (Int, Int) {
        let cutSession = Session(model: try Model(graph: cut), threads: 2)
        let wholeSession = Session(model: try Model(graph: whole), threads: 2)
        let kept = try cutSession.run([input])[0]
        let reference = try wholeSession.run([input])[0]
        XCTAssertEqual(kept.shape, reference.shape, file: file, line: line)
        let differing = zip(kept.floats, reference.floats).count(where: { $0.bitPattern != $1.bitPattern })
        let maxAbs = zip(kept.floats, reference.floats).map { abs($0 - $1) }.max() ?? 0
        let relative = maxAbs / max(reference.floats.map(abs).max() ?? 1, .leastNormalMagnitude)
        print("\(CPUFeatures.summary): \(kept.shape), \(differing) of \(kept.count) floats differ from the uncut plan, "
              + "max abs \(maxAbs), relative to max |y| \(relative)")
        if CPUFeatures.level == .portable {
            // OpenBLAS (the generic path's im2col GEMM) picks its edge kernels by the rows
            // left, so a row may round differently: one float's last places, far below fp32
            // parity tolerances (seen: 4 of 990 floats, 2.4e-8 of max |y|).
            XCTAssertLessThanOrEqual(relative, 1e-6, file: file, line: line)
        } else {
            // Restore's own GEMM and Winograd kernels sum each output in an order that does
            // not depend on the number of rows: the same bits.
            XCTAssertEqual(differing, 0, file: file, line: line)
        }
        return (try cutSession.plan(for: [input.shape]).kernelCount, try wholeSession.plan(for: [input.shape]).kernelCount)
    }

    func testConvolutionComputesOnlyTheSlicedChannels() throws {
        // 3×3 with 16 input channels at 24²: Winograd, as BigGAN's conv_to_rgb.
        let input = KernelHarness.random([1, 16, 24, 24], seed: 3)
        let shape: [Dim] = [.fixed(1), .fixed(16), .symbol("H"), .symbol("W")]
        for (start, end) in [(0, 3), (5, 6), (29, 32)] {
            let kernels = try assertCutKeepsTheFloats(
                graph(producer: convolution(), input: shape, weight: [32, 16, 3, 3], axis: 1, start: start, end: end, exposeFull: false),
                graph(producer: convolution(), input: shape, weight: [32, 16, 3, 3], axis: 1, start: start, end: end, exposeFull: true),
                input: input)
            XCTAssertEqual(kernels.0, 1, "the slice runs no kernel")
            XCTAssertEqual(kernels.1, 2)
        }
        // 5×5 with 3 input channels: im2col.
        let small = KernelHarness.random([1, 3, 9, 11], seed: 4)
        let smallShape: [Dim] = [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")]
        let conv5 = try Node(name: "conv", op: .conv, inputs: ["x", "W", "B"], outputs: ["full"],
                             attributes: ["pads": .ints([2, 2, 2, 2])])
        let kernels = try assertCutKeepsTheFloats(
            graph(producer: conv5, input: smallShape, weight: [20, 3, 5, 5], axis: -3, start: 7, end: 17, exposeFull: false),
            graph(producer: conv5, input: smallShape, weight: [20, 3, 5, 5], axis: -3, start: 7, end: 17, exposeFull: true),
            input: small)
        XCTAssertEqual(kernels.0, 1)
    }

    func testLinearComputesOnlyTheSlicedFeatures() throws {
        let input = KernelHarness.random([1, 37, 96], seed: 5)
        let shape: [Dim] = [.fixed(1), .symbol("T"), .fixed(96)]
        let kernels = try assertCutKeepsTheFloats(
            graph(producer: linear, input: shape, weight: [80, 96], axis: 2, start: 16, end: 64, exposeFull: false),
            graph(producer: linear, input: shape, weight: [80, 96], axis: 2, start: 16, end: 64, exposeFull: true),
            input: input)
        XCTAssertEqual(kernels.0, 1)
    }

    func testCutResultMatchesTheReferenceKernels() throws {
        let input = KernelHarness.random([1, 16, 24, 24], seed: 6)
        let node = convolution()
        let full = try OpKind.makeOperator(node).reference(
            [input, KernelHarness.random([32, 16, 3, 3], seed: 11), KernelHarness.random([32], seed: 12)])[0]
        let plane = 24 * 24
        let expected = Array(full.floats[(0 * plane)..<(3 * plane)])
        let shape: [Dim] = [.fixed(1), .fixed(16), .symbol("H"), .symbol("W")]
        let kept = try Session(model: try Model(graph: graph(producer: node, input: shape, weight: [32, 16, 3, 3], axis: 1,
                                                             start: 0, end: 3, exposeFull: false)), threads: 1).run([input])[0]
        let maxAbs = zip(kept.floats, expected).map { abs($0 - $1) }.max() ?? 0
        let scale = expected.map(abs).max() ?? 1
        print("cut conv vs reference kernel: max abs \(maxAbs), rel \(maxAbs / scale)")
        XCTAssertLessThan(maxAbs / scale, 1e-5, "Winograd F(4×4, 3×3) against the plain loops")
    }

    /// Slices the cut does not handle run as before: another consumer of the full output,
    /// a step, a cut along a spatial axis.
    func testCutIsNotAppliedWhenTheSliceIsNotAChannelRange() throws {
        let input = KernelHarness.random([1, 16, 24, 24], seed: 7)
        let shape: [Dim] = [.fixed(1), .fixed(16), .symbol("H"), .symbol("W")]
        for (axis, step) in [(1, 2), (2, 1)] {
            let graph = graph(producer: convolution(), input: shape, weight: [32, 16, 3, 3], axis: axis, start: 0, end: 6,
                              step: step, exposeFull: false)
            XCTAssertEqual(try Session(model: try Model(graph: graph), threads: 1).plan(for: [input.shape]).kernelCount, 2,
                           "axis \(axis) step \(step)")
        }
        let exposed = graph(producer: convolution(), input: shape, weight: [32, 16, 3, 3], axis: 1, start: 0, end: 3,
                            exposeFull: true)
        let outputs = try Session(model: try Model(graph: exposed), threads: 1).run([input])
        XCTAssertEqual(outputs.map(\.shape), [[1, 3, 24, 24], [1, 32, 24, 24]])
    }
}

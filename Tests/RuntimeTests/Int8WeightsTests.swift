import Format
import TestSupport
import XCTest
@testable import Runtime

/// Models whose linear and convolution weights are stored int8 (`convert --weights int8`)
/// run the int8 kernels, which read no f32 copy of the weights, and match the f32 model
/// with the dequantized weights within the bound of the activations' rounding:
/// |y_int8 − y| ≤ s_x / 2 · Σ_k |w_jk| per output, s_x = max|x_row| / 127 the row's scale
/// (the weights are the same values on both sides; float rounding adds ~1e-6 relative).
final class Int8WeightsTests: XCTestCase {
    private func constant(_ name: String, _ shape: [Int], seed: UInt64) -> ConstantTensor {
        ConstantTensor(name: name, shape: shape, floats: xorshiftFloats(count: shape.reduce(1, *), seed: seed))
    }

    /// `graph` with constant `name` stored int8 per output channel, and the f32 graph of the
    /// same (dequantized) values.
    private func quantized(_ graph: Graph, _ name: String) throws -> (int8: Graph, float: Graph) {
        let original = try XCTUnwrap(graph.constants[name])
        let (weights, scales) = Int8Scales.quantize(name: name, shape: original.shape, values: Array(original.float32Elements),
                                                    axis: 0, scalesName: name + ".scales")
        var int8 = graph, float = graph
        int8.setConstant(weights)
        int8.setConstant(scales)
        float.setConstant(ConstantTensor(name: name, shape: original.shape, floats: try int8.floatValues(of: weights)))
        return (int8, float)
    }

    private func run(_ graph: Graph, _ x: HostTensor) throws -> (output: HostTensor, model: Model) {
        let model = try Model(graph: graph)
        return (try Session(model: model, threads: 2).run([x])[0], model)
    }

    /// Checks every output against the bound; `rows` gives, per output index, the input
    /// values that row quantised and the weights of its channel.
    private func checkBound(_ actual: [Float], _ expected: [Float], bound: (Int) -> Float, label: String) {
        var worst: Float = 0
        for index in expected.indices {
            let allowed = bound(index) * 1.0001 + 1e-6 * abs(expected[index]) + 1e-6
            worst = max(worst, abs(actual[index] - expected[index]) / allowed)
            if abs(actual[index] - expected[index]) > allowed {
                XCTFail("\(label): output \(index) is \(actual[index]), f32 \(expected[index]), bound \(allowed)")
                return
            }
        }
        let (maxAbs, relative) = maxAbsAndRelativeError(actual, expected)
        print("\(label): max abs error \(maxAbs), relative \(relative), at most \(worst) of the bound")
    }

    func testLinearWithInt8WeightsStaysWithinTheActivationRoundingBound() throws {
        let (rows, k, n) = (37, 70, 65)
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(rows), .fixed(k)])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(rows), .fixed(n)])],
                          nodes: [Node(name: "fc", .linear(LinearAttributes()), inputs: ["x", "w", "b"], outputs: ["y"])],
                          constants: [constant("w", [n, k], seed: 1), constant("b", [n], seed: 2)])
        let (int8, float) = try quantized(graph, "w")
        let x = HostTensor(shape: [rows, k], floats: xorshiftFloats(count: rows * k, seed: 3).enumerated().map { $1 * Float($0 / k % 4 + 1) })
        let (actual, model) = try run(int8, x)
        let expected = try run(float, x).output
        XCTAssertEqual(model.weights.dequantizedWeights, 0, "the int8 kernel read an f32 copy of the weight")
        let w = try float.floatValues(of: XCTUnwrap(float.constants["w"]))
        checkBound(actual.floats, expected.floats, bound: { index in
            let (row, j) = (index / n, index % n)
            let scale = x.floats[(row * k)..<((row + 1) * k)].reduce(Float(0)) { max($0, abs($1)) } / 127
            return scale / 2 * w[(j * k)..<((j + 1) * k)].reduce(0) { $0 + abs($1) }
        }, label: "int8 linear \(rows)×\(k)→\(n)")
    }

    /// A 1×1 convolution (X read in place) and a 3×3 stride-2 one (im2col, not Winograd),
    /// each with more than `WeightStore.largestDequantizedInt8Weight` weights (smaller ones
    /// load as f32).
    func testConvolutionsWithInt8WeightsStayWithinTheActivationRoundingBound() throws {
        for (kernel, stride, channels) in [(1, 1, 120), (3, 2, 13)] {
            let (outChannels, height, width) = (40, 19, 23)
            var attributes = ConvAttributes()
            attributes.window.strides = [stride, stride]
            attributes.window.pads = [kernel / 2, kernel / 2, kernel / 2, kernel / 2]
            let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(channels), .fixed(height), .fixed(width)])],
                              outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(1), .fixed(outChannels), .symbol("h"), .symbol("w")])],
                              nodes: [Node(name: "conv", .conv(attributes), inputs: ["x", "w", "b"], outputs: ["y"])],
                              constants: [constant("w", [outChannels, channels, kernel, kernel], seed: 4), constant("b", [outChannels], seed: 5)])
            let (int8, float) = try quantized(graph, "w")
            let x = HostTensor(shape: [1, channels, height, width], floats: xorshiftFloats(count: channels * height * width, seed: 6))
            let (actual, model) = try run(int8, x)
            let expected = try run(float, x).output
            XCTAssertEqual(model.weights.dequantizedWeights, 0, "the int8 kernel read an f32 copy of the weight")
            // Each output pixel's column (its window over all channels) has its own scale;
            // bounding by the largest input value over-estimates it, never under.
            let scale = x.floats.reduce(Float(0)) { max($0, abs($1)) } / 127
            let w = try float.floatValues(of: XCTUnwrap(float.constants["w"]))
            let perChannel = w.count / outChannels
            let pixels = actual.count / outChannels
            checkBound(actual.floats, expected.floats, bound: { index in
                let j = index / pixels
                return scale / 2 * w[(j * perChannel)..<((j + 1) * perChannel)].reduce(0) { $0 + abs($1) }
            }, label: "int8 conv \(kernel)×\(kernel) stride \(stride), \(channels)→\(outChannels)")
        }
    }

    /// Plan-time code reads an int8 constant as the values it stands for, scale × q: a small
    /// one as shape inference reads every small constant, a large one when a node whose
    /// inputs are all constant is evaluated before running (as `convert` checks a converted
    /// graph). Both used to take the plain-elements path, which stops on int8 bytes: the
    /// reason weights of ≤ 4096 values had to stay f32.
    func testPlanTimeValuesOfInt8ConstantsAreTheirDequantizedValues() throws {
        let (rows, k, n) = (2, 64, 80)  // "large": 5120 values, more than ShapeInference.smallConstantLimit
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1)])],
                          outputs: [ValueInfo(name: "t", dtype: .float32, shape: [.fixed(3), .fixed(4)]),
                                    ValueInfo(name: "y", dtype: .float32, shape: [.fixed(rows), .fixed(n)])],
                          nodes: [Node(name: "transpose", .transpose(TransposeAttributes(perm: [1, 0])), inputs: ["small"], outputs: ["t"]),
                                  Node(name: "fc", .linear(LinearAttributes()), inputs: ["c", "large"], outputs: ["y"])],
                          constants: [constant("small", [4, 3], seed: 10), constant("large", [n, k], seed: 11),
                                      constant("c", [rows, k], seed: 12)])
        let int8 = try quantized(quantized(graph, "small").int8, "large").int8
        let small = try int8.floatValues(of: XCTUnwrap(int8.constants["small"]))
        let large = try int8.floatValues(of: XCTUnwrap(int8.constants["large"]))
        XCTAssertEqual(try int8.constantValue("small")?.floats, small)

        let known = try ShapeInference(graph: int8).infer([[1]]).knownValues
        XCTAssertEqual(known["t"]?.floats, (0..<12).map { small[($0 % 4) * 3 + $0 / 4] })
        let c = xorshiftFloats(count: rows * k, seed: 12)
        let expected = (0..<(rows * n)).map { index in
            (0..<k).reduce(Float(0)) { $0 + c[(index / n) * k + $1] * large[(index % n) * k + $1] }
        }
        let (maxAbs, relative) = maxAbsAndRelativeError(try XCTUnwrap(known["y"]).floats, expected)
        print("plan-time linear of an int8 weight vs a plain loop: max abs error \(maxAbs), relative \(relative)")
        XCTAssertLessThan(relative, 1e-5, "summation order only")
    }

    /// An int8 weight read by an op without an int8 kernel (here a matMul) is dequantized once
    /// when the model loads, as before: the int8 path is only for linear and conv weights.
    func testAnInt8WeightOtherOpsReadIsDequantizedAtLoad() throws {
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(3), .fixed(80)])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(3), .fixed(70)])],
                          nodes: [Node(name: "mm", .matMul, inputs: ["x", "w"], outputs: ["y"])],
                          constants: [constant("w", [80, 70], seed: 8)])
        let (int8, float) = try quantized(graph, "w")
        XCTAssertNil(int8.int8KernelWeights["w"])
        let x = HostTensor(shape: [3, 80], floats: xorshiftFloats(count: 240, seed: 9))
        XCTAssertEqual(try run(int8, x).output.floats, try run(float, x).output.floats)
    }
}

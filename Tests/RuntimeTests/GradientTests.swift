import Format
import Foundation
import ImageFiles
@testable import Runtime
import TestSupport
import XCTest

/// Every backward rule against PyTorch autograd: each case of
/// scripts/fixtures/make_gradient_cases.py is one op on random inputs with a random
/// upstream gradient U (loss sum(y·U)); the inputs' gradients from a `GradientPlan` must
/// match autograd's. fp32 against PyTorch's float64: 1e-4 relative to the largest
/// reference gradient, the bound the forward golden cases use; sums over a few hundred
/// products in float stay well inside it.
final class GradientTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/gradients")
    static let tolerance: Float = 1e-4

    /// The graph of each case: its node and the plan-time constants it reads. Inputs are
    /// x0, x1, … (every one differentiated); the output is y.
    static let cases: [String: (op: Op, constants: [ConstantTensor])] = {
        var cases: [String: (op: Op, constants: [ConstantTensor])] = [:]
        func conv(_ configure: (inout ConvAttributes) -> Void) -> Op {
            var attributes = ConvAttributes()
            configure(&attributes)
            return .conv(attributes)
        }
        cases["conv_leaky_bias"] = (conv {
            $0.window.pads = [1, 1, 1, 1]
            $0.activation = Activation(function: .leakyRelu, alpha: 0.2)
        }, [])
        cases["conv_stride2_gelu"] = (conv {
            $0.window.pads = [1, 1, 1, 1]
            $0.window.strides = [2, 2]
            $0.activation = Activation(function: .gelu)
        }, [])
        cases["conv_grouped_dilated_residual_sigmoid"] = (conv {
            $0.window.dilations = [2, 2]
            $0.group = 2
            $0.activation = Activation(function: .sigmoid)
            $0.residualBeforeActivation = true
        }, [])
        cases["conv_winograd_elu"] = (conv {
            $0.window.pads = [1, 1, 1, 1]
            $0.activation = Activation(function: .elu)
        }, [])
        cases["conv_relu_residual_after"] = (conv { $0.activation = Activation(function: .relu) }, [])
        func convTranspose(_ configure: (inout ConvTransposeAttributes) -> Void) -> Op {
            var attributes = ConvTransposeAttributes()
            configure(&attributes)
            return .convTranspose(attributes)
        }
        cases["conv_transpose_k4s2_relu"] = (convTranspose {
            $0.window.strides = [2, 2]
            $0.window.pads = [1, 1, 1, 1]
            $0.activation = Activation(function: .relu)
        }, [])
        cases["conv_transpose_grouped_output_padding"] = (convTranspose {
            $0.window.strides = [2, 2]
            $0.window.pads = [1, 1, 1, 1]
            $0.outputPadding = [1, 1]
            $0.group = 2
        }, [])
        cases["conv_transpose_dilated_gelu"] = (convTranspose {
            $0.window.pads = [2, 2, 2, 2]
            $0.window.dilations = [2, 2]
            $0.activation = Activation(function: .gelu)
        }, [])
        var gelu = LinearAttributes()
        gelu.activation = Activation(function: .gelu)
        cases["linear_gelu"] = (.linear(gelu), [])
        cases["linear_plain"] = (.linear(LinearAttributes()), [])
        cases["matmul_broadcast"] = (.matMul, [])
        cases["matmul_batched"] = (.matMul, [])
        var scaled = AttentionAttributes()
        scaled.scale = 0.35
        cases["attention_bias"] = (.attention(scaled), [])
        cases["attention_plain"] = (.attention(AttentionAttributes()), [])
        cases["window_attention_shifted_masked"] = (.windowAttention(WindowAttentionAttributes(windowSize: 2, shift: 1, heads: 2, scale: 0.5)), [])
        cases["window_attention_relative_bias"] = (.windowAttention(WindowAttentionAttributes(windowSize: 3, shift: 0, heads: 4, scale: 0.7)), [])
        cases["window_attention_plain"] = (.windowAttention(WindowAttentionAttributes(windowSize: 2, shift: 3, heads: 1, scale: 1)), [])
        cases["layernorm"] = (.layerNorm(LayerNormAttributes()), [])
        cases["instancenorm"] = (.instanceNorm(InstanceNormAttributes()), [])
        cases["softmax_last"] = (.softmax(SoftmaxAttributes()), [])
        var axis1 = SoftmaxAttributes()
        axis1.axis = 1
        cases["softmax_axis1"] = (.softmax(axis1), [])
        for function: UnaryFunction in [.tanh, .sigmoid, .gelu, .geluTanh, .silu, .elu, .softplus, .leakyRelu, .relu, .exp,
                                        .sin, .cos, .erf, .abs, .neg, .sqrt, .log, .reciprocal] {
            cases["unary_\(function.rawValue)"] = (.unary(Activation(function: function)), [])
        }
        cases["unary_hardSigmoid"] = (.unary(Activation(function: .hardSigmoid, alpha: 0.2, beta: 0.5)), [])
        cases["unary_clip"] = (.unary(Activation(function: .clip, min: -0.5, max: 0.5)), [])
        cases["binary_add_broadcast"] = (.binary(.add), [])
        cases["binary_sub_broadcast"] = (.binary(.sub), [])
        cases["binary_mul_broadcast"] = (.binary(.mul), [])
        cases["binary_div"] = (.binary(.div), [])
        cases["binary_pow"] = (.binary(.pow), [])
        cases["binary_max"] = (.binary(.max), [])
        cases["where_broadcast"] = (.where, [])
        cases["cast_float"] = (.cast(CastAttributes(to: .float32)), [])
        func gridSample(_ mode: GridSampleAttributes.Mode, _ padding: GridSampleAttributes.PaddingMode, aligned: Bool) -> Op {
            var attributes = GridSampleAttributes()
            attributes.mode = mode
            attributes.paddingMode = padding
            attributes.alignCorners = aligned
            return .gridSample(attributes)
        }
        cases["grid_sample_bilinear_zeros"] = (gridSample(.linear, .zeros, aligned: false), [])
        cases["grid_sample_bilinear_border_aligned"] = (gridSample(.linear, .border, aligned: true), [])
        cases["grid_sample_nearest"] = (gridSample(.nearest, .zeros, aligned: false), [])
        cases["deformable_attention_zeros"] = (.deformableAttention(DeformableAttentionAttributes(
            heads: 2, levelShapes: [4, 5, 2, 3], sampling: GridSampleAttributes())), [])
        var borderAligned = GridSampleAttributes()
        borderAligned.paddingMode = .border
        borderAligned.alignCorners = true
        cases["deformable_attention_border_aligned"] = (.deformableAttention(DeformableAttentionAttributes(
            heads: 2, levelShapes: [3, 4, 2, 2, 1, 3], sampling: borderAligned)), [])
        // Input order: data, then the plan-time indices, then the updates (x1 of the fixture).
        let scatterIndices = ConstantTensor(name: "indices", shape: [3, 2], ints: [1, 0, 3, 2, 1, 0])
        cases["scatter_nd_write"] = (.scatterND(ScatterNDAttributes()), [scatterIndices])
        var adding = ScatterNDAttributes()
        adding.reduction = .add
        cases["scatter_nd_add"] = (.scatterND(adding), [scatterIndices])
        cases["gather_elements"] = (.gatherElements(GatherAttributes(axis: 1)), [
            ConstantTensor(name: "indices", shape: [2, 3, 2], ints: [0, 2, 4, 1, 2, 2, 1, 1, 3, 0, 4, 4]),
        ])
        cases["scatter_elements_add"] = (.scatterElements(ScatterElementsAttributes(axis: 0, reduction: .add)), [
            ConstantTensor(name: "indices", shape: [3, 3], ints: [0, 3, 1, 2, 3, 0, 0, 1, 1]),
        ])
        cases["gather_nd"] = (.gatherND(GatherNDAttributes()), [ConstantTensor(name: "indices", shape: [3, 2], ints: [1, 2, 3, 0, 1, 2])])
        cases["reverse_sequence"] = (.reverseSequence(ReverseSequenceAttributes()), [
            ConstantTensor(name: "lengths", shape: [3], ints: [5, 1, 3]),
        ])
        cases["max_unpool"] = (.maxUnpool(MaxUnpoolAttributes(kernelShape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0])), [
            ConstantTensor(name: "indices", shape: [1, 2, 2, 3], ints: [0, 9, 4, 18, 15, 22, 31, 26, 35, 37, 44, 41]),
        ])
        cases["reduce_mean_axes"] = (.reduce(ReduceAttributes(function: .mean, axes: [1, 3], keepDims: true)), [])
        cases["reduce_sum_all"] = (.reduce(ReduceAttributes(function: .sum, axes: [], keepDims: true)), [])
        cases["reduce_max_axis"] = (.reduce(ReduceAttributes(function: .max, axes: [0], keepDims: false)), [])
        func pool(_ kernel: Int, stride: Int, pad: Int = 0, dilation: Int = 1, includePad: Bool = false) -> PoolAttributes {
            var attributes = PoolAttributes()
            attributes.kernelShape = [kernel, kernel]
            attributes.window.strides = [stride, stride]
            attributes.window.pads = [pad, pad, pad, pad]
            attributes.window.dilations = [dilation, dilation]
            attributes.countIncludePad = includePad
            return attributes
        }
        cases["avgpool_k3s2p1_exclude_pad"] = (.averagePool(pool(3, stride: 2, pad: 1)), [])
        cases["avgpool_k3s1p1_include_pad"] = (.averagePool(pool(3, stride: 1, pad: 1, includePad: true)), [])
        cases["avgpool_k2s2"] = (.averagePool(pool(2, stride: 2)), [])
        cases["maxpool_k3s2p1"] = (.maxPool(pool(3, stride: 2, pad: 1)), [])
        cases["maxpool_k2s1_dilated"] = (.maxPool(pool(2, stride: 1, dilation: 2)), [])
        cases["concat_axis1"] = (.concat(ConcatAttributes(axis: 1)), [])
        cases["slice_steps"] = (.slice, [
            ConstantTensor(name: "starts", shape: [2], ints: [1, 0]), ConstantTensor(name: "ends", shape: [2], ints: [5, 7]),
            ConstantTensor(name: "axes", shape: [2], ints: [2, 3]), ConstantTensor(name: "steps", shape: [2], ints: [2, 3]),
        ])
        cases["transpose"] = (.transpose(TransposeAttributes(perm: [0, 2, 3, 1])), [])
        var reflect = PadAttributes()
        reflect.mode = .reflect
        cases["pad_reflect"] = (.pad(reflect), [
            ConstantTensor(name: "pads", shape: [8], ints: [0, 0, 1, 2, 0, 0, 2, 1]),
        ])
        let scales = ConstantTensor(name: "scales", shape: [4], floats: [1, 1, 2, 2])
        cases["resize_nearest2"] = (.resize(ResizeAttributes()), [scales])
        var bilinear = ResizeAttributes()
        bilinear.mode = .linear
        cases["resize_bilinear2"] = (.resize(bilinear), [scales])
        var pixelShuffle = DepthToSpaceAttributes()
        pixelShuffle.blockSize = 2
        pixelShuffle.mode = .columnRowDepth
        cases["depth_to_space"] = (.depthToSpace(pixelShuffle), [])
        cases["reshape"] = (.reshape(ReshapeAttributes()), [ConstantTensor(name: "shape", shape: [2], ints: [6, 4])])
        return cases
    }()

    /// Node inputs of the cases whose plan-time input comes between data inputs.
    static let inputOrder: [String: [String]] = [
        "scatter_nd_write": ["x0", "indices", "x1"], "scatter_nd_add": ["x0", "indices", "x1"],
        "scatter_elements_add": ["x0", "indices", "x1"],
    ]

    func testEveryRuleMatchesAutograd() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).sorted()
        XCTAssertEqual(Set(folders), Set(Self.cases.keys), "fixture folders and test cases differ")
        var report: [String] = []
        for name in folders {
            guard let (op, constants) = Self.cases[name] else { continue }
            let folder = Self.fixtures.appendingPathComponent(name)
            var inputs: [HostTensor] = []
            while FileManager.default.fileExists(atPath: folder.appendingPathComponent("x\(inputs.count).npy").path) {
                inputs.append(try NumPyFile.read(path: folder.appendingPathComponent("x\(inputs.count).npy").path))
            }
            let upstream = try NumPyFile.read(path: folder.appendingPathComponent("upstream.npy").path).floats
            let expectedOutput = try NumPyFile.read(path: folder.appendingPathComponent("output.npy").path).floats
            // Plan-time inputs follow the data inputs, unless the case says otherwise.
            let inputNames = Self.inputOrder[name] ?? (inputs.indices.map { "x\($0)" } + constants.map(\.name))
            let graph = Graph(
                inputs: inputs.enumerated().map { ValueInfo(name: "x\($0)", dtype: .float32, shape: $1.shape.map { .fixed($0) }) },
                outputs: [ValueInfo(name: "y", dtype: .float32, shape: [])],
                nodes: [Node(name: name, op, inputs: inputNames, outputs: ["y"])],
                constants: constants)
            let plan = try GradientPlan(model: try Model(graph: graph), inputShapes: inputs.map(\.shape), parameters: [],
                                        wantedInputs: inputs.indices.map { "x\($0)" }, threads: 2)
            var output: [Float] = []
            plan.run(inputs: inputs, parameters: []) { y, gradient in
                output = Array(y)
                for i in gradient.indices { gradient[i] = upstream[i] }
                return 0
            }
            let forward = maxAbsAndRelativeError(output, expectedOutput)
            XCTAssertLessThanOrEqual(forward.relative, Self.tolerance, "\(name) forward")
            for index in inputs.indices {
                let expected = try NumPyFile.read(path: folder.appendingPathComponent("grad\(index).npy").path).floats
                let error = maxAbsAndRelativeError(Array(plan.inputGradient(index)), expected)
                report.append("\(name) ∂x\(index): max abs \(error.maxAbs), relative \(error.relative)")
                XCTAssertLessThanOrEqual(error.relative, Self.tolerance, "\(name) gradient of input \(index)")
            }
        }
        print("Gradients against PyTorch autograd:\n  " + report.joined(separator: "\n  "))
    }

    /// `OpKind.traits` claims a gradient exactly for the ops whose operator has a rule.
    func testHasGradientTraitMatchesTheOperators() throws {
        for kind in OpKind.allCases {
            let node = Node(name: "n", try Self.sampleOp(kind), inputs: ["x"], outputs: ["y"])
            let operator_ = try OpKind.makeOperator(node)
            XCTAssertEqual(kind.traits.contains(.hasGradient), operator_ is any Differentiable, "\(kind)")
        }
    }

    /// An op of `kind`: its attribute struct's defaults (which include the required keys),
    /// with values where a default does not make a valid op.
    static func sampleOp(_ kind: OpKind) throws -> Op {
        let required: [OpKind: [String: Attribute]] = [
            .concat: ["axis": .int(0)], .unsqueeze: ["axes": .ints([0])], .spaceToDepth: ["blockSize": .int(2)],
            .windowAttention: ["windowSize": .int(2), "heads": .int(1)], .cast: ["to": .string("f32")],
            .deformableAttention: ["heads": .int(1), "levelShapes": .ints([2, 2])],
            .depthToSpace: ["blockSize": .int(2)], .maxPool: ["kernelShape": .ints([2, 2])],
            .averagePool: ["kernelShape": .ints([2, 2])], .unary: ["function": .string("relu")],
            .binary: ["function": .string("add")], .reduce: ["function": .string("mean")],
        ]
        let defaults = kind.attributesType.map { $0.init().encoded } ?? [:]
        return try Op(kind: kind, attributes: defaults.merging(required[kind] ?? [:]) { $1 }, node: "n")
    }

    /// A wrong gradient path is refused by name: an op without a rule between the wanted
    /// input and the loss (det has none yet).
    func testOpWithoutRuleIsNamed() throws {
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(3), .fixed(3)])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [])],
                          nodes: [Node(name: "determinant", try Self.sampleOp(.det), inputs: ["x"], outputs: ["y"])])
        XCTAssertThrowsError(try GradientPlan(model: try Model(graph: graph), inputShapes: [[2, 3, 3]], parameters: [],
                                              wantedInputs: ["x"], threads: 1)) { error in
            XCTAssertEqual(error as? GradientError, .noRule(node: "determinant", op: .det))
        }
    }

    /// Deformable attention's grid gradient with reflection padding (whose slope the rule
    /// does not follow through the mirroring, as gridSample's) is refused by node name; the
    /// value's and weights' gradients are given.
    func testDeformableAttentionReflectionGridGradientIsRefused() throws {
        var sampling = GridSampleAttributes()
        sampling.paddingMode = .reflection
        let node = Node(name: "sampleMirrored", .deformableAttention(DeformableAttentionAttributes(
            heads: 1, levelShapes: [2, 2], sampling: sampling)), inputs: ["value", "grid", "weights"], outputs: ["y"])
        let rule = try XCTUnwrap(try OpKind.makeOperator(node) as? any Differentiable)
        // value [1, 4 tokens of a 2×2 level, 2 channels], grid [1, 3 queries, 1 head, 1 level, 1 point, 2], weights [1, 3, 1, 1, 1].
        let inputs = [[1, 4, 2], [1, 3, 1, 1, 1, 2], [1, 3, 1, 1, 1]].map { ValueFact(dtype: .float32, shape: $0) }
        let outputs = [ValueFact(dtype: .float32, shape: [1, 3, 2])]
        XCTAssertThrowsError(try rule.backward(inputs: inputs, outputs: outputs, wanted: [true, true, true])) { error in
            XCTAssertTrue("\(error)".contains("sampleMirrored"), "\(error)")
        }
        XCTAssertNoThrow(try rule.backward(inputs: inputs, outputs: outputs, wanted: [true, false, true]))
    }

    /// Integers carry no gradient: a cast to or from them is refused by node name.
    func testIntegerCastIsRefused() throws {
        let node = Node(name: "toIndex", .cast(CastAttributes(to: .int64)), inputs: ["x"], outputs: ["y"])
        let rule = try XCTUnwrap(try OpKind.makeOperator(node) as? any Differentiable)
        let input = ValueFact(dtype: .float32, shape: [2, 3])
        XCTAssertThrowsError(try rule.backward(inputs: [input], outputs: [ValueFact(dtype: .int64, shape: [2, 3])],
                                               wanted: [true])) { error in
            XCTAssertTrue("\(error)".contains("toIndex"), "\(error)")
        }
    }
}

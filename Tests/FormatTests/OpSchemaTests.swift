import Format
import XCTest

/// The typed op schema: every op's attributes decode from what they encode, defaults are
/// written once and left out of files, and bad attributes are refused naming the node
/// and the key.
final class OpSchemaTests: XCTestCase {
    /// One operation of every op with attributes away from their defaults. The switch has
    /// no default: a new op does not compile until it has a sample here.
    private func sample(_ kind: OpKind) -> Op {
        var window = SlidingWindow()
        window.strides = [2, 1]
        window.pads = [1, 0, 1, 2]
        window.autoPad = .sameLower
        switch kind {
        case .conv:
            var conv = ConvAttributes()
            conv.window = window
            conv.group = 4
            conv.activation = Activation(function: .leakyRelu, alpha: 0.3)
            conv.residualBeforeActivation = true
            return .conv(conv)
        case .convTranspose:
            var transposed = ConvTransposeAttributes()
            transposed.window = window
            transposed.outputPadding = [1, 0]
            transposed.activation = Activation(function: .clip, min: -1, max: 6)
            return .convTranspose(transposed)
        case .linear: return .linear(LinearAttributes(activation: Activation(function: .hardSigmoid, alpha: 0.1, beta: 0.4)))
        case .matMul: return .matMul
        case .attention: return .attention(AttentionAttributes(scale: 0.125))
        case .windowAttention: return .windowAttention(WindowAttentionAttributes(windowSize: 7, shift: 3, heads: 6, scale: 0.17))
        case .deformableAttention:
            return .deformableAttention(DeformableAttentionAttributes(heads: 8, levelShapes: [28, 40, 14, 20, 7, 10],
                                                                      sampling: GridSampleAttributes(mode: .nearest, paddingMode: .border, alignCorners: true)))
        case .instanceNorm: return .instanceNorm(InstanceNormAttributes(epsilon: 1e-3))
        case .layerNorm: return .layerNorm(LayerNormAttributes(axis: 1, epsilon: 1e-6))
        case .softmax: return .softmax(SoftmaxAttributes(axis: 2))
        case .unary: return .unary(Activation(function: .elu, alpha: 0.5))
        case .binary: return .binary(.prelu)
        case .where: return .where
        case .reduce: return .reduce(ReduceAttributes(function: .max, axes: [1, -1], keepDims: false))
        case .averagePool, .maxPool:
            var pool = PoolAttributes()
            pool.kernelShape = [3, 2]
            pool.window = window
            pool.ceilMode = true
            pool.countIncludePad = true
            return kind == .averagePool ? .averagePool(pool) : .maxPool(pool)
        case .concat: return .concat(ConcatAttributes(axis: -3))
        case .split: return .split(SplitAttributes(axis: 1, numOutputs: 3))
        case .slice: return .slice
        case .transpose: return .transpose(TransposeAttributes(perm: [0, 2, 3, 1]))
        case .reshape: return .reshape(ReshapeAttributes(allowZero: true))
        case .squeeze: return .squeeze(SqueezeAttributes(axes: [0]))
        case .unsqueeze: return .unsqueeze(UnsqueezeAttributes(axes: [1, 3]))
        case .flatten: return .flatten(FlattenAttributes(axis: 2))
        case .pad: return .pad(PadAttributes(mode: .reflect))
        case .resize:
            var resize = ResizeAttributes()
            resize.mode = .cubic
            resize.coordinateTransformationMode = .alignCorners
            resize.nearestMode = .ceil
            resize.cubicCoeffA = -0.5
            resize.excludeOutside = true
            return .resize(resize)
        case .gridSample: return .gridSample(GridSampleAttributes(mode: .nearest, paddingMode: .reflection, alignCorners: true))
        case .depthToSpace: return .depthToSpace(DepthToSpaceAttributes(blockSize: 2, mode: .columnRowDepth))
        case .spaceToDepth: return .spaceToDepth(SpaceToDepthAttributes(blockSize: 3, mode: .columnRowDepth))
        case .expand: return .expand
        case .tile: return .tile
        case .gather: return .gather(GatherAttributes(axis: 1))
        case .scatterND: return .scatterND(ScatterNDAttributes(reduction: .mul))
        case .gatherElements: return .gatherElements(GatherAttributes(axis: -1))
        case .scatterElements: return .scatterElements(ScatterElementsAttributes(axis: 1, reduction: .max))
        case .gatherND: return .gatherND(GatherNDAttributes(batchDims: 1))
        case .reverseSequence: return .reverseSequence(ReverseSequenceAttributes(batchAxis: 0, timeAxis: 1))
        case .maxUnpool: return .maxUnpool(MaxUnpoolAttributes(kernelShape: [3, 2], strides: [2, 1], pads: [1, 0, 0, 1]))
        case .det: return .det
        case .shape: return .shape(ShapeAttributes(start: 1, end: -1))
        case .cast: return .cast(CastAttributes(to: .int64))
        case .range: return .range
        case .constantOfShape: return .constantOfShape(ConstantOfShapeAttributes(value: 2.5, dtype: .int32))
        }
    }

    func testEveryOpDecodesWhatItEncodes() throws {
        for kind in OpKind.allCases {
            let operation = sample(kind)
            XCTAssertEqual(operation.kind, kind)
            let decoded = try Op(kind: kind, attributes: operation.attributes, node: "n")
            XCTAssertEqual(decoded, operation, "\(kind)")
            XCTAssertEqual(Set(operation.attributes.keys).subtracting(kind.attributeKeys), [], "\(kind) writes undeclared keys")
        }
    }

    func testDefaultsAreLeftOutAndReadBack() throws {
        XCTAssertEqual(ConvAttributes().encoded, [:])
        XCTAssertEqual(Op.unary(.identity).attributes, [:])
        XCTAssertEqual(try Op(kind: .conv, attributes: [:], node: "c"), .conv(ConvAttributes()))
        // A parameter equal to its function's default is not written; another one is.
        XCTAssertEqual(Op.unary(Activation(function: .leakyRelu, alpha: 0.01)).attributes, ["function": .string("leakyRelu")])
        XCTAssertEqual(Op.unary(Activation(function: .leakyRelu, alpha: 0.2)).attributes,
                       ["function": .string("leakyRelu"), "alpha": .float(0.2)])
        // Required keys are written even at the value `init()` holds.
        XCTAssertEqual(Op.concat(ConcatAttributes(axis: 0)).attributes, ["axis": .int(0)])
    }

    func testUnknownAttributeIsRefusedByName() {
        assertRefused(.conv, ["group": .int(1), "kernel_shape": .ints([3, 3])],
                      .unknownAttribute(node: "n", attribute: "kernel_shape"))
        assertRefused(.matMul, ["transA": .int(1)], .unknownAttribute(node: "n", attribute: "transA"))
    }

    func testWrongTypeIsRefusedWithWhatWasExpected() {
        assertRefused(.conv, ["group": .string("2")],
                      .badAttribute(node: "n", attribute: "group", expected: "an int", found: "\"2\""))
        assertRefused(.reshape, ["allowZero": .int(2)],
                      .badAttribute(node: "n", attribute: "allowZero", expected: "0 or 1", found: "2"))
        assertRefused(.unary, ["function": .string("swish")],
                      .badAttribute(node: "n", attribute: "function", expected: UnaryFunction.expectation, found: "\"swish\""))
    }

    func testMissingRequiredAttributeIsRefused() {
        assertRefused(.binary, [:], .missingAttribute(node: "n", attribute: "function"))
        assertRefused(.windowAttention, ["windowSize": .int(7)], .missingAttribute(node: "n", attribute: "heads"))
        assertRefused(.cast, [:], .missingAttribute(node: "n", attribute: "to"))
    }

    func testInvalidValuesAreRefused() {
        assertRefused(.conv, ["strides": .ints([1])],
                      .badAttribute(node: "n", attribute: "strides", expected: "2 values >= 1", found: "[1]"))
        assertRefused(.conv, ["group": .int(0)],
                      .badAttribute(node: "n", attribute: "group", expected: "an int >= 1", found: "0"))
        assertRefused(.maxPool, ["kernelShape": .ints([3, 0])],
                      .badAttribute(node: "n", attribute: "kernelShape", expected: "2 values >= 1", found: "[3, 0]"))
        assertRefused(.depthToSpace, ["blockSize": .int(0)],
                      .badAttribute(node: "n", attribute: "blockSize", expected: "an int >= 1", found: "0"))
    }

    /// The activation a conv, transposed conv or linear fuses is read and set through one
    /// property; other ops have none.
    func testFusedActivationFollowsTheTrait() {
        for kind in OpKind.allCases {
            var operation = sample(kind)
            XCTAssertEqual(operation.fusedActivation != nil, kind.traits.contains(.fusesActivation), "\(kind)")
            operation.fusedActivation = Activation(function: .silu)
            if kind.traits.contains(.fusesActivation) {
                XCTAssertEqual(operation.fusedActivation, Activation(function: .silu), "\(kind)")
            } else {
                XCTAssertEqual(operation, sample(kind), "\(kind)")
            }
        }
    }

    private func assertRefused(_ kind: OpKind, _ attributes: [String: Attribute], _ expected: GraphError,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Op(kind: kind, attributes: attributes, node: "n"), file: file, line: line) { error in
            XCTAssertEqual(error as? GraphError, expected, file: file, line: line)
        }
    }
}

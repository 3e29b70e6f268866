import Format
import XCTest
@testable import Runtime

/// resize in every mode and coordinate transformation: fast (table-driven) against the
/// reference (against onnxruntime: the golden cases of Tests/Fixtures/ops).
final class ResizeTests: XCTestCase {
    private func node(_ attributes: [String: Attribute], sizes: Bool = false) -> Node {
        try! Node(name: "resize", op: .resize, inputs: sizes ? ["X", "", "sizes"] : ["X", "scales"],
             outputs: ["Y"], attributes: attributes)
    }

    private func scales(_ values: [Float]) -> HostTensor { HostTensor(shape: [values.count], floats: values) }

    func testFastMatchesReferenceInEveryMode() throws {
        let coordinateModes = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                               "asymmetric", "tf_half_pixel_for_nearest"]
        var seed: UInt64 = 1
        for mode in ["nearest", "linear", "cubic"] {
            for coordinates in coordinateModes {
                let attributes: [String: Attribute] = ["mode": .string(mode), "coordinateTransformationMode": .string(coordinates)]
                seed += 1
                try KernelHarness.assertFastMatchesReference(node(attributes), [KernelHarness.random([2, 3, 7, 9], seed: seed),
                                                                                scales([1, 1, 2, 1.5])], planTime: [1])
                try KernelHarness.assertFastMatchesReference(node(attributes, sizes: true),
                                                             [KernelHarness.random([1, 2, 63, 65], seed: seed), nil,
                                                              HostTensor(shape: [4], ints: [1, 2, 31, 129])], planTime: [2])
                try KernelHarness.assertFastMatchesReference(node(attributes), [KernelHarness.random([1, 1, 1, 1], seed: seed),
                                                                                scales([3, 2])], planTime: [1])
            }
        }
    }

    /// tf_crop_and_resize: rows and columns past the input's edges take the extrapolation
    /// value in the fast kernel's nearest gather and row ring as in the reference, on odd
    /// sizes and with more than one 32-row block per plane.
    func testCropAndResizeExtrapolatesLikeTheReference() throws {
        var seed: UInt64 = 60
        for mode in ["nearest", "linear", "cubic"] {
            let attributes: [String: Attribute] = [
                "mode": .string(mode), "coordinateTransformationMode": .string("tf_crop_and_resize"),
                "regionOfInterest": .floats([-0.2, 0.3, 1.3, 0.7]), "extrapolationValue": .float(-1.5),
            ]
            seed += 1
            try KernelHarness.assertFastMatchesReference(node(attributes, sizes: true),
                                                         [KernelHarness.random([1, 2, 7, 63], seed: seed), nil,
                                                          HostTensor(shape: [2], ints: [41, 65])], planTime: [2])
            try KernelHarness.assertFastMatchesReference(node(attributes), [KernelHarness.random([2, 1, 9, 5], seed: seed),
                                                                            scales([1, 1, 1, 2])], planTime: [1])
        }
        // One output row samples the region's centre, (start + end)/2 · (in − 1).
        let centre: [String: Attribute] = [
            "mode": .string("nearest"), "coordinateTransformationMode": .string("tf_crop_and_resize"),
            "regionOfInterest": .floats([0.25, 0, 0.75, 1]),
        ]
        let x = HostTensor(shape: [1, 1, 5, 2], floats: (0..<10).map(Float.init))
        let y = try OpKind.makeOperator(node(centre, sizes: true)).reference([x, nil, HostTensor(shape: [2], ints: [1, 2])])[0]
        XCTAssertEqual(y.floats, [4, 5])
    }

    func testNearestModesAndCubicOptions() throws {
        for nearest in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"] {
            try KernelHarness.assertFastMatchesReference(
                node(["mode": .string("nearest"), "nearestMode": .string(nearest)]),
                [KernelHarness.random([1, 2, 5, 6], seed: 40), scales([1, 1, 0.6, 2.5])], planTime: [1])
        }
        try KernelHarness.assertFastMatchesReference(
            node(["mode": .string("cubic"), "cubicCoeffA": .float(-0.5), "excludeOutside": .int(1)]),
            [KernelHarness.random([1, 2, 9, 7], seed: 41), scales([1, 1, 1.5, 0.8])], planTime: [1])
    }

    func testSeveralRowBlocksPerPlane() throws {
        // 68 and 35 output rows: the fast kernel's 32-row work items and their row rings
        // start over inside a plane.
        for mode in ["linear", "cubic"] {
            try KernelHarness.assertFastMatchesReference(node(["mode": .string(mode)]),
                                                         [KernelHarness.random([1, 2, 40, 9], seed: 50), scales([1, 1, 1.7, 1])], planTime: [1])
            try KernelHarness.assertFastMatchesReference(node(["mode": .string(mode), "coordinateTransformationMode": .string("align_corners")]),
                                                         [KernelHarness.random([2, 1, 71, 5], seed: 51), scales([1, 1, 0.5, 3])], planTime: [1])
        }
    }

    /// Antialiased downsampling: 6 to 42 taps per axis (scales 0.7 to 0.1), several row
    /// blocks, exclude_outside, and a mixed axis that upsamples (unchanged filter).
    func testAntialiasedDownsampling() throws {
        for mode in ["linear", "cubic"] {
            for (shape, scale) in [([1, 2, 90, 37], [Float](arrayLiteral: 1, 1, 0.7, 0.1)), ([2, 1, 23, 8], [1, 1, 0.35, 2.5])] {
                try KernelHarness.assertFastMatchesReference(node(["mode": .string(mode), "antialias": .int(1)]),
                                                             [KernelHarness.random(shape, seed: 60), scales(scale)], planTime: [1])
            }
            try KernelHarness.assertFastMatchesReference(
                node(["mode": .string(mode), "antialias": .int(1), "excludeOutside": .int(1)]),
                [KernelHarness.random([1, 3, 19, 21], seed: 61), scales([1, 1, 0.45, 0.3])], planTime: [1])
        }
    }

    /// A downsampling filter averages: a constant image stays that constant at the borders
    /// too (edge samples repeat the border; the weights sum to 1).
    func testAntialiasedConstantStaysConstant() throws {
        let op = try OpKind.makeOperator(node(["mode": .string("cubic"), "antialias": .int(1)]))
        let y = try op.reference([HostTensor(shape: [1, 1, 20, 30], floats: Array(repeating: 0.75, count: 600)), scales([1, 1, 0.3, 0.2])])[0]
        XCTAssertEqual(y.shape, [1, 1, 6, 6])
        for value in y.floats { XCTAssertEqual(value, 0.75, accuracy: 1e-6) }
    }

    func testTfHalfPixelForNearestIndices() throws {
        // onnxruntime no longer runs this mode; check indices by hand: x_in = (x + 0.5) / 2,
        // rounded half down: 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.25→2, 2.75→3 (clamped to 2).
        let x = HostTensor(shape: [1, 1, 1, 3], floats: [10, 20, 30])
        let y = try OpKind.makeOperator(node(["mode": .string("nearest"), "coordinateTransformationMode": .string("tf_half_pixel_for_nearest")]))
            .reference([x, scales([1, 1, 1, 2])])[0]
        XCTAssertEqual(y.floats, [10, 20, 20, 30, 30, 30])
    }

    func testOutputSizeIsFloorOfScaledInput() throws {
        let shape = try OpKind.makeOperator(node(["mode": .string("linear")]))
            .outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 5, 7]), ValueFact(scales([1, 1, 1.7, 0.6]))])[0].shape
        XCTAssertEqual(shape, [1, 3, 8, 4])
    }

    /// The plan fuzzer's find: antialiased linear with a scale near 0 trapped converting its
    /// tap count to Int; such a scale empties the axis, which is refused.
    func testScalesThatEmptyAnAxisAreRefused() {
        let op = try! OpKind.makeOperator(node(["mode": .string("linear"), "antialias": .int(1)]))
        XCTAssertThrowsError(try op.outputs(for: [ValueFact(dtype: .float32, shape: [1, 2, 7, 5]),
                                                  ValueFact(scales([1, 1, 1e-30, 0.5]))])) { error in
            XCTAssertTrue("\(error)".contains("give an empty output"), "\(error)")
        }
    }

    func testRejectsScalingBatchOrChannels() {
        XCTAssertThrowsError(try OpKind.makeOperator(node(["mode": .string("linear")]))
            .outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 5, 7]), ValueFact(scales([1, 2, 2, 2]))]))
    }

    func testRejectsScalesUnknownAtPlanTime() {
        XCTAssertThrowsError(try OpKind.makeOperator(node(["mode": .string("linear")]))
            .outputs(for: [ValueFact(dtype: .float32, shape: [1, 3, 5, 7]), ValueFact(dtype: .float32, shape: [4])])) { error in
            XCTAssertEqual(error as? OpError, .notPlanTime(node: "resize", input: 1))
        }
    }

    /// The plan fuzzer's find: a 768-byte graph resizing 1×2×9×8 to 1×2×4×(2^28 + 1). Making
    /// the kernel used to build its column tables then (2^28 × 2 taps, 6 GiB), before any
    /// memory budget was asked; they now live in the kernel's scratch, which the plan's arena
    /// counts, so planning allocates nothing and a session's budget refuses the run.
    func testAHugeResizeIsPlannedWithoutAllocatingAndRefusedByTheBudget() throws {
        let width = (1 << 28) + 1
        let graph = Graph(inputs: [ValueInfo(name: "X", dtype: .float32, shape: [.fixed(1), .fixed(2), .fixed(9), .fixed(8)])],
                          outputs: [ValueInfo(name: "Y", dtype: .float32, shape: [])],
                          nodes: [node(["mode": .string("linear"), "coordinateTransformationMode": .string("pytorch_half_pixel")],
                                       sizes: true)],
                          constants: [ConstantTensor(name: "sizes", shape: [4], ints: [1, 2, 4, Int64(width)])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        let plan = try session.plan(for: [[1, 2, 9, 8]])
        let kernel = try XCTUnwrap(plan.steps.first?.kernel as? ResizeKernel)
        // The column table (an index and a weight for each of 2 taps per output column) is scratch.
        XCTAssertGreaterThanOrEqual(kernel.scratchBytes, width * 2 * 12)
        XCTAssertGreaterThan(plan.arenaBytes, 2 * 4 * width * 4 + width * 2 * 12)
        session.memoryLimit = 1 << 30
        XCTAssertThrowsError(try session.checkedPlan(for: [[1, 2, 9, 8]], besides: 0)) { error in
            XCTAssertTrue(error is MemoryLimitError, "\(error)")
        }
    }
}

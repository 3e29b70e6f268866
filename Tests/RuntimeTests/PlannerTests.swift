import Format
import Synchronization
import XCTest
@testable import Runtime

final class PlannerTests: XCTestCase {
    private let image = ValueInfo(name: "x", dtype: .float32, shape: [.symbol("N"), .fixed(3), .symbol("H"), .symbol("W")])

    /// x → relu → neg → relu → … (`length` element-wise nodes).
    private func chain(length: Int) -> Graph {
        let functions = ["relu", "neg"]
        let nodes = (0..<length).map { i in
            try! Node(name: "n\(i)", op: .unary, inputs: [i == 0 ? "x" : "v\(i - 1)"], outputs: ["v\(i)"],
                 attributes: ["function": .string(functions[i % 2])])
        }
        return Graph(inputs: [image], outputs: [ValueInfo(name: "v\(length - 1)", dtype: .float32, shape: image.shape)],
                     nodes: nodes)
    }

    func testArenaReusesBuffersWhoseLifetimesDoNotOverlap() throws {
        let session = Session(model: try Model(graph: chain(length: 10)), threads: 1)
        let plan = try session.plan(for: [[1, 3, 32, 32]])
        let bytes = 3 * 32 * 32 * 4
        print("arena \(plan.arenaBytes) bytes, intermediates \(plan.intermediateBytes) bytes")
        XCTAssertEqual(plan.intermediateBytes, 11 * bytes)
        // The input, then two buffers in turn: a value dies when the next node has read it.
        XCTAssertLessThanOrEqual(plan.arenaBytes, 3 * bytes)
        XCTAssertEqual(plan.kernelCount, 10)
    }

    func testChainComputesTheRightValues() throws {
        let session = Session(model: try Model(graph: chain(length: 3)), threads: 2)
        let input = KernelHarness.random([1, 3, 5, 7], seed: 3)
        let output = try session.run([input])[0]
        // relu, neg, relu: always 0.
        XCTAssertEqual(output.shape, [1, 3, 5, 7])
        XCTAssertTrue(output.floats.allSatisfy { $0 == 0 })
    }

    func testPlansAreCachedPerInputSize() throws {
        let session = Session(model: try Model(graph: chain(length: 2)), threads: 1)
        let a = try session.plan(for: [[1, 3, 8, 8]])
        let b = try session.plan(for: [[1, 3, 9, 8]])
        XCTAssertTrue(a === (try session.plan(for: [[1, 3, 8, 8]])))
        XCTAssertFalse(a === b)
        XCTAssertEqual(session.cachedPlans.count, 2)
    }

    /// At most `planCacheLimit` plans stay; the least recently used one is dropped (and
    /// made again when its size comes back).
    func testPlanCacheKeepsTheMostRecentlyUsedPlans() throws {
        let session = Session(model: try Model(graph: chain(length: 2)), threads: 1)
        let sizes = (0..<Session.planCacheLimit).map { [[1, 3, 8 + $0, 8]] }
        let first = try session.plan(for: sizes[0])
        for size in sizes.dropFirst() { _ = try session.plan(for: size) }
        XCTAssertTrue(first === (try session.plan(for: sizes[0])))   // now the most recently used
        _ = try session.plan(for: [[1, 3, 20, 8]])                    // drops sizes[1], the least recent
        XCTAssertEqual(session.cachedPlans.count, Session.planCacheLimit)
        XCTAssertTrue(first === (try session.plan(for: sizes[0])))
        let remade = try session.plan(for: sizes[1])
        XCTAssertEqual(remade.inputShapes, sizes[1])
        XCTAssertEqual(session.cachedPlans.count, Session.planCacheLimit)
        let output = try session.run([KernelHarness.random([1, 3, 9, 8], seed: 4)])[0]
        XCTAssertEqual(output.shape, [1, 3, 9, 8])
    }

    func testInputShapeErrorsNameTheInput() throws {
        let session = Session(model: try Model(graph: chain(length: 1)), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 4, 8, 8]])) { error in
            XCTAssertEqual(error as? ModelError, .inputShape(input: "x", expected: "[N, 3, H, W]", found: [1, 4, 8, 8]))
        }
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 8]])) { error in
            XCTAssertTrue("\(error)".contains("input 'x'"), "\(error)")
        }
        XCTAssertThrowsError(try session.run(["y": KernelHarness.random([1], seed: 1)])) { error in
            XCTAssertEqual(error as? ModelError, .unexpectedInput("y"))
        }
    }

    func testShapeArithmeticIsEvaluatedPerInputSize() throws {
        // y = reshape(x, [shape(x)[0], -1]): the target depends on the input size.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.symbol("N"), .symbol("F")])],
            nodes: [
                try! Node(name: "shape", op: .shape, inputs: ["x"], outputs: ["s"], attributes: ["end": .int(1)]),
                try! Node(name: "target", op: .concat, inputs: ["s", "minusOne"], outputs: ["t"], attributes: ["axis": .int(0)]),
                try! Node(name: "reshape", op: .reshape, inputs: ["x", "t"], outputs: ["y"]),
            ],
            constants: [ConstantTensor(name: "minusOne", shape: [1], ints: [-1])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        for (h, w) in [(4, 5), (7, 3)] {
            let input = KernelHarness.random([2, 3, h, w], seed: UInt64(h))
            let output = try session.run([input])[0]
            XCTAssertEqual(output.shape, [2, 3 * h * w])
            XCTAssertEqual(output.floats, input.floats)
            let plan = try session.plan(for: [[2, 3, h, w]])
            XCTAssertEqual(plan.foldedNodes, 2)
            XCTAssertEqual(plan.kernelCount, 0, "reshape of a runtime value is a view")
        }
    }

    func testShapeInferenceFindsWhatThePlanFindsWithoutBuildingKernels() throws {
        let graph = chain(length: 3)
        let kernels = Planner.kernelsBuilt.load(ordering: .relaxed)
        let inferred = try ShapeInference(graph: graph).infer([[1, 3, 9, 7]])
        XCTAssertEqual(Planner.kernelsBuilt.load(ordering: .relaxed), kernels)
        let plan = try Session(model: try Model(graph: graph), threads: 1).plan(for: [[1, 3, 9, 7]])
        XCTAssertEqual(Planner.kernelsBuilt.load(ordering: .relaxed), kernels + plan.kernelCount)
        XCTAssertEqual(inferred.valueShapes, plan.valueShapes)
        XCTAssertEqual(inferred.knownValues, plan.knownValues)
        XCTAssertEqual(inferred.foldedNodes, plan.foldedNodes)
    }

    func testDataDependentPlanTimeInputIsRefusedNamingTheNode() throws {
        // A reshape whose target shape comes from image data cannot be planned.
        let graph = Graph(
            inputs: [image, ValueInfo(name: "target", dtype: .float32, shape: [.fixed(2)])],
            outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.symbol("A"), .symbol("B")])],
            nodes: [try! Node(name: "reshape", op: .reshape, inputs: ["x", "target"], outputs: ["y"])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 4, 4], [2]])) { error in
            XCTAssertTrue("\(error)".contains("reshape"), "\(error)")
        }
    }

    func testEveryInvalidNodeIsReportedAtOnce() {
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "b", dtype: .float32, shape: image.shape)],
            nodes: [
                // Attributes valid in themselves that do not fit the node: 3 parts, 1 output.
                Node(name: "first", .split(SplitAttributes(axis: 0, numOutputs: 3)), inputs: ["x"], outputs: ["a"]),
                Node(name: "second", .unary(Activation(function: .relu)), inputs: ["missing"], outputs: ["b"]),
            ])
        XCTAssertThrowsError(try Model(graph: graph)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("first") && text.contains("second") && text.contains("missing"), text)
        }
    }

    /// A pad graph whose pads constant holds `pads` (ONNX order, 8 values for rank 4).
    private func padGraph(pads: [Int64]) -> Graph {
        Graph(inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
              nodes: [try! Node(name: "pad", op: .pad, inputs: ["x", "pads"], outputs: ["y"])],
              constants: [ConstantTensor(name: "pads", shape: [8], ints: pads)])
    }

    func testHugePaddingIsRefusedBeforeAnyKernelIsBuilt() throws {
        // Found by fuzz/ (FuzzPlan): a pads constant of 2^40 made the pad kernel build a
        // 2^40-entry table and the process abort on the allocation.
        let session = Session(model: try Model(graph: padGraph(pads: [0, 0, 0, 1 << 40, 0, 0, 0, 0])), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 8, 8]])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("pad") && text.contains("limit"), text)
        }
    }

    func testOverflowingPaddingIsAnError() throws {
        let session = Session(model: try Model(graph: padGraph(pads: [0, 0, 0, .max, 0, 0, 0, 1])), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 8, 8]])) { error in
            XCTAssertTrue("\(error)".contains("overflow"), "\(error)")
        }
    }

    func testHugeInputShapeIsRefused() throws {
        let session = Session(model: try Model(graph: chain(length: 1)), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 1 << 31, 1 << 31]])) { error in
            XCTAssertTrue("\(error)".contains("'x'"), "\(error)")
        }
    }

    func testReshapeToAnOverflowingShapeIsAnError() throws {
        // Found by fuzz/ (FuzzPlan): the product of the target's sizes overflowed and trapped.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.symbol("A")])],
            nodes: [try! Node(name: "reshape", op: .reshape, inputs: ["x", "target"], outputs: ["y"])],
            constants: [ConstantTensor(name: "target", shape: [3], ints: [1 << 40, 1 << 40, -1])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 8, 8]])) { error in
            XCTAssertTrue("\(error)".contains("cannot reshape"), "\(error)")
        }
    }

    func testReductionKeepingAnEmptyOuterAxisPlansAndRuns() throws {
        // Found by fuzz/ (FuzzPlan): the reduce kernel divided by the empty outermost axis.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
            nodes: [try! Node(name: "sum", op: .reduce, inputs: ["x"], outputs: ["y"],
                         attributes: ["function": .string("sum"), "axes": .ints([3])])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        let outputs = try session.run([HostTensor(shape: [0, 3, 4, 5], floats: [])])
        XCTAssertEqual(outputs.first?.shape, [0, 3, 4, 1])
    }

    func testInfiniteResizeScaleIsAnError() throws {
        // Found by fuzz/ (FuzzPlan): an infinite scale trapped converting the output size to Int.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: image.shape)],
            nodes: [try! Node(name: "resize", op: .resize, inputs: ["x", "scales"], outputs: ["y"])],
            constants: [ConstantTensor(name: "scales", shape: [4], floats: [1, 1, .infinity, 2])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 8, 8]])) { error in
            XCTAssertTrue("\(error)".contains("out of range"), "\(error)")
        }
    }

    func testSplitSizesWhoseSumOverflowsAreAnError() throws {
        // Found by fuzz/ (FuzzPlan): adding up the split sizes overflowed and trapped.
        let graph = Graph(
            inputs: [image], outputs: [ValueInfo(name: "a", dtype: .float32, shape: image.shape)],
            nodes: [try! Node(name: "split", op: .split, inputs: ["x", "sizes"], outputs: ["a", "b"],
                         attributes: ["axis": .int(1)])],
            constants: [ConstantTensor(name: "sizes", shape: [2], ints: [.max, 4])])
        let session = Session(model: try Model(graph: graph), threads: 1)
        XCTAssertThrowsError(try session.plan(for: [[1, 3, 8, 8]])) { error in
            XCTAssertTrue("\(error)".contains("split sizes"), "\(error)")
        }
    }
}

import Format
import XCTest
@testable import Runtime

/// The shape arithmetic of exported models with dynamic H and W, evaluated the way the
/// planner does for each input size: the shape rule of `shape` gives the value, the
/// reference kernels carry it through Gather → Unsqueeze → Concat → Reshape.
final class ShapeArithmeticTests: XCTestCase {
    private func run(_ node: Node, _ inputs: [HostTensor?]) throws -> HostTensor {
        try LayoutTesting.reference(node, inputs)[0]
    }

    /// x.reshape(N, C, W, H) with W and H read from x's shape.
    private func plannedTarget(forImage shape: [Int]) throws -> (target: HostTensor, outputShape: [Int]) {
        let image = ValueFact(dtype: .float32, shape: shape)
        let shapeNode = LayoutTesting.node(.shape, "shape")
        guard let dims = try OpKind.makeOperator(shapeNode).outputs(for: [image])[0].value else {
            throw OpError.notPlanTime(node: "shape", input: 0)
        }
        let gather = LayoutTesting.node(.gather, "gather", inputs: 2, ["axis": .int(0)])
        let unsqueeze = LayoutTesting.node(.unsqueeze, "unsqueeze", ["axes": .ints([0])])
        let height = try run(unsqueeze, [run(gather, [dims, HostTensor(shape: [], ints: [-2])])])
        let width = try run(unsqueeze, [run(gather, [dims, HostTensor(shape: [], ints: [-1])])])
        let batchAndChannels = try run(LayoutTesting.node(.slice, "slice", inputs: 3),
                                       [dims, LayoutTesting.ints([0]), LayoutTesting.ints([2])])
        let target = try run(LayoutTesting.node(.concat, "concat", inputs: 3, ["axis": .int(0)]), [batchAndChannels, width, height])
        let reshape = try OpKind.makeOperator(LayoutTesting.node(.reshape, "reshape", inputs: 2))
        return (target, try reshape.outputs(for: [image, ValueFact(target)])[0].shape)
    }

    func testEvaluatesPerInputSize() throws {
        for (height, width) in [(64, 48), (65, 63), (1, 7)] {
            let (target, outputShape) = try plannedTarget(forImage: [1, 3, height, width])
            XCTAssertEqual(target, LayoutTesting.ints([1, 3, Int64(width), Int64(height)]))
            XCTAssertEqual(outputShape, [1, 3, width, height])
        }
    }

    /// Range → Cast, as in exported position encodings: arange(W) as floats.
    func testRangeOverAShapeDimensionCastToFloat() throws {
        let width = HostTensor(shape: [], ints: [5])
        let positions = try run(LayoutTesting.node(.range, "range", inputs: 3),
                                [HostTensor(shape: [], ints: [0]), width, HostTensor(shape: [], ints: [1])])
        let floats = try run(LayoutTesting.node(.cast, "cast", ["to": .string("f32")]), [positions])
        XCTAssertEqual(floats, HostTensor(shape: [5], floats: [0, 1, 2, 3, 4]))
    }

    /// ConstantOfShape(Shape(x)) → a mask of ones shaped like x, as i64.
    func testConstantOfShapeOfAShape() throws {
        let dims = try run(LayoutTesting.node(.shape, "shape", ["start": .int(2)]), [KernelHarness.random([1, 1, 2, 3], seed: 1)])
        let ones = try run(LayoutTesting.node(.constantOfShape, "ones", ["value": .float(1), "dtype": .string("i64")]), [dims])
        XCTAssertEqual(ones, HostTensor(shape: [2, 3], ints: Array(repeating: 1, count: 6)))
    }
}

import Format
import XCTest
@testable import Convert

/// `convert --prepare auto`, the default, never turns a model that converts into one that
/// does not: a model that cannot be planned at the preparation size is written unprepared.
final class WeightPreparationTests: XCTestCase {
    /// A reshape whose target shape is a graph input: nothing can plan it before the data is
    /// known, so preparing (which plans) fails.
    private func unplannableGraph() throws -> Graph {
        let image = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("H"), .symbol("W")])
        return Graph(inputs: [image, ValueInfo(name: "target", dtype: .float32, shape: [.fixed(2)])],
                     outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.symbol("A"), .symbol("B")])],
                     nodes: [try Node(name: "reshape", op: .reshape, inputs: ["x", "target"], outputs: ["y"])])
    }

    func testAutomaticPreparationLeavesAnUnplannableModelUnpreparedAndSaysWhy() throws {
        var graph = try unplannableGraph()
        let shapes = [[[1, 3, 8, 8], [2]]]
        XCTAssertThrowsError(try Conversion.prepareWeights(&graph, .native, shapes: shapes))
        let outcome = Conversion.prepareWeightsIfPlannable(&graph, .native, shapes: shapes)
        XCTAssertEqual(outcome.count, 0)
        XCTAssertTrue(outcome.failure?.contains("reshape") ?? false, outcome.failure ?? "no failure reported")
        XCTAssertTrue(graph.packedConstants.isEmpty)
    }

    func testAutomaticMeansNativeOnlyForF32Weights() {
        XCTAssertEqual(WeightPreparation.automatic.resolved(storing: nil), .native)
        XCTAssertEqual(WeightPreparation.automatic.resolved(storing: .f32), .native)
        XCTAssertEqual(WeightPreparation.automatic.resolved(storing: .f16), WeightPreparation.none)
        XCTAssertEqual(WeightPreparation.automatic.resolved(storing: .bf16), WeightPreparation.none)
        XCTAssertEqual(WeightPreparation.portable.resolved(storing: .f16), .portable)
    }
}

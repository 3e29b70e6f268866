import Format
import XCTest
@testable import Convert
@testable import Runtime

/// `DeformableAttentionFusion` on the ViT-Adapter fixture (Tests/Fixtures/models/vit-adapter/tiny:
/// 4 injectors over 3 levels, 6 extractors over 1): every per-level gridSample group becomes
/// one `deformableAttention`, and near misses that differ from the exported form in one
/// place — a level's sampling options, the levels' order in the stack — are left alone.
/// Parity of the fused models with onnxruntime is in ModelParityTests.
final class DeformableAttentionFusionTests: XCTestCase {
    private func importedAdapter() throws -> Graph {
        let golden = try GoldenCase("models/vit-adapter/tiny")
        return try ONNXImporter().importGraph(at: golden.model)
    }

    private func count(_ kind: OpKind, _ graph: Graph) -> Int { graph.nodes.count { $0.op == kind } }

    func testEveryInjectorAndExtractorFuses() throws {
        var graph = try importedAdapter()
        XCTAssertEqual(count(.gridSample, graph), 18)
        let report = try Simplifier.simplify(&graph, multiple: 32)
        print(report)
        XCTAssertEqual(count(.deformableAttention, graph), 10)
        XCTAssertEqual(count(.gridSample, graph), 0)
        let levels = graph.nodes.compactMap { node -> [Int]? in
            if case .deformableAttention(let a) = node.operation { a.levelShapes } else { nil }
        }
        // 64×96: injectors read 1/8, 1/16 and 1/32 of the spatial prior; extractors the 1/16 ViT grid.
        XCTAssertEqual(levels.filter { $0 == [8, 12, 4, 6, 2, 3] }.count, 4)
        XCTAssertEqual(levels.filter { $0 == [4, 6] }.count, 6)
    }

    /// The sampling core alone, its value split per level by one Split node (several
    /// outputs) rather than slices: it fuses, and the fused op matches onnxruntime.
    func testTheCoreWithASplitValueFusesAndMatchesOnnxruntime() throws {
        let simplified = try GoldenCheck.assertMatches(try GoldenCase("models/vit-adapter/core-split"))
        XCTAssertEqual(count(.deformableAttention, simplified), 1)
        XCTAssertEqual(count(.gridSample, simplified), 0)
    }

    /// One level of the first injector samples with alignCorners: its levels disagree, so
    /// that injector keeps its gridSamples; the other nine still fuse.
    func testALevelSampledDifferentlyIsLeftAlone() throws {
        var graph = try importedAdapter()
        let first = try XCTUnwrap(graph.nodes.firstIndex { $0.op == .gridSample })
        graph.nodes[first].operation = .gridSample(GridSampleAttributes(mode: .linear, paddingMode: .zeros, alignCorners: true))
        _ = try Simplifier.simplify(&graph, multiple: 32)
        XCTAssertEqual(count(.deformableAttention, graph), 9)
        XCTAssertEqual(count(.gridSample, graph), 3)
    }

    /// The first injector stacks its levels in another order (1, 0, 2): the walk finds the
    /// same value, grid and weights, but running the match disagrees with the fused op, so
    /// that group is left as it is.
    func testLevelsStackedInAnotherOrderAreLeftAlone() throws {
        var graph = try importedAdapter()
        let view = PatternView(graph)
        let firstSampler = try XCTUnwrap(graph.nodes.firstIndex { $0.op == .gridSample })
        var value = view.output(firstSampler)
        while let reader = view.consumers.soleReader(of: value), graph.nodes[reader].op != .concat {
            value = view.output(reader)
        }
        let concat = try XCTUnwrap(view.consumers.soleReader(of: value))
        XCTAssertEqual(graph.nodes[concat].inputs.count, 3)
        graph.nodes[concat].inputs.swapAt(0, 1)
        _ = try Simplifier.simplify(&graph, multiple: 32)
        XCTAssertEqual(count(.deformableAttention, graph), 9)
        XCTAssertEqual(count(.gridSample, graph), 3)
    }
}

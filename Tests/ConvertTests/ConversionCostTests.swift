import Convert
import Format
import Synchronization
import XCTest
@testable import Runtime

/// What a conversion costs besides its result: shapes are inferred, never planned.
final class ConversionCostTests: XCTestCase {
    /// Swin-T-like + UperNet (scripts/fixtures/make_swin.py): linears, whose weights the
    /// runtime packs, and 3×3 convolutions, whose weights it Winograd-transforms.
    private static let swin = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models/swin/upernet-w8/model.onnx")

    func testConvertingBuildsNoKernelAndPreparesNoWeight() throws {
        var options = ConversionOptions()
        options.head = .rgb
        options.contract.multiple = 8
        options.contract.residual = true
        let kernels = Planner.kernelsBuilt.load(ordering: .relaxed)
        let preparations = PreparedWeightStore.preparedInProcess.load(ordering: .relaxed)
        let graph = try Conversion.convert(Self.swin.path, options: options).graph
        XCTAssertEqual(Planner.kernelsBuilt.load(ordering: .relaxed), kernels)
        XCTAssertEqual(PreparedWeightStore.preparedInProcess.load(ordering: .relaxed), preparations)

        // Planning the converted model does both, so the counters above could have moved (at
        // 256², UperNet's 3×3 convolutions at 1/4 resolution have tiles enough for Winograd).
        _ = try Session(model: try Model(graph: graph), threads: 1).plan(for: [[1, 3, 256, 256]])
        XCTAssertGreaterThan(Planner.kernelsBuilt.load(ordering: .relaxed), kernels)
        XCTAssertGreaterThan(PreparedWeightStore.preparedInProcess.load(ordering: .relaxed), preparations)
    }
}

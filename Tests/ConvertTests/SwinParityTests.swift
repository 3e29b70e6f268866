import Foundation
import Format
import XCTest
@testable import Convert
@testable import Runtime

/// Swin + UperNet exports of transformers' `UperNetForSemanticSegmentation`
/// (scripts/fixtures/make_swin.py): imported, simplified, written and read back as a
/// .rgraph, and run at every fixture size against onnxruntime's outputs.
///
/// The window-7 fixtures and the full model also output the backbone's stage feature
/// maps. The backbone tests prune the graph to those, so they check the Swin encoder
/// (windowed attention, shift masks, patch merging) on its own.
final class SwinParityTests: XCTestCase {
    private static func golden(_ variant: String) throws -> GoldenCase { try GoldenCase("models/swin/\(variant)") }

    /// Where `scripts/fixtures/make_swin.py --full` writes the full Swin-T + UperNet:
    /// `$RESTORE_SWIN_DIR`, else `restore-swin` in the temporary directory (the script's
    /// default is the same).
    static let fullModelDirectory = ProcessInfo.processInfo.environment["RESTORE_SWIN_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("restore-swin")

    /// Ops that in these models only compute shapes, indices and masks: none may survive
    /// conversion of a fixed-size model. (Concat, Slice and Pad also move image data:
    /// cyclic shifts and patch merging.)
    static let shapeArithmetic: Set<OpKind> = [.shape, .gather, .range, .constantOfShape, .cast, .expand, .where,
                                               .unsqueeze, .squeeze]

    /// `allowing` names ops the model also applies to image data.
    static func checkNoShapeArithmetic(_ graph: Graph, allowing: Set<OpKind> = [], label: String,
                                       file: StaticString = #filePath, line: UInt = #line) {
        let left = graph.nodes.filter { shapeArithmetic.subtracting(allowing).contains($0.op) }
        XCTAssertTrue(left.isEmpty, "\(label): shape arithmetic left after folding: \(left.prefix(5).map { "\($0.op) \($0.name)" })",
                      file: file, line: line)
    }


    private static let backbone: Set<String> = ["stage1", "stage2"]

    func testUperNetClassicWindow7() throws {
        try GoldenCheck.assertMatches(try Self.golden("upernet-w7"), stages: [.simplified])
    }

    func testUperNetClassicWindow8() throws {
        try GoldenCheck.assertMatches(try Self.golden("upernet-w8"), stages: [.simplified])
    }

    func testUperNetDynamoWindow7() throws {
        try GoldenCheck.assertMatches(try Self.golden("upernet-w7-dynamo"), stages: [.simplified])
    }

    func testUperNetClassicFixedSizeFoldsShapeArithmetic() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w8"), fixedRun: 0, stages: [.simplified])
        Self.checkNoShapeArithmetic(graph, label: "upernet w8 classic, fixed 72×104")
    }

    func testUperNetDynamoFixedSizeFoldsShapeArithmetic() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w7-dynamo"), fixedRun: 0, stages: [.simplified])
        Self.checkNoShapeArithmetic(graph, label: "upernet w7 dynamo, fixed 64×88")
    }

    /// Older Swin exports build the shift mask by slice assignment: ScatterND on shape
    /// arithmetic, evaluated per size; a second ScatterND moves image data at run time.
    func testShiftMaskBuiltBySliceAssignment() throws {
        try GoldenCheck.assertMatches(try Self.golden("shift-mask-scatter"), stages: [.simplified])
    }

    func testShiftMaskBuiltBySliceAssignmentFoldsAtAFixedSize() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("shift-mask-scatter"), fixedRun: 1, stages: [.simplified])
        // Left: slice, mul, expand, scatter of the image rows, then the add of the folded mask.
        Self.checkNoShapeArithmetic(graph, allowing: [.expand], label: "shift mask by ScatterND, fixed 9×13")
        XCTAssertEqual(graph.nodes.filter { $0.op == .scatterND }.count, 1, "only the scatter of image data is left")
        XCTAssertLessThanOrEqual(graph.nodes.count, 6)
    }

    /// The full Swin-T + UperNet, generated on demand (232 MB, never committed).
    private func fullModel(_ kind: String) throws -> GoldenCase {
        let directory = Self.fullModelDirectory.appendingPathComponent(kind)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("case.json").path) else {
            throw XCTSkip("""
                the full Swin-T + UperNet is not generated (\(directory.path)/model.onnx missing); generate it with \
                `.venv/bin/python scripts/fixtures/make_swin.py --full [--full-out DIR]` (.venv from \
                scripts/setup-python.sh) and point RESTORE_SWIN_DIR at DIR if not \(Self.fullModelDirectory.path)
                """)
        }
        return try GoldenCase(directory, name: "Swin-T + UperNet \(kind)")
    }

    func testFullSwinTUperNetFixedSize() throws {
        let graph = try GoldenCheck.assertMatches(try fullModel("static"), stages: [.simplified])
        Self.checkNoShapeArithmetic(graph, label: "Swin-T + UperNet classic, fixed 384×384")
    }

    func testFullSwinTUperNetDynamicSize() throws {
        try GoldenCheck.assertMatches(try fullModel("dynamic"), stages: [.simplified])
    }

    func testFullSwinTUperNetDynamoExport() throws {
        try GoldenCheck.assertMatches(try fullModel("dynamo"), stages: [.simplified])
    }

    func testFullSwinTUperNetWithoutMultipleAsksForOne() throws {
        let path = try fullModel("dynamic").model.path
        XCTAssertThrowsError(try Conversion.convert(path, options: ConversionOptions())) { error in
            guard case ConversionError.doesNotPlan(_, 1, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("--multiple"), "\(error)")
        }
        var options = ConversionOptions()
        options.contract.multiple = 32
        XCTAssertNoThrow(try Conversion.convert(path, options: options))
    }

    func testBackboneClassicWindow7() throws {
        try GoldenCheck.assertMatches(try Self.golden("upernet-w7"), outputs: Self.backbone, stages: [.simplified])
    }

    func testBackboneClassicFixedSizeFoldsShapeArithmetic() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w7"), outputs: Self.backbone, fixedRun: 0, stages: [.simplified])
        Self.checkNoShapeArithmetic(graph, label: "backbone w7 classic, fixed 64×88")
    }

    func testBackboneDynamoWindow7() throws {
        try GoldenCheck.assertMatches(try Self.golden("upernet-w7-dynamo"), outputs: Self.backbone, stages: [.simplified])
    }
}

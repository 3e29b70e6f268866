import Foundation
import Format
import XCTest
@testable import Convert

/// The op-level and importer golden cases (Tests/Fixtures/ops, made by
/// scripts/fixtures/make_op_cases.py; Tests/Fixtures/importer/*.io, made by
/// scripts/fixtures/make_onnx_references.py) run as imported and as simplified against
/// their reference, and the check that every op kind appears in some case.
final class GoldenCaseTests: XCTestCase {
    func testOpCasesMatchTheirReference() throws {
        let cases = try GoldenCase.all(under: "ops")
        XCTAssertGreaterThanOrEqual(cases.count, 190)
        for golden in cases {
            XCTAssertNoThrow(try GoldenCheck.assertMatches(golden), golden.name)
        }
    }

    func testImporterCasesMatchTheirReference() throws {
        let cases = try GoldenCase.all(under: "importer")
        XCTAssertGreaterThanOrEqual(cases.count, 14)
        for golden in cases {
            XCTAssertNoThrow(try GoldenCheck.assertMatches(golden), golden.name)
        }
    }

    /// An op kind in no case's converted graph has either no lowering (no ONNX model can
    /// produce it) or no golden case: either way nothing checks it against a reference.
    /// Fusion-only kinds count when a model-level case produces them after simplification.
    func testEveryOpKindAppearsInAGoldenCase() throws {
        var casesByKind: [OpKind: [String]] = [:]
        for golden in try GoldenCase.all() {
            let converted = try GoldenCheck.convert(golden)
            for kind in Set(converted.imported.nodes.map(\.op) + converted.simplified.nodes.map(\.op)) {
                casesByKind[kind, default: []].append(golden.name)
            }
        }
        for kind in OpKind.allCases {
            let cases = casesByKind[kind] ?? []
            print("\(kind.rawValue): \(cases.count) cases, e.g. \(cases.prefix(3).joined(separator: ", "))")
        }
        let missing = OpKind.allCases.filter { casesByKind[$0] == nil }.map(\.rawValue)
        XCTAssertTrue(missing.isEmpty, "op kinds in no golden case (imported or simplified): \(missing.joined(separator: ", "))")
    }
}

import Format
import Foundation
import TestSupport
import XCTest
@testable import Convert

/// Bad files fail with an `ONNXImportError` that names the file; nothing crashes.
final class ONNXErrorTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("onnx-errors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: folder)
    }

    private func write(_ bytes: Data, as name: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    func testTruncatedFilesAreRefusedAtEveryCutPoint() throws {
        let bytes = try Data(contentsOf: ImporterFixtures.url("misc_ops.onnx"))
        let cuts = [1, 2, 7, 16, 64, bytes.count / 3, bytes.count / 2, bytes.count - 40, bytes.count - 2, bytes.count - 1]
        for cut in cuts {
            let name = "cut_\(cut).onnx"
            let url = try write(bytes.prefix(cut), as: name)
            assertImportError(name) { try ONNXImporter().importGraph(at: url) }
        }
    }

    func testGarbageBytesAreRefused() throws {
        var generator = SplitMix64(seed: 42)
        for trial in 0..<8 {
            let garbage = Data((0..<(64 << trial)).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            let name = "garbage_\(trial).onnx"
            let url = try write(garbage, as: name)
            assertImportError(name) { try ONNXImporter().importGraph(at: url) }
        }
    }

    func testEmptyFileIsRefused() throws {
        let url = try write(Data(), as: "empty.onnx")
        assertImportError("empty.onnx", contains: ["empty"]) { try ONNXImporter().importGraph(at: url) }
    }

    func testMissingFileAndDirectoryAreRefused() {
        assertImportError("absent.onnx", contains: ["no such file"]) {
            try ONNXImporter().importGraph(at: self.folder.appendingPathComponent("absent.onnx"))
        }
        let name = folder.lastPathComponent
        assertImportError(name, contains: ["directory"]) { try ONNXImporter().importGraph(at: self.folder) }
    }

    /// The ONNX fuzzer's find (Tests/Fixtures/fuzz/onnx_rmsnorm_huge_axis.onnx, as it wrote it):
    /// an RMSNormalization whose axis is about -2^31 asked for 2 GB of axes; it is refused.
    func testHugeNormalizationAxisIsRefusedBeforeAllocating() throws {
        let url = ImporterFixtures.directory.deletingLastPathComponent().appendingPathComponent("fuzz/onnx_rmsnorm_huge_axis.onnx")
        assertImportError("onnx_rmsnorm_huge_axis.onnx", contains: ["out of range"]) {
            try ONNXImporter().importGraph(bytes: try Data(contentsOf: url), fileName: "onnx_rmsnorm_huge_axis.onnx",
                                           directory: nil)
        }
    }

    /// Values defined through each other by Identity nodes (lowered to aliases) once made
    /// the importer follow an alias loop forever; now the loop is the cycle it names.
    func testIdentityNodesReadingEachOtherAreACycleNotAHang() throws {
        let fuzz = ImporterFixtures.directory.deletingLastPathComponent().appendingPathComponent("fuzz")
        assertImportError("onnx_identity_cycle.onnx", contains: ["cycle"]) {
            try ONNXImporter().importGraph(bytes: try Data(contentsOf: fuzz.appendingPathComponent("onnx_identity_cycle.onnx")),
                                           fileName: "onnx_identity_cycle.onnx", directory: nil)
        }
        // The fuzzer's input (an alias loop among mutated nodes) ends with its real errors.
        assertImportError("onnx_alias_loop.onnx", contains: ["unsupported"]) {
            try ONNXImporter().importGraph(bytes: try Data(contentsOf: fuzz.appendingPathComponent("onnx_alias_loop.onnx")),
                                           fileName: "onnx_alias_loop.onnx", directory: nil)
        }
    }

    func testUnsupportedOpsAreListedTogether() throws {
        let error = assertImportError("unsupported_ops.onnx") { try ImporterFixtures.load("unsupported_ops.onnx") }
        XCTAssertEqual(error?.description,
                       "unsupported_ops.onnx: 5 unsupported nodes: TopK (topk_3, topk_7), NonMaxSuppression (nms_1), "
                       + "MaxPool (pool_with_indices: its indices output is used), com.example.FancyOp (fancy)")
    }

    func testUnsupportedUsesOfSupportedOpsAreListedWithTheirReasons() throws {
        // resize_crop (tf_crop_and_resize of the last two axes) is no longer among them.
        let error = assertImportError("unsupported_features.onnx", contains: [
            "5 unsupported nodes",
            "resize_axes: sizes for axes [1, 3]: axis 2 is not listed and its size is symbolic",
            "deconv: output_shape needs a static input height and width",
            "clip_computed: input 'max' must be a constant",
            "pad_wrap: mode 'wrap'",
            "conv3d: a 3-D convolution needs X [N, C, D, H, W] with a fixed depth D",
        ]) { try ImporterFixtures.load("unsupported_features.onnx") }
        guard case .unsupportedNodes(_, let nodes)? = error else { return XCTFail("not an unsupported-nodes error") }
        XCTAssertEqual(nodes.map(\.opType), ["Resize", "ConvTranspose", "Clip", "Pad", "Conv"])
    }

    /// Einsum lowers the batched-product form (ops/einsum_* golden cases); other equations are named.
    func testEinsumOutsideTheBatchedProductFormIsRefusedWithTheEquation() throws {
        let error = assertImportError("unsupported_einsum.onnx", contains: [
            "3 unsupported nodes",
            "einsum_ellipsis: equation '...ij,...jk->...ik': ellipsis",
            "einsum_diagonal: equation 'ii->i': an index repeated within one operand (a diagonal)",
            "einsum_three: equation 'ij,jk,kl->il': 3 operands (one or two are supported)",
        ]) { try ImporterFixtures.load("unsupported_einsum.onnx") }
        guard case .unsupportedNodes(_, let nodes)? = error else { return XCTFail("not an unsupported-nodes error") }
        XCTAssertEqual(nodes.map(\.opType), ["Einsum", "Einsum", "Einsum"])
    }

    /// PyTorch writes `x.squeeze(-1)` of a symbolic axis as an If (scripts/fixtures/make_importer_cases.py):
    /// its condition is known only when running, so it cannot be inlined as one known when
    /// converting is (ops/if_* golden cases).
    func testIfWhoseConditionDependsOnASymbolicSizeIsRefusedWithAdvice() throws {
        let error = assertImportError("control_flow_if.onnx", contains: [
            "1 unsupported node", "If (squeeze_if_one: its condition depends on the input's data or symbolic size",
            "squeeze()", "[..., 0]", "docs/exporting.md",
        ]) { try ImporterFixtures.load("control_flow_if.onnx") }
        guard case .unsupportedNodes(_, let nodes)? = error else { return XCTFail("not an unsupported-nodes error") }
        XCTAssertEqual(nodes.map(\.opType), ["If"])
    }

    /// An opset newer than the newest Restore checked its lowerings against could change any op.
    func testOpsetOutsideTheSupportedRangeIsRefused() {
        assertImportError("opset29.onnx", contains: ["opset 29", "7–28"]) { try ImporterFixtures.load("opset29.onnx") }
    }

    /// A version a lowering lists as refused (Upsample 10, deprecated) is refused by name
    /// with the op's version, the model's opset and the versions Restore implements.
    func testRefusedOpVersionIsNamedWithBothVersions() {
        assertImportError("upsample_opset10.onnx", contains: [
            "Upsample (upsample_deprecated: Upsample version 10 (opset 10) is not supported: Upsample is deprecated from opset 10; "
                + "export Resize instead; Restore implements versions 7, 9)",
        ]) { try ImporterFixtures.load("upsample_opset10.onnx") }
    }

    /// A node of an op that its model's opset does not have yet (Gelu arrived in opset 20).
    func testOpOlderThanItsFirstVersionIsRefusedWithBothVersions() {
        assertImportError("gelu_opset17.onnx", contains: ["Gelu (gelu_too_early: Gelu does not exist in opset 17 (its first version is 20))"]) {
            try ImporterFixtures.load("gelu_opset17.onnx")
        }
    }

    /// A mode string that names no ONNX value (the fixture's bytes patched, same length)
    /// is the importer's error naming the file, node and attribute.
    func testModeStringThatNamesNoValueIsRefusedByName() throws {
        let cases = [("opset13.onnx", "linear", "lineal", "node 'resize' (Resize): attribute 'mode' is 'lineal'"),
                     ("misc_ops.onnx", "CRD", "CDR", "node 'd2s' (DepthToSpace): attribute 'mode' is 'CDR'"),
                     ("opset10.onnx", "reflect", "reflex!", "node 'pad' (Pad): attribute 'mode' is 'reflex!'")]
        for (fixture, value, replacement, message) in cases {
            var bytes = try Data(contentsOf: ImporterFixtures.url(fixture))
            let range = try XCTUnwrap(bytes.range(of: Data(value.utf8)), "\(fixture) holds no '\(value)'")
            XCTAssertNil(bytes[range.upperBound...].range(of: Data(value.utf8)), "'\(value)' is not unique in \(fixture)")
            bytes.replaceSubrange(range, with: Data(replacement.utf8))
            let name = "patched_\(fixture)"
            let url = try write(bytes, as: name)
            let error = assertImportError(name, contains: [message]) { try ONNXImporter().importGraph(at: url) }
            guard case .badNode? = error else { return XCTFail("not a bad-node error: \(String(describing: error))") }
        }
    }

    func testValuesWithoutSourceAreRefused() {
        assertImportError("dangling_input.onnx", contains: ["add_dangling", "'nowhere'"]) {
            try ImporterFixtures.load("dangling_input.onnx")
        }
    }
}

/// Random byte changes in valid models either import or fail with an error naming the
/// file; none may crash the importer (a stand-in for a fuzz run).
final class ONNXCorruptionTests: XCTestCase {
    func testFlippedBytesNeverCrash() throws {
        var generator = SplitMix64(seed: 7)
        var failures = 0
        var imports = 0
        for fixture in ["misc_ops.onnx", "opset11.onnx", "initializers_typed.onnx", "elementwise_ops.onnx"] {
            let original = [UInt8](try Data(contentsOf: ImporterFixtures.url(fixture)))
            for _ in 0..<150 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                do {
                    _ = try ONNXImporter().importGraph(bytes: Data(bytes), fileName: "flipped.onnx")
                    imports += 1
                } catch let error as ONNXImportError {
                    XCTAssertTrue(error.description.hasPrefix("flipped.onnx: "), error.description)
                    failures += 1
                } catch {
                    XCTFail("\(type(of: error)) instead of an ONNXImportError: \(error)")
                }
            }
        }
        print("  flipped bytes: \(imports) imported, \(failures) refused")
    }
}

import Foundation
import Format
import ImageFiles
import XCTest
@testable import Convert
@testable import Runtime

/// Swin + UperNet written from the papers in mmsegmentation's layout
/// (scripts/fixtures/swin_upernet.py, fixtures by scripts/fixtures/make_mmseg_swin.py):
/// converted and run at a square and a non-square size against onnxruntime.
///
/// Unlike transformers' export, this model pads every stage to its window and to even
/// sizes before patch merging by computed amounts, builds its shift mask from `arange`
/// comparisons, replaces adaptive pooling by averaging matrices built from the size, and
/// outputs logits at 1/4 resolution, as mmseg's `EncoderDecoder` does in tensor mode.
final class MMSegSwinParityTests: XCTestCase {
    private static func golden(_ variant: String) throws -> GoldenCase { try GoldenCase("models/mmseg-swin/\(variant)") }

    func testUperNetWindow7() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w7"), stages: [.simplified])
        Self.checkWindowAttentionFused(graph, blocks: 8, label: "mmseg swin w7")
    }

    func testUperNetWindow8() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w8"), stages: [.simplified])
        Self.checkWindowAttentionFused(graph, blocks: 6, label: "mmseg swin w8")
    }

    func testFixedSquareSizeFoldsShapeArithmetic() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w7"), fixedRun: 0, stages: [.simplified])
        SwinParityTests.checkNoShapeArithmetic(graph, label: "mmseg swin w7, fixed 72×72")
        Self.checkWindowAttentionFused(graph, blocks: 8, label: "mmseg swin w7, fixed 72×72")
    }

    func testFixedNonSquareSizeFoldsShapeArithmetic() throws {
        let graph = try GoldenCheck.assertMatches(try Self.golden("upernet-w8"), fixedRun: 1, stages: [.simplified])
        SwinParityTests.checkNoShapeArithmetic(graph, label: "mmseg swin w8, fixed 70×118")
        Self.checkWindowAttentionFused(graph, blocks: 6, label: "mmseg swin w8, fixed 70×118")
    }

    /// `convert --head rgb` on the 3-class model: the classifier keeps its weights and the
    /// 1/4-resolution logits are upsampled bilinearly to the image size (as mmseg resizes
    /// them at inference), compared with onnxruntime's logits upsampled by the resize op's
    /// reference kernel, at both fixture sizes (70×118 is not a multiple of 4).
    func testRGBHeadUpsamplesTheQuarterResolutionLogits() throws {
        let golden = try Self.golden("upernet-w8")
        var options = ConversionOptions()
        options.head = .rgb
        let converted = try Conversion.convert(golden.model.path, options: options)
        XCTAssertEqual(converted.head, RGBHead.Outcome(channels: 3, replacedClassifier: nil, appendedResize: "rgb_head.upsample"))
        let session = Session(model: try Model(graph: converted.graph), threads: 2)
        var bilinear = ResizeAttributes()
        bilinear.mode = .linear
        let resize = Resize(name: "reference", attributes: bilinear)
        for run in try golden.runs() {
            let x = run.inputs[0]
            let sizes = HostTensor(shape: [2], ints: [Int64(x.shape[2]), Int64(x.shape[3])])
            let expected = try resize.reference([run.expected[0], nil, sizes])[0]
            GoldenCheck.assertClose(try session.run([x])[0], expected, golden.description.tolerance,
                                    label: "mmseg swin w8 --head rgb \(run.name) vs onnxruntime's logits upsampled")
        }
    }

    /// Every block's attention, one qkv linear split by `qkv[0]`, `qkv[1]`, `qkv[2]`, became
    /// one `windowAttention`: no plain attention is left. (At a fixed size
    /// `checkNoShapeArithmetic` also finds no gather: the Q/K/V selections went with it.)
    static func checkWindowAttentionFused(_ graph: Graph, blocks: Int, label: String,
                                          file: StaticString = #filePath, line: UInt = #line) {
        let fused = graph.nodes.count { $0.op == .windowAttention }
        print("\(label): \(fused) of \(blocks) window-attention blocks fused")
        XCTAssertEqual(fused, blocks, label, file: file, line: line)
        let left = graph.nodes.filter { $0.op == .attention }.map(\.name)
        XCTAssertTrue(left.isEmpty, "\(label): unfused attention left: \(left)", file: file, line: line)
    }
}

import Foundation
import ImageFiles
import XCTest
@testable import Convert
@testable import Runtime

/// The demo's trained Swin + UperNet denoiser (examples/models/swin_denoiser.onnx, made by
/// scripts/demo/train_swin_denoiser.py), converted as scripts/demo.sh converts it, against
/// onnxruntime's and PyTorch's corrections for a 41×53 crop of the demo's noisy photo
/// (Tests/Fixtures/models/swin-denoiser/).
final class SwinDenoiserTests: XCTestCase {
    /// onnxruntime's correction of the crop, and PyTorch's (pytorch/, same input).
    private static func golden(_ reference: String = "") throws -> GoldenCase {
        try GoldenCase("models/swin-denoiser" + (reference.isEmpty ? "" : "/\(reference)"))
    }

    private func options(multiple: Int) -> ConversionOptions {
        var options = ConversionOptions()
        options.contract.range = .unit
        options.contract.residual = true
        options.contract.task = .denoise
        options.contract.multiple = multiple
        return options
    }

    /// The network's own output at a size that is not a multiple of the window (the model
    /// pads itself), converted with the demo's flags.
    func testCorrectionMatchesOnnxruntimeAndPyTorch() throws {
        let onnxruntime = try Self.golden()
        let converted = try Conversion.convert(onnxruntime.model.path, options: options(multiple: 32))
        print("swin denoiser: \(converted.graph.nodes.count) nodes after conversion: \(GoldenCheck.histogram(converted.graph))")
        // Six Swin blocks in the paper's layout (one qkv linear), all fused.
        MMSegSwinParityTests.checkWindowAttentionFused(converted.graph, blocks: 6, label: "swin denoiser")
        let session = Session(model: try Model(graph: converted.graph), threads: 2)
        for golden in [onnxruntime, try Self.golden("pytorch")] {
            let run = try XCTUnwrap(golden.runs().first)
            GoldenCheck.assertClose(try session.run(run.inputs)[0], run.expected[0], golden.description.tolerance,
                                    label: "swin denoiser 41×53 correction vs \(golden.description.reference)")
        }
    }

    /// Through the restoration pipeline (residual, range 0..1, no padding): noisy + correction.
    func testRestorerAddsTheCorrectionToTheNoisyImage() throws {
        let golden = try Self.golden()
        let converted = try Conversion.convert(golden.model.path, options: options(multiple: 1))
        let restorer = try Restorer(session: Session(model: try Model(graph: converted.graph), threads: 2))
        let run = try XCTUnwrap(golden.runs().first)
        let noisy = run.inputs[0]
        let expected = HostTensor(shape: noisy.shape, floats: zip(noisy.floats, run.expected[0].floats).map { $0 + $1 })
        GoldenCheck.assertClose(try restorer.restore(noisy), expected, golden.description.tolerance,
                                label: "swin denoiser restored 41×53 vs noisy + onnxruntime's correction")
    }
}

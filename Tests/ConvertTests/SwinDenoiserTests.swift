import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// The demo's trained Swin + UperNet denoiser (examples/models/swin_denoiser.onnx, made by
/// scripts/demo/train_swin_denoiser.py), converted as scripts/demo.sh converts it, against
/// onnxruntime's and PyTorch's corrections for a 41×53 crop of the demo's noisy photo
/// (Tests/Fixtures/models/swin-denoiser/).
final class SwinDenoiserTests: XCTestCase {
    /// fp32 with a different summation order, as in `SwinParityTests.tolerance`.
    static let tolerance: Float = 1e-4

    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let model = repository.appendingPathComponent("examples/models/swin_denoiser.onnx").path
    private static let references = repository.appendingPathComponent("Tests/Fixtures/models/swin-denoiser")

    private func reference(_ name: String) throws -> HostTensor {
        try NumPyFile.read(path: Self.references.appendingPathComponent(name).path)
    }

    private func options(multiple: Int) -> ConversionOptions {
        var options = ConversionOptions()
        options.range = "0,1"
        options.residual = true
        options.task = "denoise"
        options.multiple = multiple
        return options
    }

    /// The network's own output at a size that is not a multiple of the window (the model
    /// pads itself), converted with the demo's flags.
    func testCorrectionMatchesOnnxruntimeAndPyTorch() throws {
        let converted = try Conversion.convert(Self.model, options: options(multiple: 32))
        print("swin denoiser: \(converted.graph.nodes.count) nodes after conversion: \(FixtureParity.histogram(converted.graph))")
        // Six Swin blocks in the paper's layout (one qkv linear), all fused.
        MMSegSwinParityTests.checkWindowAttentionFused(converted.graph, blocks: 6, label: "swin denoiser")
        let noisy = try reference("input.npy")
        let correction = try Session(model: try Model(graph: converted.graph), threads: 2).run([noisy])[0]
        for (name, file) in [("onnxruntime", "correction.npy"), ("PyTorch", "correction_pytorch.npy")] {
            let expected = try reference(file)
            XCTAssertEqual(correction.shape, expected.shape)
            let (maxAbs, relative) = maxAbsAndRelativeError(correction.floats, expected.floats)
            print("swin denoiser 41×53 correction vs \(name): max abs error \(maxAbs), relative \(relative)")
            XCTAssertLessThanOrEqual(relative, Self.tolerance, name)
        }
    }

    /// Through the restoration pipeline (residual, range 0..1, no padding): noisy + correction.
    func testRestorerAddsTheCorrectionToTheNoisyImage() throws {
        let converted = try Conversion.convert(Self.model, options: options(multiple: 1))
        let restorer = try Restorer(session: Session(model: try Model(graph: converted.graph), threads: 2))
        let noisy = try reference("input.npy")
        let expected = zip(noisy.floats, try reference("correction.npy").floats).map { $0 + $1 }
        let restored = try restorer.restore(noisy)
        let (maxAbs, relative) = maxAbsAndRelativeError(restored.floats, expected)
        print("swin denoiser restored 41×53 vs noisy + onnxruntime's correction: max abs error \(maxAbs), relative \(relative)")
        XCTAssertEqual(restored.shape, noisy.shape)
        XCTAssertLessThanOrEqual(relative, Self.tolerance)
    }
}

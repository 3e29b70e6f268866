import Foundation
import ImageFiles
import Runtime
import TestSupport
import XCTest

/// `rrun grad` and `rrun dip` as a user runs them.
final class TrainingCommandTests: CommandLineTestCase {
    /// `rrun grad` on the small conv net of scripts/fixtures/make_grad_model_case.py
    /// (conv, LeakyReLU, stride-2 conv, instance norm, GELU, bilinear upsampling, concat,
    /// sigmoid) matches PyTorch autograd for both losses, for the input and two weights.
    func testGradMatchesAutogradOnASmallModel() throws {
        let folder = Self.fixtures.appendingPathComponent("models/grad_net")
        let model = path("grad_net.rgraph")
        let converted = try run("convert", [folder.appendingPathComponent("model.onnx").path, "-o", model])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        for loss in ["mse", "l1"] {
            let outputs = path("gradients-\(loss)")
            let outcome = try run("rrun", ["grad", model, folder.appendingPathComponent("x.npy").path,
                                           "--target", folder.appendingPathComponent("target.npy").path, "--loss", loss,
                                           "--wrt", "x,conv1.weight,conv3.bias", "--outputs", outputs, "--threads", "2"])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            for name in ["x", "conv1.weight", "conv3.bias"] {
                let actual = try NumPyFile.read(path: outputs + "/\(name).npy")
                let expected = try NumPyFile.read(path: folder.appendingPathComponent("\(loss)/\(name).npy").path)
                XCTAssertEqual(actual.shape, expected.shape, name)
                let error = maxAbsAndRelativeError(actual.floats, expected.floats)
                print("rrun grad \(loss) ∂/∂\(name): max abs \(error.maxAbs), relative \(error.relative)")
                // fp32 against float64 autograd, through seven layers.
                XCTAssertLessThanOrEqual(error.relative, 1e-4, "\(loss) \(name)")
            }
        }
    }

    func testGradRefusesAnUnknownName() throws {
        let folder = Self.fixtures.appendingPathComponent("models/grad_net")
        let model = path("grad_net.rgraph")
        XCTAssertEqual(try run("convert", [folder.appendingPathComponent("model.onnx").path, "-o", model]).status, 0)
        let outcome = try run("rrun", ["grad", model, folder.appendingPathComponent("x.npy").path,
                                       "--target", folder.appendingPathComponent("target.npy").path,
                                       "--wrt", "no_such_weight", "--outputs", path("out")])
        assertFails(outcome, mentioning: "no_such_weight")
    }

    /// A few DIP iterations on a small noisy image run end to end and write the PNG; with
    /// so few iterations the result is only checked to be an image of the right size.
    func testDIPWritesTheRestoredImage() throws {
        let noisy = path("noisy.png"), output = path("restored.png")
        let count = 32 * 32 * 3
        let samples: [Float] = (0..<count).map { (i: Int) -> Float in Float((i * 37) % 255) / 255 }
        try PixelImage(width: 32, height: 32, bitDepth: 8, colorType: .rgb, samples: samples).writePNG(path: noisy)
        for net in ["unet", "vit"] {
            let outcome = try run("rrun", ["dip", noisy, "--net", net, "--iters", "3", "--threads", "2",
                                           "--ref", noisy, "-o", output])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            XCTAssertTrue(outcome.stdout.contains("output: PSNR"), outcome.stdout)
            let image = try PixelImage.readPNG(path: output)
            XCTAssertEqual([image.width, image.height], [32, 32])
        }
    }

    func testDIPInpaintNeedsAMask() throws {
        let outcome = try run("rrun", ["dip", path("any.png"), "--task", "inpaint", "-o", path("out.png")])
        assertFails(outcome, mentioning: "--mask", noFileAt: path("out.png"))
    }
}

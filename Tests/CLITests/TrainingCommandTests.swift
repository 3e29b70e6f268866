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

    /// `rrun grad` through whole networks against PyTorch autograd in float64
    /// (scripts/fixtures/make_model_gradients.py): the Swin + UperNet fixture (fused window
    /// attention, layer norm, GELU, patch merging, the pyramid head) and the BigGAN-deep
    /// checkpoint fixture (conditional batch norm as broadcast mul/add, self-attention,
    /// nearest upsampling, concat, slicing); ∂L/∂inputs and ∂L/∂some weights, L the MSE
    /// of the first output against a random target.
    func testGradMatchesAutogradOnSwinUperNetAndBigGANDeep() throws {
        let cases: [(name: String, folder: String, inputs: [String], wrt: [String])] = [
            ("swin-upernet", "models/swin/upernet-w7", ["64x64/input_0.npy"],
             ["image", "model.backbone.swin.embeddings.patch_embeddings.projection.weight",
              "model.decode_head.classifier.weight", "model.decode_head.classifier.bias"]),
            ("biggan-deep", "checkpoints/biggan-deep", ["input_0.npy", "class_vector=input_1.npy"],
             ["z", "class_vector", "model.generator.layers.0.conv_3.bias", "model.generator.conv_to_rgb.bias"]),
        ]
        for (name, folderName, inputs, wrt) in cases {
            let folder = Self.fixtures.appendingPathComponent(folderName)
            let model = path("\(name).rgraph")
            let converted = try run("convert", [folder.appendingPathComponent("model.onnx").path, "-o", model])
            XCTAssertEqual(converted.status, 0, converted.stderr)
            let outputs = path("gradients-\(name)")
            let inputPaths = inputs.map { input -> String in
                let parts = input.split(separator: "=", maxSplits: 1).map(String.init)
                let file = folder.appendingPathComponent(parts.last ?? input).path
                return parts.count == 2 ? "\(parts[0])=\(file)" : file
            }
            let outcome = try run("rrun", ["grad", model] + inputPaths + [
                "--target", folder.appendingPathComponent("gradients/target.npy").path, "--loss", "mse",
                "--wrt", wrt.joined(separator: ","), "--outputs", outputs, "--threads", "2"])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            for weight in wrt {
                let actual = try NumPyFile.read(path: outputs + "/\(weight).npy")
                let expected = try NumPyFile.read(path: folder.appendingPathComponent("gradients/\(weight).npy").path)
                XCTAssertEqual(actual.shape, expected.shape, weight)
                let error = maxAbsAndRelativeError(actual.floats, expected.floats)
                print("rrun grad \(name) ∂/∂\(weight): max abs \(error.maxAbs), relative \(error.relative)")
                // fp32 against float64 autograd through the whole network.
                XCTAssertLessThanOrEqual(error.relative, 1e-4, "\(name) \(weight)")
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

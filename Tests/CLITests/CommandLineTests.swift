import Foundation
import Format
import ImageFiles
import Runtime
import XCTest

/// The `convert` and `rrun` executables as a user runs them: the happy paths, and bad
/// input of every kind giving a message that names the file, a non-zero exit and no
/// output file.
final class CommandLineTests: CommandLineTestCase {
    func testConvertThenInfoDescribesTheModel() throws {
        let model = try convertedDnCNN()
        let info = try run("rrun", ["info", model, "--shape", "1,3,64,48"])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("restore.task"), info.stdout)
        XCTAssertTrue(info.stdout.contains("arena"), info.stdout)
        // The node count before and after fusion, as convert printed them (12 → 6).
        XCTAssertTrue(info.stdout.contains("nodes: 6 (12 as imported"), info.stdout)
    }

    func testTensorModeMatchesOnnxRuntime() throws {
        let model = try convertedDnCNN()
        let cases = Self.fixtures.appendingPathComponent("models/dncnn/37x45")
        let output = path("out.npy")
        let outcome = try run("rrun", [model, cases.appendingPathComponent("input_0.npy").path, "-o", output])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let actual = try NumPyFile.read(path: output)
        let expected = try NumPyFile.read(path: cases.appendingPathComponent("output_0.npy").path)
        XCTAssertEqual(actual.shape, expected.shape)
        let maxAbs = zip(actual.floats, expected.floats).map { abs($0 - $1) }.max() ?? .infinity
        print("rrun tensor mode vs onnxruntime: max abs error \(maxAbs)")
        XCTAssertLessThan(maxAbs, 1e-5)

        let directory = path("all")
        let every = try run("rrun", [model, cases.appendingPathComponent("input_0.npy").path, "--outputs", directory])
        XCTAssertEqual(every.status, 0, every.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["output.npy"])
    }

    func testImageModeKeepsBitDepthAndColourTypeAndMeasuresAgainstReference() throws {
        let model = try convertedDnCNN()
        for (colorType, bitDepth) in [(PixelImage.ColorType.gray, 16), (.rgba, 8), (.rgb, 8)] {
            let input = try writePNG("in-\(colorType)-\(bitDepth).png", width: 23, height: 17, bitDepth: bitDepth, colorType: colorType)
            let output = path("out-\(colorType)-\(bitDepth).png")
            let outcome = try run("rrun", [model, input, "-o", output, "--ref", input, "--tile", "16", "--overlap", "4"])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            XCTAssertTrue(outcome.stdout.contains("input : PSNR inf dB  SSIM 1.0000"), outcome.stdout)
            XCTAssertTrue(outcome.stdout.contains("output: PSNR"), outcome.stdout)
            let restored = try PixelImage.readPNG(path: output)
            XCTAssertEqual([restored.width, restored.height, restored.bitDepth], [23, 17, bitDepth])
            XCTAssertEqual(restored.colorType, colorType)
        }
    }

    func testConvertRefusesBadModelsWithoutWritingOutput() throws {
        let output = path("model.rgraph")
        assertFails(try run("convert", [path("missing.onnx"), "-o", output]), mentioning: "missing.onnx", noFileAt: output)

        let onnx = try Data(contentsOf: Self.fixtures.appendingPathComponent("models/dncnn/model.onnx"))
        let truncated = path("truncated.onnx")
        try onnx.prefix(onnx.count / 2).write(to: URL(fileURLWithPath: truncated))
        assertFails(try run("convert", [truncated, "-o", output]), mentioning: "truncated.onnx", noFileAt: output)

        let garbage = path("garbage.onnx")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: garbage))
        assertFails(try run("convert", [garbage, "-o", output]), mentioning: "garbage.onnx", noFileAt: output)

        assertFails(try run("convert", [Self.fixtures.appendingPathComponent("models/dncnn/model.onnx").path,
                                        "-o", output, "--range", "0,2"]), mentioning: "restore.range", noFileAt: output)
    }

    /// A safetensors checkpoint folder converts as published: `--list-archs` names the
    /// template, `-v` says which was detected, rrun runs the result in tensor mode; a
    /// corrupt checkpoint is refused naming its file, and `--truncation` on ONNX is refused.
    func testConvertTakesACheckpointFolder() throws {
        let listed = try run("convert", ["--list-archs"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stdout.contains("biggan-deep:"), listed.stdout)
        XCTAssertTrue(listed.stdout.contains("vit-adapter-upernet:"), listed.stdout)
        XCTAssertTrue(listed.stdout.contains("mask2former-swin:"), listed.stdout)

        let folder = Self.fixtures.appendingPathComponent("checkpoints/biggan-deep")
        let model = path("g.rgraph")
        let converted = try run("convert", [folder.path, "-o", model, "--truncation", "0.4", "-v"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("architecture template biggan-deep (detected from names)"), converted.stdout)
        let image = path("image.npy")
        let ran = try run("rrun", [model, folder.appendingPathComponent("input_0.npy").path,
                                   "class_vector=" + folder.appendingPathComponent("input_1.npy").path, "-o", image])
        XCTAssertEqual(ran.status, 0, ran.stderr)
        let expected = try NumPyFile.read(path: folder.appendingPathComponent("t0.4/output_0.npy").path)
        let actual = try NumPyFile.read(path: image).floats
        XCTAssertEqual(actual.count, expected.floats.count)
        let error = zip(actual, expected.floats).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(error, 1e-4 * (expected.floats.map(abs).max() ?? 0), "max abs error against PyTorch")

        let corrupt = path("corrupt")
        try FileManager.default.createDirectory(atPath: corrupt, withIntermediateDirectories: true)
        let weights = try Data(contentsOf: folder.appendingPathComponent("model.safetensors"))
        try weights.prefix(weights.count - 5).write(to: URL(fileURLWithPath: corrupt + "/model.safetensors"))
        let output = path("corrupt.rgraph")
        assertFails(try run("convert", [corrupt, "-o", output]), mentioning: corrupt + "/model.safetensors", noFileAt: output)
        assertFails(try run("convert", [Self.fixtures.appendingPathComponent("models/dncnn/model.onnx").path, "-o", output,
                                        "--truncation", "0.5"]), mentioning: "--truncation", noFileAt: output)
    }

    /// The ViT-Adapter + UperNet checkpoint (3 classes) with `--head rgb`: `-v` names the
    /// detected template and lists the skipped training-only tensors; rrun restores an image
    /// of a size that is no multiple of 32 (padded, then cropped back).
    func testViTAdapterCheckpointConvertsWithTheRGBHeadAndRunsAtAnySize() throws {
        let folder = Self.fixtures.appendingPathComponent("checkpoints/vit-adapter")
        let model = path("adapter.rgraph")
        let converted = try run("convert", [folder.path, "-o", model, "--head", "rgb", "-v"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("architecture template vit-adapter-upernet (detected from names)"), converted.stdout)
        XCTAssertTrue(converted.stdout.contains("skipped training-only tensor auxiliary_head.conv_seg.weight"), converted.stdout)
        let input = try writePNG("in.png", width: 70, height: 45)
        let output = path("out.png")
        let restored = try run("rrun", [model, input, "-o", output])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let image = try PixelImage.readPNG(path: output)
        XCTAssertEqual([image.width, image.height], [70, 45])
    }

    /// `convert --head rgb` on the 5-class segmenter: refused without `--head-init`; with
    /// `--head-init zero --residual` the restorer starts as the identity, so rrun gives
    /// back the input image (PSNR inf).
    func testConvertHeadRGBNeedsHeadInitAndZeroResidualHeadIsTheIdentity() throws {
        let segmenter = Self.fixtures.appendingPathComponent("models/segmenter/model.onnx").path
        let model = path("segmenter.rgraph")
        assertFails(try run("convert", [segmenter, "-o", model, "--head", "rgb"]), mentioning: "--head-init", noFileAt: model)
        let converted = try run("convert", [segmenter, "-o", model, "--head", "rgb", "--head-init", "zero", "--residual"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("rgb head: classifier"), converted.stdout)
        let input = try writePNG("in.png", width: 23, height: 17)
        let output = path("out.png")
        let restored = try run("rrun", [model, input, "-o", output, "--ref", input])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.contains("output: PSNR inf dB"), restored.stdout)
    }

    /// `convert --head rgb` on the tiny Mask2Former: refused without a choice (naming both);
    /// `--head-init zero --residual` gives a restorer that starts as the identity.
    func testConvertHeadRGBOnMask2FormerStartsAsTheIdentity() throws {
        let mask2former = Self.fixtures.appendingPathComponent("models/mask2former/swin-tiny/model.onnx").path
        let model = path("mask2former.rgraph")
        assertFails(try run("convert", [mask2former, "-o", model, "--head", "rgb"]), mentioning: "--head-queries", noFileAt: model)
        let converted = try run("convert", [mask2former, "-o", model, "--head", "rgb", "--head-init", "zero", "--residual",
                                            "--range=-1,1"])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("on the mask features"), converted.stdout)
        let input = try writePNG("in.png", width: 96, height: 64)
        let restored = try run("rrun", [model, input, "-o", path("out.png"), "--ref", input])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        XCTAssertTrue(restored.stdout.contains("output: PSNR inf dB"), restored.stdout)
    }

    func testConvertFailureLeavesAnExistingOutputUntouched() throws {
        let output = path("model.rgraph")
        try Data("previous".utf8).write(to: URL(fileURLWithPath: output))
        let outcome = try run("convert", [path("missing.onnx"), "-o", output])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertEqual(try String(contentsOfFile: output, encoding: .utf8), "previous")
    }

    func testRrunRefusesCorruptModelsAndImagesWithoutWritingOutput() throws {
        let model = try convertedDnCNN()
        let image = try writePNG("in.png", width: 8, height: 8)
        let output = path("out.png")

        // A byte of a weight the run reads (the file's packed values when it holds them).
        let graph = try RGraphReader.read(contentsOf: model).graph
        let weight = try XCTUnwrap(graph.packedConstants.first?.tensor ?? graph.orderedConstants.max { $0.byteCount < $1.byteCount })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        bytes[weight.byteOffset + 3] ^= 0xFF
        let corrupt = path("corrupt.rgraph")
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        assertFails(try run("rrun", [corrupt, image, "-o", output]),
                    mentioning: "corrupt.rgraph: tensor '\(weight.name)' is corrupt", noFileAt: output)

        let truncatedModel = path("truncated.rgraph")
        try bytes.prefix(100).write(to: URL(fileURLWithPath: truncatedModel))
        assertFails(try run("rrun", [truncatedModel, image, "-o", output]), mentioning: "truncated.rgraph", noFileAt: output)

        let png = try Data(contentsOf: URL(fileURLWithPath: image))
        let truncatedImage = path("truncated.png")
        try png.prefix(png.count - 20).write(to: URL(fileURLWithPath: truncatedImage))
        assertFails(try run("rrun", [model, truncatedImage, "-o", output]), mentioning: "truncated.png", noFileAt: output)

        assertFails(try run("rrun", [model, path("absent.png"), "-o", output]), mentioning: "absent.png", noFileAt: output)
    }

    func testRrunRefusesWrongTensorsNamingThem() throws {
        let model = try convertedDnCNN()
        let output = path("out.npy")
        let wrongShape = path("wrong.npy")
        try NumPyFile.write(HostTensor(shape: [1, 4, 8, 8], floats: Array(repeating: 0.5, count: 256)), path: wrongShape)
        assertFails(try run("rrun", [model, wrongShape, "-o", output]), mentioning: "input", noFileAt: output)

        let notNPY = path("text.npy")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notNPY))
        assertFails(try run("rrun", [model, notNPY, "-o", output]), mentioning: "text.npy", noFileAt: output)

        let good = Self.fixtures.appendingPathComponent("models/dncnn/32x32/input_0.npy").path
        assertFails(try run("rrun", [model, good, "nosuch=\(good)", "-o", output]), mentioning: "nosuch", noFileAt: output)
    }
}

import Format
import Foundation
import ImageFiles
import Runtime
import TestSupport
import XCTest

/// `rrun finetune` on the small residual denoisers of scripts/fixtures/make_finetune_models.py
/// (a random conv backbone, a zero-initialised 1×1 head conv: before tuning, the identity),
/// and `HeadFineTuning` under it.
final class FinetuneTests: CommandLineTestCase {
    /// Converts fixture `variant` (full or upsampled) as a residual 0…1 denoiser.
    private func convertedFixture(_ variant: String, named name: String? = nil, extra: [String] = []) throws -> String {
        let output = path("\(name ?? variant).rgraph")
        let source = Self.fixtures.appendingPathComponent("models/finetune_net/\(variant)/model.onnx").path
        let outcome = try run("convert", [source, "-o", output, "--range", "0,1", "--residual", "--task", "denoise"] + extra)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        return output
    }

    /// A smooth clean image (sums of sinusoids, different per seed) and it plus uniform
    /// noise of ±0.2, both 8-bit RGB `width` × `height`.
    private func pair(width: Int, height: Int, seed: UInt64) -> (noisy: PixelImage, clean: PixelImage) {
        let count = width * height * 3
        let phase = Float(seed) * 0.7
        let clean: [Float] = (0..<count).map { i in
            let (pixel, c) = (i / 3, Float(i % 3))
            let (x, y) = (Float(pixel % width), Float(pixel / width))
            let value = 0.5 + 0.25 * sin(x * 0.21 + phase + c) * cos(y * 0.17 - c) + 0.1 * sin((x + y) * 0.05 + phase)
            return (value * 255).rounded() / 255
        }
        let noise = xorshiftFloats(count: count, seed: 40 + seed)
        let noisy = zip(clean, noise).map { (min(max($0 + 0.2 * $1, 0), 1) * 255).rounded() / 255 }
        return (PixelImage(width: width, height: height, bitDepth: 8, colorType: .rgb, samples: noisy),
                PixelImage(width: width, height: height, bitDepth: 8, colorType: .rgb, samples: clean))
    }

    /// NOISY and CLEAN folders of `count` pairs named pair-N.png.
    private func pairFolders(count: Int, width: Int = 48, height: Int = 40) throws -> (noisy: String, clean: String) {
        let (noisy, clean) = (path("noisy"), path("clean"))
        for folder in [noisy, clean] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        for index in 0..<count {
            let images = pair(width: width, height: height, seed: UInt64(index))
            try images.noisy.writePNG(path: "\(noisy)/pair-\(index).png")
            try images.clean.writePNG(path: "\(clean)/pair-\(index).png")
        }
        return (noisy, clean)
    }

    /// Figures a run printed: the training losses per epoch and the held-out PSNR before and after.
    private func figures(_ stdout: String) -> (losses: [Double], before: Double?, after: Double?) {
        var losses: [Double] = [], before: Double?, after: Double?
        for line in stdout.split(separator: "\n") {
            let words = line.split(separator: " ")
            if line.hasPrefix("epoch "), let index = words.firstIndex(of: "loss") {
                losses.append(Double(words[index + 1]) ?? .nan)
            }
            if line.hasPrefix("held-out PSNR: ") {
                before = Double(words[2])
                after = Double(words[5])
            }
        }
        return (losses, before, after)
    }

    /// A short run lowers the training loss and raises the held-out PSNR; the tuned file
    /// keeps every constant but the head's byte for byte (and the contract), changes the
    /// head, and runs with rrun.
    func testFinetuneLowersTheLossAndRaisesHeldOutPSNR() throws {
        let model = try convertedFixture("full")
        let (noisy, clean) = try pairFolders(count: 6)
        let tuned = path("tuned.rgraph")
        let outcome = try run("rrun", ["finetune", model, "--pairs", noisy, clean, "--epochs", "12", "--lr", "0.05",
                                       "--crop", "32", "--batch", "4", "--holdout", "2", "--threads", "2", "-o", tuned])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        print(outcome.stdout)
        let (losses, before, after) = figures(outcome.stdout)
        XCTAssertEqual(losses.count, 12, outcome.stdout)
        XCTAssertLessThan(losses.last ?? .nan, (losses.first ?? .nan) * 0.95, "losses \(losses)")
        let (b, a) = (try XCTUnwrap(before, outcome.stdout), try XCTUnwrap(after, outcome.stdout))
        XCTAssertGreaterThan(a, b + 0.3, "held-out PSNR \(b) → \(a)")

        let original = try RGraphReader.read(contentsOf: model).graph
        let result = try RGraphReader.read(contentsOf: tuned).graph
        XCTAssertEqual(result.constantOrder, original.constantOrder)
        for name in original.constantOrder {
            let (old, new) = (try XCTUnwrap(original.constants[name]), try XCTUnwrap(result.constants[name]))
            if name == "head.weight" || name == "head.bias" {
                XCTAssertNotEqual(new.floatValues(), old.floatValues(), "\(name) not trained")
            } else {
                XCTAssertEqual(new.dtype, old.dtype, name)
                XCTAssertEqual(new.shape, old.shape, name)
                XCTAssertTrue(new.bytes.elementsEqual(old.bytes), "frozen \(name) changed")
            }
        }
        for key in ["restore.range", "restore.residual", "restore.task"] {
            XCTAssertEqual(result.metadata[key], original.metadata[key], key)
        }
        XCTAssertEqual(result.metadata["finetune.head"], "/head/Conv")
        let restored = try run("rrun", [tuned, "\(noisy)/pair-5.png", "-o", path("restored.png"), "--ref", "\(clean)/pair-5.png"])
        XCTAssertEqual(restored.status, 0, restored.stderr)
    }

    /// In memory: the cached features are the backbone's features in a whole-model run, the
    /// untrained head reproduces the whole model, and the written tuned model, run by
    /// `rrun` in tensor mode, gives what the trained head gives on the cached features —
    /// for a head at full resolution and one at half resolution followed by a resize.
    func testCachedFeaturesAndTheWrittenModelMatchTheTrainedHead() throws {
        for variant in ["full", "upsampled"] {
            let modelPath = try convertedFixture(variant)
            let file = try RGraphReader.read(contentsOf: modelPath)
            let model = try Model(file: file)
            let contract = try RestorationContract(graph: model.graph)
            let tuning = try HeadFineTuning(model: model, contract: contract, cropHeight: 32, cropWidth: 32,
                                            learningRate: 0.02, threads: 2)
            XCTAssertEqual(tuning.head.weights, ["head.weight", "head.bias"], variant)
            XCTAssertEqual(tuning.head.headInputs.count, variant == "upsampled" ? 2 : 1, "the resize reads the input's size")
            let pairs = try (0..<3).map { index -> HeadFineTuning.CachedPair in
                let images = pair(width: 32, height: 32, seed: UInt64(index))
                return try tuning.cache(degraded: images.noisy.rgbTensor().floats, clean: images.clean.rgbTensor().floats,
                                        image: index)
            }

            // The whole model with the features as a second output.
            var whole = model.graph
            whole.outputs.append(tuning.head.backbone.outputs[0])
            let session = Session(model: try Model(graph: whole), threads: 2)
            for pair in pairs {
                let outputs = try session.run([contract.input: HostTensor(shape: [1, 3, 32, 32], floats: pair.modelInput)])
                let features = try XCTUnwrap(outputs[tuning.head.features])
                XCTAssertEqual(features.shape, pair.features.shape)
                let error = maxAbsAndRelativeError(pair.features.floats, features.floats)
                print("\(variant): cached features vs a whole-model run: max abs \(error.maxAbs)")
                XCTAssertLessThanOrEqual(error.relative, 1e-6, variant)
                let untrained = tuning.trainer.output(inputs: pair.headInputs).floats
                XCTAssertLessThanOrEqual(maxAbsAndRelativeError(untrained, try XCTUnwrap(outputs[contract.output]).floats).maxAbs,
                                         1e-6, variant)
            }

            for _ in 0..<3 { tuning.epoch(pairs, batch: 2) }
            XCTAssertNotEqual(tuning.trainedWeights[0].values, tuning.initialWeights[0], variant)
            let tunedPath = path("\(variant)-tuned.rgraph")
            try RGraphWriter.write(tuning.tunedGraph(file.graph), to: tunedPath)
            let input = path("\(variant)-input.npy"), output = path("\(variant)-output.npy")
            try NumPyFile.write(HostTensor(shape: [1, 3, 32, 32], floats: pairs[2].modelInput), path: input)
            let outcome = try run("rrun", [tunedPath, input, "-o", output, "--threads", "2"])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            let fromFile = try NumPyFile.read(path: output).floats
            let inMemory = tuning.trainer.output(inputs: pairs[2].headInputs).floats
            let error = maxAbsAndRelativeError(fromFile, inMemory)
            print("\(variant): rrun on the tuned model vs the trained head in memory: max abs \(error.maxAbs), relative \(error.relative)")
            XCTAssertLessThanOrEqual(error.relative, 1e-5, variant)
        }
    }

    /// A model whose output does not come from a 3-channel conv has no head to train.
    func testAModelWithoutAThreeChannelConvHasNoHead() throws {
        let image = ValueInfo(name: "image", dtype: .float32, shape: [.fixed(1), .fixed(3), .symbol("h"), .symbol("w")])
        let graph = Graph(inputs: [image], outputs: [ValueInfo(name: "out", dtype: .float32, shape: image.shape)],
                          nodes: [try Node(name: "act", op: .unary, inputs: ["image"], outputs: ["out"],
                                                     attributes: ["function": .string("relu")])])
        let contract = try RestorationContract(graph: graph)
        XCTAssertThrowsError(try RestorationHead(graph: graph, contract: contract, inputShape: [1, 3, 16, 16])) { error in
            XCTAssertTrue("\(error)".contains("no three-channel head conv"), "\(error)")
            XCTAssertTrue("\(error)".contains("act"), "\(error)")
        }
    }

    func testBadPairsAndFlagsAreRefusedBeforeAnyWork() throws {
        let model = try convertedFixture("full")
        let (noisy, clean) = try pairFolders(count: 3)
        let tuned = path("tuned.rgraph")
        func finetune(_ arguments: [String]) throws -> Outcome {
            try run("rrun", ["finetune", model, "--epochs", "1", "--threads", "2"] + arguments)
        }
        assertFails(try finetune(["--pairs", noisy, path("missing"), "-o", tuned]), mentioning: "is not a folder", noFileAt: tuned)
        assertFails(try finetune(["--pairs", noisy, "-o", tuned]), mentioning: "two folders", noFileAt: tuned)

        try FileManager.default.copyItem(atPath: "\(noisy)/pair-0.png", toPath: "\(noisy)/extra.png")
        assertFails(try finetune(["--pairs", noisy, clean, "-o", tuned]), mentioning: "extra.png", noFileAt: tuned)
        try FileManager.default.removeItem(atPath: "\(noisy)/extra.png")

        assertFails(try finetune(["--pairs", noisy, clean, "--holdout", "3", "-o", tuned]), mentioning: "no training pair",
                    noFileAt: tuned)
        assertFails(try finetune(["--pairs", noisy, clean, "--crop", "64", "-o", tuned]), mentioning: "smaller than a 64×64 crop",
                    noFileAt: tuned)

        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        assertFails(try finetune(["--pairs", noisy, clean, "-o", model]), mentioning: "--force")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before, "the input model was written")
        // With --force the input model is replaced, once the tuned file is complete.
        let forced = try finetune(["--pairs", noisy, clean, "--crop", "32", "--lr", "0.05", "-o", model, "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: model)), before, "--force did not replace the model")
        XCTAssertEqual(try RGraphReader.read(contentsOf: model).graph.metadata["finetune.from"], "full.rgraph")

        assertFails(try finetune(["--pairs", noisy, clean, "--threads", "0", "-o", tuned]), mentioning: "--threads must be",
                    noFileAt: tuned)

        let multipleModel = try convertedFixture("full", named: "multiple", extra: ["--multiple", "8"])
        let notMultiple = try run("rrun", ["finetune", multipleModel, "--pairs", noisy, clean, "--crop", "20", "-o", tuned])
        assertFails(notMultiple, mentioning: "multiple", noFileAt: tuned)

        try pair(width: 40, height: 40, seed: 9).clean.writePNG(path: "\(clean)/pair-1.png")
        assertFails(try finetune(["--pairs", noisy, clean, "--crop", "32", "-o", tuned]), mentioning: "pair-1.png",
                    noFileAt: tuned)
    }
}

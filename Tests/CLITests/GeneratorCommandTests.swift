import Format
import Foundation
import ImageFiles
@testable import Runtime
import TestSupport
import XCTest

/// `rrun generate` and `rrun dgp` on the small random-init BigGAN fixtures
/// (scripts/fixtures/make_checkpoints.py, make_dgp_cases.py).
final class GeneratorCommandTests: CommandLineTestCase {
    static let bigGANDeep = fixtures.appendingPathComponent("checkpoints/biggan-deep")
    static let generation = bigGANDeep.appendingPathComponent("generate")

    /// The biggan-deep fixture converted at `truncation`.
    func convertedGenerator(truncation: String = "0.4") throws -> String {
        let output = path("g-\(truncation).rgraph")
        let outcome = try run("convert", [Self.bigGANDeep.path, "-o", output, "--truncation", truncation])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        return output
    }

    func generator(_ path: String) throws -> DeepGenerativePrior.Generator {
        try DeepGenerativePrior.Generator(model: Model(graph: RGraphReader.read(contentsOf: path).graph))
    }

    /// The image of pytorch-pretrained-biggan's own z and one-hot class vector matches its
    /// model; `rrun generate --seed 7 --count 3` writes the PNGs its convert_to_images makes.
    func testGenerateMatchesPyTorch() throws {
        let model = try convertedGenerator()
        let z = try NumPyFile.read(path: Self.generation.appendingPathComponent("z.npy").path)
        let expected = try NumPyFile.read(path: Self.generation.appendingPathComponent("image.npy").path)
        let image = try generator(model).generate(latents: z.floats, classIndices: [3, 3, 3], threads: 2)
        XCTAssertEqual(image.shape, expected.shape)
        let error = maxAbsAndRelativeError(image.floats, expected.floats)
        print("generate (biggan-deep fixture, t=0.4, class 3) against PyTorch: max abs \(error.maxAbs), relative \(error.relative)")
        // fp32 through 5 blocks and attention (the template's own parity is ≤ 6e-7).
        XCTAssertLessThanOrEqual(error.relative, 1e-4)

        let output = path("out.png")
        let outcome = try run("rrun", ["generate", model, "--class", "3", "--seed", "7", "--count", "3", "-o", output,
                                       "--threads", "2"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("truncation 0.4"), outcome.stdout)
        for index in 0..<3 {
            let ours = try PixelImage.readPNG(path: path("out-\(index).png")).quantizedSamples()
            let theirs = try PixelImage.readPNG(path: Self.generation.appendingPathComponent("image-\(index).png").path)
                .quantizedSamples()
            XCTAssertEqual(ours.count, theirs.count)
            let differing = zip(ours, theirs).filter { $0 != $1 }
            let largest = differing.map { abs(Int($0) - Int($1)) }.max() ?? 0
            print("image-\(index).png: \(differing.count) of \(ours.count) samples differ, by at most \(largest)")
            // Truncation to a level: a value within float rounding of a level boundary may
            // land one level off.
            XCTAssertLessThanOrEqual(largest, 1)
            XCTAssertLessThanOrEqual(differing.count, ours.count / 100)
        }
    }

    func testGenerateRefusesWhatItCannotDo() throws {
        let model = try convertedGenerator()
        let output = path("out.png")
        assertFails(try run("rrun", ["generate", model, "--class", "3", "--truncation", "0.5", "-o", output]),
                    mentioning: "converted at truncation 0.4", noFileAt: output)
        assertFails(try run("rrun", ["generate", model, "--class", "10", "-o", output]),
                    mentioning: "class 10 is outside", noFileAt: output)
        assertFails(try run("rrun", ["generate", try convertedDnCNN(), "--class", "0", "-o", output]),
                    mentioning: "not a class-conditional generator", noFileAt: output)
    }

    /// The ONNX export computes every spectral norm W/σ from constants; conversion folds
    /// them and `rrun info` says none is left. The template says it folded them.
    func testInfoSaysSpectralNormsAreFolded() throws {
        let onnx = path("g-onnx.rgraph")
        XCTAssertEqual(try run("convert", [Self.bigGANDeep.appendingPathComponent("model.onnx").path, "-o", onnx]).status, 0)
        let info = try run("rrun", ["info", onnx])
        XCTAssertEqual(info.status, 0, info.stderr)
        let line = info.stdout.split(separator: "\n").first { $0.contains("computing only on constants") } ?? ""
        print("rrun info (ONNX export): \(line)")
        XCTAssertTrue(line.contains(": 0 left;"), String(line))
        let folded = Int(line.split(separator: ";").last?.split(separator: " ").first ?? "") ?? 0
        XCTAssertGreaterThan(folded, 100, "the export's W/σ subgraphs are folded")
        let template = try run("rrun", ["info", try convertedGenerator()])
        XCTAssertTrue(template.stdout.contains("convert.spectral-norm = W/σ folded at convert time into 66 weights"),
                      template.stdout)
        XCTAssertTrue(template.stdout.contains(": 0 left"), template.stdout)
    }

    /// DGP recovers an image the generator itself made, from each degradation: the
    /// output is closer to it than the degraded input and than the chosen z's image before
    /// fine-tuning (what z selection alone gives).
    func testDGPRecoversAGeneratedImage() throws {
        let generator = try generator(try convertedGenerator())
        let latent = GeneratorSampling.truncatedNoise(count: 1, dimension: generator.latentSize, truncation: 0.4, seed: 11)
        let clean = try generator.generate(latents: latent, classIndices: [2], threads: 2)
        let unit = HostTensor(shape: clean.shape, floats: clean.floats.map { min(max(($0 + 1) / 2, 0), 1) })
        let layout = PlanarLayout(height: 32, width: 32)
        var mask = [Float](repeating: 1, count: 32 * 32)
        for y in 11..<21 { for x in 11..<21 { mask[y * 32 + x] = 0 } }
        let cases: [(String, DeepGenerativePrior.Task, HostTensor)] = unit.floats.withUnsafeBufferPointer { image in
            let gray = Degradation.grayscale.apply(image, layout: layout)
            return [
                ("colorize", .colorize, HostTensor(shape: [1, 3, 32, 32], floats: gray + gray + gray)),
                ("inpaint", .inpaint(mask: mask), HostTensor(shape: [1, 3, 32, 32], floats: Degradation.mask(mask).apply(image, layout: layout))),
                ("sr4", .superResolve4, HostTensor(shape: [1, 3, 8, 8], floats: Degradation.bilinearDownsample4.apply(image, layout: layout))),
            ]
        }
        for (name, task, degraded) in cases {
            var prior = DeepGenerativePrior()
            prior.iterations = 30
            prior.candidates = 8
            prior.classIndex = 2
            prior.threads = 2
            var calls = 0
            let outcome = try prior.restore(degraded, task: task, generator: generator) { iteration, total, loss in
                calls += 1
                XCTAssertEqual(total, 30)
                XCTAssertEqual(iteration, calls)
                XCTAssertTrue(loss.isFinite)
                return true
            }
            let before = task == .superResolve4
                ? HostTensor(shape: [1, 3, 32, 32], floats: SeparableResize(from: (8, 8), to: (32, 32), filter: .triangle)
                    .resize(degraded.floats, count: 3))
                : degraded
            let input = try ImageMetrics.psnr(before, unit, dataRange: 1)
            let selected = try ImageMetrics.psnr(outcome.initialImage, unit, dataRange: 1)
            let output = try ImageMetrics.psnr(outcome.image, unit, dataRange: 1)
            print(String(format: "DGP %@: input %.2f dB, chosen z %.2f dB, output %.2f dB; loss %.5f → %.5f",
                         name, input, selected, output, outcome.initialLoss, outcome.finalLoss))
            XCTAssertLessThan(outcome.finalLoss, outcome.initialLoss)
            XCTAssertGreaterThan(output, selected + 1, "fine-tuning improves on the chosen z")
            XCTAssertGreaterThan(output, input + 1, "the output is better than the degraded input")
        }
    }

    /// Cancelling from the progress callback stops the run with `cancelled`.
    func testDGPCancels() throws {
        let generator = try generator(try convertedGenerator())
        var prior = DeepGenerativePrior()
        prior.iterations = 10
        prior.candidates = 1
        prior.classIndex = 0
        let gray = HostTensor(shape: [1, 3, 32, 32], floats: [Float](repeating: 0.5, count: 3 * 32 * 32))
        XCTAssertThrowsError(try prior.restore(gray, task: .colorize, generator: generator) { iteration, _, _ in iteration < 3 }) {
            XCTAssertEqual($0 as? TrainingError, .cancelled)
        }
    }

    /// The command end to end, on an image of another size than the generator's (cropped,
    /// resized and back, said in the output), with and without the schedule's stages.
    func testDGPCommandOnAnotherSize() throws {
        let model = try convertedGenerator()
        let clean = path("clean.png")
        XCTAssertEqual(try run("rrun", ["generate", model, "--class", "2", "--seed", "11", "-o", clean]).status, 0)
        // A 48×40 gray picture: the generated image scaled up, gray.
        let image = try PixelImage.readPNG(path: clean).rgbTensor()
        let big = SeparableResize(from: (32, 32), to: (40, 48), filter: .triangle).resize(image.floats, count: 3)
        let plane = 40 * 48
        var samples = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            let gray = 0.2989 * big[i] + 0.587 * big[plane + i] + 0.114 * big[2 * plane + i]
            for c in 0..<3 { samples[i * 3 + c] = gray }
        }
        let degraded = path("gray.png"), output = path("restored.png")
        try PixelImage(width: 48, height: 40, bitDepth: 8, colorType: .rgb, samples: samples).writePNG(path: degraded)
        for schedule in ["dgp", "all"] {
            let outcome = try run("rrun", ["dgp", model, degraded, "--task", "colorize", "--iters", "5", "--candidates", "4",
                                           "--schedule", schedule, "--threads", "2", "-o", output])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            XCTAssertTrue(outcome.stdout.contains("centre-cropped to 40×40, resized to 32×32"), outcome.stdout)
            XCTAssertTrue(outcome.stdout.contains(schedule == "dgp" ? "1 it, 2/7 groups" : "1 it, 7/7 groups"), outcome.stdout)
            let written = try PixelImage.readPNG(path: output)
            XCTAssertEqual([written.width, written.height], [40, 40])
        }
        assertFails(try run("rrun", ["dgp", model, degraded, "--task", "inpaint", "-o", output]), mentioning: "--mask")
        assertFails(try run("rrun", ["dgp", model, degraded, "--task", "colorize", "--class", "12", "--iters", "1",
                                     "--candidates", "1", "-o", path("never.png")]),
                    mentioning: "class 12 is outside", noFileAt: path("never.png"))
    }
}

/// The discriminator feature loss (`--disc`): BigGAN-PyTorch's discriminator exported as
/// docs/dgp.md describes (scripts/fixtures/make_dgp_cases.py), beside the BigGAN-PyTorch
/// generator fixture it matches (64², 5 classes).
final class DiscriminatorFeatureTests: CommandLineTestCase {
    static let discriminatorFolder = fixtures.appendingPathComponent("checkpoints/biggan-pytorch-d")
    static let generatorFolder = fixtures.appendingPathComponent("checkpoints/biggan-pytorch")

    func converted(_ source: URL, _ name: String) throws -> String {
        let output = path(name)
        let outcome = try run("convert", [source.path, "-o", output])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        return output
    }

    /// Its features match PyTorch's, and the gradient FeatureDistance adds is the
    /// derivative of the loss it returns (a central difference along a random direction,
    /// through the grayscale degradation).
    func testFeaturesAndTheirGradient() throws {
        let disc = try converted(Self.discriminatorFolder.appendingPathComponent("model.onnx"), "d.rgraph")
        let model = try Model(graph: RGraphReader.read(contentsOf: disc).graph)
        let input = try NumPyFile.read(path: Self.discriminatorFolder.appendingPathComponent("input.npy").path)
        let expected = try NumPyFile.read(path: Self.discriminatorFolder.appendingPathComponent("features.npy").path)
        let features = try Session(model: model, threads: 2).run([input])[0]
        let error = maxAbsAndRelativeError(features.floats, expected.floats)
        print("discriminator features against PyTorch: max abs \(error.maxAbs), relative \(error.relative)")
        XCTAssertLessThanOrEqual(error.relative, 1e-4)

        let distance = try FeatureDistance(model: model, imageSize: (64, 64), threads: 2)
        let layout = PlanarLayout(height: 64, width: 64)
        let observed = input.floats.withUnsafeBufferPointer { Degradation.grayscale.apply($0, layout: layout) }
        let target = try distance.target(observed: observed, degradation: .grayscale, layout: layout)
        let image = xorshiftFloats(count: 3 * 64 * 64, seed: 9)
        let direction = xorshiftFloats(count: image.count, seed: 10)
        var gradient = [Float](repeating: 0, count: image.count)
        _ = try image.withUnsafeBufferPointer { x in
            try gradient.withUnsafeMutableBufferPointer {
                try distance.evaluate(x, target: target, degradation: .grayscale, layout: layout, addingGradientTo: $0)
            }
        }
        func loss(_ step: Float) throws -> Double {
            let moved = zip(image, direction).map { $0 + step * $1 }
            return Double(try moved.withUnsafeBufferPointer {
                try distance.evaluate($0, target: target, degradation: .grayscale, layout: layout, addingGradientTo: nil)
            })
        }
        let step: Float = 1e-3
        let numeric = (try loss(step) - loss(-step)) / Double(2 * step)
        let analytic = zip(gradient, direction).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        print("feature distance: directional derivative \(analytic), central difference \(numeric)")
        // L1 has kinks; a 1e-3 step crosses few of them.
        XCTAssertEqual(analytic, numeric, accuracy: 2e-2 * abs(numeric))
    }

    /// `rrun dgp --disc` runs end to end on the 64² generator (inpainting), and the
    /// generator, recording no truncation, is told so by `rrun generate`.
    func testDGPWithTheDiscriminator() throws {
        let generator = try converted(Self.generatorFolder, "g.rgraph")
        let disc = try converted(Self.discriminatorFolder.appendingPathComponent("model.onnx"), "d.rgraph")
        let clean = path("clean.png")
        let generated = try run("rrun", ["generate", generator, "--class", "1", "--seed", "3", "-o", clean])
        XCTAssertEqual(generated.status, 0, generated.stderr)
        XCTAssertTrue(generated.stdout.contains("does not record a truncation"), generated.stdout)
        var image = try PixelImage.readPNG(path: clean).samples
        var mask = [Float](repeating: 1, count: 64 * 64 * 3)
        for y in 20..<44 { for x in 20..<44 { for c in 0..<3 { mask[(y * 64 + x) * 3 + c] = 0; image[(y * 64 + x) * 3 + c] = 0 } } }
        let holes = path("holes.png"), maskPath = path("mask.png"), output = path("out.png")
        try PixelImage(width: 64, height: 64, bitDepth: 8, colorType: .rgb, samples: image).writePNG(path: holes)
        try PixelImage(width: 64, height: 64, bitDepth: 8, colorType: .rgb, samples: mask).writePNG(path: maskPath)
        let outcome = try run("rrun", ["dgp", generator, holes, "--task", "inpaint", "--mask", maskPath, "--disc", disc,
                                       "--class", "1", "--iters", "10", "--candidates", "4", "--threads", "2",
                                       "--ref", clean, "-o", output])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        print(outcome.stdout)
        XCTAssertTrue(outcome.stdout.contains("output: PSNR"), outcome.stdout)
        let written = try PixelImage.readPNG(path: output)
        XCTAssertEqual([written.width, written.height], [64, 64])
    }
}

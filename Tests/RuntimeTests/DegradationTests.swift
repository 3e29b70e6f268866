import ImageFiles
@testable import Runtime
import TestSupport
import XCTest

/// The degradation operators the priors' losses compare through (Deep Image Prior, Deep
/// Generative Prior), the resize they share, and the generator inputs made as
/// pytorch-pretrained-biggan makes them.
final class DegradationTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// ⟨A·x, y⟩ = ⟨x, Aᵀ·y⟩ for every operator, on an image inside a padded buffer (so the
    /// padding must stay untouched by the adjoint).
    func testEveryAdjointIsTheTranspose() {
        let layout = PlanarLayout(height: 12, width: 16, rowStride: 20, planeStride: 20 * 14)
        let image = xorshiftFloats(count: 3 * layout.planeStride, seed: 3)
        let mask = xorshiftFloats(count: 12 * 16, seed: 4).map { $0 > 0 ? Float(1) : 0 }
        for degradation in [Degradation.identity, .mask(mask), .grayscale, .areaDownsample4, .bilinearDownsample4] {
            let (planes, h, w) = degradation.observedShape(height: 12, width: 16)
            let y = xorshiftFloats(count: planes * h * w, seed: 5)
            let ax = image.withUnsafeBufferPointer { degradation.apply($0, layout: layout) }
            var adjoint = [Float](repeating: 0, count: image.count)
            adjoint.withUnsafeMutableBufferPointer { degradation.addAdjoint(y, to: $0, layout: layout) }
            let left = zip(ax, y).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            let right = zip(image, adjoint).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            print("\(degradation): ⟨Ax, y⟩ \(left), ⟨x, Aᵀy⟩ \(right)")
            XCTAssertEqual(left, right, accuracy: 1e-4 * max(abs(left), 1), "\(degradation)")
            // Outside the image (padding columns and rows) the adjoint adds nothing.
            for c in 0..<3 {
                for y in 0..<14 {
                    for x in 0..<20 where y >= 12 || x >= 16 {
                        XCTAssertEqual(adjoint[c * layout.planeStride + y * 20 + x], 0, "\(degradation) padding")
                    }
                }
            }
        }
    }

    /// Area ×4 is the 4×4 block mean (Deep Image Prior's downsampling).
    func testAreaDownsamplingIsTheBlockMean() {
        let layout = PlanarLayout(height: 8, width: 8)
        let image = xorshiftFloats(count: 3 * 64, seed: 6)
        let observed = image.withUnsafeBufferPointer { Degradation.areaDownsample4.apply($0, layout: layout) }
        for c in 0..<3 {
            for y in 0..<2 {
                for x in 0..<2 {
                    var sum: Float = 0
                    for dy in 0..<4 { for dx in 0..<4 { sum += image[c * 64 + (4 * y + dy) * 8 + 4 * x + dx] } }
                    XCTAssertEqual(observed[(c * 2 + y) * 2 + x], sum / 16, accuracy: 1e-6)
                }
            }
        }
    }

    /// Bilinear ×4 down (the DGP super-resolution loss) and up (what a discriminator sees of
    /// a low-resolution image) match torch's interpolate(mode="bilinear", antialias=True)
    /// (scripts/fixtures/make_dgp_cases.py).
    func testBilinearResizeMatchesTorch() throws {
        let folder = Self.fixtures.appendingPathComponent("dgp")
        for (name, from, to) in [("down4", (20, 24), (5, 6)), ("up4", (5, 6), (20, 24))] {
            let input = try NumPyFile.read(path: folder.appendingPathComponent("\(name)_input.npy").path)
            let expected = try NumPyFile.read(path: folder.appendingPathComponent("\(name)_output.npy").path)
            let actual = SeparableResize(from: from, to: to, filter: .triangle).resize(input.floats, count: 3)
            let error = maxAbsAndRelativeError(actual, expected.floats)
            print("bilinear \(name) against torch (antialias=True): max abs \(error.maxAbs), relative \(error.relative)")
            // float32 sums of ≤ 8 taps with weights normalised in double here, in float there.
            XCTAssertLessThanOrEqual(error.relative, 1e-6, name)
        }
        // The operator the loss uses is the same resize.
        let input = try NumPyFile.read(path: folder.appendingPathComponent("down4_input.npy").path)
        let observed = input.floats.withUnsafeBufferPointer {
            Degradation.bilinearDownsample4.apply($0, layout: PlanarLayout(height: 20, width: 24))
        }
        let expected = try NumPyFile.read(path: folder.appendingPathComponent("down4_output.npy").path)
        XCTAssertLessThanOrEqual(maxAbsAndRelativeError(observed, expected.floats).relative, 1e-6)
    }

    /// The MSE's gradient is its derivative (a central difference on a few elements).
    func testDegradedMSEGradient() throws {
        let layout = PlanarLayout(height: 8, width: 8)
        let observed = xorshiftFloats(count: 64, seed: 7)
        let loss = try DegradedMSE(degradation: .grayscale, observed: observed, layout: layout)
        var image = xorshiftFloats(count: 3 * 64, seed: 8)
        var gradient = [Float](repeating: 0, count: image.count)
        _ = image.withUnsafeBufferPointer { x in gradient.withUnsafeMutableBufferPointer { loss.evaluate(x, gradient: $0) } }
        for index in [0, 17, 64 + 30, 128 + 63] {
            let step: Float = 1e-2
            image[index] += step
            let plus = image.withUnsafeBufferPointer { loss.evaluate($0) }
            image[index] -= 2 * step
            let minus = image.withUnsafeBufferPointer { loss.evaluate($0) }
            image[index] += step
            XCTAssertEqual(gradient[index], (plus - minus) / (2 * step), accuracy: 1e-4, "element \(index)")
        }
        XCTAssertThrowsError(try DegradedMSE(degradation: .grayscale, observed: [1, 2], layout: layout))
    }

    /// z as pytorch-pretrained-biggan's truncated_noise_sample(4, 16, 1.0, seed) draws it
    /// (SciPy's truncnorm on NumPy's RandomState): every float32 equal, for seeds up to 2³²−1.
    func testTruncatedNoiseMatchesThePackage() throws {
        let folder = Self.fixtures.appendingPathComponent("checkpoints/biggan-deep/generate")
        for seed: UInt32 in [0, 1, 7, 123_456, 4_294_967_295] {
            let expected = try NumPyFile.read(path: folder.appendingPathComponent("z_seed\(seed).npy").path)
            let actual = GeneratorSampling.truncatedNoise(count: 4, dimension: 16, truncation: 1, seed: seed)
            let differing = zip(actual, expected.floats).filter { $0 != $1 }.count
            let error = maxAbsAndRelativeError(actual, expected.floats)
            print("truncated noise seed \(seed): \(differing) of \(actual.count) differ, max abs \(error.maxAbs)")
            XCTAssertEqual(differing, 0, "seed \(seed)")
            XCTAssertTrue(actual.allSatisfy { abs($0) <= 2 })
        }
        // With a truncation, the package multiplies the float32 values by it in float32.
        let z = try NumPyFile.read(path: folder.appendingPathComponent("z.npy").path)
        XCTAssertEqual(GeneratorSampling.truncatedNoise(count: 3, dimension: 16, truncation: 0.4, seed: 7), z.floats)
    }

    /// The progressive schedule trains the stem and first block first and everything last;
    /// `all` trains every group in every stage; iterations are spread over the stages.
    func testScheduleStages() {
        var prior = DeepGenerativePrior()
        prior.iterations = 52
        let progressive = prior.stages(groupCount: 7)
        XCTAssertEqual(progressive.map(\.trainedGroups), [2, 3, 5, 6, 7])
        XCTAssertEqual(progressive.map(\.iterations), [11, 11, 10, 10, 10])
        XCTAssertEqual(progressive.map(\.generatorRate), prior.generatorRates)
        prior.schedule = .all
        XCTAssertEqual(prior.stages(groupCount: 7).map(\.trainedGroups), [7, 7, 7, 7, 7])
    }

    /// Block groups follow the module index after "layers." / "blocks." (or "/" in ONNX
    /// names); what runs before the first block is the stem, what runs after joins the last.
    func testBlockIndexFromNames() {
        XCTAssertEqual(BlockGroups.blockIndex("generator.layers.12.conv_1.weight"), 12)
        XCTAssertEqual(BlockGroups.blockIndex("/generator/layers.3/bn_0/Mul_output_0"), 3)
        XCTAssertEqual(BlockGroups.blockIndex("blocks.2.0.conv1.weight"), 2)
        XCTAssertNil(BlockGroups.blockIndex("generator.gen_z.weight"))
        XCTAssertNil(BlockGroups.blockIndex("layersX.3.weight"))
    }
}

import CKernels
import Foundation
import Format

/// Deep Image Prior (Ulyanov, Vedaldi & Lempitsky, CVPR 2018): restores one image with no
/// trained weights by fitting a randomly initialised generator, fed fixed noise, to the
/// degraded image through the degradation operator. The network's structure fits natural
/// images long before it fits the noise, so stopping early (and averaging the outputs of
/// the last iterations) gives the restoration.
public struct DeepImagePrior: Sendable {
    /// What degraded the image, i.e. what the loss compares through.
    public enum Task: Sendable, Equatable {
        /// Additive noise: the output itself is compared.
        case denoise
        /// Missing pixels: `mask` (H·W, row-major) is 1 where the pixel is known, 0 where
        /// it is to be filled; only known pixels are compared.
        case inpaint(mask: [Float])
        /// ×4 super-resolution: the output's 4×4 block means (area downsampling) are
        /// compared with the low-resolution image.
        case superResolve4

        var degradation: Degradation {
            switch self {
            case .denoise: .identity
            case .inpaint(let mask): .mask(mask)
            case .superResolve4: .areaDownsample4
            }
        }

        /// What the loss compares with: the degraded image itself, with the missing pixels zeroed.
        func observed(_ degraded: [Float]) -> [Float] {
            guard case .inpaint(let mask) = self else { return degraded }
            let plane = mask.count
            return degraded.indices.map { degraded[$0] * mask[$0 % plane] }
        }
    }

    public var network: PriorNetwork = .unet
    public var iterations = 500
    /// Adam's learning rate (the paper's 0.01).
    public var learningRate: Float = 0.01
    /// The fixed input: uniform noise in [0, scale) (the paper's 1/10).
    public var inputNoiseScale: Float = 0.1
    /// Standard deviation of the Gaussian perturbation added to the input at every
    /// iteration (the paper's 1/30 for denoising), a regulariser.
    public var perturbation: Float = 1.0 / 30
    /// Weight of an anisotropic total-variation term on the output (0: none).
    public var totalVariation: Float = 0
    /// The result is the exponential average of the outputs with this decay (the paper's 0.99).
    public var averaging: Float = 0.99
    public var seed: UInt64 = 0
    public var threads = 2

    public init() {}

    /// Restores `degraded` ([1, 3, h, w], values in [0, 1]). `progress(iteration, loss)` is
    /// called after each iteration; returning false cancels (throws `TrainingError.cancelled`).
    /// Returns [1, 3, H, W]: h × w, or 4h × 4w for `.superResolve4`.
    public func restore(_ degraded: HostTensor, task: Task,
                        progress: (Int, Float) -> Bool = { _, _ in true }) throws -> HostTensor {
        guard degraded.rank == 4, degraded.shape[0] == 1, degraded.shape[1] == 3 else {
            throw TrainingError.shapeMismatch(what: "the degraded image", expected: [1, 3, -1, -1], found: degraded.shape)
        }
        let (h, w) = (degraded.shape[2], degraded.shape[3])
        let factor = task == .superResolve4 ? 4 : 1
        let (height, width) = (h * factor, w * factor)
        // The generators need sizes that are multiples of their stride; the padding takes
        // no part in the loss and is cropped off.
        let multiple = network.multiple
        let (paddedHeight, paddedWidth) = ((height + multiple - 1) / multiple * multiple,
                                           (width + multiple - 1) / multiple * multiple)
        let plane = paddedHeight * paddedWidth
        if case .inpaint(let mask) = task, mask.count != h * w {
            throw TrainingError.shapeMismatch(what: "the mask", expected: [h, w], found: [mask.count])
        }
        let loss = try DegradedMSE(degradation: task.degradation, observed: task.observed(degraded.floats),
                                   layout: PlanarLayout(height: height, width: width, rowStride: paddedWidth,
                                                        planeStride: plane))

        let model = try Model(graph: network.graph(height: paddedHeight, width: paddedWidth, seed: seed))
        let trained = try TrainableWeights(model: model, trainable: ["*"])
        let optimizer = Optimizer(rule: .adam(), groups: [ParameterGroup(parameters: Array(trained.names.indices),
                                                                            learningRate: learningRate)],
                                  sizes: trained.sizes)
        let inputShape = [1, PriorNetwork.inputChannels, paddedHeight, paddedWidth]
        let trainer = try Trainer(model: model, inputShapes: [inputShape], weights: trained, optimizer: optimizer,
                                  threads: threads)
        var random = SeededGenerator(seed: seed &+ 0x5EED)
        let pool = ThreadPool(threads: threads)
        let noise = (0..<inputShape.reduce(1, *)).map { _ in random.nextUnitFloat() * inputNoiseScale }
        var perturbed = noise
        var average = [Float](repeating: 0, count: 3 * plane)
        var averageWeight: Float = 0

        for iteration in 0..<iterations {
            if perturbation > 0 { perturb(&perturbed, noise: noise, random: &random, pool: pool) }
            let value = trainer.step(inputs: [HostTensor(shape: inputShape, floats: perturbed)]) { output, gradient in
                var value = loss.evaluate(output, gradient: gradient)
                if totalVariation > 0 {
                    value += addTotalVariation(output, gradient: gradient, size: (height, width),
                                               padded: (paddedHeight, paddedWidth))
                }
                // Bias-corrected exponential average of the outputs.
                averageWeight = averaging * averageWeight + (1 - averaging)
                for i in 0..<average.count { average[i] = averaging * average[i] + (1 - averaging) * output[i] }
                return value
            }
            guard progress(iteration + 1, value) else { throw TrainingError.cancelled }
        }
        var result = [Float](repeating: 0, count: 3 * height * width)
        let correction = averageWeight > 0 ? 1 / averageWeight : 1
        for c in 0..<3 {
            for y in 0..<height {
                for x in 0..<width {
                    result[(c * height + y) * width + x] = average[(c * paddedHeight + y) * paddedWidth + x] * correction
                }
            }
        }
        return HostTensor(shape: [1, 3, height, width], floats: result)
    }

    /// perturbed = noise + perturbation · N(0, 1), one Box–Muller pair per two elements.
    /// The uniforms are drawn in order on this thread, then transformed in parallel, 8
    /// pairs at a time with libmvec on AVX2: done serially with scalar logf/sinf/cosf, the
    /// 2 M values of a 256² iteration took 55 of its 534 ms (loaded machine). The values
    /// do not depend on the thread count.
    private func perturb(_ perturbed: inout [Float], noise: [Float], random: inout SeededGenerator, pool: ThreadPool) {
        let count = perturbed.count, pairs = count / 2
        let scale = perturbation
        perturbed.withUnsafeMutableBufferPointer { perturbed in
            guard let values = perturbed.baseAddress else { return }
            for pair in 0..<pairs { (values[2 * pair], values[2 * pair + 1]) = random.nextGaussianUniforms() }
            noise.withUnsafeBufferPointer { noise in
                guard let noise = noise.baseAddress else { return }
                // Whole blocks of 8 pairs per chunk, so the vector kernel covers all but the last few.
                pool.parallelFor((pairs + 7) / 8, minimumChunk: 1 << 9) { blocks in
                    var range = (blocks.lowerBound * 8)..<Swift.min(blocks.upperBound * 8, pairs)
                    if CPUFeatures.level >= .avx2 {
                        let vectorPairs = range.count / 8 * 8
                        restore_gaussian_pairs_avx2(values + 2 * range.lowerBound, noise + 2 * range.lowerBound, scale,
                                                    vectorPairs)
                        range = (range.lowerBound + vectorPairs)..<range.upperBound
                    }
                    for pair in range {
                        let (a, b) = SeededGenerator.gaussianPair(values[2 * pair], values[2 * pair + 1])
                        values[2 * pair] = noise[2 * pair] + scale * a
                        values[2 * pair + 1] = noise[2 * pair + 1] + scale * b
                    }
                }
                if count % 2 == 1 { values[count - 1] = noise[count - 1] + scale * random.nextGaussianPair().0 }
            }
        }
    }

    /// Adds totalVariation · mean(|∂x| + |∂y|) over the image area to the loss gradient
    /// and returns the term.
    private func addTotalVariation(_ output: UnsafeBufferPointer<Float>, gradient: UnsafeMutableBufferPointer<Float>,
                                   size: (Int, Int), padded: (Int, Int)) -> Float {
        let (height, width) = size, (paddedHeight, paddedWidth) = padded
        let scale = totalVariation / Float(3 * height * width)
        var total: Float = 0
        for c in 0..<3 {
            for y in 0..<height {
                for x in 0..<width {
                    let index = (c * paddedHeight + y) * paddedWidth + x
                    for neighbour in [x + 1 < width ? index + 1 : nil, y + 1 < height ? index + paddedWidth : nil] {
                        guard let neighbour else { continue }
                        let difference = output[neighbour] - output[index]
                        total += abs(difference)
                        let sign: Float = difference > 0 ? 1 : (difference < 0 ? -1 : 0)
                        gradient[neighbour] += scale * sign
                        gradient[index] -= scale * sign
                    }
                }
            }
        }
        return total * scale
    }
}

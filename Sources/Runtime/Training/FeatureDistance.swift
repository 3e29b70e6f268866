import Foundation

/// The L1 distance between a feature network's features of the degraded output and of the
/// degraded image — Deep Generative Prior's discriminator loss. The network (the
/// generator's discriminator, exported as docs/dgp.md describes) takes an image
/// [1, 3, H, W] in [−1, 1] and returns, as output 0, the features it compares: the chosen
/// intermediate outputs, flattened and concatenated. The loss is `weight` · mean|f(A·x) − f(y)|
/// over that vector.
///
/// What the network sees of a degraded image is an image again, as in DGP: the gray plane
/// repeated into R, G and B; the masked image; for super-resolution the low-resolution
/// image bilinearly upsampled ×4.
public final class FeatureDistance {
    public let model: Model
    public let weight: Float
    private let plan: GradientPlan
    private let inputShape: [Int]

    public init(model: Model, imageSize: (height: Int, width: Int), weight: Float = 1, threads: Int) throws {
        guard let input = model.graph.inputs.first, model.graph.inputs.count == 1 else {
            throw GeneratorError.notAGenerator(inputs: model.graph.inputs.map(\.name))
        }
        self.model = model
        self.weight = weight
        inputShape = [1, 3, imageSize.height, imageSize.width]
        plan = try GradientPlan(model: model, inputShapes: [inputShape], parameters: [], wantedInputs: [input.name],
                                threads: threads)
    }

    /// f(expanded y) for the observed (degraded) image y.
    func target(observed: [Float], degradation: Degradation, layout: PlanarLayout) throws -> [Float] {
        let image = expand(observed, degradation: degradation, layout: layout)
        return plan.forward(inputs: [HostTensor(shape: inputShape, floats: image)], parameters: []).floats
    }

    /// weight · mean|f(expanded A·x) − target|; with `gradient`, adds its gradient with
    /// respect to x there.
    func evaluate(_ image: UnsafeBufferPointer<Float>, target: [Float], degradation: Degradation, layout: PlanarLayout,
                  addingGradientTo gradient: UnsafeMutableBufferPointer<Float>?) throws -> Float {
        let input = HostTensor(shape: inputShape,
                               floats: expand(degradation.apply(image, layout: layout), degradation: degradation, layout: layout))
        guard let gradient else {
            let features = plan.forward(inputs: [input], parameters: [])
            var total: Float = 0
            for (a, b) in zip(features.floats, target) { total += abs(a - b) }
            return weight * total / Float(max(target.count, 1))
        }
        let value = plan.run(inputs: [input], parameters: []) { features, featureGradient in
            target.withUnsafeBufferPointer { target in
                Loss.l1.evaluate(output: features, target: target, gradient: featureGradient)
            }
        }
        let inputGradient = plan.inputGradient(0)
        let observedGradient = expandAdjoint(inputGradient, degradation: degradation, layout: layout, scale: weight)
        degradation.addAdjoint(observedGradient, to: gradient, layout: layout)
        return weight * value
    }

    /// The observed image as a [3, H, W] image.
    private func expand(_ observed: [Float], degradation: Degradation, layout: PlanarLayout) -> [Float] {
        let plane = layout.height * layout.width
        switch degradation {
        case .identity, .mask: return observed
        case .grayscale: return observed + observed + observed
        case .areaDownsample4, .bilinearDownsample4:
            let upsample = SeparableResize(from: (layout.height / 4, layout.width / 4), to: (layout.height, layout.width),
                                           filter: .triangle)
            let result = upsample.resize(observed, count: 3)
            precondition(result.count == 3 * plane)
            return result
        }
    }

    /// The transpose of `expand`, times `scale`.
    private func expandAdjoint(_ g: UnsafeBufferPointer<Float>, degradation: Degradation, layout: PlanarLayout,
                               scale: Float) -> [Float] {
        let plane = layout.height * layout.width
        switch degradation {
        case .identity, .mask: return g.map { $0 * scale }
        case .grayscale: return (0..<plane).map { scale * (g[$0] + g[plane + $0] + g[2 * plane + $0]) }
        case .areaDownsample4, .bilinearDownsample4:
            let (h, w) = (layout.height / 4, layout.width / 4)
            let upsample = SeparableResize(from: (h, w), to: (layout.height, layout.width), filter: .triangle)
            var result = [Float](repeating: 0, count: 3 * h * w)
            let scaled = g.map { $0 * scale }
            result.withUnsafeMutableBufferPointer { result in
                for c in 0..<3 {
                    upsample.addAdjoint(scaled, offset: c * plane, into: result, plane: c, layout: PlanarLayout(height: h, width: w))
                }
            }
            return result
        }
    }
}

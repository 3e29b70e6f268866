import Format

/// A restoration contract's mapping between pixels (0…1, planar RGB) and model values, as
/// `Restorer` applies it: model input = (pixel·(high − low) + low − mean) / std, and the
/// restored pixel = ((output [+ input when residual])·std + mean − low) / (high − low).
/// Training losses in pixel space go through the same mapping, so their MSE is the one
/// PSNR is computed from (before clipping and quantisation).
public struct PixelSpace: Sendable {
    public let contract: RestorationContract

    public init(contract: RestorationContract) { self.contract = contract }

    /// The model input of planar RGB pixels ([1, 3, h, w] values, channel-major).
    public func modelInput(_ pixels: [Float], planeSize: Int) -> [Float] {
        let (low, high) = contract.range.bounds
        return pixels.indices.map { i in
            let c = i / planeSize
            return (pixels[i] * (high - low) + low - contract.mean[c]) / contract.std[c]
        }
    }

    /// The restored pixels of a model output (not clipped); `input` is the model input,
    /// added back for residual models (same size: residual models have scale 1).
    public func restoredPixels(output: UnsafeBufferPointer<Float>, input: [Float]) -> [Float] {
        let plane = output.count / 3
        let (low, high) = contract.range.bounds
        return (0..<output.count).map { i in
            let c = i / plane
            let value = output[i] + (contract.residual ? input[i] : 0)
            return (value * contract.std[c] + contract.mean[c] - low) / (high - low)
        }
    }

    /// mean((restored − clean)²) over the pixels, writing ∂L/∂output.
    public func meanSquaredError(output: UnsafeBufferPointer<Float>, input: [Float], clean: [Float],
                                 gradient: UnsafeMutableBufferPointer<Float>) -> Float {
        precondition(output.count == clean.count && gradient.count == output.count, "pixel loss of tensors of different sizes")
        let restored = restoredPixels(output: output, input: input)
        let plane = output.count / 3
        let (low, high) = contract.range.bounds
        let scale = 2 / Float(max(output.count, 1))
        var total = 0.0
        for i in 0..<output.count {
            let difference = restored[i] - clean[i]
            total += Double(difference * difference)
            // d restored / d output = std / (high − low).
            gradient[i] = scale * difference * contract.std[i / plane] / (high - low)
        }
        return Float(total / Double(max(output.count, 1)))
    }
}

import Format

/// Pieces the BigGAN generators share, emitted through the builder: a class-conditional
/// batch norm folded into two linears of the condition, SAGAN's self-attention as one
/// `attention` op, nearest ×2 upsampling, and a fixed per-channel affine.
extension GraphBuilder {
    /// (x − m)/√(v + ε)·(1 + G·c) + B·c, per sample and channel, as x·a(c) + b(c) with
    /// a = r + (r·G)·c and b = (B − m·r·G)·c − m·r (r = 1/√(v + ε)): two `linear`s of the
    /// condition c [batch, width] instead of a normalisation per call. `gain` and `bias` are
    /// G and B, [channels, width] row-major.
    mutating func conditionalNorm(_ x: String, condition: String, mean: [Float], variance: [Float], epsilon: Float,
                                  gain: [Float], bias: [Float], conditionWidth width: Int, name: String) -> String {
        let channels = mean.count
        var aWeight = [Float](repeating: 0, count: channels * width), bWeight = aWeight
        var aBias = [Float](repeating: 0, count: channels), bBias = aBias
        for channel in 0..<channels {
            let r = 1 / (variance[channel] + epsilon).squareRoot()
            aBias[channel] = r
            bBias[channel] = -mean[channel] * r
            for column in 0..<width {
                let index = channel * width + column
                aWeight[index] = r * gain[index]
                bWeight[index] = bias[index] - mean[channel] * r * gain[index]
            }
        }
        let a = linear(condition, weight: addConstant(name + ".a.weight", shape: [channels, width], floats: aWeight),
                       bias: addConstant(name + ".a.bias", shape: [channels], floats: aBias), name: name + ".a")
        let b = linear(condition, weight: addConstant(name + ".b.weight", shape: [channels, width], floats: bWeight),
                       bias: addConstant(name + ".b.bias", shape: [channels], floats: bBias), name: name + ".b")
        let perChannel = UnsqueezeAttributes(axes: [2, 3])
        let scaled = binary(.mul, x, emitValue(named: name + ".a4", .unsqueeze(perChannel), inputs: [a]), name: name + ".scaled")
        return binary(.add, scaled, emitValue(named: name + ".b4", .unsqueeze(perChannel), inputs: [b]), name: name)
    }

    /// x·scale + shift with per-channel constants (an unconditional norm in evaluation mode).
    mutating func channelAffine(_ x: String, scale: [Float], shift: [Float], name: String) -> String {
        let channels = scale.count
        let scaled = binary(.mul, x, addConstant(name + ".scale", shape: [1, channels, 1, 1], floats: scale), name: name + ".scaled")
        return binary(.add, scaled, addConstant(name + ".shift", shape: [1, channels, 1, 1], floats: shift), name: name)
    }

    /// SAGAN's self-attention as BigGAN uses it: θ, φ, g 1×1 convolutions (φ and g max-pooled
    /// 2×2), softmax(θᵀ·φ) over the pooled positions applied to g, the output convolution
    /// `output` (already scaled by γ) and the residual. `channels` C, the map `size`×`size`;
    /// the weights are constants [C/8, C, 1, 1] (θ, φ), [C/2, C, 1, 1] (g), [C, C/2, 1, 1] (output).
    mutating func selfAttention(_ x: String, theta: String, phi: String, g: String, output: String,
                                channels: Int, size: Int, name: String) -> String {
        // [batch, C', H, W] → [batch, positions, C'].
        func positionsFirst(_ value: String, _ width: Int) -> String {
            let flat = reshaped(value, [0, width, -1])
            return emitValue(named: value + ".t", .transpose(TransposeAttributes(perm: [0, 2, 1])), inputs: [flat])
        }
        var pool = PoolAttributes()
        pool.kernelShape = [2, 2]
        pool.window.strides = [2, 2]
        let queries = positionsFirst(conv(x, weight: theta, name: name + ".theta"), channels / 8)
        let keys = positionsFirst(emitValue(named: name + ".phi.pool", .maxPool(pool),
                                            inputs: [conv(x, weight: phi, name: name + ".phi")]), channels / 8)
        let values = positionsFirst(emitValue(named: name + ".g.pool", .maxPool(pool),
                                              inputs: [conv(x, weight: g, name: name + ".g")]), channels / 2)
        let attended = emitValue(named: name + ".attention", .attention(AttentionAttributes(scale: 1)),
                                 inputs: [queries, keys, values])
        let channelsFirst = emitValue(named: name + ".attention.t", .transpose(TransposeAttributes(perm: [0, 2, 1])),
                                      inputs: [attended])
        let map = reshaped(channelsFirst, [0, channels / 2, size, size])
        return binary(.add, x, conv(map, weight: output, name: name + ".o"), name: name + ".out")
    }

    /// `x` reshaped to `shape` (0 copies the input's dimension, −1 is inferred).
    mutating func reshaped(_ x: String, _ shape: [Int]) -> String {
        let target = addConstant(x + ".shape", shape: [shape.count], ints: shape)
        return emitValue(named: x + ".r", .reshape(ReshapeAttributes()), inputs: [x, target])
    }

    /// Nearest-neighbour ×2, as F.interpolate(scale_factor=2, mode="nearest"): source pixel ⌊y/2⌋.
    mutating func upsampledNearest(_ x: String) -> String {
        var attributes = ResizeAttributes()
        attributes.mode = .nearest
        attributes.coordinateTransformationMode = .asymmetric
        attributes.nearestMode = .floor
        let scales = addConstant(x + ".scales", shape: [4], floats: [1, 1, 2, 2])
        return emitValue(named: x + ".up", .resize(attributes), inputs: [x, scales])
    }

    /// The channels [start, end) of an NCHW value.
    mutating func channelSlice(_ x: String, _ range: Range<Int>, name: String) -> String {
        let starts = addConstant(name + ".starts", shape: [1], ints: [range.lowerBound])
        let ends = addConstant(name + ".ends", shape: [1], ints: [range.upperBound])
        let axes = addConstant(name + ".axes", shape: [1], ints: [1])
        return emitValue(named: name, .slice, inputs: [x, starts, ends, axes])
    }
}

extension ConvAttributes {
    /// Stride 1 with `pad` zeros on every side.
    static func padded(_ pad: Int) -> ConvAttributes {
        var attributes = ConvAttributes()
        attributes.window.pads = [pad, pad, pad, pad]
        return attributes
    }
}

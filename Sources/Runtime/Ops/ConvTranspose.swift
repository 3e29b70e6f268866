import Format

/// `convTranspose`: the transpose (gradient) of a 2-D convolution: each input pixel
/// scatters its weighted kernel into the output, with strides, padding, dilation, groups,
/// output padding, bias and a fused activation.
public struct TransposedConvolution: GroupedConvolution {
    let name: String
    let window: SlidingWindow
    let group: Int
    let outputPadding: [Int]
    let epilogue: ConvolutionEpilogue

    init(name: String, attributes: ConvTransposeAttributes) {
        self.name = name
        window = attributes.window
        group = attributes.group
        outputPadding = attributes.outputPadding
        epilogue = ConvolutionEpilogue(activation: attributes.activation, residualBeforeActivation: false)
    }

    /// Checks X [N,C,H,W] against W [C,M/group,kH,kW] and resolves the window.
    func geometry(input: [Int], weight: [Int]) throws -> WindowGeometry {
        guard input.count == 4, weight.count == 4, input[1] == weight[0], weight[0] % group == 0 else {
            throw OpError.shape(node: name, "convTranspose needs X [N,C,H,W] and W [C,M/group,kH,kW] with C divisible by group \(group), found \(input) and \(weight)")
        }
        return try WindowGeometry.transposed(window, kernel: (weight[2], weight[3]), input: (input[2], input[3]),
                                             outputPadding: outputPadding, node: name)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let (x, w, g) = try operandShapes(inputs)
        let shape = [x[0], w[1] * group, g.outputHeight, g.outputWidth]
        try epilogue.check(bias: inputs.count > 2 ? inputs[2]?.shape : nil, residual: nil, output: shape, node: name)
        return [ValueFact(dtype: .float32, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let (x, w, g, shape, channels) = try referenceOperands(inputs)
        let (batch, outChannels) = (shape[0], shape[1])
        let groupIn = channels / group, groupOut = outChannels / group
        var y = [Float](repeating: 0, count: shape.reduce(1, *))
        for n in 0..<batch {
            for c in 0..<channels {
                let firstOutput = (c / groupIn) * groupOut
                for iy in 0..<g.inputHeight {
                    for ix in 0..<g.inputWidth {
                        let value = x[((n * channels + c) * g.inputHeight + iy) * g.inputWidth + ix]
                        for m in 0..<groupOut {
                            g.forEachTap(at: (iy, ix), inside: (g.outputHeight, g.outputWidth)) { ky, kx, oy, ox in
                                let wIndex = ((c * groupOut + m) * g.kernelHeight + ky) * g.kernelWidth + kx
                                y[((n * outChannels + firstOutput + m) * g.outputHeight + oy) * g.outputWidth + ox] += value * w[wIndex]
                            }
                        }
                    }
                }
            }
        }
        epilogue.applyReference(to: &y, channels: outChannels, planeSize: g.outputPixels,
                                bias: inputs.count > 2 ? inputs[2]?.floats : nil, residual: nil)
        return [HostTensor(shape: shape, floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let (x, _, g) = try operandShapes(inputs)
        return TransposedConvolutionKernel(
            batch: x[0], inChannels: x[1], outChannels: outputs[0].shape[1], group: group, geometry: g,
            hasBias: inputs.count > 2 && inputs[2] != nil, epilogue: epilogue)
    }
}

/// The fast transposed convolution: per tile of input pixels, one GEMM Wᵀ·X gives the
/// column matrix (output channel, ky, kx) × pixels in scratch, and col2im adds each
/// column row into the output plane it lands on.
///
/// Tiles over input pixels bound the scratch (a full column matrix of a 64-channel 4×4
/// upsampler at 256×256 would be 256 MB). Work items are (image, group, block of output
/// channels): different items write different output planes, so the scatter-adds of
/// parallel workers never collide; channels are split into blocks only when there are
/// fewer images × groups than workers.
struct TransposedConvolutionKernel: Kernel {
    let batch: Int, inChannels: Int, outChannels: Int, group: Int
    let geometry: WindowGeometry
    let hasBias: Bool
    let epilogue: ConvolutionEpilogue
    /// Output channels per work item, and input pixels per tile.
    let channelBlock: Int, tilePixels: Int

    init(batch: Int, inChannels: Int, outChannels: Int, group: Int, geometry: WindowGeometry,
         hasBias: Bool, epilogue: ConvolutionEpilogue) {
        self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
        self.group = group; self.geometry = geometry; self.hasBias = hasBias; self.epilogue = epilogue
        let groupOut = outChannels / group
        let blocks = batch * group >= ScratchSlots.slotCount ? 1 : min(groupOut, ScratchSlots.slotCount)
        channelBlock = (groupOut + blocks - 1) / blocks
        // Same tile budget as the convolution's im2col (see ConvolutionKernel.tileBytes).
        let rows = channelBlock * geometry.kernelPixels
        let fit = ConvolutionKernel.tileBytes / (MemoryLayout<Float>.size * rows)
        tilePixels = min(geometry.inputPixels, max(16, fit / 16 * 16))
    }

    private var slotBytes: Int {
        (channelBlock * geometry.kernelPixels * tilePixels * MemoryLayout<Float>.size + 63) / 64 * 64
    }

    var scratchBytes: Int { ScratchSlots.slotCount * slotBytes }

    func run(_ io: KernelIO) {
        let g = geometry
        let groupIn = inChannels / group, groupOut = outChannels / group
        let blocks = (groupOut + channelBlock - 1) / channelBlock
        let x = io.input(0), w = io.input(1), y = io.outputs[0]
        let bias = hasBias ? io.inputs[2] : nil
        guard let scratch = io.scratch else { preconditionFailure("convTranspose kernel ran without scratch") }
        ScratchSlots.run(items: batch * group * blocks, pool: io.pool) { slot, item in
            let block = item % blocks, groupIndex = item / blocks % group, n = item / blocks / group
            let firstChannel = block * channelBlock
            let channels = min(channelBlock, groupOut - firstChannel)
            guard channels > 0 else { return }
            let rows = channels * g.kernelPixels
            let outputChannel = groupIndex * groupOut + firstChannel
            let output = y + (n * outChannels + outputChannel) * g.outputPixels
            output.update(repeating: 0, count: channels * g.outputPixels)
            let columns = (scratch + slot * slotBytes).assumingMemoryBound(to: Float.self)
            let input = x + (n * inChannels + groupIndex * groupIn) * g.inputPixels
            // W of the group is [groupIn × groupOut·kH·kW]; its transpose's rows for this block.
            let weights = w + groupIndex * groupIn * groupOut * g.kernelPixels + firstChannel * g.kernelPixels
            var firstPixel = 0
            while firstPixel < g.inputPixels {
                let pixels = min(tilePixels, g.inputPixels - firstPixel)
                GEMM.multiply(m: rows, n: pixels, k: groupIn,
                              a: weights, lda: groupOut * g.kernelPixels, transposeA: true,
                              b: input + firstPixel, ldb: g.inputPixels,
                              c: columns, ldc: pixels)
                col2im(columns, firstPixel: firstPixel, pixels: pixels, channels: channels, into: output)
                firstPixel += pixels
            }
            for channel in 0..<channels {
                let plane = output + channel * g.outputPixels
                for oy in 0..<g.outputHeight {
                    epilogue.apply(to: plane + oy * g.outputWidth, count: g.outputWidth,
                                   bias: bias?[outputChannel + channel] ?? 0, residual: nil)
                }
            }
        }
    }

    /// Adds the column rows (channel, ky, kx) × input pixels firstPixel..<firstPixel+pixels
    /// into the output planes they land on.
    private func col2im(_ columns: UnsafeMutablePointer<Float>, firstPixel: Int, pixels: Int, channels: Int,
                        into output: UnsafeMutablePointer<Float>) {
        let g = geometry
        var row = UnsafePointer(columns)
        for channel in 0..<channels {
            let plane = output + channel * g.outputPixels
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let xOffset = kx * g.dilationX - g.padLeft
                    let valid = WindowGeometry.validRange(count: g.inputWidth, stride: g.strideX,
                                                          offset: xOffset, limit: g.outputWidth)
                    var pixel = firstPixel, read = 0
                    // One segment per input row the tile touches.
                    while read < pixels {
                        let iy = pixel / g.inputWidth, firstX = pixel % g.inputWidth
                        let length = min(g.inputWidth - firstX, pixels - read)
                        let oy = iy * g.strideY - g.padTop + ky * g.dilationY
                        if oy >= 0 && oy < g.outputHeight {
                            let destination = plane + oy * g.outputWidth
                            let source = row + read - firstX
                            let lower = max(valid.lowerBound, firstX), upper = min(valid.upperBound, firstX + length)
                            if lower < upper {
                                for ix in lower..<upper { destination[ix * g.strideX + xOffset] += source[ix] }
                            }
                        }
                        read += length
                        pixel += length
                    }
                    row += pixels
                }
            }
        }
    }
}

extension TransposedConvolution: Differentiable {
    /// Reads X and W, and the output when the activation's derivative follows from it
    /// (else the pre-activation is recomputed).
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues {
        var saved = SavedValues(inputs: [0, 1, 2])
        let activation = epilogue.activation
        if activation.function != .identity && activation.isDifferentiableFromOutput { saved.outputs = [0] }
        return saved
    }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let (x, w, g) = try operandShapes(inputs)
        // The forward convolution this op is the transpose of: from the output's grid back to
        // the input's, with the same stride, dilation, padding and groups, and W read as
        // convolution weights [C (its output channels), M/group, kH, kW].
        var window = SlidingWindow()
        window.strides = [g.strideY, g.strideX]
        window.dilations = [g.dilationY, g.dilationX]
        window.pads = [g.padTop, g.padLeft, g.padBottom, g.padRight]
        let dual = try WindowGeometry.forward(window, kernel: (g.kernelHeight, g.kernelWidth),
                                              input: (g.outputHeight, g.outputWidth), node: name)
        guard dual.outputHeight == g.inputHeight, dual.outputWidth == g.inputWidth else {
            throw OpError.unsupported(node: name, "gradient of a transposed convolution whose output padding reaches a further stride")
        }
        let hasBias = inputs.count > 2 && inputs[2] != nil
        let layout = ConvolutionKernel.Layout(batch: x[0], inChannels: w[1] * group, outChannels: x[1], group: group,
                                              geometry: dual, hasBias: false, hasResidual: false)
        return TransposedConvolutionBackward(
            forward: TransposedConvolutionKernel(batch: x[0], inChannels: x[1], outChannels: w[1] * group, group: group,
                                                 geometry: g, hasBias: hasBias,
                                                 epilogue: ConvolutionEpilogue(activation: .identity, residualBeforeActivation: false)),
            dual: layout, hasBias: hasBias, activation: epilogue.activation)
    }
}

/// The transposed convolution's backward rule, through the forward convolution it is the
/// transpose of (`dual`, from the output grid to the input grid):
///   G = ∂L/∂y · act′ (pre-activation recomputed by the forward kernel without activation
///   when act′ does not follow from y), ∂L/∂B += Σ G,
///   ∂L/∂X += dual(G; W), a forward convolution (the fast kernels),
///   ∂L/∂W += the dual convolution's weight gradient with G as its input and X as its
///   output gradient (the same sum Σ X[c, i]·G[m, i·s − p + k·d]), by `ConvolutionBackward`.
struct TransposedConvolutionBackward: BackwardKernel {
    let forward: TransposedConvolutionKernel
    let dual: ConvolutionKernel.Layout
    let hasBias: Bool
    let activation: Activation
    let inputKernel: any Kernel
    let weightRule: ConvolutionBackward

    init(forward: TransposedConvolutionKernel, dual: ConvolutionKernel.Layout, hasBias: Bool, activation: Activation) {
        self.forward = forward
        self.dual = dual
        self.hasBias = hasBias
        self.activation = activation
        let plain = ConvolutionEpilogue(activation: .identity, residualBeforeActivation: false)
        inputKernel = WinogradConvolutionKernel.suits(dual) ? WinogradConvolutionKernel(layout: dual, epilogue: plain)
            : ConvolutionKernel(layout: dual, epilogue: plain)
        weightRule = ConvolutionBackward(layout: dual, epilogue: plain)
    }

    private static func aligned(_ floats: Int) -> Int { (floats * MemoryLayout<Float>.size + 63) / 64 * 64 }
    private var outputCount: Int { dual.batch * dual.inChannels * dual.geometry.inputPixels }
    private var inputCount: Int { dual.batch * dual.outChannels * dual.geometry.outputPixels }
    private var gradientBytes: Int { activation.function == .identity ? 0 : Self.aligned(outputCount) }

    var scratchBytes: Int {
        gradientBytes + Swift.max(forward.scratchBytes, Self.aligned(inputCount) + inputKernel.scratchBytes, weightRule.scratchBytes)
    }

    func run(_ io: BackwardIO) {
        guard let scratch = io.scratch else { preconditionFailure("convTranspose backward ran without scratch") }
        let x = io.input(0), w = io.input(1)
        let outputGradient = io.outputGradient
        let count = outputCount
        let shared = scratch + gradientBytes
        // G: ∂L/∂(pre-activation).
        let gz: UnsafePointer<Float>
        if activation.function == .identity {
            gz = outputGradient
        } else {
            let buffer = scratch.assumingMemoryBound(to: Float.self)
            let activation = activation
            if activation.isDifferentiableFromOutput {
                let y = io.output(0)
                io.pool.parallelFor(count, minimumChunk: 1 << 14) { range in
                    for i in range { buffer[i] = outputGradient[i] * activation.derivative(fromOutput: y[i]) }
                }
            } else {
                forward.run(KernelIO(inputs: [x, w, hasBias ? io.inputs[2] : nil], outputs: [buffer], scratch: shared, pool: io.pool))
                io.pool.parallelFor(count, minimumChunk: 1 << 14) { range in
                    for i in range { buffer[i] = outputGradient[i] * activation.derivative(buffer[i]) }
                }
            }
            gz = UnsafePointer(buffer)
        }
        let channels = dual.inChannels, pixels = dual.geometry.inputPixels
        if hasBias, let target = io.inputGradient(2) {
            io.pool.parallelFor(channels) { range in
                for m in range {
                    var sum: Float = 0
                    for n in 0..<dual.batch {
                        let plane = gz + (n * channels + m) * pixels
                        for p in 0..<pixels { sum += plane[p] }
                    }
                    target[m] += sum
                }
            }
        }
        if let target = io.inputGradient(1) {
            weightRule.run(BackwardIO(inputs: [gz, w], outputs: [nil], outputGradients: [x], inputGradients: [nil, target],
                                      scratch: shared, pool: io.pool))
        }
        if let target = io.inputGradient(0) {
            let result = shared.assumingMemoryBound(to: Float.self)
            inputKernel.run(KernelIO(inputs: [gz, w, nil, nil], outputs: [result], scratch: shared + Self.aligned(inputCount),
                                     pool: io.pool))
            let total = inputCount
            io.pool.parallelFor(total, minimumChunk: 1 << 14) { range in
                for i in range { target[i] += result[i] }
            }
        }
    }
}

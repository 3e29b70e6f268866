import Format

/// `conv`: 2-D convolution of NCHW images with strides, padding, dilation and groups,
/// plus the bias, activation and residual add that fusion folds into it.
///
/// Y = act(conv(X, W) + B) + R, or act(conv(X, W) + B + R) with residualBeforeActivation.
public struct Convolution: GroupedConvolution {
    let name: String
    let window: SlidingWindow
    let group: Int
    let epilogue: ConvolutionEpilogue

    init(name: String, attributes: ConvAttributes) {
        self.name = name
        window = attributes.window
        group = attributes.group
        epilogue = ConvolutionEpilogue(activation: attributes.activation,
                                       residualBeforeActivation: attributes.residualBeforeActivation)
    }

    /// Checks X [N,C,H,W] against W [M,C/group,kH,kW] and resolves the window.
    func geometry(input: [Int], weight: [Int]) throws -> WindowGeometry {
        guard input.count == 4, weight.count == 4 else {
            throw OpError.shape(node: name, "conv needs X [N,C,H,W] and W [M,C/group,kH,kW], found \(input) and \(weight)")
        }
        guard input[1] == weight[1] * group, weight[0] % group == 0 else {
            throw OpError.shape(node: name, "X \(input) and W \(weight) do not fit group \(group)")
        }
        return try WindowGeometry.forward(window, kernel: (weight[2], weight[3]), input: (input[2], input[3]), node: name)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let (x, w, g) = try operandShapes(inputs)
        let shape = [x[0], w[0], g.outputHeight, g.outputWidth]
        try epilogue.check(bias: inputs.count > 2 ? inputs[2]?.shape : nil,
                           residual: inputs.count > 3 ? inputs[3]?.shape : nil,
                           output: shape, node: name)
        return [ValueFact(dtype: .float32, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let (x, w, g, shape, channels) = try referenceOperands(inputs)
        let (batch, outChannels) = (shape[0], shape[1])
        let groupIn = channels / group, groupOut = outChannels / group
        var y = [Float](repeating: 0, count: shape.reduce(1, *))
        for n in 0..<batch {
            for m in 0..<outChannels {
                let firstChannel = (m / groupOut) * groupIn
                for oy in 0..<g.outputHeight {
                    for ox in 0..<g.outputWidth {
                        var sum: Float = 0
                        for c in 0..<groupIn {
                            g.forEachTap(at: (oy, ox), inside: (g.inputHeight, g.inputWidth)) { ky, kx, iy, ix in
                                let xIndex = ((n * channels + firstChannel + c) * g.inputHeight + iy) * g.inputWidth + ix
                                let wIndex = ((m * groupIn + c) * g.kernelHeight + ky) * g.kernelWidth + kx
                                sum += x[xIndex] * w[wIndex]
                            }
                        }
                        y[((n * outChannels + m) * g.outputHeight + oy) * g.outputWidth + ox] = sum
                    }
                }
            }
        }
        epilogue.applyReference(to: &y, channels: outChannels, planeSize: g.outputPixels,
                                bias: inputs.count > 2 ? inputs[2]?.floats : nil,
                                residual: inputs.count > 3 ? inputs[3]?.floats : nil)
        return [HostTensor(shape: shape, floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        try kernel(inputs: inputs, outputs: outputs, constants: .none)
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact], constants: ConstantInputs) throws -> any Kernel {
        let (x, w, g) = try operandShapes(inputs)
        let layout = ConvolutionKernel.Layout(batch: x[0], inChannels: x[1], outChannels: w[0],
                                              group: group, geometry: g,
                                              hasBias: inputs.count > 2 && inputs[2] != nil,
                                              hasResidual: inputs.count > 3 && inputs[3] != nil)
        // 3×3 stride-1 convolutions with enough channels: Winograd, see WinogradConvolution.swift.
        // An int8 weight (convert --weights int8) of a 3×3 convolution still runs Winograd,
        // in f32 from filters transformed from the int8 values: F(4×4, 3×3) does 4× fewer
        // multiplications than the direct sum, which is what int8 products gain per
        // instruction with VNNI and more than they gain on AVX2 (docs/int8.md).
        if WinogradConvolutionKernel.suits(layout) {
            return WinogradConvolutionKernel(layout: layout, epilogue: epilogue, constants: constants)
        }
        return ConvolutionKernel(layout: layout, epilogue: epilogue,
                                 int8Weight: layout.group == 1 ? constants.int8Weights(1) : nil)
    }
}

/// `conv` and `convTranspose`: grouped window operators over X [N,C,H,W] and weights W,
/// whose reference kernels start the same way.
protocol GroupedConvolution: Operator {
    var name: String { get }
    var group: Int { get }
    /// Checks X's shape against W's and resolves the window.
    func geometry(input: [Int], weight: [Int]) throws -> WindowGeometry
}

extension GroupedConvolution {
    /// The shapes of X and W (inputs 0 and 1) and the window they resolve to.
    func operandShapes(_ inputs: [ValueFact?]) throws -> (x: [Int], w: [Int], geometry: WindowGeometry) {
        let x = try ShapeRules.required(inputs, 0, node: name).shape
        let w = try ShapeRules.required(inputs, 1, node: name).shape
        return (x, w, try geometry(input: x, weight: w))
    }

    /// X and W as floats, the window, the output shape and X's channel count, each
    /// checked as the shape rule checks them.
    func referenceOperands(_ inputs: [HostTensor?]) throws
        -> (x: [Float], w: [Float], geometry: WindowGeometry, shape: [Int], channels: Int) {
        guard let x = inputs.first ?? nil, let w = inputs.count > 1 ? inputs[1] : nil else {
            throw GraphError.missingInput(node: name, index: inputs.isEmpty ? 0 : 1)
        }
        let facts = inputs.map { $0.map { ValueFact(dtype: $0.dtype, shape: $0.shape) } }
        let shape = try outputs(for: facts)[0].shape
        return (x.floats, w.floats, try operandShapes(facts).geometry, shape, x.shape[1])
    }
}

/// What a convolution does to its result after the sum of products: add the bias, apply
/// the activation and add the residual before or after it. Applied per output row while
/// that row is still in cache.
struct ConvolutionEpilogue: Sendable {
    var activation: Activation
    var residualBeforeActivation: Bool

    /// Checks B [M] and R (shape of Y) when present.
    func check(bias: [Int]?, residual: [Int]?, output: [Int], node: String) throws {
        if let bias, bias != [output[1]] {
            throw OpError.shape(node: node, "bias has shape \(bias), expected [\(output[1])]")
        }
        if let residual, residual != output {
            throw OpError.shape(node: node, "residual has shape \(residual), expected the output's \(output)")
        }
    }

    /// The epilogue without a residual as max(x + bias, floor), when its activation allows
    /// (identity: floor −∞, ReLU: 0): kernels that hold outputs in registers apply it there.
    var floor: Float? {
        switch activation.function {
        case .identity: return -.infinity
        case .relu: return 0
        default: return nil
        }
    }

    /// Finishes `count` outputs of one channel starting at `output`.
    @inline(__always)
    func apply(to output: UnsafeMutablePointer<Float>, count: Int, bias: Float,
               residual: UnsafePointer<Float>?) {
        if let residual, residualBeforeActivation {
            for i in 0..<count { output[i] += bias + residual[i] }
        } else if bias != 0 {
            for i in 0..<count { output[i] += bias }
        }
        activation.apply(output, count: count)
        if let residual, !residualBeforeActivation {
            for i in 0..<count { output[i] += residual[i] }
        }
    }

    /// The same steps on a whole NCHW tensor, element by element (reference kernels).
    func applyReference(to y: inout [Float], channels: Int, planeSize: Int, bias: [Float]?, residual: [Float]?) {
        for index in y.indices {
            var value = y[index] + (bias?[(index / planeSize) % channels] ?? 0)
            if let residual, residualBeforeActivation { value += residual[index] }
            value = activation.apply(value)
            if let residual, !residualBeforeActivation { value += residual[index] }
            y[index] = value
        }
    }
}

/// The fast convolution: one of three strategies chosen from the shapes.
///
/// - pointwise (1×1, stride 1, no padding): each group's output is W·X directly, one GEMM
///   per tile of pixels, with X read in place.
/// - depthwise (one input channel per group): a direct loop per output row over the kernel
///   taps; a GEMM with K = kH·kW would waste most of its time packing.
/// - general: im2col of a tile of output pixels into per-worker scratch, then one GEMM per
///   tile and group. Tiles bound memory: a full-image im2col of a 512×512, 64-channel 3×3
///   conv would take 600 MB. On the AVX2 and AVX-512 paths the im2col writes the tile in
///   the GEMM kernel's packed panels, which the product reads as they are.
///
/// Work items are (image, group, pixel tile, block of output channels), spread over the
/// workers (channel blocks only when there are fewer tiles than workers); the epilogue runs
/// on each GEMM output tile right after it is written.
struct ConvolutionKernel: Kernel {
    struct Layout: Sendable {
        var batch: Int, inChannels: Int, outChannels: Int, group: Int
        var geometry: WindowGeometry
        var hasBias: Bool, hasResidual: Bool

        var groupIn: Int { inChannels / group }
        var groupOut: Int { outChannels / group }
        /// Rows of the im2col matrix: one per (input channel of the group, kernel tap).
        var columnRows: Int { groupIn * geometry.kernelPixels }
    }

    enum Strategy: Sendable { case pointwise, depthwise, im2col }

    let layout: Layout
    let epilogue: ConvolutionEpilogue
    let strategy: Strategy
    /// Output pixels per work item.
    let tilePixels: Int
    /// Output channels of a group per work item: all of them, unless the pixel tiles are
    /// too few to keep every worker busy; then each tile's GEMM is split by rows.
    let channelsPerItem: Int
    /// Per kernel column kx, the output columns whose tap lies inside the input row.
    let tapRanges: [Range<Int>]
    /// The GEMM kernel's panel width (16 on AVX2, 48 on AVX-512) when the im2col tile is
    /// written straight into its packed panels, nil for plain rows (the generic path's
    /// OpenBLAS, the int8 path, other strategies). Before, the tile was written as rows and
    /// the GEMM copied it into panels on every call; one pass does both: BigGAN-deep on
    /// AVX2, convolutions' im2col, copies and packing 10.1 → 8.7 % of samples (perf, 1 thread).
    let panelWidth: Int?
    /// An int8 W packed for `Int8GEMM` (pointwise and im2col strategies, one group): each
    /// tile's columns are quantised per output pixel, multiplied into a [pixels × M] tile
    /// and written back channel by channel; W's f32 input is not read.
    let int8Weight: Int8Weights?

    /// Target size of one worker's im2col tile. Measured on the 2-core AVX-512 EPYC (1 MB
    /// L2 per core, OpenBLAS Haswell kernels) with 64→64 channels 3×3 at 256², 32→32 at
    /// 512² and 256→256 at 64², minima of interleaved runs on a shared machine: 32 KB
    /// tiles were 2–3× slower than 1 MB (every GEMM call re-packs the weights, and narrow
    /// tiles give it few columns to amortise that over); 512 KB to 2 MB were within the
    /// noise of each other. 1 MB keeps scratch at about one L2 per worker. With it the
    /// im2col costs nothing measurable: 3×3 64→64 at 256² ran in 68 ms (71 GFLOP/s on two
    /// threads), the same GEMM without im2col (1×1, 576→64 channels) in 67 ms.
    static let tileBytes = 1024 * 1024
    /// Pointwise tiles are only for spreading work: OpenBLAS packs X itself.
    static let pointwiseTilePixels = 4096
    /// Fewest pixels per im2col tile, whatever the depth: four 48-column GEMM tiles. Deep,
    /// small convolutions such as UperNet's PPM bottleneck (25344 rows, 12×12 pixels)
    /// would otherwise get 16-pixel tiles that read the 52 MB weight matrix once each.
    static let minimumIm2colTilePixels = 192

    init(layout: Layout, epilogue: ConvolutionEpilogue, int8Weight: Int8Weights? = nil) {
        self.layout = layout
        self.epilogue = epilogue
        let g = layout.geometry
        tapRanges = (0..<g.kernelWidth).map { kx in
            WindowGeometry.validRange(count: g.outputWidth, stride: g.strideX,
                                      offset: kx * g.dilationX - g.padLeft, limit: g.inputWidth)
        }
        var tilePixels: Int
        if g.kernelPixels == 1 && g.strideY == 1 && g.strideX == 1
            && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0 {
            strategy = .pointwise
            tilePixels = min(g.outputPixels, Self.pointwiseTilePixels)
        } else if layout.groupIn == 1 && layout.group > 1 {
            strategy = .depthwise
            tilePixels = g.outputPixels
        } else {
            strategy = .im2col
            // A multiple of 16 pixels keeps GEMM's column blocks whole.
            let fit = Self.tileBytes / (MemoryLayout<Float>.size * layout.columnRows)
            tilePixels = min(g.outputPixels, max(Self.minimumIm2colTilePixels, fit / 16 * 16))
        }
        self.int8Weight = strategy == .depthwise || layout.group != 1 ? nil : int8Weight
        if strategy == .im2col, self.int8Weight == nil, GEMM.packs(), case .gemmPanels(let width, _) = GEMM.packedLayout {
            panelWidth = width
        } else {
            panelWidth = nil
        }
        if self.int8Weight != nil {
            // Whole tiles of all output channels (one GEMM each), enough to keep every worker busy.
            let share = (g.outputPixels * layout.batch + ScratchSlots.slotCount - 1) / ScratchSlots.slotCount
            let fit = Self.tileBytes / (MemoryLayout<Float>.size * max(layout.outChannels, layout.columnRows, 1))
            tilePixels = min(tilePixels, max(16, min(fit, (share / max(layout.batch, 1) + 15) / 16 * 16)))
            self.tilePixels = tilePixels
            channelsPerItem = layout.groupOut
            return
        }
        if strategy != .depthwise && layout.batch * layout.group == 1 {
            tilePixels = Self.evenTilePixels(tilePixels, pixels: g.outputPixels, workers: ScratchSlots.slotCount,
                                             pointwise: strategy == .pointwise)
        }
        self.tilePixels = tilePixels
        let tiles = (g.outputPixels + tilePixels - 1) / tilePixels
        let items = layout.batch * layout.group * tiles
        // One item per worker at least; each item of a split tile repeats its im2col.
        let wanted = ScratchSlots.slotCount
        if strategy != .depthwise && items < wanted {
            // Multiples of 8 rows keep GEMM's 8-row tiles whole.
            let share = (layout.groupOut * items + wanted - 1) / wanted
            channelsPerItem = min(layout.groupOut, max(8, (share + 7) / 8 * 8))
        } else {
            channelsPerItem = layout.groupOut
        }
    }

    /// Pixels per tile evened out so that an image's tiles come in a multiple of `workers`
    /// and have the same size, in multiples of 16 pixels. Before, BigGAN-deep's 3×3 convolutions at 16×16 ran as
    /// tiles of 192 + 64 or 224 + 32 pixels: on two threads one worker did three quarters
    /// or more of the work. A single tile is split by pixels only when pointwise with at
    /// least `minimumPointwiseWorkerPixels` per worker: its workers otherwise split the
    /// output channels, and each packed all of X for its share of rows (BigGAN's 64×64
    /// attention projections, 128 → 16 channels: 8 rows each, a 6-row and a 2-row tile of
    /// the AVX2 kernel). An im2col tile stays whole: its workers split the output
    /// channels, so that each reads half of W (UperNet's PPM bottleneck: 52 MB).
    static func evenTilePixels(_ tilePixels: Int, pixels: Int, workers: Int, pointwise: Bool) -> Int {
        let tiles = (pixels + tilePixels - 1) / tilePixels
        guard workers > 1,
              tiles > 1 || (pointwise && pixels >= workers * minimumPointwiseWorkerPixels) else { return tilePixels }
        let evened = (tiles + workers - 1) / workers * workers
        return min(tilePixels, ((pixels + evened - 1) / evened + 15) / 16 * 16)
    }

    /// Fewest pixels per worker for which a single pointwise tile is split by pixels.
    static let minimumPointwiseWorkerPixels = 256

    var scratchBytes: Int {
        strategy == .im2col || int8Weight != nil ? ScratchSlots.slotCount * slotBytes : 0
    }

    /// One worker's scratch: the im2col tile, then for int8 the quantised rows, their
    /// scales (and 2 floats per pixel of work), and the [pixels × M] product, each rounded to 64 bytes so every part starts aligned.
    private var slotBytes: Int { columnBytes + (int8Weight == nil ? 0 : int8Bytes.quantised + int8Bytes.scales + int8Bytes.product) }

    /// The im2col tile, its last panel filled up to the panel width.
    private var columnBytes: Int {
        let columns = panelWidth.map { (tilePixels + $0 - 1) / $0 * $0 } ?? tilePixels
        return strategy == .im2col ? Self.aligned(layout.columnRows * columns * MemoryLayout<Float>.size) : 0
    }

    private var int8Bytes: (quantised: Int, scales: Int, product: Int) {
        (Self.aligned(tilePixels * Int8GEMM.rowBytes(k: layout.columnRows)),
         Self.aligned(3 * tilePixels * MemoryLayout<Float>.size),
         Self.aligned(tilePixels * layout.outChannels * MemoryLayout<Float>.size))
    }

    private static func aligned(_ bytes: Int) -> Int { (bytes + 63) / 64 * 64 }

    func reads(input index: Int) -> Bool { index != 1 || int8Weight == nil }

    func run(_ io: KernelIO) {
        let l = layout, g = l.geometry
        let x = io.input(0)
        let bias = l.hasBias ? io.inputs[2] : nil
        let residual = l.hasResidual ? io.inputs[3] : nil
        let y = io.outputs[0]
        if let int8Weight {
            runInt8(io, int8Weight, bias: bias, residual: residual)
            return
        }
        let w = io.input(1)
        switch strategy {
        case .depthwise:
            io.pool.parallelFor(l.batch * l.outChannels) { planes in
                for plane in planes { depthwise(plane: plane, x: x, w: w, bias: bias, residual: residual, y: y) }
            }
        case .pointwise, .im2col:
            let tiles = (g.outputPixels + tilePixels - 1) / tilePixels
            let channelBlocks = (l.groupOut + channelsPerItem - 1) / channelsPerItem
            let scratch = io.scratch
            ScratchSlots.run(items: l.batch * l.group * tiles * channelBlocks, pool: io.pool) { slot, item in
                let channelBlock = item % channelBlocks, tileItem = item / channelBlocks
                let tile = tileItem % tiles, n = tileItem / tiles / l.group, groupIndex = tileItem / tiles % l.group
                let firstPixel = tile * tilePixels
                let pixels = min(tilePixels, g.outputPixels - firstPixel)
                let firstRow = channelBlock * channelsPerItem
                let rows = min(channelsPerItem, l.groupOut - firstRow)
                let groupInput = x + (n * l.inChannels + groupIndex * l.groupIn) * g.inputPixels
                let outputOffset = (n * l.outChannels + groupIndex * l.groupOut + firstRow) * g.outputPixels + firstPixel
                let weights = w + (groupIndex * l.groupOut + firstRow) * l.columnRows
                if strategy == .pointwise {
                    GEMM.multiply(m: rows, n: pixels, k: l.columnRows, a: weights, lda: l.columnRows,
                                  b: groupInput + firstPixel, ldb: g.inputPixels, c: y + outputOffset, ldc: g.outputPixels)
                } else {
                    guard let scratch else { preconditionFailure("conv im2col kernel ran without scratch") }
                    let tileBuffer = (scratch + slot * slotBytes).assumingMemoryBound(to: Float.self)
                    im2col(groupInput, firstPixel: firstPixel, pixels: pixels, panelWidth: panelWidth ?? pixels,
                           into: tileBuffer)
                    if panelWidth != nil {
                        GEMM.multiply(m: rows, n: pixels, k: l.columnRows, a: weights, lda: l.columnRows,
                                      packedB: tileBuffer, c: y + outputOffset, ldc: g.outputPixels)
                    } else {
                        GEMM.multiply(m: rows, n: pixels, k: l.columnRows, a: weights, lda: l.columnRows,
                                      b: tileBuffer, ldb: pixels, c: y + outputOffset, ldc: g.outputPixels)
                    }
                }
                for row in 0..<rows {
                    let channel = groupIndex * l.groupOut + firstRow + row
                    let offset = outputOffset + row * g.outputPixels
                    epilogue.apply(to: y + offset, count: pixels, bias: bias?[channel] ?? 0,
                                   residual: residual.map { $0 + offset })
                }
            }
        }
    }

    /// The int8 path: per tile of output pixels, its columns (X in place for pointwise,
    /// else im2col) quantised per pixel, one int8 GEMM [pixels × K]·[K × M], then each
    /// channel's row gathered into Y and finished by the epilogue.
    private func runInt8(_ io: KernelIO, _ weight: Int8Weights, bias: UnsafePointer<Float>?,
                         residual: UnsafePointer<Float>?) {
        let l = layout, g = l.geometry, x = io.input(0), y = io.outputs[0]
        guard let scratch = io.scratch else { preconditionFailure("int8 conv kernel ran without scratch") }
        let tiles = (g.outputPixels + tilePixels - 1) / tilePixels
        let parts = int8Bytes
        ScratchSlots.run(items: l.batch * tiles, pool: io.pool) { slot, item in
            let tile = item % tiles, n = item / tiles
            let firstPixel = tile * tilePixels
            let pixels = min(tilePixels, g.outputPixels - firstPixel)
            let input = x + n * l.inChannels * g.inputPixels
            let slotStart = scratch + slot * slotBytes
            let columns: UnsafePointer<Float>, columnStride: Int
            if strategy == .pointwise {
                columns = input + firstPixel
                columnStride = g.inputPixels
            } else {
                let tileBuffer = slotStart.assumingMemoryBound(to: Float.self)
                im2col(input, firstPixel: firstPixel, pixels: pixels, panelWidth: pixels, into: tileBuffer)
                columns = UnsafePointer(tileBuffer)
                columnStride = pixels
            }
            let q = (slotStart + columnBytes).assumingMemoryBound(to: Int8.self)
            let scales = (slotStart + columnBytes + parts.quantised).assumingMemoryBound(to: Float.self)
            let product = (slotStart + columnBytes + parts.quantised + parts.scales).assumingMemoryBound(to: Float.self)
            Int8GEMM.quantizeColumns(k: l.columnRows, n: pixels, x: columns, ldx: columnStride,
                                     into: q, scales: scales, work: scales + tilePixels)
            Int8GEMM.multiply(m: pixels, n: l.outChannels, k: l.columnRows, a: q, aScales: scales,
                              packedB: weight.packed, bScales: weight.scales, c: product, ldc: l.outChannels)
            for channel in 0..<l.outChannels {
                let offset = (n * l.outChannels + channel) * g.outputPixels + firstPixel
                let row = y + offset
                for pixel in 0..<pixels { row[pixel] = product[pixel * l.outChannels + channel] }
                epilogue.apply(to: row, count: pixels, bias: bias?[channel] ?? 0, residual: residual.map { $0 + offset })
            }
        }
    }

    /// Writes the im2col rows r = (input channel, ky, kx) × output pixels
    /// firstPixel..<firstPixel+pixels of one group into `columns`, zeros where the window
    /// falls in the padding, in panels of `panelWidth` pixels: pixel q of row r goes to
    /// (q / w)·w·K + r·w + q % w (K = `columnRows`), and the last panel is zero-filled up
    /// to w. With w = pixels that is plain rows [K × pixels]; with the GEMM kernel's tile
    /// width it is B as `GEMM.pack` packs it, so the product reads the tile without
    /// copying it again.
    func im2col(_ input: UnsafePointer<Float>, firstPixel: Int, pixels: Int, panelWidth: Int,
                into columns: UnsafeMutablePointer<Float>) {
        let l = layout, g = l.geometry
        let paddedPixels = (pixels + panelWidth - 1) / panelWidth * panelWidth
        var row = columns
        for c in 0..<l.groupIn {
            let plane = input + c * g.inputPixels
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let xOffset = kx * g.dilationX - g.padLeft
                    var cursor = PanelCursor(start: row, width: panelWidth, stride: panelWidth * l.columnRows)
                    var pixel = firstPixel, written = 0
                    // One segment per output row the tile touches.
                    while written < pixels {
                        let oy = pixel / g.outputWidth, firstX = pixel % g.outputWidth
                        let length = min(g.outputWidth - firstX, pixels - written)
                        let iy = oy * g.strideY - g.padTop + ky * g.dilationY
                        if iy < 0 || iy >= g.inputHeight {
                            cursor.zeros(length)
                        } else {
                            let source = plane + iy * g.inputWidth
                            let valid = WindowGeometry.validRange(count: g.outputWidth, stride: g.strideX,
                                                                  offset: xOffset, limit: g.inputWidth)
                            let lower = min(max(valid.lowerBound, firstX), firstX + length)
                            let upper = max(min(valid.upperBound, firstX + length), lower)
                            cursor.zeros(lower - firstX)
                            if g.strideX == 1 {
                                cursor.copy(source + lower + xOffset, upper - lower)
                            } else {
                                for ox in lower..<upper { cursor.copy(source + (ox &* g.strideX &+ xOffset), 1) }
                            }
                            cursor.zeros(firstX + length - upper)
                        }
                        written += length
                        pixel += length
                    }
                    cursor.zeros(paddedPixels - pixels)
                    row += panelWidth
                }
            }
        }
    }

    /// One output plane of a depthwise convolution, row by row: each row is summed over
    /// the kernel taps and finished by the epilogue while it is in L1.
    private func depthwise(plane: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                           bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                           y: UnsafeMutablePointer<Float>) {
        let l = layout, g = l.geometry
        let n = plane / l.outChannels, m = plane % l.outChannels
        let input = x + (n * l.inChannels + m / l.groupOut) * g.inputPixels
        let weights = w + m * g.kernelPixels
        let output = y + plane * g.outputPixels
        for oy in 0..<g.outputHeight {
            let outputRow = output + oy * g.outputWidth
            outputRow.update(repeating: 0, count: g.outputWidth)
            for ky in 0..<g.kernelHeight {
                let iy = oy * g.strideY - g.padTop + ky * g.dilationY
                guard iy >= 0 && iy < g.inputHeight else { continue }
                let inputRow = input + iy * g.inputWidth
                for kx in 0..<g.kernelWidth {
                    let weight = weights[ky * g.kernelWidth + kx]
                    let offset = kx * g.dilationX - g.padLeft
                    // Wrapping arithmetic: overflow checks in these loops stop vectorisation.
                    if g.strideX == 1 {
                        for ox in tapRanges[kx] { outputRow[ox] += weight * inputRow[ox &+ offset] }
                    } else {
                        for ox in tapRanges[kx] { outputRow[ox] += weight * inputRow[ox &* g.strideX &+ offset] }
                    }
                }
            }
            epilogue.apply(to: outputRow, count: g.outputWidth, bias: bias?[m] ?? 0,
                           residual: residual.map { $0 + plane * g.outputPixels + oy * g.outputWidth })
        }
    }
}

/// Where im2col writes the next column of one row of panels: the columns of a row are
/// written in order, so the position moves on without a division per run (a division
/// per run cost 1 % of BigGAN-deep's time on AVX2). Copies call memmove; zeros (the
/// padding, one or two pixels per output row) are a plain loop.
struct PanelCursor {
    private var position: UnsafeMutablePointer<Float>
    private var room: Int
    private let width: Int, skip: Int

    /// Column 0 of a row at `start`, in panels of `width` columns, `stride` floats apart.
    init(start: UnsafeMutablePointer<Float>, width: Int, stride: Int) {
        position = start
        room = width
        self.width = width
        skip = stride - width
    }

    /// Writes source[0..<count] to the next `count` columns.
    @inline(__always)
    mutating func copy(_ source: UnsafePointer<Float>, _ count: Int) {
        var done = 0
        while done < count {
            let chunk = min(room, count - done)
            position.update(from: source + done, count: chunk)
            advance(chunk)
            done += chunk
        }
    }

    /// Writes zeros to the next `count` columns.
    @inline(__always)
    mutating func zeros(_ count: Int) {
        var left = count
        while left > 0 {
            let chunk = min(room, left)
            for t in 0..<chunk { position[t] = 0 }
            advance(chunk)
            left -= chunk
        }
    }

    @inline(__always)
    private mutating func advance(_ count: Int) {
        position += count
        room -= count
        if room == 0 {
            position += skip
            room = width
        }
    }
}

extension Convolution: Differentiable {
    /// Reads X and W, the residual, and the output when the activation's derivative
    /// follows from it (else the pre-activation is recomputed).
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues {
        var saved = SavedValues(inputs: [0, 1, 2, 3])
        let activation = epilogue.activation
        if activation.function != .identity && activation.isDifferentiableFromOutput { saved.outputs = [0] }
        return saved
    }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let (x, w, g) = try operandShapes(inputs)
        let layout = ConvolutionKernel.Layout(batch: x[0], inChannels: x[1], outChannels: w[0],
                                              group: group, geometry: g,
                                              hasBias: inputs.count > 2 && inputs[2] != nil,
                                              hasResidual: inputs.count > 3 && inputs[3] != nil)
        return ConvolutionBackward(layout: layout, epilogue: epilogue)
    }
}

/// Convolution's backward rule.
///
///   G = ∂L/∂y · act′ (the pre-activation recomputed by a forward kernel without
///   activation when act′ does not follow from y), ∂L/∂B += Σ G, ∂L/∂R += ∂L/∂y or G.
///   ∂L/∂W += G·Cᵀ with C = im2col(X), over bands of output pixels so that C stays a
///   few MB: workers take whole bands, each with its own columns and its own partial
///   ∂W (small: M × C·kH·kW), summed at the end. Each band's product is computed as
///   ∂Wᵀ += C·Gᵀ: the GEMM packs its B operand, and Gᵀ (pixels × M) is 9× smaller than
///   Cᵀ for a 3×3 kernel, while C is read in place (X itself for a pointwise conv).
///   ∂L/∂X: for stride 1 without groups, a forward convolution of G with W flipped and
///   its channel axes swapped, padded by k − 1 − pad (so Winograd and the tiled GEMM
///   kernels do the work), into scratch and added; otherwise per band ∂C = Wᵀ·G and
///   col2im, with workers splitting ∂C's rows and then the input channels.
struct ConvolutionBackward: BackwardKernel {
    let layout: ConvolutionKernel.Layout
    let epilogue: ConvolutionEpilogue
    /// im2col of bands, and the forward kernel that recomputes the pre-activation.
    let columns: ConvolutionKernel
    let preActivation: ConvolutionKernel?
    /// ∂L/∂X as a forward convolution of G (stride 1, one group), and the flipped weights' size.
    let transposed: (any Kernel)?
    let bandPixels: Int

    /// About 1 MB of columns per band: long enough for GEMM's inner dimension (the band
    /// is the k of ∂W's product), small enough to stay in L2 beside the GEMM's panels.
    static let bandBytes = 1 << 20

    init(layout: ConvolutionKernel.Layout, epilogue: ConvolutionEpilogue) {
        self.layout = layout
        self.epilogue = epilogue
        columns = ConvolutionKernel(layout: layout, epilogue: epilogue)
        let activation = epilogue.activation
        if activation.function != .identity && !activation.isDifferentiableFromOutput {
            var plain = layout
            plain.hasResidual = layout.hasResidual && epilogue.residualBeforeActivation
            preActivation = ConvolutionKernel(layout: plain, epilogue: ConvolutionEpilogue(activation: .identity,
                                                                                          residualBeforeActivation: true))
        } else {
            preActivation = nil
        }
        let g = layout.geometry
        if g.strideY == 1 && g.strideX == 1 && layout.group == 1
            && g.padTop < g.kernelHeight * g.dilationY && g.padLeft < g.kernelWidth * g.dilationX
            && g.padBottom < g.kernelHeight * g.dilationY && g.padRight < g.kernelWidth * g.dilationX {
            var window = SlidingWindow()
            window.dilations = [g.dilationY, g.dilationX]
            let extentY = (g.kernelHeight - 1) * g.dilationY, extentX = (g.kernelWidth - 1) * g.dilationX
            window.pads = [extentY - g.padTop, extentX - g.padLeft, extentY - g.padBottom, extentX - g.padRight]
            var transposedLayout = layout
            transposedLayout.inChannels = layout.outChannels
            transposedLayout.outChannels = layout.inChannels
            transposedLayout.hasBias = false
            transposedLayout.hasResidual = false
            if let geometry = try? WindowGeometry.forward(window, kernel: (g.kernelHeight, g.kernelWidth),
                                                          input: (g.outputHeight, g.outputWidth), node: ""),
               geometry.outputHeight == g.inputHeight, geometry.outputWidth == g.inputWidth {
                transposedLayout.geometry = geometry
                transposed = WinogradConvolutionKernel.suits(transposedLayout)
                    ? WinogradConvolutionKernel(layout: transposedLayout, epilogue: ConvolutionEpilogue(activation: .identity,
                                                                                                      residualBeforeActivation: false))
                    : ConvolutionKernel(layout: transposedLayout, epilogue: ConvolutionEpilogue(activation: .identity,
                                                                                              residualBeforeActivation: false))
            } else {
                transposed = nil
            }
        } else {
            transposed = nil
        }
        let fit = Self.bandBytes / (MemoryLayout<Float>.size * Swift.max(layout.columnRows, 1))
        bandPixels = Swift.min(g.outputPixels, Swift.max(256, fit / 16 * 16))
    }

    private static func aligned(_ floats: Int) -> Int { (floats * MemoryLayout<Float>.size + 63) / 64 * 64 }
    private var outputCount: Int { layout.batch * layout.outChannels * layout.geometry.outputPixels }
    private var inputCount: Int { layout.batch * layout.inChannels * layout.geometry.inputPixels }
    private var weightCount: Int { layout.outChannels * layout.columnRows }
    /// Per worker slot: a band of columns, a band of ∂C and a partial ∂W.
    private var slotBytes: Int { 2 * Self.aligned(layout.columnRows * bandPixels) + Self.aligned(weightCount) }
    private var gradientBytes: Int { epilogue.activation.function == .identity ? 0 : Self.aligned(outputCount) }
    /// Flipped weights and ∂X for the transposed convolution, and its scratch.
    private var transposedBytes: Int {
        guard let transposed else { return 0 }
        return Self.aligned(weightCount) + Self.aligned(inputCount) + transposed.scratchBytes
    }

    var scratchBytes: Int {
        ScratchSlots.slotCount * slotBytes + gradientBytes
            + Swift.max(preActivation?.scratchBytes ?? 0, transposedBytes)
    }

    func run(_ io: BackwardIO) {
        let l = layout, g = l.geometry
        guard let scratch = io.scratch else { preconditionFailure("conv backward ran without scratch") }
        let slots = ScratchSlots.slotCount
        let gradientBuffer = (scratch + slots * slotBytes).assumingMemoryBound(to: Float.self)
        let shared = scratch + slots * slotBytes + gradientBytes
        let x = io.input(0), w = io.input(1)
        let outputGradient = io.outputGradient
        let count = outputCount
        // G: ∂L/∂(pre-activation).
        let gz: UnsafePointer<Float>
        let activation = epilogue.activation
        if activation.function == .identity {
            gz = outputGradient
        } else {
            if let preActivation {
                preActivation.run(KernelIO(inputs: [x, w, l.hasBias ? io.inputs[2] : nil,
                                                    l.hasResidual && epilogue.residualBeforeActivation ? io.inputs[3] : nil],
                                           outputs: [gradientBuffer], scratch: shared, pool: io.pool))
                io.pool.parallelFor(count, minimumChunk: 1 << 14) { range in
                    for i in range { gradientBuffer[i] = outputGradient[i] * activation.derivative(gradientBuffer[i]) }
                }
            } else {
                let y = io.output(0)
                let residual = l.hasResidual && !epilogue.residualBeforeActivation ? io.inputs[3] : nil
                io.pool.parallelFor(count, minimumChunk: 1 << 14) { range in
                    if let residual {
                        for i in range { gradientBuffer[i] = outputGradient[i] * activation.derivative(fromOutput: y[i] - residual[i]) }
                    } else {
                        for i in range { gradientBuffer[i] = outputGradient[i] * activation.derivative(fromOutput: y[i]) }
                    }
                }
            }
            gz = UnsafePointer(gradientBuffer)
        }
        if l.hasResidual, let target = io.inputGradient(3) {
            let source = epilogue.residualBeforeActivation ? gz : outputGradient
            io.pool.parallelFor(count, minimumChunk: 1 << 14) { range in
                for i in range { target[i] += source[i] }
            }
        }
        if l.hasBias, let target = io.inputGradient(2) {
            io.pool.parallelFor(l.outChannels) { range in
                for m in range {
                    var sum: Float = 0
                    for n in 0..<l.batch {
                        let plane = gz + (n * l.outChannels + m) * g.outputPixels
                        for p in 0..<g.outputPixels { sum += plane[p] }
                    }
                    target[m] += sum
                }
            }
        }
        if let target = io.inputGradient(1) { weightGradient(x: x, gz: gz, into: target, scratch: scratch, pool: io.pool) }
        guard let target = io.inputGradient(0) else { return }
        if let transposed {
            let flipped = shared.assumingMemoryBound(to: Float.self)
            let result = (shared + Self.aligned(weightCount)).assumingMemoryBound(to: Float.self)
            // W'[c, m, ky, kx] = W[m, c, kH−1−ky, kW−1−kx].
            let (kh, kw, taps) = (g.kernelHeight, g.kernelWidth, g.kernelPixels)
            for m in 0..<l.outChannels {
                for c in 0..<l.inChannels {
                    let source = w + (m * l.inChannels + c) * taps, destination = flipped + (c * l.outChannels + m) * taps
                    for ky in 0..<kh {
                        for kx in 0..<kw { destination[ky * kw + kx] = source[(kh - 1 - ky) * kw + (kw - 1 - kx)] }
                    }
                }
            }
            transposed.run(KernelIO(inputs: [gz, UnsafePointer(flipped), nil, nil], outputs: [result],
                                    scratch: shared + Self.aligned(weightCount) + Self.aligned(inputCount), pool: io.pool))
            io.pool.parallelFor(inputCount, minimumChunk: 1 << 14) { range in
                for i in range { target[i] += result[i] }
            }
        } else {
            inputGradientByColumns(w: w, gz: gz, into: target, scratch: scratch, pool: io.pool)
        }
    }

    /// ∂L/∂W += G·im2col(X)ᵀ, bands spread over workers with partial sums per worker,
    /// each partial kept transposed (per group [C·kH·kW × M/group]) as the GEMM makes it.
    private func weightGradient(x: UnsafePointer<Float>, gz: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>,
                                scratch: UnsafeMutableRawPointer, pool: ThreadPool) {
        let l = layout, g = l.geometry, rows = l.columnRows
        let bands = (g.outputPixels + bandPixels - 1) / bandPixels
        let items = l.batch * l.group * bands
        let workers = Swift.min(pool.threads, ScratchSlots.slotCount, items)
        let columnBytes = Self.aligned(rows * bandPixels)
        let pointwise = columns.strategy == .pointwise
        for slot in 0..<workers {
            (scratch + slot * slotBytes + 2 * columnBytes).assumingMemoryBound(to: Float.self)
                .update(repeating: 0, count: weightCount)
        }
        ScratchSlots.run(items: items, pool: pool) { slot, item in
            let band = item % bands, groupIndex = item / bands % l.group, n = item / bands / l.group
            let first = band * bandPixels, pixels = Swift.min(bandPixels, g.outputPixels - first)
            let partial = (scratch + slot * slotBytes + 2 * columnBytes).assumingMemoryBound(to: Float.self)
            let groupInput = x + (n * l.inChannels + groupIndex * l.groupIn) * g.inputPixels
            let groupGradient = gz + (n * l.outChannels + groupIndex * l.groupOut) * g.outputPixels
            let bandColumns: UnsafePointer<Float>, columnStride: Int
            if pointwise {
                (bandColumns, columnStride) = (groupInput + first, g.inputPixels)
            } else {
                let buffer = (scratch + slot * slotBytes).assumingMemoryBound(to: Float.self)
                self.columns.im2col(groupInput, firstPixel: first, pixels: pixels, panelWidth: pixels, into: buffer)
                (bandColumns, columnStride) = (UnsafePointer(buffer), pixels)
            }
            GEMM.multiply(m: rows, n: l.groupOut, k: pixels, a: bandColumns, lda: columnStride,
                          b: groupGradient + first, ldb: g.outputPixels, transposeB: true,
                          c: partial + groupIndex * l.groupOut * rows, ldc: l.groupOut, beta: 1)
        }
        // W[m, r] is row r, column m % (M/group) of group m / (M/group)'s transposed partial.
        pool.parallelFor(weightCount, minimumChunk: 1 << 12) { range in
            for slot in 0..<workers {
                let partial = (scratch + slot * slotBytes + 2 * columnBytes).assumingMemoryBound(to: Float.self)
                for i in range {
                    let m = i / rows, r = i % rows
                    let groupIndex = m / l.groupOut, column = m % l.groupOut
                    target[i] += partial[(groupIndex * rows + r) * l.groupOut + column]
                }
            }
        }
    }

    /// ∂L/∂X += col2im(Wᵀ·G), band by band: workers split ∂C's rows, then the input
    /// channels (each channel's plane is written by one worker).
    private func inputGradientByColumns(w: UnsafePointer<Float>, gz: UnsafePointer<Float>,
                                        into target: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer,
                                        pool: ThreadPool) {
        let l = layout, g = l.geometry, rows = l.columnRows
        let gradientBand = (scratch + Self.aligned(rows * bandPixels)).assumingMemoryBound(to: Float.self)
        for n in 0..<l.batch {
            for groupIndex in 0..<l.group {
                let groupGradient = gz + (n * l.outChannels + groupIndex * l.groupOut) * g.outputPixels
                let groupWeight = w + groupIndex * l.groupOut * rows
                let groupTarget = target + (n * l.inChannels + groupIndex * l.groupIn) * g.inputPixels
                var first = 0
                while first < g.outputPixels {
                    let pixels = Swift.min(bandPixels, g.outputPixels - first)
                    pool.parallelFor(rows, minimumChunk: 16) { range in
                        guard !range.isEmpty else { return }
                        GEMM.multiply(m: range.count, n: pixels, k: l.groupOut,
                                      a: groupWeight + range.lowerBound, lda: rows, transposeA: true,
                                      b: groupGradient + first, ldb: g.outputPixels,
                                      c: gradientBand + range.lowerBound * pixels, ldc: pixels)
                    }
                    pool.parallelFor(l.groupIn) { channels in
                        for c in channels {
                            col2im(gradientBand + c * g.kernelPixels * pixels, firstPixel: first, pixels: pixels,
                                   into: groupTarget + c * g.inputPixels)
                        }
                    }
                    first += pixels
                }
            }
        }
    }

    /// Adds the column rows (ky, kx) × band pixels of one input channel back into its plane,
    /// one output row segment at a time over the taps that fall inside the input.
    private func col2im(_ columns: UnsafePointer<Float>, firstPixel: Int, pixels: Int, into plane: UnsafeMutablePointer<Float>) {
        let g = layout.geometry
        var row = columns
        for ky in 0..<g.kernelHeight {
            for kx in 0..<g.kernelWidth {
                let xOffset = kx * g.dilationX - g.padLeft
                let valid = WindowGeometry.validRange(count: g.outputWidth, stride: g.strideX, offset: xOffset, limit: g.inputWidth)
                var pixel = firstPixel, done = 0
                while done < pixels {
                    let oy = pixel / g.outputWidth, firstX = pixel % g.outputWidth
                    let length = Swift.min(g.outputWidth - firstX, pixels - done)
                    let iy = oy * g.strideY - g.padTop + ky * g.dilationY
                    if iy >= 0 && iy < g.inputHeight {
                        let destination = plane + iy * g.inputWidth
                        let source = row + done - firstX
                        let lower = Swift.max(valid.lowerBound, firstX), upper = Swift.min(valid.upperBound, firstX + length)
                        if lower < upper {
                            for ox in lower..<upper { destination[ox &* g.strideX &+ xOffset] += source[ox] }
                        }
                    }
                    done += length
                    pixel += length
                }
                row += pixels
            }
        }
    }
}

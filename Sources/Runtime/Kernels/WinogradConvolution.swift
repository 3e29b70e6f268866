// Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions.
//
// Measured on the 2-core AVX-512 EPYC, release build (-target-cpu native), ThreadPool of 2,
// OpenBLAS pinned to its Haswell (AVX2) kernel; onnxruntime 1.32 with 2 intra-op threads,
// spinning off. The machine was shared (load average 7–11 on 2 cores), so wall times are
// best-of-5 under contention; process CPU time (all threads) is the steadier figure.
// Effective GFLOP/s = direct-conv FLOPs (2·9·C·M·H·W) / wall time.
//
//   conv 64→64, 3×3, pad 1, 512×512 (DnCNN body; 19.3 GFLOP):
//     im2col + OpenBLAS   wall 660–1135 ms (17–29 GFLOP/s)    CPU 342–390 ms
//     onnxruntime (MLAS)  wall 170–255 ms  (76–113 GFLOP/s)   CPU  93–105 ms
//     Winograd (here)     wall 111–181 ms  (107–175 GFLOP/s)  CPU  77–80 ms
//   conv 512→512, 64×64 (UperNet-sized; 19.3 GFLOP):
//     im2col 342 ms CPU, onnxruntime 84 ms CPU, Winograd 144–153 ms CPU (32 tiles per block)
//   conv 64→3, 512×512 (DnCNN output layer): im2col 196 ms CPU, onnxruntime 34 ms,
//     Winograd 25–27 ms (im2col's GEMM has only 3 rows)
//   Threshold, 256×256, CPU time im2col → Winograd: 4→4 0.5 → 0.5 ms, 8→8 1.7 → 1.1,
//     8→64 8.3 → 5.7, 3→32 1.8 → 2.1, 4→64 4.4 → 5.0, 32→3 13.2 → 3.7, 64→4 39.8 → 6.4:
//     Winograd wins from 8 input channels whatever the output channels.
//
// Expected: Winograd needs 2.25 instead of 9 multiplies per output and channel pair, so
// ~2.5–3× over im2col once the transforms are paid, and parity with onnxruntime's AVX-512
// direct convolution, which runs ~2× the Haswell kernel's FLOP rate.
// Happened: the first version (scalar row transforms) was ~2.3× faster than im2col and on
// par with onnxruntime in wall time; its profile showed the transforms at ~45% of the time.
// Doing the row transforms on eight tiles at once (SIMD deinterleave/interleave) and the
// column transforms on SIMD8, then storing output pixels straight into Y, brought it to
// ~4.5× im2col in CPU time and ~15–20% ahead of onnxruntime at 64 channels; onnxruntime's
// lead over im2col was ~4×, not 2×. Now about half of the time is OpenBLAS (kernel and
// packing), the rest transforms and copying input rows into zero-padded buffers. At 512
// channels onnxruntime stays 1.7× ahead: each GEMM repacks a 512×512 weight matrix for only
// 32 tile columns (more tiles per block help a little and cost scratch).

import CKernels
import Dispatch
import Format

/// The fast kernel of 3×3, stride-1, dilation-1, ungrouped convolutions: Winograd
/// F(4×4, 3×3), which computes each 4×4 output tile from a 6×6 input tile with 36
/// multiplications per (input, output) channel pair instead of 144.
///
/// Per block of output tiles:
/// 1. input transform V = Bᵀ d B of every 6×6 input tile and input channel, stored as 36
///    matrices [inChannels × tiles];
/// 2. 36 GEMMs M[ξ] = U[ξ] · V[ξ], with U[ξ] [outChannels × inChannels] the transformed
///    weights (transformed once per model when W is a constant, else at the start of
///    every run into scratch);
/// 3. output transform Y = Aᵀ M A of every tile and output channel, written to the output
///    and finished by the convolution's epilogue row by row.
///
/// The transforms come from the Toom-Cook construction over the interpolation points
/// 0, 1, −1, 2, −2 and ∞ (α = 4 + 3 − 1 = 6 points):
/// - G (6×3): row p evaluates the filter polynomial g(x) = g0 + g1·x + g2·x² at p and
///   divides by the Lagrange denominator N_p = ∏_{q ≠ p, finite} (p − q): 4, −6, −6, 24, 24;
///   the row of ∞ takes the leading coefficient g2.
/// - Bᵀ (6×6): row p holds the coefficients of ∏_{q ≠ p, finite} (x − q), for ∞ of the
///   product over all five finite points, e.g. (x² − 1)(x² − 4) = 4 − 5x² + x⁴ for p = 0.
/// - Aᵀ (4×6): column p is (1, p, p², p³), the column of ∞ is (0, 0, 0, 1).
/// The one-dimensional transforms are spelt out in `inputTransform`, `weightTransform` and
/// `outputTransform`; the two-dimensional ones apply them along both axes in turn.
///
/// Rounding: the points ±2 scale terms by up to 8 and 1/24. In a float32 simulation with
/// He-scaled weights and unit inputs the error was ~5e-6 of the output's magnitude at 64
/// channels and ~1e-5 at 256, against ~4e-7 for F(2×2, 3×3); both are inside the 1e-4
/// parity tolerance, so the larger tile (2.25 instead of 4 multiplies per output) wins.
/// The tests measure 1e-6 to 6e-6 against the reference kernel.
struct WinogradConvolutionKernel: Kernel {
    typealias Layout = ConvolutionKernel.Layout

    /// Output tile side, input tile side and transform points (6×6).
    static let outputTile = 4, inputTile = 6, points = 36
    /// Tiles transformed at once along a row (SIMD8 lanes, one tile per lane).
    static let lanes = 8
    /// With fewer input channels the 36 GEMMs are too thin (k < 8) for Winograd to beat
    /// im2col, whose GEMM has k = 9 × channels (measured, see the top of the file). Few
    /// output channels are no obstacle: there Winograd wins most.
    static let minimumInChannels = 8
    /// With fewer output tiles per image the 36 GEMMs are too narrow for the 48-column GEMM
    /// tiles (Sources/CKernels; under two thirds full), and the gain over im2col's one GEMM
    /// across all pixels no longer pays for the transformed weights' 4× memory: UperNet's
    /// PPM bottleneck (2816→512 channels) at 12×12 or 16×16 (9 or 16 tiles) would hold
    /// 207 MB of them.
    static let minimumTiles = 32
    /// Largest transformed weight set (36 × out × in floats) worth its scratch memory:
    /// 512→512 channels take 38 MB, UperNet's 2048→512 bottleneck 151 MB. Letting the
    /// bottleneck in (the cap was 64 MB) took Swin-T + UperNet at 384² from 2296 to
    /// 1104 ms (onnxruntime: 620 ms) for 112 MB more peak RSS (541 MiB; onnxruntime 784),
    /// and its logits' error from 1.9e-6 to 1.1e-5 relative (tolerance 1e-4).
    static let maximumWeightBytes = 256 << 20
    /// Target size of one worker's transformed input and GEMM output for a block of tiles,
    /// so that both stay in the 1 MB L2 of a core.
    static let blockBytes = 1 << 20
    /// Fewest tiles per block however many channels: with fewer, each GEMM repacks its
    /// out × in weight matrix for too few columns (512→512 channels: 8 tiles ran 1.6× slower
    /// than 56). At 512 channels 32 tiles take 4.7 MB per worker.
    static let minimumBlockTiles = 32
    /// U larger than this is shared (`Schedule.sharedBlock`): 4× the 1 MB L2 of a core, where
    /// reading U from L3 and memory for every worker's small block starts to cost more than
    /// the barriers between the phases of a shared one. DnCNN's 64→64 channels (590 KB)
    /// stay per worker, UperNet's 512→512 (38 MB) and 2048→512 (151 MB) share.
    static let sharedWeightBytes = 4 << 20
    /// Target size of a shared block's V and M together: a few blocks per image at 96×96
    /// and 2048→512 channels (144 tiles, 53 MB), so U streams 4 times, not 18.
    static let sharedBlockBytes = 64 << 20
    /// Shared blocks are whole GEMM column tiles (48 columns, Sources/CKernels).
    static let sharedBlockTileMultiple = 48

    /// How the blocks of tiles are spread over the workers.
    enum Schedule: Sendable {
        /// Each worker transforms, multiplies and transforms back blocks of its own; U is
        /// small enough that every worker finds it in cache.
        case blockPerWorker
        /// The workers share one larger block at a time: they split its transforms by
        /// tile row and channel and its 36 GEMMs by point, so that a U too large for the
        /// caches (38 MB at 512→512 channels, 151 MB at 2048→512) streams from memory once
        /// per block instead of once per block and worker.
        case sharedBlock
    }

    let layout: Layout
    let epilogue: ConvolutionEpilogue
    let schedule: Schedule
    /// U made once per model from a constant W; nil when W is computed at run time.
    let transformedWeights: PreparedWeights?
    /// Output tiles down and across one image (edge tiles may be partial).
    let tileRows: Int, tileColumns: Int
    /// Tiles per work item, consecutive in raster order (a block may span tile rows).
    let tilesPerBlock: Int
    /// The transforms' variant (Sources/CKernels/winograd.c): `CPUFeatures.level`, or any
    /// level the CPU supports in tests.
    let cpu: CPULevel

    /// True when Winograd handles this convolution and is expected to beat im2col.
    static func suits(_ layout: Layout) -> Bool {
        let g = layout.geometry
        return g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideY == 1 && g.strideX == 1
            && g.dilationY == 1 && g.dilationX == 1 && layout.group == 1
            && layout.inChannels >= minimumInChannels
            && ((g.outputHeight + outputTile - 1) / outputTile) * ((g.outputWidth + outputTile - 1) / outputTile) >= minimumTiles
            && points * layout.inChannels * layout.outChannels * MemoryLayout<Float>.size <= maximumWeightBytes
    }

    /// `tilesPerBlock` overrides the block size (tests use small blocks to cross tile rows);
    /// with `constants` holding W, U is made once per model.
    init(layout: Layout, epilogue: ConvolutionEpilogue, constants: ConstantInputs = .none, tilesPerBlock: Int? = nil,
         cpu: CPULevel = CPUFeatures.level) {
        precondition(CPUFeatures.supports(cpu), "this CPU cannot run the \(cpu) Winograd transforms")
        self.cpu = cpu
        let g = layout.geometry
        precondition(g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideY == 1 && g.strideX == 1
                     && g.dilationY == 1 && g.dilationX == 1 && layout.group == 1,
                     "Winograd F(4×4, 3×3) needs a 3×3, stride-1, dilation-1, ungrouped convolution")
        self.layout = layout
        self.epilogue = epilogue
        let pointStride = layout.outChannels * layout.inChannels
        // On all cores: planning Swin-T + UperNet transforms 66 M weights.
        transformedWeights = constants.prepared(1, as: .winogradF4x3, count: Self.points * pointStride) { w, u in
            let workers = ScratchSlots.slotCount
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let channels = (layout.outChannels * worker / workers)..<(layout.outChannels * (worker + 1) / workers)
                for k in channels { Self.transformWeights(w, outChannel: k, into: u, layout: layout) }
            }
        }
        tileRows = (g.outputHeight + Self.outputTile - 1) / Self.outputTile
        tileColumns = (g.outputWidth + Self.outputTile - 1) / Self.outputTile
        let bytesPerTile = Self.points * (layout.inChannels + layout.outChannels) * MemoryLayout<Float>.size
        schedule = Self.points * pointStride * MemoryLayout<Float>.size > Self.sharedWeightBytes ? .sharedBlock : .blockPerWorker
        let fit: Int
        switch schedule {
        case .blockPerWorker:
            // A multiple of 8 tiles keeps the GEMMs' column blocks whole.
            fit = max(Self.minimumBlockTiles, Self.blockBytes / bytesPerTile / 8 * 8)
        case .sharedBlock:
            let multiple = Self.sharedBlockTileMultiple
            fit = max(multiple, Self.sharedBlockBytes / bytesPerTile / multiple * multiple)
        }
        self.tilesPerBlock = max(1, min(tilesPerBlock ?? fit, tileRows * tileColumns))
    }

    var scratchBytes: Int {
        switch schedule {
        case .blockPerWorker: weightBytes + ScratchSlots.slotCount * (blockBytes + workBytes)
        case .sharedBlock: weightBytes + blockBytes + ScratchSlots.slotCount * workBytes
        }
    }

    /// Scratch for the transformed weights U, shared by all workers, when they are made per run.
    private var weightBytes: Int {
        transformedWeights == nil ? Self.aligned(Self.points * layout.outChannels * layout.inChannels) : 0
    }

    /// V and M of one block.
    private var vBytes: Int { Self.aligned(Self.points * layout.inChannels * tilesPerBlock) }
    private var mBytes: Int { Self.aligned(Self.points * layout.outChannels * tilesPerBlock) }
    private var blockBytes: Int { vBytes + mBytes }
    /// One worker's transform rows.
    private var workBytes: Int { Self.aligned(workFloats) }

    /// Tiles per block rounded up to whole SIMD groups: the stride of the work rows.
    private var laneTiles: Int { (tilesPerBlock + Self.lanes - 1) / Self.lanes * Self.lanes }

    /// Input pixels of a padded transform row: whole SIMD groups of tiles plus the 4 pixels
    /// the last group's second load reaches beyond them.
    private var paddedRowWidth: Int { Self.outputTile * laneTiles + Self.outputTile }

    /// Work rows of the input transform (6 padded input rows and 36 rows of row-transformed
    /// tiles) or of the output transform (4 × 6 partial results and 4 output rows),
    /// whichever is larger.
    private var workFloats: Int {
        let t = laneTiles
        return max(Self.inputTile * paddedRowWidth + Self.points * t,
                   (Self.outputTile * Self.inputTile + Self.outputTile * Self.outputTile) * t)
    }

    /// Bytes of `floats` floats rounded up to 64 so every buffer starts aligned.
    private static func aligned(_ floats: Int) -> Int {
        (floats * MemoryLayout<Float>.size + 63) / 64 * 64
    }

    /// W is read only when its transform could not be prepared once per model.
    func reads(input index: Int) -> Bool { index != 1 || transformedWeights == nil }

    func run(_ io: KernelIO) {
        let l = layout
        guard let scratch = io.scratch else { preconditionFailure("Winograd conv kernel ran without scratch") }
        let x = io.input(0)
        let bias = l.hasBias ? io.inputs[2] : nil
        let residual = l.hasResidual ? io.inputs[3] : nil
        let y = io.outputs[0]
        let u: UnsafePointer<Float>
        if let transformedWeights {
            u = transformedWeights.pointer
        } else {
            let perRun = scratch.assumingMemoryBound(to: Float.self), w = io.input(1)
            io.pool.parallelFor(l.outChannels) { channels in
                for k in channels { Self.transformWeights(w, outChannel: k, into: perRun, layout: l) }
            }
            u = UnsafePointer(perRun)
        }
        let tilesPerImage = tileRows * tileColumns
        let blocksPerImage = (tilesPerImage + tilesPerBlock - 1) / tilesPerBlock
        let operands = scratch + weightBytes
        switch schedule {
        case .blockPerWorker:
            ScratchSlots.run(items: l.batch * blocksPerImage, pool: io.pool) { slot, item in
                let block = operands + slot * (blockBytes + workBytes)
                let v = block.assumingMemoryBound(to: Float.self)
                let m = (block + vBytes).assumingMemoryBound(to: Float.self)
                let work = (block + blockBytes).assumingMemoryBound(to: Float.self)
                let n = item / blocksPerImage
                let firstTile = item % blocksPerImage * tilesPerBlock
                let tiles = min(tilesPerBlock, tilesPerImage - firstTile)
                for segment in segments(firstTile: firstTile, tiles: tiles) {
                    transformInput(x, image: n, tileRow: segment.tileRow, firstColumn: segment.firstColumn,
                                   length: segment.length, channels: 0..<l.inChannels, into: v + segment.offset, work: work)
                }
                for point in 0..<Self.points { multiply(point: point, u: u, v: v, m: m, tiles: tiles) }
                for segment in segments(firstTile: firstTile, tiles: tiles) {
                    transformOutput(m + segment.offset, image: n, tileRow: segment.tileRow, firstColumn: segment.firstColumn,
                                    length: segment.length, channels: 0..<l.outChannels, bias: bias, residual: residual,
                                    into: y, work: work)
                }
            }
        case .sharedBlock:
            let v = operands.assumingMemoryBound(to: Float.self)
            let m = (operands + vBytes).assumingMemoryBound(to: Float.self)
            let workBase = operands + blockBytes
            // Transforms split into this many channel ranges per tile row segment, so that
            // a block within one tile row still keeps every worker busy.
            let channelSplits = 2 * ScratchSlots.slotCount
            func chunk(_ count: Int, _ index: Int) -> Range<Int> {
                (count * index / channelSplits)..<(count * (index + 1) / channelSplits)
            }
            for item in 0..<(l.batch * blocksPerImage) {
                let n = item / blocksPerImage
                let firstTile = item % blocksPerImage * tilesPerBlock
                let tiles = min(tilesPerBlock, tilesPerImage - firstTile)
                let parts = segments(firstTile: firstTile, tiles: tiles)
                ScratchSlots.run(items: parts.count * channelSplits, pool: io.pool) { slot, part in
                    let segment = parts[part / channelSplits]
                    transformInput(x, image: n, tileRow: segment.tileRow, firstColumn: segment.firstColumn,
                                   length: segment.length, channels: chunk(l.inChannels, part % channelSplits),
                                   into: v + segment.offset,
                                   work: (workBase + slot * workBytes).assumingMemoryBound(to: Float.self))
                }
                ScratchSlots.run(items: Self.points, pool: io.pool) { _, point in
                    multiply(point: point, u: u, v: v, m: m, tiles: tiles)
                }
                ScratchSlots.run(items: parts.count * channelSplits, pool: io.pool) { slot, part in
                    let segment = parts[part / channelSplits]
                    transformOutput(m + segment.offset, image: n, tileRow: segment.tileRow, firstColumn: segment.firstColumn,
                                    length: segment.length, channels: chunk(l.outChannels, part % channelSplits),
                                    bias: bias, residual: residual, into: y,
                                    work: (workBase + slot * workBytes).assumingMemoryBound(to: Float.self))
                }
            }
        }
    }

    /// M[ξ] = U[ξ] · V[ξ] for one point ξ of a block of `tiles` tiles.
    private func multiply(point: Int, u: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>,
                          m: UnsafeMutablePointer<Float>, tiles: Int) {
        let l = layout
        GEMM.multiply(m: l.outChannels, n: tiles, k: l.inChannels,
                      a: u + point * l.outChannels * l.inChannels, lda: l.inChannels,
                      b: v + point * l.inChannels * tilesPerBlock, ldb: tilesPerBlock,
                      c: m + point * l.outChannels * tilesPerBlock, ldc: tilesPerBlock)
    }

    /// The tiles firstTile..<firstTile+tiles (raster order) as runs within one tile row.
    private func segments(firstTile: Int, tiles: Int) -> BlockSegments {
        BlockSegments(firstTile: firstTile, tiles: tiles, tileColumns: tileColumns)
    }

    /// U[ξ][k][c] = (G g Gᵀ)[ξ] for every input channel c of output channel k.
    private static func transformWeights(_ w: UnsafePointer<Float>, outChannel k: Int, into u: UnsafeMutablePointer<Float>,
                                         layout l: Layout) {
        let pointStride = l.outChannels * l.inChannels
        for c in 0..<l.inChannels {
            let g = w + (k * l.inChannels + c) * 9
            // Along columns: the 6×3 matrix G g, one column per kernel column.
            let c0 = Self.weightTransform(g[0], g[3], g[6])
            let c1 = Self.weightTransform(g[1], g[4], g[7])
            let c2 = Self.weightTransform(g[2], g[5], g[8])
            let destination = u + k * l.inChannels + c
            // Along rows: (G g) Gᵀ, one row of six points per row of G g.
            func store(_ row: Int, _ g0: Float, _ g1: Float, _ g2: Float) {
                let t = Self.weightTransform(g0, g1, g2)
                let base = destination + row * Self.inputTile * pointStride
                base[0] = t.0; base[pointStride] = t.1; base[2 * pointStride] = t.2
                base[3 * pointStride] = t.3; base[4 * pointStride] = t.4; base[5 * pointStride] = t.5
            }
            store(0, c0.0, c1.0, c2.0); store(1, c0.1, c1.1, c2.1); store(2, c0.2, c1.2, c2.2)
            store(3, c0.3, c1.3, c2.3); store(4, c0.4, c1.4, c2.4); store(5, c0.5, c1.5, c2.5)
        }
    }

    /// V[ξ][c][offset + t] = (Bᵀ d B)[ξ] for the `length` tiles of one tile row starting at
    /// `firstColumn` and the input channels c in `channels`; pixels outside the input read as
    /// zero. The transform itself is C (Sources/CKernels/winograd.c), AVX2 where the CPU has it.
    private func transformInput(_ x: UnsafePointer<Float>, image n: Int, tileRow: Int, firstColumn: Int, length: Int,
                                channels: Range<Int>, into v: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Float>) {
        let l = layout, g = l.geometry
        let firstY = tileRow * Self.outputTile - g.padTop
        let firstX = firstColumn * Self.outputTile - g.padLeft
        let pointStride = l.inChannels * tilesPerBlock
        let level = CPUFeatures.cValue(of: cpu)
        for c in channels {
            restore_winograd_input(level, x + (n * l.inChannels + c) * g.inputPixels, g.inputHeight, g.inputWidth,
                                   firstY, firstX, length, laneTiles, v + c * tilesPerBlock, pointStride, work)
        }
    }

    /// Y = Aᵀ M A for the `length` tiles of one tile row and the output channels in
    /// `channels`, written to the output (edge tiles clipped; C, as the input transform) and
    /// finished by the epilogue (in the transform when it is bias and ReLU or nothing). The last row of M is read up to 7 floats past `length`, into
    /// the work area that follows it in the slot.
    private func transformOutput(_ m: UnsafeMutablePointer<Float>, image n: Int, tileRow: Int, firstColumn: Int,
                                 length: Int, channels: Range<Int>, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?,
                                 into y: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Float>) {
        let l = layout, g = l.geometry
        let pointStride = l.outChannels * tilesPerBlock
        let firstY = tileRow * Self.outputTile, firstX = firstColumn * Self.outputTile
        let outputRows = min(Self.outputTile, g.outputHeight - firstY)
        let outputColumns = min(Self.outputTile * length, g.outputWidth - firstX)
        let level = CPUFeatures.cValue(of: cpu)
        // Bias and ReLU go into the transform while the pixels are in registers.
        let floor = residual == nil ? epilogue.floor : nil
        for k in channels {
            let first = ((n * l.outChannels + k) * g.outputHeight + firstY) * g.outputWidth + firstX
            let channelBias = bias?[k] ?? 0
            restore_winograd_output(level, m + k * tilesPerBlock, pointStride, length, laneTiles,
                                    floor == nil ? 0 : channelBias, floor ?? -.infinity, y + first,
                                    g.outputWidth, outputRows, outputColumns, work)
            if floor != nil { continue }
            for i in 0..<outputRows {
                let offset = first + i * g.outputWidth
                epilogue.apply(to: y + offset, count: outputColumns, bias: channelBias,
                               residual: residual.map { $0 + offset })
            }
        }
    }

    /// G g: a 3-tap filter at the six points, divided by the Lagrange denominators.
    @inline(__always)
    static func weightTransform(_ g0: Float, _ g1: Float, _ g2: Float) -> (Float, Float, Float, Float, Float, Float) {
        (g0 / 4,
         -(g0 + g1 + g2) / 6,
         -(g0 - g1 + g2) / 6,
         (g0 + 2 * g1 + 4 * g2) / 24,
         (g0 - 2 * g1 + 4 * g2) / 24,
         g2)
    }
}

/// A block of tiles split into runs within one tile row, computed on demand (kernels do not
/// allocate while running).
struct BlockSegments: RandomAccessCollection {
    struct Segment {
        /// The run's tile row, its first tile column, its length and its offset in the block.
        let tileRow: Int, firstColumn: Int, length: Int, offset: Int
    }

    let firstTile: Int, tiles: Int, tileColumns: Int

    var startIndex: Int { 0 }
    var endIndex: Int { tiles == 0 ? 0 : (firstTile + tiles - 1) / tileColumns - firstTile / tileColumns + 1 }

    subscript(index: Int) -> Segment {
        let tileRow = firstTile / tileColumns + index
        let start = index == 0 ? firstTile : tileRow * tileColumns
        let end = Swift.min((tileRow + 1) * tileColumns, firstTile + tiles)
        return Segment(tileRow: tileRow, firstColumn: start - tileRow * tileColumns, length: end - start, offset: start - firstTile)
    }
}

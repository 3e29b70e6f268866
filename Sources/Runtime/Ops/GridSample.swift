import Foundation
import Format

/// `gridSample`: Y[n, c, i, j] = X[n, c] sampled at grid[n, i, j] = (x, y), per ONNX
/// GridSample (opsets 16 and 20–22), for 4-D X and for volumetric 5-D X with grid points
/// (x, y, z): the normalised point is mapped to pixel coordinates, moved inside by the
/// padding mode when it lies beyond the border, and then read with (tri)linear weights,
/// with Keys' cubic weights (A = −0.75, 4-D only) or from the nearest pixel, samples
/// outside the input read as the padding mode says. The grid is data (deformable
/// attention computes it), so the kernel works the taps out at run time.
public struct GridSample: Operator {
    let name: String
    let sampler: GridSampler.Options

    init(name: String, attributes: GridSampleAttributes) {
        self.name = name
        sampler = GridSampler.Options(mode: attributes.mode, padding: attributes.paddingMode,
                                      alignCorners: attributes.alignCorners)
    }

    /// The shapes of X [N,C,(D,)H,W] and grid [N,(D_out,)H_out,W_out,2 or 3], checked
    /// against each other.
    func geometry(_ x: [Int], _ grid: [Int]) throws -> GridSampler {
        let spatial = x.count - 2
        guard spatial == 2 || spatial == 3, grid.count == x.count, grid.last == spatial, grid[0] == x[0] else {
            throw OpError.shape(node: name, "gridSample needs X [N,C,H,W] and grid [N,H_out,W_out,2], or X [N,C,D,H,W] "
                                + "and grid [N,D_out,H_out,W_out,3], found \(x) and \(grid)")
        }
        if spatial == 3 && sampler.mode == .cubic {
            throw OpError.unsupported(node: name, "cubic sampling of a volume (ONNX defines it for 4-D X only)")
        }
        return GridSampler(options: sampler, batch: x[0], channels: x[1], inputHeight: x[x.count - 2], inputWidth: x[x.count - 1],
                           outputHeight: grid[grid.count - 3], outputWidth: grid[grid.count - 2],
                           inputDepth: spatial == 3 ? x[2] : 1, outputDepth: spatial == 3 ? grid[1] : 1, volumetric: spatial == 3)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let grid = try ShapeRules.required(inputs, 1, node: name)
        return [ValueFact(dtype: .float32, shape: try geometry(x.shape, grid.shape).outputShape)]
    }

    /// ONNX's definition step by step, one output element at a time: along each axis the
    /// samples and weights of the mode, X read at every combination of them.
    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard inputs.count > 1, let xTensor = inputs[0], let gridTensor = inputs[1] else {
            throw GraphError.missingInput(node: name, index: inputs.first == nil ? 0 : 1)
        }
        let g = try geometry(xTensor.shape, gridTensor.shape)
        let x = xTensor.floats, grid = gridTensor.floats
        let options = g.options
        // Axes in X's order (D,) H, W; a grid point lists them in reverse (x, y, z).
        let sizes = g.volumetric ? [g.inputDepth, g.inputHeight, g.inputWidth] : [g.inputHeight, g.inputWidth]
        let planeSize = sizes.reduce(1, *)
        /// The samples along an axis around pixel coordinate v, with their weights.
        func samples(_ v: Float) -> [(index: Int, weight: Float)] {
            let floor = v.rounded(.down)
            let (first, t) = (Int(floor), v - floor)
            switch options.mode {
            case .nearest: return [(Int(v), 1)]
            case .linear: return [(first, 1 - t), (first + 1, t)]
            case .cubic:
                let weights = CubicConvolution.coefficients(fraction: t, a: GridSampler.cubicA)
                return (0..<4).map { (first - 1 + $0, weights[$0]) }
            }
        }
        var y = [Float](repeating: 0, count: g.outputShape.reduce(1, *))
        for n in 0..<g.batch {
            for p in 0..<g.outputPixels {
                let point = (n * g.outputPixels + p) * sizes.count
                let perAxis = sizes.indices.map { axis in
                    samples(options.sourceCoordinate(grid[point + sizes.count - 1 - axis], size: sizes[axis]))
                }
                for c in 0..<g.channels {
                    let plane = (n * g.channels + c) * planeSize
                    var value: Float = 0
                    var choice = [Int](repeating: 0, count: sizes.count)
                    combinations: while true {
                        var weight: Float = 1
                        var offset = 0
                        var outside = false
                        for axis in sizes.indices {
                            let sample = perAxis[axis][choice[axis]]
                            weight *= sample.weight
                            guard let index = options.resolve(sample.index, size: sizes[axis]) else { outside = true; break }
                            offset = offset * sizes[axis] + index
                        }
                        if !outside { value += weight * x[plane + offset] }
                        for axis in sizes.indices.reversed() {
                            choice[axis] += 1
                            if choice[axis] < perAxis[axis].count { continue combinations }
                            choice[axis] = 0
                        }
                        break
                    }
                    y[(n * g.channels + c) * g.outputPixels + p] = value
                }
            }
        }
        return [HostTensor(shape: g.outputShape, floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let grid = try ShapeRules.required(inputs, 1, node: name)
        return GridSampleKernel(sampler: try geometry(x.shape, grid.shape))
    }
}

/// The sizes of one gridSample and ONNX's coordinate rules, shared by the reference and
/// the fast kernel.
struct GridSampler: Sendable {
    struct Options: Sendable {
        var mode: GridSampleAttributes.Mode
        var padding: GridSampleAttributes.PaddingMode
        var alignCorners: Bool

        /// The pixel coordinate of normalised `g` along an axis of `size` pixels, rounded
        /// for nearest (halves to even, as C's nearbyint) and moved inside the border region
        /// — [0, size−1] with alignCorners, else [−0.5, size−0.5] — by border or reflection
        /// padding. With zeros padding it may stay outside.
        func sourceCoordinate(_ g: Float, size: Int) -> Float {
            let extent = Float(size)
            var v = alignCorners ? (g + 1) / 2 * (extent - 1) : ((g + 1) * extent - 1) / 2
            if mode == .nearest { v = v.rounded(.toNearestOrEven) }
            // A grid holding NaN or ±infinity (a broken input) reads the padding — zero, or
            // the border — rather than trapping where the coordinate becomes an index.
            guard v.isFinite else { return padding == .zeros || v.isNaN ? -2 : min(max(v, 0), extent - 1) }
            // Cubic sampling with border padding clamps each of the 4×4 samples, not the
            // point, as onnxruntime and PyTorch do (ONNX's reference clamps the point first,
            // which moves the weights too; docs/onnx-conformance.md). Beyond −3 or size + 2
            // every sample is the edge pixel; the bound keeps huge values within Int's range.
            if mode == .cubic && padding == .border { return min(max(v, -3), extent + 2) }
            let (low, high): (Float, Float) = alignCorners ? (0, extent - 1) : (-0.5, extent - 0.5)
            guard v < low || v > high else { return v }
            switch padding {
            // Beyond −2 or size + 1 every corner reads zero; the bound keeps huge values
            // within Int's range.
            case .zeros: return min(max(v, -2), extent + 1)
            case .border: return min(max(v, 0), extent - 1)
            case .reflection: return Self.reflect(v, low, high)
            }
        }

        /// The pixel index that integer coordinate `i` reads, nil for zero padding outside.
        func resolve(_ i: Int, size: Int) -> Int? {
            guard i < 0 || i >= size else { return i }
            switch padding {
            case .zeros: return nil
            case .border: return min(max(i, 0), size - 1)
            case .reflection:
                let (low, high): (Float, Float) = alignCorners ? (0, Float(size - 1)) : (-0.5, Float(size) - 0.5)
                // Truncation toward zero, as ONNX's reference converts the reflected index.
                return min(max(Int(Self.reflect(Float(i), low, high)), 0), size - 1)
            }
        }

        /// `v` mirrored at `low` and `high` until it lies between them.
        static func reflect(_ v: Float, _ low: Float, _ high: Float) -> Float {
            let range = high - low
            guard range > 0 else { return low }
            if v < low {
                let distance = low - v
                let flips = (distance / range).rounded(.towardZero)
                let rest = distance - flips * range
                return flips.truncatingRemainder(dividingBy: 2) == 0 ? low + rest : high - rest
            }
            if v > high {
                let distance = v - high
                let flips = (distance / range).rounded(.towardZero)
                let rest = distance - flips * range
                return flips.truncatingRemainder(dividingBy: 2) == 0 ? high - rest : low + rest
            }
            return v
        }
    }

    var options: Options
    var batch: Int, channels: Int
    var inputHeight: Int, inputWidth: Int
    var outputHeight: Int, outputWidth: Int
    /// 1 unless `volumetric` (X [N,C,D,H,W], grid points (x, y, z)).
    var inputDepth = 1, outputDepth = 1
    var volumetric = false

    /// ONNX's (and PyTorch's) bicubic sampling: Keys' kernel with A = −0.75.
    static let cubicA: Float = -0.75

    var outputPixels: Int { outputDepth * outputHeight * outputWidth }
    var inputPixels: Int { inputDepth * inputHeight * inputWidth }
    var outputShape: [Int] {
        [batch, channels] + (volumetric ? [outputDepth] : []) + [outputHeight, outputWidth]
    }
    /// Values per grid point: x, y (and z).
    var pointSize: Int { volumetric ? 3 : 2 }

    /// A row of up to four samples: offsets in an input plane (or volume) and weights; a
    /// sample that reads zero padding has weight 0 (and offset 0).
    typealias TapRow = (offsets: SIMD4<Int32>, weights: SIMD4<Float>)

    /// Tap rows per output point: one for 2-D linear (the four corners) and nearest (the
    /// first lane), two for volumetric linear (the corners of the two depth planes), four
    /// for cubic (the 4×4 samples, row by row).
    var tapRows: Int {
        switch options.mode {
        case .nearest: 1
        case .linear: volumetric ? 2 : 1
        case .cubic: 4
        }
    }

    /// The four corners a 2-D point reads, as offsets in an input plane and weights; a
    /// corner that reads zero padding has weight 0 (and offset 0). Nearest uses the
    /// first corner only, with weight 1. Linear and nearest modes only (deformable
    /// attention's sampling and one depth plane of a volumetric one).
    @inline(__always)
    func taps(column g: Float, row gy: Float) -> TapRow {
        let column = options.sourceCoordinate(g, size: inputWidth)
        let row = options.sourceCoordinate(gy, size: inputHeight)
        func offset(_ r: Int, _ q: Int) -> Int32? {
            guard let r = options.resolve(r, size: inputHeight), let q = options.resolve(q, size: inputWidth) else { return nil }
            return Int32(r * inputWidth + q)
        }
        switch options.mode {
        case .nearest:
            guard let o = offset(Int(row), Int(column)) else { return (.zero, .zero) }
            return (SIMD4(o, 0, 0, 0), SIMD4(1, 0, 0, 0))
        case .linear, .cubic:
            let (r0, q0) = (row.rounded(.down), column.rounded(.down))
            let (dy, dx) = (row - r0, column - q0)
            let (r, q) = (Int(r0), Int(q0))
            var offsets = SIMD4<Int32>.zero, weights = SIMD4<Float>.zero
            @inline(__always) func corner(_ index: Int, _ r: Int, _ q: Int, _ weight: Float) {
                guard let o = offset(r, q) else { return }
                offsets[index] = o
                weights[index] = weight
            }
            corner(0, r, q, (1 - dy) * (1 - dx))
            corner(1, r, q + 1, (1 - dy) * dx)
            corner(2, r + 1, q, dy * (1 - dx))
            corner(3, r + 1, q + 1, dy * dx)
            return (offsets, weights)
        }
    }

    /// Writes the `tapRows` rows of the point whose coordinates start at `point` (x, y, z).
    @inline(__always)
    func taps(at point: UnsafePointer<Float>, into rows: UnsafeMutablePointer<TapRow>) {
        if options.mode == .cubic {
            let column = options.sourceCoordinate(point[0], size: inputWidth)
            let row = options.sourceCoordinate(point[1], size: inputHeight)
            let (r0, q0) = (row.rounded(.down), column.rounded(.down))
            let rowWeights = CubicConvolution.coefficients(fraction: row - r0, a: Self.cubicA)
            let columnWeights = CubicConvolution.coefficients(fraction: column - q0, a: Self.cubicA)
            var columns = SIMD4<Int32>.zero, columnInside = SIMD4<Float>.zero
            for j in 0..<4 {
                guard let q = options.resolve(Int(q0) - 1 + j, size: inputWidth) else { continue }
                columns[j] = Int32(q)
                columnInside[j] = 1
            }
            for i in 0..<4 {
                guard let r = options.resolve(Int(r0) - 1 + i, size: inputHeight) else { rows[i] = (.zero, .zero); continue }
                rows[i] = (columns &+ Int32(r * inputWidth), columnWeights * columnInside * rowWeights[i])
            }
            return
        }
        guard volumetric else { rows[0] = taps(column: point[0], row: point[1]); return }
        let plane = taps(column: point[0], row: point[1])
        let depth = options.sourceCoordinate(point[2], size: inputDepth)
        let planeSize = Int32(inputHeight * inputWidth)
        /// The plane's taps moved to depth `z` and weighted by `weight` (zero outside).
        func layer(_ z: Int, _ weight: Float) -> TapRow {
            guard let z = options.resolve(z, size: inputDepth) else { return (.zero, .zero) }
            return (plane.offsets &+ Int32(z) &* planeSize, plane.weights * weight)
        }
        if options.mode == .nearest { rows[0] = layer(Int(depth), 1); return }
        let z0 = depth.rounded(.down)
        let dz = depth - z0
        rows[0] = layer(Int(z0), 1 - dz)
        rows[1] = layer(Int(z0) + 1, dz)
    }

    /// The bilinear sample's derivatives with respect to the normalised grid point
    /// (gx, gy), as weights on the four corners `taps` reads: ∂sample/∂gx = Σ alongX[t]·v[t],
    /// ∂sample/∂gy = Σ alongY[t]·v[t]. With fx, fy the fractional parts of the pixel
    /// coordinates, ∂/∂x = (1 − fy)·(v₀₁ − v₀₀) + fy·(v₁₁ − v₁₀) and ∂/∂y = (1 − fx)·(v₁₀ − v₀₀)
    /// + fx·(v₁₁ − v₀₁), times the pixel coordinate's derivative in the normalised one
    /// (`coordinateSlope`). A corner in zero padding reads 0 and has weight 0. Nearest
    /// sampling is piecewise constant in the grid: all weights are 0, as in PyTorch.
    @inline(__always)
    func gridSlopes(column gx: Float, row gy: Float) -> (offsets: SIMD4<Int32>, alongX: SIMD4<Float>, alongY: SIMD4<Float>) {
        guard options.mode == .linear else { return (.zero, .zero, .zero) }
        let column = options.sourceCoordinate(gx, size: inputWidth)
        let row = options.sourceCoordinate(gy, size: inputHeight)
        let slopeX = options.coordinateSlope(gx, coordinate: column, size: inputWidth)
        let slopeY = options.coordinateSlope(gy, coordinate: row, size: inputHeight)
        let (r0, q0) = (row.rounded(.down), column.rounded(.down))
        let (fy, fx) = (row - r0, column - q0)
        let (r, q) = (Int(r0), Int(q0))
        var offsets = SIMD4<Int32>.zero, alongX = SIMD4<Float>.zero, alongY = SIMD4<Float>.zero
        @inline(__always) func corner(_ index: Int, _ r: Int, _ q: Int, _ x: Float, _ y: Float) {
            guard let a = options.resolve(r, size: inputHeight), let b = options.resolve(q, size: inputWidth) else { return }
            offsets[index] = Int32(a * inputWidth + b)
            alongX[index] = x * slopeX
            alongY[index] = y * slopeY
        }
        corner(0, r, q, -(1 - fy), -(1 - fx))
        corner(1, r, q + 1, 1 - fy, -fx)
        corner(2, r + 1, q, -fy, 1 - fx)
        corner(3, r + 1, q + 1, fy, fx)
        return (offsets, alongX, alongY)
    }
}

extension GridSampler.Options {
    /// d(pixel coordinate)/d(normalised g) along an axis of `size` pixels: (size − 1)/2 with
    /// alignCorners, else size/2; 0 where padding moved the coordinate (clamped to the
    /// border or reflected), since it is then constant or its slope is not followed.
    func coordinateSlope(_ g: Float, coordinate: Float, size: Int) -> Float {
        let extent = Float(size)
        let raw = alignCorners ? (g + 1) / 2 * (extent - 1) : ((g + 1) * extent - 1) / 2
        guard raw == coordinate else { return 0 }
        return alignCorners ? (extent - 1) / 2 : extent / 2
    }
}

/// Works out the taps of a block of output points once, then gathers every channel
/// from them: the coordinate arithmetic is paid per point, not per point and channel
/// (deformable attention samples 32–256 channels at each point).
struct GridSampleKernel: Kernel {
    let sampler: GridSampler
    /// Output points per work item: taps of 256 points (4 KiB per tap row) stay in L1
    /// while every channel reads them.
    static let blockPoints = 256

    private var slotBytes: Int { Self.blockPoints * sampler.tapRows * MemoryLayout<GridSampler.TapRow>.stride }
    var scratchBytes: Int { ScratchSlots.slotCount * slotBytes }

    func run(_ io: KernelIO) {
        let g = sampler
        guard g.batch * g.channels * g.outputPixels > 0, let scratch = io.scratch else { return }
        let x = io.input(0), grid = io.input(1), y = io.outputs[0]
        let volume = g.inputPixels
        let rows = g.tapRows
        let blocks = (g.outputPixels + Self.blockPoints - 1) / Self.blockPoints
        let slotBytes = slotBytes
        ScratchSlots.run(items: g.batch * blocks, pool: io.pool) { slot, item in
            let n = item / blocks
            let first = (item % blocks) * Self.blockPoints
            let count = min(Self.blockPoints, g.outputPixels - first)
            let taps = (scratch + slot * slotBytes).assumingMemoryBound(to: GridSampler.TapRow.self)
            for p in 0..<count {
                g.taps(at: grid + (n * g.outputPixels + first + p) * g.pointSize, into: taps + p * rows)
            }
            /// Every channel from the taps; `rows` a constant 1 where inlined for the
            /// common one-row case, so that loop has no inner loop.
            @inline(__always) func gather(rows: Int) {
                for c in 0..<g.channels {
                    let source = x + (n * g.channels + c) * volume
                    let destination = y + (n * g.channels + c) * g.outputPixels + first
                    for p in 0..<count {
                        var sum: Float = 0
                        for r in 0..<rows {
                            let (offsets, weights) = taps[p * rows + r]
                            sum += weights[0] * source[Int(offsets[0])] + weights[1] * source[Int(offsets[1])]
                                + weights[2] * source[Int(offsets[2])] + weights[3] * source[Int(offsets[3])]
                        }
                        destination[p] = sum
                    }
                }
            }
            if rows == 1 { gather(rows: 1) } else { gather(rows: rows) }
        }
    }
}

extension GridSample: Differentiable {
    /// Reads X (the grid's gradient is the slope of X between the corners) and the grid.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0, 1]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let grid = try ShapeRules.required(inputs, 1, node: name)
        let g = try geometry(x.shape, grid.shape)
        if g.volumetric || g.options.mode == .cubic {
            throw OpError.unsupported(node: name, "gradient of volumetric or cubic sampling (inference only)")
        }
        if wanted.count > 1 && wanted[1] && sampler.padding == .reflection && sampler.mode == .linear {
            throw OpError.unsupported(node: name, "gradient of the grid with reflection padding")
        }
        return GridSampleBackward(sampler: g)
    }
}

/// gridSample's backward rule for 2-D linear and nearest sampling, point by point
/// (volumetric and cubic sampling are inference only):
///   ∂X[corner] += weight · ∂Y (the forward's taps, padding resolved as it read them);
///   ∂grid (bilinear): ∂Y times the sample's slope along x and y (`GridSampler.gridSlopes`,
///   zero where padding moved the coordinate), summed over channels. Nearest sampling is
///   piecewise constant in the grid: no grid gradient, as in PyTorch.
/// Points of one image add into the same X plane, so workers take whole images.
struct GridSampleBackward: BackwardKernel {
    let sampler: GridSampler

    func run(_ io: BackwardIO) {
        let g = sampler
        let x = io.input(0), grid = io.input(1), dy = io.outputGradient
        let dx = io.inputGradient(0)
        let dGrid = g.options.mode == .linear ? io.inputGradient(1) : nil
        let plane = g.inputHeight * g.inputWidth
        io.pool.parallelFor(g.batch) { images in
            for n in images {
                for p in 0..<g.outputPixels {
                    let point = (n * g.outputPixels + p) * 2
                    if let dx {
                        let (offsets, weights) = g.taps(column: grid[point], row: grid[point + 1])
                        for c in 0..<g.channels {
                            let upstream = dy[(n * g.channels + c) * g.outputPixels + p]
                            let target = dx + (n * g.channels + c) * plane
                            for t in 0..<4 where weights[t] != 0 { target[Int(offsets[t])] += weights[t] * upstream }
                        }
                    }
                    guard let dGrid else { continue }
                    let (offsets, slopesX, slopesY) = g.gridSlopes(column: grid[point], row: grid[point + 1])
                    var (alongX, alongY): (Float, Float) = (0, 0)
                    for c in 0..<g.channels {
                        let source = x + (n * g.channels + c) * plane
                        let corners = SIMD4(source[Int(offsets[0])], source[Int(offsets[1])], source[Int(offsets[2])],
                                            source[Int(offsets[3])])
                        let upstream = dy[(n * g.channels + c) * g.outputPixels + p]
                        alongX += upstream * (slopesX * corners).sum()
                        alongY += upstream * (slopesY * corners).sum()
                    }
                    dGrid[point] += alongX
                    dGrid[point + 1] += alongY
                }
            }
        }
    }
}

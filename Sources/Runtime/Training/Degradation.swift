import Foundation

/// Where an RGB image lies in a planar buffer: `height` × `width` pixels in the top-left
/// of planes `planeStride` floats apart whose rows are `rowStride` floats apart (a
/// generator padded to its multiple writes a larger plane than the image).
public struct PlanarLayout: Sendable, Equatable {
    public var height: Int
    public var width: Int
    public var rowStride: Int
    public var planeStride: Int

    public init(height: Int, width: Int, rowStride: Int? = nil, planeStride: Int? = nil) {
        self.height = height
        self.width = width
        self.rowStride = rowStride ?? width
        self.planeStride = planeStride ?? height * (rowStride ?? width)
    }

    func index(_ channel: Int, _ y: Int, _ x: Int) -> Int { channel * planeStride + y * rowStride + x }
}

/// A known, linear degradation A of an RGB image (3 planes), the operator the priors'
/// losses compare through: ‖A·x − y‖² with y the observed image. `apply` computes A·x
/// (observed layout: dense planes) and `adjoint` adds Aᵀ·g into an image gradient.
public enum Degradation: Sendable, Equatable {
    /// Nothing lost (denoising compares the image itself).
    case identity
    /// Pixels missing: `mask` (height·width, row-major) is 1 where known, 0 where not;
    /// A·x is x with the missing pixels zeroed.
    case mask([Float])
    /// Colour lost: one plane, 0.2989·R + 0.5870·G + 0.1140·B (the luma weights DGP uses).
    case grayscale
    /// ×4 super-resolution by 4×4 block means (area downsampling, Deep Image Prior's).
    case areaDownsample4
    /// ×4 super-resolution by bilinear downsampling with antialiasing (a triangle filter
    /// 8 pixels wide), as torch's interpolate(mode="bilinear", antialias=True) and PIL's
    /// BILINEAR resize compute it.
    case bilinearDownsample4

    static let lumaWeights: [Float] = [0.2989, 0.5870, 0.1140]

    /// Planes and size of A·x for an image of `height` × `width`.
    public func observedShape(height: Int, width: Int) -> (planes: Int, height: Int, width: Int) {
        switch self {
        case .identity, .mask: (3, height, width)
        case .grayscale: (1, height, width)
        case .areaDownsample4, .bilinearDownsample4: (3, height / 4, width / 4)
        }
    }

    /// A·x for the image at `layout` in `image`, as dense planes.
    public func apply(_ image: UnsafeBufferPointer<Float>, layout: PlanarLayout) -> [Float] {
        let (planes, h, w) = observedShape(height: layout.height, width: layout.width)
        var observed = [Float](repeating: 0, count: planes * h * w)
        switch self {
        case .identity, .mask:
            for c in 0..<3 {
                for y in 0..<h {
                    for x in 0..<w {
                        var value = image[layout.index(c, y, x)]
                        if case .mask(let mask) = self { value *= mask[y * w + x] }
                        observed[(c * h + y) * w + x] = value
                    }
                }
            }
        case .grayscale:
            for y in 0..<h {
                for x in 0..<w {
                    var sum: Float = 0
                    for c in 0..<3 { sum += Self.lumaWeights[c] * image[layout.index(c, y, x)] }
                    observed[y * w + x] = sum
                }
            }
        case .areaDownsample4, .bilinearDownsample4:
            let resize = downsampler(layout)
            for c in 0..<3 {
                resize.apply(image, plane: c, layout: layout, into: &observed, offset: c * h * w)
            }
        }
        return observed
    }

    /// Adds Aᵀ·g (g in the observed layout) into `gradient` at `layout`.
    public func addAdjoint(_ g: [Float], to gradient: UnsafeMutableBufferPointer<Float>, layout: PlanarLayout) {
        let (_, h, w) = observedShape(height: layout.height, width: layout.width)
        switch self {
        case .identity, .mask:
            for c in 0..<3 {
                for y in 0..<h {
                    for x in 0..<w {
                        var value = g[(c * h + y) * w + x]
                        if case .mask(let mask) = self { value *= mask[y * w + x] }
                        gradient[layout.index(c, y, x)] += value
                    }
                }
            }
        case .grayscale:
            for c in 0..<3 {
                for y in 0..<h {
                    for x in 0..<w { gradient[layout.index(c, y, x)] += Self.lumaWeights[c] * g[y * w + x] }
                }
            }
        case .areaDownsample4, .bilinearDownsample4:
            let resize = downsampler(layout)
            for c in 0..<3 { resize.addAdjoint(g, offset: c * h * w, into: gradient, plane: c, layout: layout) }
        }
    }

    private func downsampler(_ layout: PlanarLayout) -> SeparableResize {
        let antialiased = self == .bilinearDownsample4
        return SeparableResize(from: (layout.height, layout.width), to: (layout.height / 4, layout.width / 4),
                               filter: antialiased ? .triangle : .box)
    }
}

/// MSE between A·x and the observed image y, over y's elements: L = mean((A·x − y)²),
/// with ∂L/∂x = Aᵀ·2(A·x − y)/n written over the whole output buffer (zero outside the
/// image, e.g. a generator's padding). What Deep Image Prior and Deep Generative Prior
/// minimise, each with its own degradation.
public struct DegradedMSE: Sendable {
    public let degradation: Degradation
    public let observed: [Float]
    public let layout: PlanarLayout

    /// `observed` must have the shape `degradation.observedShape` gives for `layout`.
    public init(degradation: Degradation, observed: [Float], layout: PlanarLayout) throws {
        let (planes, h, w) = degradation.observedShape(height: layout.height, width: layout.width)
        guard observed.count == planes * h * w else {
            throw TrainingError.shapeMismatch(what: "the observed image", expected: [planes, h, w], found: [observed.count])
        }
        if case .mask(let mask) = degradation, mask.count != layout.height * layout.width {
            throw TrainingError.shapeMismatch(what: "the mask", expected: [layout.height, layout.width], found: [mask.count])
        }
        self.degradation = degradation
        self.observed = observed
        self.layout = layout
    }

    /// L for `output`; when `gradient` is given, ∂L/∂output scaled by `weight` is written
    /// into it (overwriting it). Returns weight · L.
    @discardableResult
    public func evaluate(_ output: UnsafeBufferPointer<Float>, gradient: UnsafeMutableBufferPointer<Float>? = nil,
                         weight: Float = 1) -> Float {
        var residual = degradation.apply(output, layout: layout)
        let scale = 2 * weight / Float(max(residual.count, 1))
        var total = 0.0
        for i in residual.indices {
            let difference = residual[i] - observed[i]
            total += Double(difference * difference)
            residual[i] = scale * difference
        }
        if let gradient {
            gradient.update(repeating: 0)
            degradation.addAdjoint(residual, to: gradient, layout: layout)
        }
        return weight * Float(total / Double(max(residual.count, 1)))
    }
}

/// A separable linear resize of one plane: each output pixel a weighted sum of input
/// pixels along rows, then along columns, with the weights of
/// torch.nn.functional.interpolate's antialiased modes (and PIL's resize): output pixel i
/// is centred at (i + ½)·s in input coordinates (s = input/output size); the filter is
/// stretched by s when shrinking; weights are normalised to sum to 1, which also clamps
/// at the borders.
public struct SeparableResize: Sendable {
    public enum Filter: Sendable {
        /// 1 − |t| on |t| < 1: bilinear.
        case triangle
        /// 1 on |t| < ½: area (block mean) when shrinking by an integer factor.
        case box
    }

    /// Per output row (column): first input index and the weights from there.
    let rows: [(start: Int, weights: [Float])]
    let columns: [(start: Int, weights: [Float])]
    public let inputSize: (height: Int, width: Int)
    public let outputSize: (height: Int, width: Int)

    public init(from input: (Int, Int), to output: (Int, Int), filter: Filter) {
        inputSize = input
        outputSize = output
        rows = Self.taps(input: input.0, output: output.0, filter: filter)
        columns = Self.taps(input: input.1, output: output.1, filter: filter)
    }

    static func taps(input: Int, output: Int, filter: Filter) -> [(start: Int, weights: [Float])] {
        let scale = Double(input) / Double(output)
        let stretch = max(scale, 1)
        let halfWidth: Double = filter == .triangle ? 1 : 0.5
        let support = halfWidth * stretch
        return (0..<output).map { i in
            let centre = scale * (Double(i) + 0.5)
            let first = max(Int(centre - support + 0.5), 0)
            let last = min(Int(centre + support + 0.5), input)
            var weights = (first..<last).map { j -> Double in
                let t = abs((Double(j) - centre + 0.5) / stretch)
                switch filter {
                case .triangle: return max(0, 1 - t)
                case .box: return t < 0.5 ? 1 : 0
                }
            }
            let total = weights.reduce(0, +)
            if total > 0 { weights = weights.map { $0 / total } }
            return (first, weights.map(Float.init))
        }
    }

    /// Resizes plane `plane` of the image at `layout` into dense `output[offset...]`.
    func apply(_ image: UnsafeBufferPointer<Float>, plane: Int, layout: PlanarLayout, into output: inout [Float], offset: Int) {
        let (outHeight, outWidth) = outputSize
        var horizontal = [Float](repeating: 0, count: layout.height * outWidth)
        for y in 0..<layout.height {
            for (x, tap) in columns.enumerated() {
                var sum: Float = 0
                for (k, weight) in tap.weights.enumerated() { sum += weight * image[layout.index(plane, y, tap.start + k)] }
                horizontal[y * outWidth + x] = sum
            }
        }
        for (y, tap) in rows.enumerated() where y < outHeight {
            for x in 0..<outWidth {
                var sum: Float = 0
                for (k, weight) in tap.weights.enumerated() { sum += weight * horizontal[(tap.start + k) * outWidth + x] }
                output[offset + y * outWidth + x] = sum
            }
        }
    }

    /// Adds the transpose of `apply` on `g[offset...]` (dense output plane) into plane
    /// `plane` of `gradient` at `layout`.
    func addAdjoint(_ g: [Float], offset: Int, into gradient: UnsafeMutableBufferPointer<Float>, plane: Int, layout: PlanarLayout) {
        let outWidth = outputSize.width
        var horizontal = [Float](repeating: 0, count: layout.height * outWidth)
        for (y, tap) in rows.enumerated() {
            for x in 0..<outWidth {
                let value = g[offset + y * outWidth + x]
                for (k, weight) in tap.weights.enumerated() { horizontal[(tap.start + k) * outWidth + x] += weight * value }
            }
        }
        for y in 0..<layout.height {
            for (x, tap) in columns.enumerated() {
                let value = horizontal[y * outWidth + x]
                for (k, weight) in tap.weights.enumerated() { gradient[layout.index(plane, y, tap.start + k)] += weight * value }
            }
        }
    }

    /// Resizes every plane of a dense [planes, H, W] buffer.
    public func resize(_ planes: [Float], count: Int) -> [Float] {
        let layout = PlanarLayout(height: inputSize.height, width: inputSize.width)
        var output = [Float](repeating: 0, count: count * outputSize.height * outputSize.width)
        planes.withUnsafeBufferPointer { image in
            for c in 0..<count {
                apply(image, plane: c, layout: layout, into: &output, offset: c * outputSize.height * outputSize.width)
            }
        }
        return output
    }
}

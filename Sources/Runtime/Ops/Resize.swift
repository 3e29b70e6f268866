import Foundation
import Format

/// `resize`: nearest, linear or cubic interpolation of the last two axes (H, W), per ONNX
/// Resize. Inputs: X, scales? (plan-time f32), sizes? (plan-time i64), exactly one given;
/// scales and sizes may list every axis (the leading ones must keep their size) or only
/// the last two. With scales the output size is floor(in · scale) — with tf_crop_and_resize
/// too, as onnxruntime computes it (ONNX's text scales the region's length instead).
public struct Resize: Operator {
    let name: String
    let attributes: ResizeAttributes

    /// The output shape and the scale of the last two axes for an input of `shape`.
    func plan(_ shape: [Int], scales: [Float]?, sizes: [Int64]?) throws -> (shape: [Int], scales: [Float]) {
        let rank = shape.count
        guard rank >= 2 else { throw OpError.shape(node: name, "resize needs rank >= 2, found \(shape)") }
        let leading = Array(shape[..<(rank - 2)])
        if let scales, !scales.isEmpty {
            guard sizes == nil else { throw OpError.shape(node: name, "both scales and sizes are given") }
            guard scales.count == rank || scales.count == 2 else {
                throw OpError.shape(node: name, "\(scales.count) scales for rank \(rank); expected \(rank) or 2")
            }
            guard scales.dropLast(2).allSatisfy({ $0 == 1 }) else {
                throw OpError.unsupported(node: name, "scales \(scales): only the last two axes can be resized")
            }
            let last = Array(scales.suffix(2))
            guard last.allSatisfy({ $0 > 0 }) else { throw OpError.shape(node: name, "scales \(scales) must be positive") }
            // Float arithmetic as onnxruntime, so 5 × 1.7 = 8.5 floors to 8 the same way.
            let sizes = try (0..<2).map { axis in
                // An infinite or enormous scale from the file must not trap the conversion.
                guard let size = Int(exactly: (Float(shape[rank - 2 + axis]) * last[axis]).rounded(.down)) else {
                    throw OpError.shape(node: name, "scales \(scales) give an output size out of range for \(shape)")
                }
                return size
            }
            // An empty axis is refused: it is no image, and its scale (below 1 / input) would
            // make the antialiased tap count 2 − 2·(⌊−1/scale⌋ + 1) too large for an Int (the
            // plan fuzzer's find). A non-empty axis has scale ≥ 1 / input, so at most ~4·input taps.
            guard sizes.allSatisfy({ $0 >= 1 }) else {
                throw OpError.unsupported(node: name, "scales \(scales) give an empty output for \(shape)")
            }
            return (leading + sizes, last)
        }
        guard let sizes, sizes.count == rank || sizes.count == 2 else {
            throw OpError.shape(node: name, "resize needs scales or sizes (one value per axis, or two)")
        }
        guard sizes.suffix(2).allSatisfy({ $0 > 0 }), shape.suffix(2).allSatisfy({ $0 > 0 }) else {
            throw OpError.shape(node: name, "sizes \(sizes) for \(shape) must be positive")
        }
        if attributes.keepAspectRatioPolicy != .stretch {
            return try planKeepingAspectRatio(shape, sizes: sizes)
        }
        guard zip(sizes.dropLast(2), leading).allSatisfy({ Int($0) == $1 }) else {
            throw OpError.unsupported(node: name, "sizes \(sizes) for \(shape): only the last two axes can be resized")
        }
        let last = sizes.suffix(2).map { Int($0) }
        return (leading + last, (0..<2).map { Float(last[$0]) / Float(shape[rank - 2 + $0]) })
    }

    /// not_larger / not_smaller: one factor for every axis `sizes` lists (all, or the last
    /// two), the smallest / largest of size ÷ input size, and each such axis round(in ·
    /// factor) long, in float arithmetic as onnxruntime. The factor is also the scale the
    /// coordinates use, not output ÷ input.
    private func planKeepingAspectRatio(_ shape: [Int], sizes: [Int64]) throws -> (shape: [Int], scales: [Float]) {
        let listed = Array(shape.suffix(sizes.count))
        guard sizes.allSatisfy({ $0 > 0 }), listed.allSatisfy({ $0 > 0 }) else {
            throw OpError.shape(node: name, "sizes \(sizes) for \(shape) must be positive")
        }
        let ratios = zip(sizes, listed).map { Float($0) / Float($1) }
        let factor = (attributes.keepAspectRatioPolicy == .notLarger ? ratios.min() : ratios.max()) ?? 1
        let resized = try listed.map { size in
            guard let rounded = Int(exactly: (factor * Float(size)).rounded(.toNearestOrAwayFromZero)), rounded > 0 else {
                throw OpError.shape(node: name, "sizes \(sizes) give an output size out of range for \(shape)")
            }
            return rounded
        }
        let leading = Array(shape.dropLast(2))
        guard resized.dropLast(2) == leading.suffix(resized.count - 2) else {
            throw OpError.unsupported(node: name, "sizes \(sizes) for \(shape) with keep_aspect_ratio_policy "
                                      + "\(attributes.keepAspectRatioPolicy.rawValue) resize leading axes; only the last two can be")
        }
        return (leading + resized.suffix(2), [factor, factor])
    }

    private func plan(_ inputs: [ValueFact?]) throws -> (shape: [Int], scales: [Float]) {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let scales = inputs.count > 1 && inputs[1] != nil ? try ShapeRules.planTimeValue(inputs, 1, node: name).floats : nil
        let sizes = inputs.count > 2 && inputs[2] != nil ? try ShapeRules.planTimeValue(inputs, 2, node: name).ints : nil
        return try plan(x.shape, scales: scales, sizes: sizes)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        [ValueFact(dtype: .float32, shape: try plan(inputs).shape)]
    }

    /// The input coordinate that output position `x` of an axis (0: H, 1: W) samples.
    func sourceCoordinate(_ x: Int, axis: Int, input: Int, output: Int, scale: Float) -> Float {
        let x = Float(x)
        switch attributes.coordinateTransformationMode {
        case .halfPixel: return (x + 0.5) / scale - 0.5
        case .halfPixelSymmetric:
            let adjustment = Float(output) / (scale * Float(input))
            let offset = Float(input) / 2 * (1 - adjustment)
            return offset + (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return output > 1 ? (x + 0.5) / scale - 0.5 : 0
        case .alignCorners: return output == 1 ? 0 : x * Float(input - 1) / Float(output - 1)
        case .asymmetric: return x / scale
        case .tfHalfPixelForNearest: return (x + 0.5) / scale
        case .tfCropAndResize:
            // In onnxruntime's order of fp32 operations, so that a sample on the input's
            // edge stays inside it the same way.
            let (start, end) = (attributes.regionOfInterest[axis], attributes.regionOfInterest[2 + axis])
            let length = Float(input - 1)
            return output > 1 ? start * length + x * (end - start) * length / Float(output - 1) : 0.5 * (start + end) * length
        }
    }

    /// Taps per output position of an axis resized by `scale`: 1 (nearest), 2 (linear) or
    /// 4 (cubic); with antialias, downsampling stretches the filter by 1/scale, so linear
    /// takes 2 − 2·(⌊−1/scale⌋ + 1) taps and cubic 2 − 2·(⌊−2/scale⌋ + 1).
    func tapCount(scale: Float) -> Int {
        let stretched = attributes.antialias && scale < 1
        switch attributes.mode {
        case .nearest: return 1
        case .linear: return stretched ? 2 - 2 * (Int((-1 / scale).rounded(.down)) + 1) : 2
        case .cubic: return stretched ? 2 - 2 * (Int((-2 / scale).rounded(.down)) + 1) : 4
        }
    }

    /// Keys' cubic convolution kernel at distance `d` ≥ 0 (0 from 2 on).
    private func cubicWeight(_ d: Float) -> Float {
        let a = attributes.cubicCoeffA
        if d <= 1 { return ((a + 2) * d - (a + 3)) * d * d + 1 }
        if d < 2 { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a }
        return 0
    }

    /// Antialiased taps (`tapCount(scale:)` of them) when downsampling, as ONNX defines
    /// them: the filter evaluated at (i − r)·scale for the input positions ⌈x⌉ − 1 + i
    /// around the source coordinate x = ⌈x⌉ − 1 + r (r in (0, 1]), normalised to sum 1;
    /// positions outside the input read its edge, or weigh 0 with exclude_outside.
    private func antialiasedTaps(_ source: Float, input: Int, scale: Float, count: Int,
                                 indices: UnsafeMutablePointer<Int>, weights: UnsafeMutablePointer<Float>) {
        let base = source.rounded(.up) - 1
        let ratio = source - base
        let first = 1 - count / 2
        var total: Float = 0
        for tap in 0..<count {
            let offset = first + tap
            let index = Int(base) + offset
            let distance = abs((Float(offset) - ratio) * scale)
            var weight = attributes.mode == .linear ? max(0, 1 - distance) : cubicWeight(distance)
            if attributes.excludeOutside && (index < 0 || index >= input) { weight = 0 }
            indices[tap] = min(max(index, 0), input - 1)
            weights[tap] = weight
            total += weight
        }
        for tap in 0..<count { weights[tap] /= total }
    }

    /// The input indices and weights output position `x` of an axis (0: H, 1: W)
    /// interpolates from, written to `indices` and `weights` (`tapCount(scale:)` each).
    /// Returns whether the position samples outside the input (tf_crop_and_resize), where
    /// the output is `extrapolationValue`; its taps are then index 0 with weight 0.
    @discardableResult
    func taps(_ x: Int, axis: Int, input: Int, output: Int, scale: Float,
              indices: UnsafeMutablePointer<Int>, weights: UnsafeMutablePointer<Float>) -> Bool {
        let source = sourceCoordinate(x, axis: axis, input: input, output: output, scale: scale)
        if attributes.coordinateTransformationMode == .tfCropAndResize && !(0...Float(input - 1)).contains(source) {
            let count = tapCount(scale: scale)
            indices.update(repeating: 0, count: count)
            weights.update(repeating: 0, count: count)
            return true
        }
        if attributes.antialias && scale < 1 && attributes.mode != .nearest {
            antialiasedTaps(source, input: input, scale: scale, count: tapCount(scale: scale), indices: indices, weights: weights)
            return false
        }
        switch attributes.mode {
        case .nearest:
            let rounded: Float
            switch attributes.nearestMode {
            case .roundPreferFloor: rounded = source - source.rounded(.down) == 0.5 ? source.rounded(.down) : source.rounded()
            case .roundPreferCeil: rounded = source - source.rounded(.down) == 0.5 ? source.rounded(.up) : source.rounded()
            case .floor: rounded = source.rounded(.down)
            case .ceil: rounded = source.rounded(.up)
            }
            indices[0] = min(max(Int(rounded), 0), input - 1)
            weights[0] = 1
        case .linear:
            let clamped = min(max(source, 0), Float(input - 1))
            let first = Int(clamped.rounded(.down))
            let fraction = clamped - Float(first)
            indices[0] = first
            indices[1] = min(first + 1, input - 1)
            weights[0] = 1 - fraction
            weights[1] = fraction
        case .cubic:
            let floor = source.rounded(.down)
            let t = source - floor
            let coefficients = CubicConvolution.coefficients(fraction: t, a: attributes.cubicCoeffA)
            var total: Float = 0
            for tap in 0..<4 {
                let index = Int(floor) - 1 + tap
                let inside = index >= 0 && index < input
                indices[tap] = min(max(index, 0), input - 1)
                weights[tap] = attributes.excludeOutside && !inside ? 0 : coefficients[tap]
                total += weights[tap]
            }
            if attributes.excludeOutside {
                for tap in 0..<4 { weights[tap] /= total }
            }
        }
        return false
    }

    /// Index and weight tables of one axis, `tapCount(scale:)` entries per output position
    /// (all weights 0 where it extrapolates: the output does not depend on X there).
    func axisTable(axis: Int, input: Int, output: Int, scale: Float) -> (indices: [Int], weights: [Float]) {
        let count = tapCount(scale: scale)
        var indices: [Int] = [], weights: [Float] = []
        var tapIndices = [Int](repeating: 0, count: count), tapWeights = [Float](repeating: 0, count: count)
        for x in 0..<output {
            taps(x, axis: axis, input: input, output: output, scale: scale, indices: &tapIndices, weights: &tapWeights)
            indices += tapIndices
            weights += tapWeights
        }
        return (indices, weights)
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        guard let xTensor = inputs.first ?? nil else { throw GraphError.missingInput(node: name, index: 0) }
        let (shape, scales) = try plan(inputs.map { $0.map(ValueFact.init) })
        let x = xTensor.floats
        let rank = shape.count
        let (inH, inW, outH, outW) = (xTensor.shape[rank - 2], xTensor.shape[rank - 1], shape[rank - 2], shape[rank - 1])
        let planes = shape[..<(rank - 2)].reduce(1, *)
        var y = [Float](repeating: 0, count: planes * outH * outW)
        let (rowTaps, columnTaps) = (tapCount(scale: scales[0]), tapCount(scale: scales[1]))
        var rowIndices = [Int](repeating: 0, count: rowTaps), columnIndices = [Int](repeating: 0, count: columnTaps)
        var rowWeights = [Float](repeating: 0, count: rowTaps), columnWeights = [Float](repeating: 0, count: columnTaps)
        for oy in 0..<outH {
            let rowOutside = taps(oy, axis: 0, input: inH, output: outH, scale: scales[0], indices: &rowIndices, weights: &rowWeights)
            for ox in 0..<outW {
                let columnOutside = taps(ox, axis: 1, input: inW, output: outW, scale: scales[1],
                                         indices: &columnIndices, weights: &columnWeights)
                for plane in 0..<planes {
                    if rowOutside || columnOutside {
                        y[(plane * outH + oy) * outW + ox] = attributes.extrapolationValue
                        continue
                    }
                    var sum: Float = 0
                    for ty in 0..<rowTaps {
                        for tx in 0..<columnTaps {
                            sum += rowWeights[ty] * columnWeights[tx]
                                * x[(plane * inH + rowIndices[ty]) * inW + columnIndices[tx]]
                        }
                    }
                    y[(plane * outH + oy) * outW + ox] = sum
                }
            }
        }
        return [HostTensor(shape: shape, floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (shape, scales) = try plan(inputs)
        let rank = shape.count
        let (inH, inW, outH, outW) = (x.shape[rank - 2], x.shape[rank - 1], shape[rank - 2], shape[rank - 1])
        let (rowTaps, columnTaps) = (tapCount(scale: scales[0]), tapCount(scale: scales[1]))
        // The column table and the ring of interpolated rows live in scratch, which the plan's
        // arena (and so the memory budget) counts; an 800-byte graph asking for a 2^28-wide
        // output must be refused by that budget, not allocate gigabytes while planning.
        // With tf_crop_and_resize a byte per column after the taps says whether it extrapolates.
        let extrapolates = attributes.coordinateTransformationMode == .tfCropAndResize
        let tableEntry = MemoryLayout<Int>.size + MemoryLayout<Float>.size
        let columnTable = ShapeRules.checkedProduct([outW, columnTaps * tableEntry + (extrapolates ? 1 : 0)])
        let slot = ShapeRules.checkedProduct([rowTaps, outW, MemoryLayout<Float>.size])
        guard let columnTable, let slot, let ring = ShapeRules.checkedProduct([ScratchSlots.slotCount, slot + 63]),
              case (let scratch, false) = (columnTable + 63).addingReportingOverflow(ring) else {
            throw OpError.shape(node: name, "resizing \(x.shape) to \(shape) needs more working memory than can be addressed")
        }
        return ResizeKernel(resize: self, planes: shape[..<(rank - 2)].reduce(1, *), inputHeight: inH, inputWidth: inW,
                            outputHeight: outH, outputWidth: outW, rowScale: scales[0], columnScale: scales[1],
                            rowTaps: rowTaps, columnTaps: columnTaps, extrapolates: extrapolates,
                            columnTableBytes: (columnTable + 63) / 64 * 64, slotBytes: (slot + 63) / 64 * 64,
                            scratchBytes: rowTaps == 1 ? (columnTable + 63) / 64 * 64 : scratch)
    }
}

/// Resizing from per-axis index and weight taps (`Resize.taps`).
///
/// Nearest is a plain gather per output row. Linear and cubic are separable: each input
/// row a worker needs is interpolated horizontally once into a small ring of `rowTaps`
/// rows in scratch (row r in slot r mod rowTaps: the rows one output row needs are
/// consecutive, so they never share a slot), and each output row is a vectorised weighted
/// sum of those. Antialiased downsampling only has more taps per axis.
/// Against interpolating every output pixel from the input directly (taps² gathers per
/// pixel) this took ×2 upsampling of 64×256² from ~90 to ~24 ms (linear) and from ~250 to
/// ~64 ms (cubic) on the shared 2-core machine; onnxruntime took 48 and 1881 ms there.
/// Work items are blocks of output rows of one plane.
///
/// The column taps are a table written at the start of scratch on each run (output width ×
/// taps entries, little next to the planes × height × width the kernel then writes); each
/// output row's few taps are computed where they are used. Nothing is sized by the shapes
/// when the kernel is made, so planning a huge resize allocates nothing.
struct ResizeKernel: Kernel {
    let resize: Resize
    let planes: Int
    let inputHeight: Int, inputWidth: Int, outputHeight: Int, outputWidth: Int
    let rowScale: Float, columnScale: Float
    /// Taps per output row and per output column (`Resize.tapCount(scale:)`): 1 (nearest),
    /// 2 (linear), 4 (cubic), or more when antialiased downsampling widens the filter.
    let rowTaps: Int, columnTaps: Int
    /// Whether positions may sample outside the input (tf_crop_and_resize) and so take
    /// the extrapolation value.
    let extrapolates: Bool
    /// Bytes of the column table at the start of scratch (indices, weights, then with
    /// `extrapolates` one flag byte per column saying it samples outside), and of
    /// one ring slot after it; both 64-byte multiples.
    let columnTableBytes: Int, slotBytes: Int
    /// The column table, and the ring slots unless the rows take one tap (nearest).
    let scratchBytes: Int

    private static let rowsPerItem = 32

    /// Output row `oy`'s input rows and weights; whether the row extrapolates.
    private func tapsOfRow(_ oy: Int, _ indices: UnsafeMutablePointer<Int>, _ weights: UnsafeMutablePointer<Float>) -> Bool {
        resize.taps(oy, axis: 0, input: inputHeight, output: outputHeight, scale: rowScale, indices: indices, weights: weights)
    }

    /// Every output column's `columnTaps` input columns and weights, and with
    /// `extrapolates` whether each samples outside the input.
    private func writeColumnTable(_ indices: UnsafeMutablePointer<Int>, _ weights: UnsafeMutablePointer<Float>,
                                  _ outside: UnsafeMutablePointer<UInt8>) {
        for ox in 0..<outputWidth {
            let extrapolated = resize.taps(ox, axis: 1, input: inputWidth, output: outputWidth, scale: columnScale,
                                           indices: indices + ox * columnTaps, weights: weights + ox * columnTaps)
            if extrapolates { outside[ox] = extrapolated ? 1 : 0 }
        }
    }

    /// An output row that samples inside the input along H: its columns that extrapolate
    /// take the extrapolation value.
    @inline(__always)
    private func extrapolateColumns(_ output: UnsafeMutablePointer<Float>, _ outside: UnsafeMutablePointer<UInt8>) {
        guard extrapolates else { return }
        for ox in 0..<outputWidth where outside[ox] != 0 { output[ox] = resize.attributes.extrapolationValue }
    }

    func run(_ io: KernelIO) {
        guard planes > 0, outputHeight > 0, outputWidth > 0 else { return }
        let x = io.input(0), y = io.outputs[0]
        guard let scratch = io.scratch else { preconditionFailure("resize kernel ran without scratch") }
        let entries = outputWidth * columnTaps
        let columnIndices = scratch.assumingMemoryBound(to: Int.self)
        let columnWeights = (scratch + entries * MemoryLayout<Int>.size).assumingMemoryBound(to: Float.self)
        let columnOutside = (scratch + entries * (MemoryLayout<Int>.size + MemoryLayout<Float>.size))
            .assumingMemoryBound(to: UInt8.self)
        writeColumnTable(columnIndices, columnWeights, columnOutside)
        let extrapolation = resize.attributes.extrapolationValue
        if rowTaps == 1 {
            // Nearest: a gather per output row (every weight is 1).
            io.pool.parallelFor(planes * outputHeight, minimumChunk: 16) { range in
                var rowIndex = 0, rowWeight: Float = 0
                for item in range {
                    let plane = item / outputHeight, oy = item % outputHeight
                    let output = y + item * outputWidth
                    if tapsOfRow(oy, &rowIndex, &rowWeight) {
                        output.update(repeating: extrapolation, count: outputWidth)
                        continue
                    }
                    let row = x + (plane * inputHeight + rowIndex) * inputWidth
                    for ox in 0..<outputWidth { output[ox] = row[columnIndices[ox]] }
                    extrapolateColumns(output, columnOutside)
                }
            }
            return
        }
        let columns = (UnsafeBufferPointer(start: columnIndices, count: entries),
                       UnsafeBufferPointer(start: columnWeights, count: entries))
        let rings = scratch + columnTableBytes
        let blocks = (outputHeight + Self.rowsPerItem - 1) / Self.rowsPerItem
        ScratchSlots.run(items: planes * blocks, pool: io.pool) { slot, item in
            let plane = item / blocks, block = item % blocks
            let input = x + plane * inputHeight * inputWidth
            let ring = (rings + slot * slotBytes).assumingMemoryBound(to: Float.self)
            // Which input row each ring slot holds, and one output row's taps (on the
            // stack: run must not allocate).
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * rowTaps) { rowState in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rowTaps) { rowWeights in
                guard let rowState = rowState.baseAddress, let rowWeights = rowWeights.baseAddress else { return }
                let ringRows = rowState, rowIndices = rowState + rowTaps
                ringRows.initialize(repeating: -1, count: rowTaps)
                for oy in (block * Self.rowsPerItem)..<min((block + 1) * Self.rowsPerItem, outputHeight) {
                    let output = y + (plane * outputHeight + oy) * outputWidth
                    if tapsOfRow(oy, rowIndices, rowWeights) {
                        output.update(repeating: extrapolation, count: outputWidth)
                        continue
                    }
                    output.update(repeating: 0, count: outputWidth)
                    for ty in 0..<rowTaps {
                        let inputRow = rowIndices[ty]
                        let ringSlot = inputRow % rowTaps
                        let interpolated = ring + ringSlot * outputWidth
                        if ringRows[ringSlot] != inputRow {
                            interpolate(input + inputRow * inputWidth, into: interpolated,
                                        columnIndices: columns.0, columnWeights: columns.1)
                            ringRows[ringSlot] = inputRow
                        }
                        let weight = rowWeights[ty]
                        for ox in 0..<outputWidth { output[ox] += weight * interpolated[ox] }
                    }
                    extrapolateColumns(output, columnOutside)
                }
            }
            }
        }
    }

    /// One input row interpolated horizontally to the output width. Fixed tap counts let
    /// the compiler unroll the sums (a generic loop over the taps was ~3× slower); the
    /// wider filters of antialiasing take the generic loop.
    @inline(__always)
    private func interpolate(_ row: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
                             columnIndices: UnsafeBufferPointer<Int>, columnWeights: UnsafeBufferPointer<Float>) {
        if columnTaps == 2 {
            for ox in 0..<outputWidth {
                let t = ox &* 2
                output[ox] = columnWeights[t] * row[columnIndices[t]] + columnWeights[t &+ 1] * row[columnIndices[t &+ 1]]
            }
        } else if columnTaps == 4 {
            for ox in 0..<outputWidth {
                let t = ox &* 4
                let near = columnWeights[t &+ 1] * row[columnIndices[t &+ 1]] + columnWeights[t &+ 2] * row[columnIndices[t &+ 2]]
                let far = columnWeights[t] * row[columnIndices[t]] + columnWeights[t &+ 3] * row[columnIndices[t &+ 3]]
                output[ox] = near + far
            }
        } else {
            for ox in 0..<outputWidth {
                var sum: Float = 0
                for t in (ox * columnTaps)..<((ox + 1) * columnTaps) { sum += columnWeights[t] * row[columnIndices[t]] }
                output[ox] = sum
            }
        }
    }
}

extension Resize: Differentiable {
    /// Interpolation is linear in X with weights that depend only on shapes.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (shape, scales) = try plan(inputs)
        let rank = shape.count
        let (inH, inW, outH, outW) = (x.shape[rank - 2], x.shape[rank - 1], shape[rank - 2], shape[rank - 1])
        let rows = axisTable(axis: 0, input: inH, output: outH, scale: scales[0])
        let columns = axisTable(axis: 1, input: inW, output: outW, scale: scales[1])
        return ResizeBackward(planes: shape[..<(rank - 2)].reduce(1, *), inputHeight: inH, inputWidth: inW,
                              outputHeight: outH, outputWidth: outW,
                              rowTaps: tapCount(scale: scales[0]), columnTaps: tapCount(scale: scales[1]),
                              rowIndices: rows.indices, rowWeights: rows.weights,
                              columnIndices: columns.indices, columnWeights: columns.weights)
    }
}

/// The transpose of the resize tables: each output row's gradient is spread over input
/// columns into a row buffer, which is then added to the input rows it was read from with
/// their weights. Planes are independent, so workers take whole planes.
struct ResizeBackward: BackwardKernel {
    let planes: Int
    let inputHeight: Int, inputWidth: Int, outputHeight: Int, outputWidth: Int
    let rowTaps: Int, columnTaps: Int
    let rowIndices: [Int], rowWeights: [Float]
    let columnIndices: [Int], columnWeights: [Float]

    func run(_ io: BackwardIO) {
        guard let target = io.inputGradient(0) else { return }
        let gradient = io.outputGradient
        io.pool.parallelFor(planes) { range in
            // The tap tables as raw buffers: array bounds checks in the inner loop cost more than the sums.
            columnIndices.withUnsafeBufferPointer { columnIndices in
                columnWeights.withUnsafeBufferPointer { columnWeights in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: inputWidth) { buffer in
                        guard let row = buffer.baseAddress else { return }
                        for plane in range {
                            let input = target + plane * inputHeight * inputWidth
                            for oy in 0..<outputHeight {
                                let g = gradient + (plane * outputHeight + oy) * outputWidth
                                row.update(repeating: 0, count: inputWidth)
                                for ox in 0..<outputWidth {
                                    for t in 0..<columnTaps {
                                        row[columnIndices[ox &* columnTaps &+ t]] += columnWeights[ox &* columnTaps &+ t] * g[ox]
                                    }
                                }
                                for t in 0..<rowTaps {
                                    let weight = rowWeights[oy * rowTaps + t]
                                    let destination = input + rowIndices[oy * rowTaps + t] * inputWidth
                                    for ix in 0..<inputWidth { destination[ix] += weight * row[ix] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

import Format

/// `averagePool`: the mean of each window over the spatial axes of NCHW. Without
/// countIncludePad the mean is over the pixels read; with it, padding counts as zeros,
/// but never the part of a ceil-mode window past the end padding (as onnxruntime).
public struct AveragePool: Operator {
    let name: String
    let pooling: PoolingAttributes
    let countIncludePad: Bool

    public init(node: Node) throws {
        name = node.name
        pooling = try PoolingAttributes(node: node)
        countIncludePad = try node.int("countIncludePad", default: 0) != 0
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        try pooling.outputs(for: inputs, node: name)
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        try pooling.reference(inputs, node: name) { g, x, planeStart, oy, ox in
            var sum: Float = 0
            var count = 0
            for ky in 0..<g.kernelHeight {
                let iy = oy * g.strideY - g.padTop + ky * g.dilationY
                let rowInside = iy >= 0 && iy < g.inputHeight
                let rowCounted = iy >= -g.padTop && iy < g.inputHeight + g.padBottom
                for kx in 0..<g.kernelWidth {
                    let ix = ox * g.strideX - g.padLeft + kx * g.dilationX
                    if rowInside && ix >= 0 && ix < g.inputWidth {
                        sum += x[planeStart + iy * g.inputWidth + ix]
                        count += 1
                    } else if countIncludePad && rowCounted && ix >= -g.padLeft && ix < g.inputWidth + g.padRight {
                        count += 1
                    }
                }
            }
            return sum / Float(max(count, 1))
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let g = try pooling.resolve(x.shape, node: name).geometry
        let rowTaps = g.taps(vertical: true), columnTaps = g.taps(vertical: false)
        // The divisor of each output pixel factors into a row count times a column count.
        let rowCounts = countIncludePad ? g.taps(vertical: true, padBefore: g.padTop, padAfter: g.padBottom) : rowTaps
        let columnCounts = countIncludePad ? g.taps(vertical: false, padBefore: g.padLeft, padAfter: g.padRight) : columnTaps
        return AveragePoolKernel(geometry: g, planes: x.shape[0] * x.shape[1], rowTaps: rowTaps, columnTaps: columnTaps,
                                 rowScale: rowCounts.map { 1 / Float(max($0.count, 1)) },
                                 columnScale: columnCounts.map { 1 / Float(max($0.count, 1)) })
    }
}

/// Average pooling plane by plane (planes spread over threads), with the in-bounds taps
/// and the reciprocal divisors of every output row and column precomputed. As in
/// `MaxPoolKernel`, interior columns sweep each kernel tap across the row (vectorised;
/// 3×3/1 pooling of 64×256² went from ~85 to ~12 ms), border columns go pixel by pixel.
struct AveragePoolKernel: Kernel {
    let geometry: WindowGeometry
    let planes: Int
    let rowTaps: [Range<Int>], columnTaps: [Range<Int>]
    let rowScale: [Float], columnScale: [Float]

    func run(_ io: KernelIO) {
        let g = geometry
        let x = io.input(0), y = io.outputs[0]
        let interior = g.interiorColumns
        io.pool.parallelFor(planes) { range in
            for plane in range {
                let input = x + plane * g.inputPixels
                var output = y + plane * g.outputPixels
                for oy in 0..<g.outputHeight {
                    let firstRow = oy * g.strideY - g.padTop
                    for ox in 0..<interior.lowerBound { output[ox] = border(ox, oy: oy, firstRow: firstRow, input) }
                    for ox in interior.upperBound..<g.outputWidth { output[ox] = border(ox, oy: oy, firstRow: firstRow, input) }
                    for ox in interior { output[ox] = 0 }
                    for ky in rowTaps[oy] {
                        let row = input + (firstRow + ky * g.dilationY) * g.inputWidth
                        for kx in 0..<g.kernelWidth {
                            let offset = kx * g.dilationX - g.padLeft
                            if g.strideX == 1 {
                                for ox in interior { output[ox] += row[ox &+ offset] }
                            } else {
                                for ox in interior { output[ox] += row[ox &* g.strideX &+ offset] }
                            }
                        }
                    }
                    if !interior.isEmpty {
                        // Every interior column has the full kernel width: one divisor per row.
                        let scale = rowScale[oy] * columnScale[interior.lowerBound]
                        for ox in interior { output[ox] *= scale }
                    }
                    output += g.outputWidth
                }
            }
        }
    }

    /// One border output pixel from its in-bounds taps.
    @inline(__always)
    private func border(_ ox: Int, oy: Int, firstRow: Int, _ input: UnsafePointer<Float>) -> Float {
        let g = geometry
        let firstColumn = ox * g.strideX - g.padLeft
        var sum: Float = 0
        for ky in rowTaps[oy] {
            let row = input + (firstRow + ky * g.dilationY) * g.inputWidth
            for kx in columnTaps[ox] { sum += row[firstColumn &+ kx &* g.dilationX] }
        }
        return sum * (rowScale[oy] * columnScale[ox])
    }
}

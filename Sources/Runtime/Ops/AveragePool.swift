import Format

/// `averagePool`: the mean of each window over the spatial axes of NCHW. Without
/// countIncludePad the mean is over the pixels read; with it, padding counts as zeros,
/// but never the part of a ceil-mode window past the end padding (as onnxruntime).
public struct AveragePool: Operator {
    let name: String
    let attributes: PoolAttributes

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        try attributes.outputs(for: inputs, node: name)
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        try attributes.reference(inputs, node: name) { g, x, planeStart, oy, ox in
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
                    } else if attributes.countIncludePad && rowCounted && ix >= -g.padLeft && ix < g.inputWidth + g.padRight {
                        count += 1
                    }
                }
            }
            return sum / Float(max(count, 1))
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let (g, planes, rowTaps, columnTaps, scales) = try windows(inputs)
        return PoolingKernel(reduction: .sum, geometry: g, planes: planes, rowTaps: rowTaps, columnTaps: columnTaps, scales: scales)
    }

    /// The geometry, plane count, in-bounds taps of each output row and column, and the
    /// reciprocal divisor of each output pixel as a row factor times a column factor.
    private func windows(_ inputs: [ValueFact?]) throws
        -> (WindowGeometry, Int, [Range<Int>], [Range<Int>], (row: [Float], column: [Float])) {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (g, _, planes) = try attributes.resolve(x.shape, node: name)
        let rowTaps = g.taps(vertical: true), columnTaps = g.taps(vertical: false)
        // The divisor of each output pixel factors into a row count times a column count.
        let rowCounts = attributes.countIncludePad ? g.taps(vertical: true, padBefore: g.padTop, padAfter: g.padBottom) : rowTaps
        let columnCounts = attributes.countIncludePad ? g.taps(vertical: false, padBefore: g.padLeft, padAfter: g.padRight) : columnTaps
        return (g, planes, rowTaps, columnTaps,
                (rowCounts.map { 1 / Float(max($0.count, 1)) }, columnCounts.map { 1 / Float(max($0.count, 1)) }))
    }
}

extension AveragePool: Differentiable {
    /// The mean is linear in X with weights that depend only on the shape.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let (g, planes, rowTaps, columnTaps, scales) = try windows(inputs)
        return PoolingGradient(reduction: .sum, geometry: g, planes: planes, rowTaps: rowTaps, columnTaps: columnTaps,
                               scales: scales)
    }
}

import Format

/// Values the dense-prediction templates compute from their input's size while planning
/// (shape arithmetic the planner evaluates per input size), so one graph takes any image
/// size: sizes to resize to, views of a token grid, pooling matrices.
extension GraphBuilder {
    /// `x`'s shape from axis `start` up to `end`, as i64.
    mutating func dimensions(_ x: String, _ start: Int, _ end: Int) -> String {
        emitValue(named: x + ".dims", .shape(ShapeAttributes(start: start, end: end)), inputs: [x])
    }

    /// `a` `function` a constant: integer shape arithmetic on i64 values.
    mutating func integer(_ function: BinaryFunction, _ a: String, _ constant: [Int], name: String) -> String {
        binary(function, a, addConstant(name + ".operand", shape: [constant.count], ints: constant), name: name)
    }

    /// The values `parts`, joined on axis 0 (i64 shape vectors).
    mutating func joined(_ parts: [String], name: String) -> String {
        emitValue(named: name, .concat(ConcatAttributes(axis: 0)), inputs: parts)
    }

    /// `x` [N, C, h, w] resized bilinearly to the spatial size of `target` [N', C', H, W], as
    /// F.interpolate(size=target.shape[2:], mode="bilinear", align_corners=False).
    mutating func resizedBilinear(_ x: String, like target: String, name: String) -> String {
        var attributes = ResizeAttributes()
        attributes.mode = .linear
        attributes.coordinateTransformationMode = .pytorchHalfPixel
        let sizes = joined([dimensions(x, 0, 2), dimensions(target, 2, 4)], name: name + ".sizes")
        return emitValue(named: name, .resize(attributes), inputs: [x, "", sizes])
    }

    /// `x` [N, C, h, w] upsampled bilinearly by `factor` (align_corners=False), the same as
    /// resizing to factor·h × factor·w; unlike `resizedBilinear(_:like:name:)` it reads no
    /// shape of `x`, so a head may replace the node producing `x`.
    mutating func upsampledBilinear(_ x: String, factor: Int, name: String) -> String {
        var attributes = ResizeAttributes()
        attributes.mode = .linear
        attributes.coordinateTransformationMode = .pytorchHalfPixel
        let scales = addConstant(name + ".scales", shape: [4], floats: [1, 1, Float(factor), Float(factor)])
        return emitValue(named: name, .resize(attributes), inputs: [x, scales])
    }

    /// Adaptive average pooling of `x` [N, C, h, w] to `bins` × `bins` for any h and w, as
    /// P_h · x · P_wᵀ: cell i averages rows [⌊i·h/bins⌋, ⌈(i+1)·h/bins⌉), so P_h[i, r] is
    /// 1/(that length) on those rows and 0 elsewhere (likewise P_w). The matrices come from
    /// x's size at plan time; PyTorch's adaptive_avg_pool2d sums the same cells.
    mutating func adaptiveAveragePool(_ x: String, bins: Int, name: String) -> String {
        let rows = poolingMatrix(size: dimensions(x, 2, 3), bins: bins, positionsFirst: false, name: name + ".rows")
        let columns = poolingMatrix(size: dimensions(x, 3, 4), bins: bins, positionsFirst: true, name: name + ".columns")
        let pooledRows = emitValue(named: name + ".h", .matMul, inputs: [rows, x])
        return emitValue(named: name, .matMul, inputs: [pooledRows, columns])
    }

    /// The pooling matrix of an axis of `size` (i64 [1]) into `bins` cells: [bins, size], or
    /// [size, bins] with `positionsFirst`.
    private mutating func poolingMatrix(size: String, bins: Int, positionsFirst: Bool, name: String) -> String {
        let cellShape = positionsFirst ? [1, bins] : [bins, 1]
        let cells = addConstant(name + ".cells", shape: cellShape, ints: Array(0..<bins))
        let nextCells = addConstant(name + ".next", shape: cellShape, ints: Array(1...bins))
        // start = ⌊i·size/bins⌋, end = ⌈(i+1)·size/bins⌉ = ⌊((i+1)·size + bins − 1)/bins⌋.
        let start = integer(.div, binary(.mul, cells, size, name: name + ".start.scaled"), [bins], name: name + ".start")
        let end = integer(.div, integer(.add, binary(.mul, nextCells, size, name: name + ".end.scaled"), [bins - 1],
                                        name: name + ".end.rounded"), [bins], name: name + ".end")
        let scalar = emitValue(named: name + ".size", .squeeze(SqueezeAttributes(axes: [0])), inputs: [size])
        let positions = emitValue(named: name + ".positions", .range,
                                  inputs: [addConstant(name + ".zero", shape: [], ints: [0]), scalar,
                                           addConstant(name + ".one", shape: [], ints: [1])])
        let column = emitValue(named: name + ".positions.view", .unsqueeze(UnsqueezeAttributes(axes: [positionsFirst ? 1 : 0])),
                               inputs: [positions])
        let inside = binary(.and, binary(.greaterOrEqual, column, start, name: name + ".after"),
                            binary(.less, column, end, name: name + ".before"), name: name + ".inside")
        let length = emitValue(named: name + ".length", .cast(CastAttributes(to: .float32)),
                               inputs: [binary(.sub, end, start, name: name + ".length.i")])
        let ones = emitValue(named: name + ".indicator", .cast(CastAttributes(to: .float32)), inputs: [inside])
        return binary(.div, ones, length, name: name)
    }
}

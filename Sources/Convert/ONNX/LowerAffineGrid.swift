import Format

/// AffineGrid (opset 20): the sampling grid of an affine transform for GridSample.
///
/// Grid point (…, i, j) is θ[n]·(x_j, y_i, [z_k,] 1), where each coordinate is the
/// normalised position of its pixel along that axis: −1 + 2·j/(W − 1) with align_corners
/// (the corner pixels' centres at ±1), else −1 + (2·j + 1)/W (the corner pixels' outer
/// edges at ±1). Those base points depend only on `size`, so they are a constant
/// [points, k + 1] matrix and the grid is one matMul with θᵀ [N, k + 1, k], reshaped to
/// [N, (D,) H, W, k].
enum LowerAffineGrid {
    static func affineGrid(_ context: inout LoweringContext, _ node: ONNXNode) throws {
        let theta = try node.requiredInput(0)
        guard let size = try context.constantInts(node, 1, role: "size") else {
            throw LoweringFailure.invalid("input 'size' is required")
        }
        guard size.count == 4 || size.count == 5 else {
            throw LoweringFailure.invalid("size \(size) must be [N, C, H, W] or [N, C, D, H, W]")
        }
        let spatial = Array(size.dropFirst(2))
        guard spatial.allSatisfy({ (1...(1 << 16)).contains($0) }), spatial.reduce(1, *) <= 1 << 24 else {
            throw LoweringFailure.invalid("size \(size) out of range")
        }
        let alignCorners = try node.flag("align_corners", default: false)
        if let shape = context.builder.shape(of: theta), shape.count == 3,
           case .fixed(let rows) = shape[1], case .fixed(let columns) = shape[2],
           rows != spatial.count || columns != spatial.count + 1 {
            throw LoweringFailure.invalid("theta [N, \(rows), \(columns)] does not fit a \(spatial.count)-D size \(size)")
        }

        /// The normalised coordinates of the pixels along an axis of `count` pixels.
        func coordinates(_ count: Int) -> [Double] {
            let size = Double(count)
            return (0..<count).map { index -> Double in
                let position = Double(index)
                if !alignCorners { return -1 + (2 * position + 1) / size }
                return count == 1 ? 0 : -1 + 2 * position / (size - 1)
            }
        }
        // Rows in output order (the last axis fastest); columns x, y, (z,) 1.
        let axes = spatial.map(coordinates)
        var base: [Float] = []
        base.reserveCapacity(spatial.reduce(1, *) * (spatial.count + 1))
        var index = [Int](repeating: 0, count: spatial.count)
        for _ in 0..<spatial.reduce(1, *) {
            for axis in index.indices.reversed() { base.append(Float(axes[axis][index[axis]])) }
            base.append(1)
            for axis in index.indices.reversed() {
                index[axis] += 1
                if index[axis] < spatial[axis] { break }
                index[axis] = 0
            }
        }
        let basePoints = context.builder.addConstant("\(node.name)/base_points", shape: [spatial.reduce(1, *), spatial.count + 1],
                                                     floats: base)
        let thetaTransposed = context.builder.emitValue(named: "\(node.name)/theta_t", .transpose(TransposeAttributes(perm: [0, 2, 1])),
                                                        inputs: [theta])
        let points = context.builder.emitValue(named: "\(node.name)/points", .matMul, inputs: [basePoints, thetaTransposed])
        let gridShape = context.builder.addConstant("\(node.name)/grid_shape", shape: [spatial.count + 2],
                                                    ints: [size[0]] + spatial + [spatial.count])
        context.builder.emit(node.name, .reshape(ReshapeAttributes()), inputs: [points, gridShape], outputs: [try node.output()])
    }
}

import Format

/// Places each element of X at the flat position its index gives in a zero tensor Y
/// (ONNX MaxUnpool, the partial inverse of maxPool with ONNX's indices output). The
/// indices (plan-time, X's shape) count over all of Y, N·C·H·W; Y's shape is the
/// outputShape input when given, else [N, C, (in − 1)·stride + k − padBegin − padEnd].
/// A position named twice keeps the last element written.
public struct MaxUnpool: Operator {
    let name: String
    let attributes: MaxUnpoolAttributes

    /// Y's shape, whose element count is known not to overflow: the shape input and the
    /// attributes come from the file, and the plan fuzzer found a shape whose product trapped.
    func outputShape(_ inputs: [ValueFact?], x: [Int]) throws -> [Int] {
        guard x.count == 4 else { throw OpError.shape(node: name, "maxUnpool needs X [N,C,H,W], found \(x)") }
        let shape: [Int]
        if inputs.count > 2, inputs[2] != nil {
            shape = try LayoutIndexing.integers(ShapeRules.planTimeValue(inputs, 2, node: name), input: 2, node: name)
            guard shape.count == 4, shape[0] == x[0], shape[1] == x[1], shape.allSatisfy({ $0 >= 0 }) else {
                throw OpError.shape(node: name, "output shape \(shape) does not fit X \(x)")
            }
        } else {
            let (k, s, p) = (attributes.kernelShape, attributes.strides, attributes.pads)
            var spatial: [Int] = []
            for axis in 0..<2 {
                // (in − 1)·stride + k − padBegin − padEnd, refused rather than trapping on overflow.
                let (scaled, o1) = (x[2 + axis] - 1).multipliedReportingOverflow(by: s[axis])
                let (windowed, o2) = scaled.addingReportingOverflow(k[axis])
                let (padding, o3) = p[axis].addingReportingOverflow(p[axis + 2])
                let (size, o4) = windowed.subtractingReportingOverflow(padding)
                guard !(o1 || o2 || o3 || o4), size >= 1 else {
                    throw OpError.shape(node: name, "the window \(k), strides \(s) and pads \(p) leave no output for X \(x)")
                }
                spatial.append(size)
            }
            shape = Array(x[..<2]) + spatial
        }
        guard ShapeRules.checkedProduct(shape) != nil else {
            throw OpError.shape(node: name, "output shape \(shape) has more elements than can be counted")
        }
        return shape
    }

    /// Where each element of X goes in Y, checked against Y's size.
    func positions(indices: HostTensor, x: [Int], outputCount: Int) throws -> [Int] {
        guard indices.shape == x else {
            throw OpError.shape(node: name, "indices of shape \(indices.shape) do not match X \(x)")
        }
        let positions = try LayoutIndexing.integers(indices, input: 1, node: name)
        if let bad = positions.first(where: { $0 < 0 || $0 >= outputCount }) {
            throw OpError.shape(node: name, "index \(bad) is outside the output's \(outputCount) elements")
        }
        return positions
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let shape = try outputShape(inputs, x: x.shape)
        _ = try positions(indices: ShapeRules.planTimeValue(inputs, 1, node: name), x: x.shape,
                          outputCount: shape.reduce(1, *))
        return [ValueFact(dtype: x.dtype, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let x = try LayoutIndexing.required(inputs, 0, node: name)
        let facts = inputs.map { $0.map(ValueFact.init) }
        let shape = try outputShape(facts, x: x.shape)
        let count = shape.reduce(1, *)
        let positions = try positions(indices: LayoutIndexing.required(inputs, 1, node: name), x: x.shape, outputCount: count)
        var y = [Float](repeating: 0, count: count)
        for (element, position) in positions.enumerated() { y[position] = x.floats[element] }
        return [HostTensor(shape: shape, floats: y)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let count = try outputShape(inputs, x: x.shape).reduce(1, *)
        return UnpoolKernel(positions: try positions(indices: ShapeRules.planTimeValue(inputs, 1, node: name), x: x.shape,
                                                     outputCount: count), count: count)
    }
}

/// Zeroes Y, then writes X's elements in order to their positions (one thread: the
/// order decides repeated positions, and X is a quarter of Y or less).
struct UnpoolKernel: Kernel {
    let positions: [Int]
    let count: Int

    func run(_ io: KernelIO) {
        let (x, y) = (io.input(0), io.outputs[0])
        y.update(repeating: 0, count: count)
        for (element, position) in positions.enumerated() { y[position] = x[element] }
    }
}

/// Backward: ∂L/∂y gathered back along the element map (`ElementMapGradient`); the
/// zeros pass no gradient.
extension MaxUnpool: MovesElements {}

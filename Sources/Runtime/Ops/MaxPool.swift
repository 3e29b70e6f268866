import Format

/// `maxPool`: the largest value of each window over the spatial axes of NCHW; padding
/// never wins (it is not read).
public struct MaxPool: Operator {
    let name: String
    let attributes: PoolAttributes

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        try attributes.outputs(for: inputs, node: name)
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        try attributes.reference(inputs, node: name) { g, x, planeStart, oy, ox in
            var largest = -Float.infinity
            g.forEachTap(at: (oy, ox), inside: (g.inputHeight, g.inputWidth)) { _, _, iy, ix in
                largest = max(largest, x[planeStart + iy * g.inputWidth + ix])
            }
            return largest
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (g, _, planes) = try attributes.resolve(x.shape, node: name)
        return PoolingKernel(reduction: .maximum, geometry: g, planes: planes,
                             rowTaps: g.taps(vertical: true), columnTaps: g.taps(vertical: false), scales: nil)
    }
}

extension MaxPool: Differentiable {
    /// The gradient goes to the pixel that won each window, found again in X.
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { SavedValues(inputs: [0]) }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let x = try ShapeRules.required(inputs, 0, node: name)
        let (g, _, planes) = try attributes.resolve(x.shape, node: name)
        return PoolingGradient(reduction: .maximum, geometry: g, planes: planes,
                               rowTaps: g.taps(vertical: true), columnTaps: g.taps(vertical: false), scales: nil)
    }
}

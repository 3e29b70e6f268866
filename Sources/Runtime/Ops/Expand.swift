import Format

/// Broadcasts input 0 against the plan-time shape of input 1 (ONNX Expand): the output
/// shape is the two shapes broadcast together, so a size-1 entry of the target keeps
/// the input's size and the result may have more axes than either.
public struct Expand: Operator {
    let name: String

    func outputShape(_ shape: [Int], target: HostTensor) throws -> [Int] {
        let target = try LayoutIndexing.integers(target, input: 1, node: name)
        guard target.allSatisfy({ $0 >= 0 }) else {
            throw OpError.shape(node: name, "target shape \(target) has a negative size")
        }
        return try ShapeRules.broadcast(shape, target, node: name)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let shape = try outputShape(input.shape, target: ShapeRules.planTimeValue(inputs, 1, node: name))
        return [ValueFact(dtype: input.dtype, shape: shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        let shape = try outputShape(input.shape, target: LayoutIndexing.required(inputs, 1, node: name))
        let indices = LayoutIndexing.stridedIndices(shape: shape, strides: ShapeRules.broadcastStrides(input.shape, to: shape))
        return [input.picking(indices, shape: shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let shape = outputs[0].shape
        return StridedCopyKernel(StridedCopy(shape: shape, sourceStrides: ShapeRules.broadcastStrides(input.shape, to: shape),
                                             destinationStrides: ShapeRules.strides(shape)))
    }
}

/// Backward: ∂L/∂y scattered back along the element map (`ElementMapGradient`).
extension Expand: MovesElements {}

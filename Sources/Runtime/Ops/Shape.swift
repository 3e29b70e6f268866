import Format

/// The shape of input 0 as a 1-D i64 tensor, optionally only axes start..<end (ONNX
/// Shape; negative bounds count from the end, both are clamped to 0...rank). Its value
/// follows from the input's shape alone, so the shape rule fills it in.
public struct ShapeOf: Operator {
    let name: String
    let attributes: ShapeAttributes

    /// The selected dimensions of `shape`, as the op's output.
    func value(of shape: [Int]) -> HostTensor {
        let rank = shape.count
        func clamp(_ bound: Int) -> Int { min(max(bound < 0 ? bound + rank : bound, 0), rank) }
        let first = clamp(attributes.start)
        let last = max(first, clamp(attributes.end ?? rank))
        let dims = shape[first..<last].map { Int64($0) }
        return HostTensor(shape: [dims.count], ints: dims)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        [ValueFact(value(of: try ShapeRules.required(inputs, 0, node: name).shape))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        [value(of: try LayoutIndexing.required(inputs, 0, node: name).shape)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        KnownValuesKernel(values: value(of: try ShapeRules.required(inputs, 0, node: name).shape).floats)
    }
}

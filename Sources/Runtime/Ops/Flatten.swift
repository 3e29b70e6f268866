import Format

/// Flattens to 2-D (ONNX Flatten): axes before `axis` become the rows, the rest the
/// columns; `axis` may be 0 or the rank. A view: the planner aliases the buffer.
public struct Flatten: ReshapingOperator {
    let name: String
    let attributes: FlattenAttributes

    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int] {
        // The split point lies in 0...rank (one more position than there are axes).
        let axis = attributes.axis
        let split = axis < 0 ? axis + shape.count : axis
        guard (0...shape.count).contains(split) else {
            throw OpError.shape(node: name, "axis \(axis) is out of range for flattening rank \(shape.count)")
        }
        return [shape[..<split].reduce(1, *), shape[split...].reduce(1, *)]
    }
}

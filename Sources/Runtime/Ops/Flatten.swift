import Format

/// Flattens to 2-D (ONNX Flatten): axes before `axis` become the rows, the rest the
/// columns; `axis` may be 0 or the rank. A view: the planner aliases the buffer.
public struct Flatten: ReshapingOperator {
    let name: String
    let axis: Int

    public init(node: Node) throws {
        name = node.name
        axis = try node.int("axis", default: 1)
    }

    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int] {
        // The split point lies in 0...rank, so normalise against rank + 1 positions.
        let split = try ShapeRules.axis(axis < 0 ? axis + shape.count : axis, rank: shape.count + 1, node: name)
        return [shape[..<split].reduce(1, *), shape[split...].reduce(1, *)]
    }
}

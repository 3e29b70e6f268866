import Format

/// Inserts size-1 axes at the positions `axes` of the output (ONNX Unsqueeze; negative
/// positions count from the end of the output's rank). A view: the planner aliases
/// the buffer.
public struct Unsqueeze: ReshapingOperator {
    let name: String
    let axes: [Int]

    public init(node: Node) throws {
        guard case .unsqueeze(let attributes) = node.operation else { throw OpError.wrongOp(node: node.name, expected: .unsqueeze, found: node.op) }
        name = node.name
        axes = attributes.axes
    }

    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int] {
        let rank = shape.count + axes.count
        let inserted = Set(try axes.map { try ShapeRules.axis($0, rank: rank, node: name) })
        guard inserted.count == axes.count else {
            throw OpError.shape(node: name, "axes \(axes) repeat a position")
        }
        var remaining = shape.makeIterator()
        return (0..<rank).map { inserted.contains($0) ? 1 : remaining.next() ?? 1 }
    }
}

import Format

/// Inserts size-1 axes at the positions `axes` of the output (ONNX Unsqueeze; negative
/// positions count from the end of the output's rank). A view: the planner aliases
/// the buffer.
public struct Unsqueeze: ReshapingOperator {
    let name: String
    let attributes: UnsqueezeAttributes

    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int] {
        let rank = shape.count + attributes.axes.count
        let inserted = Set(try attributes.axes.map { try ShapeRules.axis($0, rank: rank, node: name) })
        guard inserted.count == attributes.axes.count else {
            throw OpError.shape(node: name, "axes \(attributes.axes) repeat a position")
        }
        var remaining = shape.makeIterator()
        return (0..<rank).map { inserted.contains($0) ? 1 : remaining.next() ?? 1 }
    }
}

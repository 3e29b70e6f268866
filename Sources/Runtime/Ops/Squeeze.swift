import Format

/// Removes size-1 axes (ONNX Squeeze): those listed in `axes`, or every one when `axes`
/// is empty. A view: the planner aliases the buffer.
public struct Squeeze: ReshapingOperator {
    let name: String
    let attributes: SqueezeAttributes

    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int] {
        if attributes.axes.isEmpty { return shape.filter { $0 != 1 } }
        let removed = Set(try attributes.axes.map { try ShapeRules.axis($0, rank: shape.count, node: name) })
        for axis in removed where shape[axis] != 1 {
            throw OpError.shape(node: name, "cannot squeeze axis \(axis) of size \(shape[axis]) in \(shape)")
        }
        return shape.indices.filter { !removed.contains($0) }.map { shape[$0] }
    }
}

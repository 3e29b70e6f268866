import Format

/// Gives input 0 the plan-time shape of input 1 (ONNX Reshape): 0 copies the input's
/// dimension at that position (unless `allowZero` is 1, when it means size zero) and
/// one -1 is inferred from the element count. A view: the planner aliases the buffer.
public struct Reshape: ReshapingOperator {
    let name: String
    let attributes: ReshapeAttributes

    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int] {
        guard let target = parameters.first ?? nil else { throw GraphError.missingInput(node: name, index: 1) }
        let requested = try LayoutIndexing.integers(target, input: 1, node: name)
        let impossible = OpError.shape(node: name, "cannot reshape \(shape) (\(shape.reduce(1, *)) elements) to \(requested)")
        var result = requested
        if !attributes.allowZero {
            for (position, size) in result.enumerated() where size == 0 {
                guard position < shape.count else { throw impossible }
                result[position] = shape[position]
            }
        }
        let inferred = result.indices.filter { result[$0] == -1 }
        guard inferred.count <= 1, result.allSatisfy({ $0 >= -1 }),
              !(attributes.allowZero && !inferred.isEmpty && result.contains(0)) else { throw impossible }
        let count = shape.reduce(1, *)
        if let position = inferred.first {
            let others = result.indices.filter { $0 != position }.map { result[$0] }
            guard let known = ShapeRules.checkedProduct(others), known > 0, count % known == 0 else { throw impossible }
            result[position] = count / known
        }
        guard ShapeRules.checkedProduct(result) == count else { throw impossible }
        return result
    }
}

import Format

/// Shape helpers shared by the ops' shape rules.
public enum ShapeRules {
    /// Maps a possibly negative axis into 0..<rank, or throws naming the node.
    public static func axis(_ axis: Int, rank: Int, node: String) throws -> Int {
        let normalized = axis < 0 ? axis + rank : axis
        guard normalized >= 0 && normalized < rank else {
            throw OpError.shape(node: node, "axis \(axis) is out of range for rank \(rank)")
        }
        return normalized
    }

    /// NumPy broadcasting of two shapes, or throws naming the node.
    public static func broadcast(_ a: [Int], _ b: [Int], node: String) throws -> [Int] {
        let rank = max(a.count, b.count)
        let paddedA = Array(repeating: 1, count: rank - a.count) + a
        let paddedB = Array(repeating: 1, count: rank - b.count) + b
        return try (0..<rank).map { i in
            let (x, y) = (paddedA[i], paddedB[i])
            if x == y || y == 1 { return x }
            if x == 1 { return y }
            throw OpError.shape(node: node, "shapes \(a) and \(b) do not broadcast")
        }
    }

    /// The product of `sizes`, or nil if it overflows `Int`: sizes that come from a file
    /// (a reshape target, a pad) can be anything.
    public static func checkedProduct(_ sizes: [Int]) -> Int? {
        var product = 1
        for size in sizes {
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    /// Row-major strides of a shape, in elements.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = Array(repeating: 1, count: shape.count)
        var running = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = running
            running *= shape[i]
        }
        return strides
    }

    /// Strides for reading `shape` as if broadcast to `target` (0 on broadcast axes).
    public static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let padded = Array(repeating: 1, count: target.count - shape.count) + shape
        let own = strides(padded)
        return (0..<target.count).map { padded[$0] == 1 && target[$0] != 1 ? 0 : own[$0] }
    }

    /// The input fact at `index`, or throws when a required input is absent.
    public static func required(_ inputs: [ValueFact?], _ index: Int, node: String) throws -> ValueFact {
        guard index < inputs.count, let fact = inputs[index] else {
            throw GraphError.missingInput(node: node, index: index)
        }
        return fact
    }

    /// The plan-time value of input `index`, or throws `notPlanTime`.
    public static func planTimeValue(_ inputs: [ValueFact?], _ index: Int, node: String) throws -> HostTensor {
        let fact = try required(inputs, index, node: node)
        guard let value = fact.value else { throw OpError.notPlanTime(node: node, input: index) }
        return value
    }
}

import Format

/// A 1-D sequence start, start+delta, … stopping before limit (ONNX Range), of
/// max(ceil((limit-start)/delta), 0) elements. Integer when all three scalars are
/// integers, float otherwise; floats accumulate delta element by element as ONNX's
/// definition (and onnxruntime) do, so the values match theirs bit for bit.
public struct ArithmeticRange: Operator {
    let name: String

    /// Largest length accepted: far beyond any real model's shape arithmetic, small
    /// enough that a corrupt scalar fails here instead of exhausting memory.
    static let maximumLength = 1 << 31

    private func checkLength<T>(_ length: Double, _ start: T, _ limit: T, _ delta: T) throws {
        guard length >= 0, length <= Double(Self.maximumLength) else {
            throw OpError.shape(node: name, "range(\(start), \(limit), \(delta)) is too long")
        }
    }

    func evaluate(start: HostTensor, limit: HostTensor, delta: HostTensor) throws -> HostTensor {
        for (index, scalar) in [start, limit, delta].enumerated() where scalar.count != 1 {
            throw OpError.shape(node: name, "input \(index) must be a scalar, found shape \(scalar.shape)")
        }
        switch (start.elements, limit.elements, delta.elements) {
        case (.int(let first), .int(let last), .int(let step)):
            let (first, last, step) = (first[0], last[0], step[0])
            guard step != 0 else { throw OpError.shape(node: name, "delta is 0") }
            let (span, overflow) = last.subtractingReportingOverflow(first)
            // Ceiling division of integers, rounding toward +infinity for either sign.
            let count = overflow ? -1 : max(0, span / step + (span % step != 0 && (span < 0) == (step < 0) ? 1 : 0))
            try checkLength(Double(count), first, last, step)
            return HostTensor(shape: [Int(count)], ints: (0..<count).map { first + $0 * step }, dtype: start.dtype)
        default:
            let (first, last, step) = (start.floats[0], limit.floats[0], delta.floats[0])
            guard step != 0 else { throw OpError.shape(node: name, "delta is 0") }
            let length = max(0, (Double(last - first) / Double(step)).rounded(.up))
            try checkLength(length, first, last, step)
            let count = Int(length)
            var values: [Float] = []
            values.reserveCapacity(count)
            var value = first
            for _ in 0..<count {
                values.append(value)
                value += step
            }
            return HostTensor(shape: [count], floats: values)
        }
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let result = try evaluate(start: ShapeRules.planTimeValue(inputs, 0, node: name),
                                  limit: ShapeRules.planTimeValue(inputs, 1, node: name),
                                  delta: ShapeRules.planTimeValue(inputs, 2, node: name))
        return [ValueFact(dtype: result.dtype, shape: result.shape)]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        [try evaluate(start: LayoutIndexing.required(inputs, 0, node: name),
                      limit: LayoutIndexing.required(inputs, 1, node: name),
                      delta: LayoutIndexing.required(inputs, 2, node: name))]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        let scalars = try (0..<3).map { try ShapeRules.planTimeValue(inputs, $0, node: name) }
        return KnownValuesKernel(values: try reference(scalars)[0].floats)
    }
}

import Format

/// A tensor of the plan-time shape in input 0 filled with `value` (ONNX
/// ConstantOfShape), of dtype `dtype` (f32, i64, i32 or bool; default f32).
public struct ConstantOfShape: Operator {
    let name: String
    let value: Float
    let dtype: DType

    /// Throws `OpError.unsupported` for a dtype the kernels do not produce, and
    /// `GraphError.badAttribute` for a fractional value of an integer dtype.
    init(name: String, attributes: ConstantOfShapeAttributes) throws {
        self.name = name
        value = attributes.value
        dtype = attributes.dtype
        switch dtype {
        case .float32, .int64, .int32, .bool: break
        case .float16, .bfloat16, .int8:
            throw OpError.unsupported(node: name, "constantOfShape of \(dtype); only f32, i64, i32 and bool")
        }
        guard dtype == .float32 || value.rounded(.towardZero) == value else {
            throw GraphError.badAttribute(node: name, attribute: "value", expected: "an integer for dtype \(dtype.rawValue)", found: String(value))
        }
    }

    func shape(_ tensor: HostTensor) throws -> [Int] {
        let shape = try LayoutIndexing.integers(tensor, input: 0, node: name)
        guard tensor.rank <= 1, shape.allSatisfy({ $0 >= 0 }) else {
            throw OpError.shape(node: name, "input 0 must be a 1-D list of non-negative sizes, found \(tensor)")
        }
        return shape
    }

    /// The fill value as the output carries it (bool as 0 or 1).
    var storedValue: Float { dtype == .bool && value != 0 ? 1 : value }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        [ValueFact(dtype: dtype, shape: try shape(ShapeRules.planTimeValue(inputs, 0, node: name)))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let shape = try shape(LayoutIndexing.required(inputs, 0, node: name))
        let count = shape.reduce(1, *)
        if dtype == .float32 {
            return [HostTensor(shape: shape, floats: Array(repeating: value, count: count))]
        }
        guard let integer = Int64(exactly: storedValue) else {
            throw OpError.shape(node: name, "value \(value) does not fit \(dtype)")
        }
        return [HostTensor(shape: shape, ints: Array(repeating: integer, count: count), dtype: dtype)]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        FillKernel(value: storedValue, count: outputs[0].count)
    }
}

/// Writes one value into every element of output 0.
struct FillKernel: Kernel {
    let value: Float
    let count: Int

    func run(_ io: KernelIO) {
        io.outputs[0].update(repeating: value, count: count)
    }
}

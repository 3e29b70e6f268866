import Format

/// Converts elements to the dtype `to` (ONNX Cast) among f32, i64, i32 and bool:
/// float to integer truncates toward zero, anything to bool is "nonzero", bool to a
/// number is 0 or 1. Given a second input, the target is that input's dtype instead (ONNX
/// CastLike whose target the graph computes: its type is known only when planning); its
/// elements are not read.
public struct Cast: Operator {
    let name: String
    /// The `to` attribute: the target when there is no second input.
    let attributeTarget: DType

    /// Throws `OpError.unsupported` for a target type the kernels do not produce.
    init(name: String, attributes: CastAttributes) throws {
        self.name = name
        attributeTarget = try Self.checked(attributes.to, node: name)
    }

    private static func checked(_ target: DType, node: String) throws -> DType {
        switch target {
        case .float32, .int64, .int32, .bool: return target
        case .float16, .bfloat16, .int8:
            throw OpError.unsupported(node: node, "cast to \(target); only f32, i64, i32 and bool")
        }
    }

    /// The dtype the elements become: the second input's when given, else `to`.
    private func target(like: DType?) throws -> DType {
        guard let like else { return attributeTarget }
        return try Self.checked(like, node: name)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let like = inputs.count > 1 ? inputs[1]?.dtype : nil
        return [ValueFact(dtype: try target(like: like), shape: input.shape)]
    }

    /// The runtime carries every dtype as floats (`CastKernel`), so a cast whose kernel
    /// would copy the floats unchanged is a view the planner aliases: any cast to f32, a
    /// cast to bool of bools, and a cast to an integer type of bools or integers (already
    /// whole numbers; i64 to i32 is not, for out-of-range values). Mask2Former's attention masks pass through 32 such casts per image.
    public func isView(at inputs: [ValueFact?]) -> Bool {
        guard let input = inputs.first ?? nil,
              let target = try? target(like: inputs.count > 1 ? inputs[1]?.dtype : nil) else { return false }
        switch target {
        case .float32: return true
        case .bool: return input.dtype == .bool
        case .int64: return input.dtype == .bool || input.dtype == .int64 || input.dtype == .int32
        case .int32: return input.dtype == .bool || input.dtype == .int32
        case .float16, .bfloat16, .int8: return false
        }
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        let target = try self.target(like: inputs.count > 1 ? inputs[1]?.dtype : nil)
        switch (target, input.elements) {
        case (.float32, _):
            return [HostTensor(shape: input.shape, floats: input.floats)]
        case (.bool, .float(let values)):
            return [HostTensor(shape: input.shape, ints: values.map { $0 != 0 ? 1 : 0 }, dtype: .bool)]
        case (.bool, .int(let values)):
            return [HostTensor(shape: input.shape, ints: values.map { $0 != 0 ? 1 : 0 }, dtype: .bool)]
        case (_, .float(let values)):
            let integers = try values.map { value -> Int64 in
                // Int64(_:) traps outside its range; ONNX leaves those results undefined,
                // so refuse them by name instead.
                guard let integer = Int64(exactly: value.rounded(.towardZero)) else {
                    throw OpError.shape(node: name, "cannot cast \(value) to \(target)")
                }
                return target == .int32 ? Int64(Int32(truncatingIfNeeded: integer)) : integer
            }
            return [HostTensor(shape: input.shape, ints: integers, dtype: target)]
        case (_, .int(let values)):
            let integers = target == .int32 ? values.map { Int64(Int32(truncatingIfNeeded: $0)) } : values
            return [HostTensor(shape: input.shape, ints: integers, dtype: target)]
        }
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        CastKernel(target: outputs[0].dtype, count: outputs[0].count)
    }
}

/// Casts a float buffer in place of its integer or bool result, which the runtime also
/// carries as floats: truncation for integers, 0/1 for bool.
struct CastKernel: Kernel {
    let target: DType
    let count: Int

    func run(_ io: KernelIO) {
        let input = io.input(0)
        let output = io.outputs[0]
        let target = self.target
        io.pool.parallelFor(count, minimumChunk: 65_536) { range in
            switch target {
            case .bool:
                for i in range { output[i] = input[i] != 0 ? 1 : 0 }
            case .int64, .int32:
                for i in range { output[i] = input[i].rounded(.towardZero) }
            case .float32, .float16, .bfloat16, .int8:
                (output + range.lowerBound).update(from: input + range.lowerBound, count: range.count)
            }
        }
    }
}

extension Cast: Differentiable {
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    /// A float-to-float cast passes the gradient as it is. Integer and bool values carry
    /// no gradient: a cast to or from them on a path to the loss is refused by name.
    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let target = outputs[0].dtype
        guard input.dtype.isFloatingPoint, target.isFloatingPoint else {
            throw OpError.unsupported(node: name, "gradient through a cast from \(input.dtype) to \(target): integers carry no gradient")
        }
        return ViewGradient(count: input.count)
    }
}

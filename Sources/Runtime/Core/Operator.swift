import Format

/// One op of Restore's op set (`OpKind`): its attributes parsed and checked, its shape
/// rule, a plain reference kernel and a fast kernel. Each op lives in one file under
/// `Runtime/Ops`; `OpKind.makeOperator` builds it from a node's typed attributes.
public protocol Operator: Sendable {
    /// The shape rule: output types and shapes from the inputs' (nil for an absent
    /// optional input). An op whose result follows from shapes alone (`shape`) also fills
    /// `value`; the planner evaluates the rest with `reference` when all inputs are known.
    func outputs(for inputs: [ValueFact?]) throws -> [ValueFact]

    /// The plain reference kernel: straightforward loops, the oracle for the fast kernel
    /// and the evaluator of constant folding and plan-time shape arithmetic.
    func reference(_ inputs: [HostTensor?]) throws -> [HostTensor]

    /// The fast float32 kernel, specialised to these concrete inputs and outputs.
    /// Inputs whose `value` is known (a reshape's target shape, gather indices) are read
    /// here; the kernel then sees only float buffers.
    func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel

    /// The fast kernel, given the node's constant inputs so that it can rearrange weights
    /// once per model (Winograd-transformed, transposed) instead of on every run. Ops
    /// that need no such thing leave this to the default, `kernel(inputs:outputs:)`.
    func kernel(inputs: [ValueFact?], outputs: [ValueFact], constants: ConstantInputs) throws -> any Kernel

    /// True when output 0 is input 0's elements under another shape (reshape, squeeze,
    /// unsqueeze, flatten): the planner aliases the buffer and runs no kernel.
    var isView: Bool { get }

    /// Whether output 0 is input 0's elements under another shape at these inputs: `isView`,
    /// or true at some shapes only (a transpose that moves only axes of size 1).
    func isView(at inputs: [ValueFact?]) -> Bool
}

extension Operator {
    public var isView: Bool { false }

    public func isView(at inputs: [ValueFact?]) -> Bool { isView }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact], constants: ConstantInputs) throws -> any Kernel {
        try kernel(inputs: inputs, outputs: outputs)
    }
}

/// A fast kernel bound to concrete shapes. It must not allocate in `run`: buffers come
/// from the planned arena, and `scratchBytes` of scratch memory is set aside for it.
public protocol Kernel: Sendable {
    var scratchBytes: Int { get }
    func run(_ io: KernelIO)
    /// Whether `run` reads input `index` (else the planner passes nil): false for a weight
    /// the kernel computes from in another form, so that an int8 weight needs no f32 copy.
    func reads(input index: Int) -> Bool
}

extension Kernel {
    public var scratchBytes: Int { 0 }
    public func reads(input index: Int) -> Bool { true }
}

/// The buffers one kernel invocation reads and writes. Absent optional inputs are nil.
public struct KernelIO {
    public var inputs: [UnsafePointer<Float>?]
    public var outputs: [UnsafeMutablePointer<Float>]
    /// `scratchBytes` bytes, 64-byte aligned, or nil when the kernel asked for none.
    public var scratch: UnsafeMutableRawPointer?
    public var pool: ThreadPool

    public init(inputs: [UnsafePointer<Float>?], outputs: [UnsafeMutablePointer<Float>],
                scratch: UnsafeMutableRawPointer?, pool: ThreadPool) {
        self.inputs = inputs
        self.outputs = outputs
        self.scratch = scratch
        self.pool = pool
    }

    /// Input `index`, which the op's shape rule made sure is present.
    public func input(_ index: Int) -> UnsafePointer<Float> {
        guard let pointer = inputs[index] else { preconditionFailure("kernel input \(index) is absent") }
        return pointer
    }
}

/// Errors found while checking shapes or evaluating a node.
public enum OpError: Error, CustomStringConvertible, Equatable {
    /// An input's shape or type does not fit the op.
    case shape(node: String, String)
    /// An input that must be known at plan time is not (it depends on image data).
    case notPlanTime(node: String, input: Int)
    /// The op is valid but this combination of attributes/types is not implemented.
    case unsupported(node: String, String)

    public var description: String {
        switch self {
        case .shape(let node, let message): "node '\(node)': \(message)"
        case .notPlanTime(let node, let input):
            "node '\(node)': input \(input) must be known when planning (a constant or shape arithmetic), but depends on image data"
        case .unsupported(let node, let message): "node '\(node)': unsupported: \(message)"
        }
    }
}

import Format

/// An execution plan for one set of concrete input shapes: the kernels to run in
/// order, where every value lives in the arena, and the values already known
/// (constant folding and shape arithmetic evaluated for these sizes).
public final class Plan: @unchecked Sendable {
    /// Where a kernel finds a value.
    enum Location {
        case arena(offset: Int)
        case constant(UnsafePointer<Float>)
        case known(UnsafePointer<Float>)
    }

    struct Step {
        let node: Int
        let kernel: any Kernel
        let inputs: [Location?]
        let outputs: [Int]
        let scratch: Int?
    }

    /// What a graph output is: a planned buffer or a value known at plan time.
    enum OutputSource {
        case location(Location, dtype: DType, shape: [Int])
        case known(HostTensor)
    }

    let steps: [Step]
    let inputOffsets: [Int]
    let outputSources: [OutputSource]
    public let inputShapes: [[Int]]
    /// Bytes of the arena this plan needs (buffers shared by values whose lifetimes do not overlap).
    public let arenaBytes: Int
    /// Bytes all intermediate values and scratch would take without sharing.
    public let intermediateBytes: Int
    /// Nodes evaluated while planning (constant folding, shape arithmetic).
    public let foldedNodes: Int
    /// Nodes that became views of their input (no kernel runs).
    public let viewNodes: Int
    /// The concrete shape of every value, for passes and diagnostics.
    public let valueShapes: [String: [Int]]
    /// Node outputs known before running at these input sizes (folded or shape arithmetic).
    public let knownValues: [String: HostTensor]
    private let knownStorage: [UnsafeMutableBufferPointer<Float>]

    init(steps: [Step], inputOffsets: [Int], outputSources: [OutputSource], inputShapes: [[Int]],
         arenaBytes: Int, intermediateBytes: Int, foldedNodes: Int, viewNodes: Int,
         valueShapes: [String: [Int]], knownValues: [String: HostTensor], knownStorage: [UnsafeMutableBufferPointer<Float>]) {
        self.steps = steps
        self.inputOffsets = inputOffsets
        self.outputSources = outputSources
        self.inputShapes = inputShapes
        self.arenaBytes = arenaBytes
        self.intermediateBytes = intermediateBytes
        self.foldedNodes = foldedNodes
        self.viewNodes = viewNodes
        self.valueShapes = valueShapes
        self.knownValues = knownValues
        self.knownStorage = knownStorage
    }

    deinit { knownStorage.forEach { $0.deallocate() } }

    /// Number of kernels a run executes.
    public var kernelCount: Int { steps.count }
}

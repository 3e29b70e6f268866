import Format
import Synchronization

/// A loaded model: the graph and one parsed operator per node. Immutable, so one model
/// serves many sessions on many threads.
public final class Model: Sendable {
    public let graph: Graph
    /// The parsed operators, which infer shapes before the planner builds kernels.
    let shapeInference: ShapeInference
    /// Float constants as f32: in place for f32 (zero copy from an mmap), dequantized
    /// once here for f16/bf16/int8 so every plan and session shares them.
    private let floatConstants: [String: ByteStorage]
    /// Weights kernels rearranged from constants, shared by every plan and session.
    let preparedWeights: PreparedWeightStore

    /// Parses every node; throws `ModelError.invalidNodes` listing every bad node at once.
    public init(graph: Graph) throws {
        self.graph = graph
        shapeInference = try ShapeInference(graph: graph)
        var floatConstants: [String: ByteStorage] = [:]
        for constant in graph.orderedConstants where constant.dtype.isFloatingPoint {
            floatConstants[constant.name] = constant.dtype == .float32
                ? constant.storage
                : constant.floatValues().withUnsafeBytes { ByteStorage(copying: $0) }
        }
        self.floatConstants = floatConstants
        self.preparedWeights = PreparedWeightStore()
    }

    /// Lets the pages of an f32 constant mapped from the file leave resident memory (read
    /// back if used again); dequantized copies stay.
    func releaseConstantPages(_ name: String) {
        guard let constant = graph.constants[name], constant.dtype == .float32 else { return }
        constant.storage.releasePages(offset: constant.byteOffset, count: constant.elementCount * MemoryLayout<Float>.size)
    }

    /// Bytes of the weights kernels prepared from constants so far (see `ConstantInputs`).
    public var preparedWeightBytes: Int { preparedWeights.bytes }

    /// The f32 elements of a float constant; valid while the model lives.
    func floatConstant(_ name: String) -> UnsafePointer<Float> {
        guard let constant = graph.constants[name], let storage = floatConstants[name] else {
            preconditionFailure("planner asked for '\(name)', which is not a float constant")
        }
        let offset = constant.dtype == .float32 ? constant.byteOffset : 0
        return (storage.base + offset).assumingMemoryBound(to: Float.self)
    }
}

/// The weights kernels derived from a model's constants (`ConstantInputs.prepared`), by
/// constant and form. Made under a lock: sessions on several threads may plan at once.
final class PreparedWeightStore: Sendable {
    private let entries = Mutex<[String: (floats: UnsafeMutablePointer<Float>, count: Int)]>([:])
    /// Most bytes all prepared weights of one model may take. Past it kernels work from
    /// the weights as stored (per-run transforms, OpenBLAS), so that a model whose
    /// derived weights would not fit in memory — a hostile file full of large 3×3 filters
    /// whose Winograd forms take 4× — runs slower instead of failing. Swin-T + UperNet
    /// prepares 357 MiB.
    let budgetBytes: Int

    /// Weights prepared by every store in this process, so tests can check that a code path
    /// (conversion) prepares none.
    static let preparedInProcess = Atomic<Int>(0)

    init(budgetBytes: Int = 4 << 30) {
        self.budgetBytes = budgetBytes
    }

    /// The prepared weights for this constant and form, made by `fill` on first request;
    /// nil when they would exceed `budgetBytes`.
    func prepared(_ name: String, form: String, count: Int, source: UnsafePointer<Float>,
                  fill: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> PreparedWeights? {
        entries.withLock { entries in
            let key = "\(name)\u{1F}\(form)"
            if let entry = entries[key] { return PreparedWeights(pointer: UnsafePointer(entry.floats)) }
            guard count <= (budgetBytes - Self.bytes(of: entries)) / MemoryLayout<Float>.size else { return nil }
            // 64-byte aligned, as the arena: SIMD kernels load prepared panels with aligned loads.
            let floats = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.size, alignment: 64)
                .initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
            fill(source, floats)
            Self.preparedInProcess.add(1, ordering: .relaxed)
            entries[key] = (floats, count)
            return PreparedWeights(pointer: UnsafePointer(floats))
        }
    }

    /// Bytes of all prepared weights, for `rrun info` and the benchmarks.
    var bytes: Int { entries.withLock { Self.bytes(of: $0) } }

    private static func bytes(of entries: [String: (floats: UnsafeMutablePointer<Float>, count: Int)]) -> Int {
        entries.values.reduce(0) { $0 + $1.count * MemoryLayout<Float>.size }
    }

    deinit { entries.withLock { $0.values.forEach { $0.floats.deallocate() } } }
}

/// Errors in loading, planning or running a model.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// Nodes that cannot be loaded, every one found at once.
    case invalidNodes([NodeProblem])
    case missingInput(String)
    case unexpectedInput(String)
    case inputShape(input: String, expected: String, found: [Int])
    case inconsistentSymbol(String, Int, Int)
    /// A node that cannot be planned at the given input shapes.
    case node(NodeProblem)
    /// One value would need more memory than any run is allowed (`limit` bytes).
    case valueTooLarge(value: String, shape: [Int], limit: Int)

    public var description: String {
        switch self {
        case .invalidNodes(let problems):
            "\(problems.count) invalid node\(problems.count == 1 ? "" : "s"):\n  "
                + problems.map(\.description).joined(separator: "\n  ")
        case .missingInput(let name): "input '\(name)' is missing"
        case .unexpectedInput(let name): "the model has no input named '\(name)'"
        case .inputShape(let input, let expected, let found):
            "input '\(input)' should have shape \(expected), found \(found)"
        case .inconsistentSymbol(let symbol, let a, let b):
            "dimension '\(symbol)' is \(a) in one input and \(b) in another"
        case .node(let problem): problem.description
        case .valueTooLarge(let value, let shape, let limit):
            "\(value) of shape \(shape) would take more than the \(limit)-byte limit for one value"
        }
    }
}

/// What is wrong with one node (or graph output), as the graph or the op reported it;
/// each case names the node.
public enum NodeProblem: Error, CustomStringConvertible, Equatable {
    /// Its wiring or attributes: an input nothing produces, a missing or bad attribute.
    case graph(GraphError)
    /// Its op: inputs whose shapes do not fit, a configuration not implemented.
    case op(OpError)
    /// A graph output that no node produces.
    case outputNotProduced(String)

    /// The problem an error thrown while parsing or planning a node is, or nil for an error
    /// that is not about a node (to be passed on as it is).
    init?(_ error: any Error) {
        switch error {
        case let error as GraphError: self = .graph(error)
        case let error as OpError: self = .op(error)
        case let error as NodeProblem: self = error
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .graph(let error): error.description
        case .op(let error): error.description
        case .outputNotProduced(let output): "graph output '\(output)' is produced by no node"
        }
    }
}

import CRestore
import Format
import Runtime
import Synchronization

/// What a `restore_model *` points to: the immutable model plus the C strings the API
/// hands out (metadata, input and output names), kept alive with it.
final class ModelHandle: Sendable {
    let model: Model
    /// The restoration contract, or why the model has none (it can still run tensors).
    let contract: Result<RestorationContract, ContractError>
    let metadataKeys: [OwnedCString]
    let metadataValues: [String: OwnedCString]
    let inputNames: [OwnedCString]
    let outputNames: [OwnedCString]

    init(_ model: Model) {
        self.model = model
        let graph = model.graph
        contract = Result { () throws(ContractError) in try RestorationContract(graph: graph) }
        metadataKeys = graph.metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map(OwnedCString.init)
        metadataValues = graph.metadata.mapValues(OwnedCString.init)
        inputNames = graph.inputs.map { OwnedCString($0.name) }
        outputNames = graph.outputs.map { OwnedCString($0.name) }
    }

    /// The handle behind a C pointer; the caller keeps its reference.
    static func from(_ pointer: OpaquePointer?) throws -> ModelHandle {
        guard let pointer else { throw CallFailure.argument("model is NULL") }
        return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// What a `restore_session *` points to: a session with its restorer and the extra
/// inputs set with `restore_session_set_input`. It keeps its model alive, so the two
/// handles may be freed in either order.
final class SessionHandle {
    let owner: ModelHandle
    let session: Session
    var extraInputs: [String: HostTensor] = [:]
    /// The memory budget image mode chooses tiles against; nil is `MemoryLimit.defaultImageBudget`.
    var imageBudget: Int?
    private var cachedRestorer: Restorer?
    /// Set while a call runs, so a second thread using the same session is refused
    /// instead of racing on the session's plans and arena.
    private let busy = Atomic<Bool>(false)

    init(owner: ModelHandle, threads: Int) {
        self.owner = owner
        self.session = Session(model: owner.model, threads: threads)
    }

    /// The restorer for image mode, made on first use (tensor mode needs no contract).
    func restorer() throws -> Restorer {
        if let cachedRestorer { return cachedRestorer }
        let restorer = try Restorer(session: session)
        cachedRestorer = restorer
        return restorer
    }

    /// Every graph input's shape: `shape` for input `name`, the set inputs' for the rest.
    func inputShapes(setting name: String, to shape: [Int]) throws -> [[Int]] {
        try owner.model.graph.inputs.map { info in
            if info.name == name { return shape }
            guard let tensor = extraInputs[info.name] else { throw ModelError.missingInput(info.name) }
            return tensor.shape
        }
    }

    /// Runs `body` with the session behind `pointer`, refusing NULL and concurrent use.
    static func with(_ pointer: OpaquePointer?, _ body: (SessionHandle) throws -> Void) throws {
        guard let pointer else { throw CallFailure.argument("session is NULL") }
        let handle = Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
        guard handle.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw CallFailure.argument("the session is in use by another thread (use one session per thread)")
        }
        defer { handle.busy.store(false, ordering: .releasing) }
        try body(handle)
    }
}

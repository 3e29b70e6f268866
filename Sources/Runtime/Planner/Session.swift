import Dispatch
import Format
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a model: one session per thread. Keeps a plan per set of input shapes and one
/// arena sized for the largest plan it has run.
public final class Session {
    public let model: Model
    public let pool: ThreadPool
    /// Plans kept at most: a long-lived session fed images of many sizes (libRestore in a
    /// server) would otherwise keep every plan, with its known values, for ever. Tiles
    /// and a few image sizes fit; the least recently used plan goes first.
    public static let planCacheLimit = 4
    private var plans: [[[Int]]: Plan] = [:]
    /// Input shapes of the cached plans, least recently used first.
    private var planUse: [[[Int]]] = []
    /// `Model.constantReplacements` when the cached plans were made: they read constants
    /// and prepared weights as they were then.
    private var plannedReplacements = 0
    private var arena: UnsafeMutableRawPointer?
    private var arenaCapacity = 0
    /// The most working memory (arena) a run may take, in bytes; a plan that needs more is
    /// refused with `MemoryLimitError` before anything is allocated. Physical memory by default.
    public var memoryLimit = MemoryLimit.physicalMemory

    public init(model: Model, threads: Int) {
        self.model = model
        self.pool = ThreadPool(threads: threads)
    }

    deinit { free(arena) }

    /// The plan for these input shapes (graph input order), made once and cached until a
    /// constant of the model is replaced.
    public func plan(for inputShapes: [[Int]]) throws -> Plan {
        let replacements = model.constantReplacements
        if replacements != plannedReplacements {
            plans.removeAll()
            planUse.removeAll()
            plannedReplacements = replacements
        }
        if let plan = plans[inputShapes] {
            planUse.removeAll { $0 == inputShapes }
            planUse.append(inputShapes)
            return plan
        }
        let plan = try Planner.plan(model, inputShapes: inputShapes)
        if plans.count >= Self.planCacheLimit, let oldest = planUse.first {
            plans[oldest] = nil
            planUse.removeFirst()
        }
        plans[inputShapes] = plan
        planUse.append(inputShapes)
        return plan
    }

    /// The plan for these input shapes, refused when its arena plus `extraBytes` (the
    /// caller's own buffers for the run: inputs, outputs, images) passes `memoryLimit`.
    /// Call it before allocating those buffers, so that a huge shape is an error, not an abort.
    public func checkedPlan(for inputShapes: [[Int]], besides extraBytes: Int) throws -> Plan {
        let plan = try plan(for: inputShapes)
        let (total, overflow) = plan.arenaBytes.addingReportingOverflow(max(0, extraBytes))
        guard !overflow, total <= memoryLimit else {
            throw MemoryLimitError(what: "a run at input shapes \(inputShapes)", needed: overflow ? nil : total,
                                   limit: memoryLimit, advice: "use smaller inputs or tiles")
        }
        return plan
    }

    /// The plans made so far, for diagnostics.
    public var cachedPlans: [Plan] { Array(plans.values) }

    /// Runs the model on named inputs and returns every graph output by name.
    public func run(_ inputs: [String: HostTensor]) throws -> [String: HostTensor] {
        let graphInputs = model.graph.inputs
        for name in inputs.keys where !graphInputs.contains(where: { $0.name == name }) {
            if model.graph.weightInputNames.contains(name) { throw ModelError.weightFed(name) }
            throw ModelError.unexpectedInput(name)
        }
        let ordered = try graphInputs.map { info -> HostTensor in
            guard let tensor = inputs[info.name] else { throw ModelError.missingInput(info.name) }
            return tensor
        }
        for (info, tensor) in zip(graphInputs, ordered) where !Self.accepts(info.dtype, tensor.dtype) {
            throw ModelError.inputType(input: info.name, expected: info.dtype, found: tensor.dtype.numPyName)
        }
        let outputs = try run(ordered)
        return Dictionary(uniqueKeysWithValues: zip(model.graph.outputs.map(\.name), outputs))
    }

    /// Runs the model on inputs in graph order; outputs in graph order.
    public func run(_ inputs: [HostTensor]) throws -> [HostTensor] {
        let plan = try checkedPlan(for: inputs.map(\.shape), besides: 0)
        let base = try reserveArena(plan.arenaBytes)
        for (tensor, offset) in zip(inputs, plan.inputOffsets) {
            let destination = (base + offset).assumingMemoryBound(to: Float.self)
            tensor.floats.withUnsafeBufferPointer { source in
                if let address = source.baseAddress { destination.update(from: address, count: source.count) }
            }
        }
        execute(plan, arena: base)
        return plan.outputSources.map { source in
            switch source {
            case .known(let value):
                return value
            case .location(let location, let dtype, let shape):
                let pointer = Self.pointer(location, arena: base)
                let floats = Array(UnsafeBufferPointer(start: pointer, count: shape.reduce(1, *)))
                return dtype.isFloatingPoint
                    ? HostTensor(shape: shape, floats: floats)
                    : HostTensor(shape: shape, ints: floats.map { Int64($0) }, dtype: dtype)
            }
        }
    }

    /// Wall time of every kernel in the last run, by graph node index, when `profiling` is on.
    public private(set) var stepTimes: [(node: Int, seconds: Double)] = []
    /// Times each kernel of the following runs into `stepTimes` (for `rrun bench --profile`).
    public var profiling = false

    private func execute(_ plan: Plan, arena base: UnsafeMutableRawPointer) {
        stepTimes.removeAll(keepingCapacity: true)
        for step in plan.steps {
            let io = KernelIO(
                inputs: step.inputs.map { $0.map { Self.pointer($0, arena: base) } },
                outputs: step.outputs.map { (base + $0).assumingMemoryBound(to: Float.self) },
                scratch: step.scratch.map { base + $0 },
                pool: pool)
            guard profiling else {
                step.kernel.run(io)
                continue
            }
            let start = DispatchTime.now().uptimeNanoseconds
            step.kernel.run(io)
            stepTimes.append((step.node, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        }
    }

    private static func pointer(_ location: Plan.Location, arena base: UnsafeMutableRawPointer) -> UnsafePointer<Float> {
        switch location {
        case .arena(let offset): UnsafePointer((base + offset).assumingMemoryBound(to: Float.self))
        case .constant(let pointer), .known(let pointer): pointer
        }
    }

    /// Whether a graph input of type `expected` takes a tensor of type `found`: the same
    /// type, or f32 data for a float input stored narrower (the runtime computes in f32).
    static func accepts(_ expected: DType, _ found: DType) -> Bool {
        expected == found || (expected.isFloatingPoint && found == .float32)
    }

    /// The arena, grown to `bytes`. Allocated with posix_memalign, whose failure is an
    /// error here, where Swift's own allocation would abort the process.
    private func reserveArena(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        if let arena, arenaCapacity >= bytes { return arena }
        free(arena)
        arena = nil
        arenaCapacity = 0
        var fresh: UnsafeMutableRawPointer?
        guard posix_memalign(&fresh, 64, max(bytes, 64)) == 0, let fresh else {
            throw MemoryLimitError(what: "the working memory of a run", needed: bytes, limit: memoryLimit,
                                   advice: "the system refused the allocation")
        }
        arena = fresh
        arenaCapacity = bytes
        return fresh
    }
}

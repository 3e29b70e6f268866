import Format
import Synchronization

/// A model's constants as kernels read them, with a generation per constant that bumps
/// when its values are replaced (`Model.replaceConstant`).
///
/// Float constants are kept as plain f32: in place for f32 (zero copy from the mmap),
/// widened or dequantized once here for f16, bf16 and int8 so every plan and session
/// shares them. Replacing a constant gives it new storage, so that a `Graph` read from
/// `graph` earlier keeps the values it had; plans and prepared weights made from the old
/// values are stale from then on (`Session` replans, `PreparedWeightStore` frees them).
final class WeightStore: Sendable {
    private struct State {
        /// The model's graph with every float constant as plain f32 and current.
        var graph: Graph
        /// The generation of each replaced constant's values; absent means 0, as loaded.
        var generations: [String: Int]
        /// Replacements so far, in all constants.
        var replacements: Int
    }

    private let state: Mutex<State>

    /// Widens and dequantizes `graph`'s float constants; throws when a constant's layout
    /// does not fit it (a graph built in memory with bad int8 scales, a packed layout).
    init(_ graph: Graph) throws(ModelError) {
        var working = graph
        for constant in graph.orderedConstants where constant.dtype.isFloatingPoint {
            guard constant.dtype != .float32 || constant.layout != .elements else { continue }
            let values: [Float]
            do {
                values = try graph.floatValues(of: constant)
            } catch {
                throw .invalidConstant(name: constant.name, detail: error.description)
            }
            working.setConstant(ConstantTensor(name: constant.name, shape: constant.shape, floats: values))
        }
        state = Mutex(State(graph: working, generations: [:], replacements: 0))
    }

    var graph: Graph { state.withLock { $0.graph } }

    /// Replacements so far: plans made at another count are stale.
    var replacements: Int { state.withLock { $0.replacements } }

    /// The float constant `name` as kernels read it.
    func weight(_ name: String) -> ConstantWeight {
        state.withLock { state in
            guard let constant = state.graph.constants[name], constant.dtype == .float32 else {
                preconditionFailure("planner asked for '\(name)', which is not a float constant")
            }
            return ConstantWeight(name: name, generation: state.generations[name, default: 0], shape: constant.shape,
                                  floats: (constant.storage.base + constant.byteOffset).assumingMemoryBound(to: Float.self))
        }
    }

    /// The generation of constant `name`'s values: 0 as loaded, bumped by each replacement.
    func generation(of name: String) -> Int { state.withLock { $0.generations[name, default: 0] } }

    /// Gives float constant `name` a copy of `values` as its new generation.
    func replace(_ name: String, with values: [Float]) throws(ModelError) {
        try state.withLock { (state) throws(ModelError) in
            guard let constant = state.graph.constants[name] else {
                throw .constantReplacement(name: name, detail: "the model has no such constant")
            }
            guard constant.dtype == .float32 else {
                throw .constantReplacement(name: name, detail: "it is \(constant.dtype.rawValue), not a float weight")
            }
            guard values.count == constant.elementCount else {
                throw .constantReplacement(name: name, detail: "\(values.count) values given for shape \(constant.shape)")
            }
            state.graph.setConstant(ConstantTensor(name: name, shape: constant.shape, floats: values))
            state.generations[name, default: 0] += 1
            state.replacements += 1
        }
    }

    /// Lets the pages of constant `name` leave resident memory when it is mapped from the
    /// file (read back if used again); widened and replaced copies stay.
    func releasePages(_ name: String) {
        guard let constant = state.withLock({ $0.graph.constants[name] }) else { return }
        constant.storage.releasePages(offset: constant.byteOffset, count: constant.byteCount)
    }
}

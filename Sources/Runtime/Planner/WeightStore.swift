import Format
import Synchronization

/// A model's constants as kernels read them, with a generation per constant that bumps
/// when its values are replaced (`Model.replaceConstant`).
///
/// Float constants are kept as plain f32: in place for f32 (zero copy from the mmap),
/// widened or dequantized once here for f16, bf16 and int8 so every plan and session
/// shares them — except int8 weights that only linear and convolution kernels read, which
/// stay int8 (in place) for their int8 kernels, with an f32 copy made only if a kernel
/// without an int8 path asks for one (`floats(of:)`). Replacing a constant gives it new storage, so that a `Graph` read from
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
        /// Per-channel scales of the int8 weights kept int8 for the int8 kernels.
        var int8Scales: [String: UnsafeMutableBufferPointer<Float>]
        /// f32 copies of those weights, made when a kernel without an int8 path reads one.
        var dequantized: [String: UnsafeMutableBufferPointer<Float>]
    }

    private let state: Mutex<State>

    /// int8 weights of at most this many values are dequantized when the model loads and
    /// computed in f32, like any int8 constant no int8 kernel reads: they belong to narrow
    /// layers (the demo Swin's 24- and 48-channel linears, UperNet's 1×1 lateral convs),
    /// where quantizing each row of activations costs about what the int8 product saves
    /// (docs/int8.md), and their f32 copies are small.
    static let largestDequantizedInt8Weight = 4096

    /// Widens and dequantizes `graph`'s float constants, except the int8 weights the int8
    /// kernels read (`Graph.int8KernelWeights` of more than `largestDequantizedInt8Weight`
    /// values); throws when a constant's layout does not fit it (a graph built in
    /// memory with bad int8 scales, a packed layout).
    init(_ graph: Graph) throws(ModelError) {
        var working = graph
        var int8Scales: [String: UnsafeMutableBufferPointer<Float>] = [:]
        let int8Readers = graph.int8KernelWeights
        for constant in graph.orderedConstants where constant.dtype.isFloatingPoint {
            guard constant.dtype != .float32 || constant.layout != .elements else { continue }
            do throws(WeightLayoutError) {
                if case .int8Symmetric(let quantization) = constant.layout, int8Readers[constant.name] != nil,
                   constant.elementCount > Self.largestDequantizedInt8Weight, let channels = constant.shape.first {
                    let scales = try quantization.checkedScales(for: constant) { graph.constants[$0] }.float32Elements
                    let perChannel = UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(channels, 1))
                    for channel in 0..<channels { perChannel[channel] = scales[quantization.axis == nil ? 0 : channel] }
                    int8Scales[constant.name] = perChannel
                    continue
                }
                working.setConstant(ConstantTensor(name: constant.name, shape: constant.shape,
                                                   floats: try graph.floatValues(of: constant)))
            } catch {
                int8Scales.values.forEach { $0.deallocate() }
                throw .invalidConstant(name: constant.name, detail: error.description)
            }
        }
        state = Mutex(State(graph: working, generations: [:], replacements: 0, int8Scales: int8Scales, dequantized: [:]))
    }

    deinit {
        state.withLock { state in
            state.int8Scales.values.forEach { $0.deallocate() }
            state.dequantized.values.forEach { $0.deallocate() }
        }
    }

    var graph: Graph { state.withLock { $0.graph } }

    /// Replacements so far: plans made at another count are stale.
    var replacements: Int { state.withLock { $0.replacements } }

    /// The float constant `name` as kernels read it: plain f32, or int8 with per-channel scales.
    func weight(_ name: String) -> ConstantWeight {
        state.withLock { state in
            guard let constant = state.graph.constants[name], constant.dtype.isFloatingPoint else {
                preconditionFailure("planner asked for '\(name)', which is not a float constant")
            }
            let elements = UnsafeRawPointer(constant.storage.base + constant.byteOffset)
            let generation = state.generations[name, default: 0]
            if let scales = state.int8Scales[name] {
                return ConstantWeight(name: name, generation: generation, shape: constant.shape, dtype: .int8,
                                      layout: constant.layout, elements: elements, scales: UnsafePointer(scales.baseAddress))
            }
            return ConstantWeight(name: name, generation: generation, shape: constant.shape,
                                  floats: elements.assumingMemoryBound(to: Float.self))
        }
    }

    /// int8 weights of which a kernel without an int8 path asked for an f32 copy (tests check
    /// that the int8 kernels make none).
    var dequantizedWeights: Int { state.withLock { $0.dequantized.count } }

    /// The f32 elements of float constant `name`; an int8 weight's are dequantized once, on
    /// the first request, and kept while the model lives.
    func floats(of name: String) -> UnsafePointer<Float> {
        let weight = weight(name)
        guard weight.dtype == .int8 else { return weight.floats }
        return state.withLock { state in
            let copy: UnsafeMutableBufferPointer<Float>
            if let made = state.dequantized[name] {
                copy = made
            } else {
                let count = weight.shape.reduce(1, *)
                copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(count, 1))
                weight.withFloats { values in _ = copy.initialize(from: UnsafeBufferPointer(start: values, count: count)) }
                state.dequantized[name] = copy
            }
            guard let floats = copy.baseAddress else { preconditionFailure("an allocation of at least one float has an address") }
            return UnsafePointer(floats)
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
            guard constant.dtype == .float32 || state.int8Scales[name] != nil else {
                throw .constantReplacement(name: name, detail: "it is \(constant.dtype.rawValue), not a float weight")
            }
            guard values.count == constant.elementCount else {
                throw .constantReplacement(name: name, detail: "\(values.count) values given for shape \(constant.shape)")
            }
            state.graph.setConstant(ConstantTensor(name: name, shape: constant.shape, floats: values))
            // An int8 weight replaced by trained values is f32 from now on.
            state.int8Scales.removeValue(forKey: name)?.deallocate()
            state.dequantized.removeValue(forKey: name)?.deallocate()
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

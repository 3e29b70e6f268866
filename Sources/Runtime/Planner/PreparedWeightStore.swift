import Format
import Synchronization

/// The weights kernels arranged from a model's constants (`ConstantInputs.prepared`), by
/// constant, arrangement and generation of the constant's values: made by the kernels on
/// first request (prepared at load), or packed values the file holds (`PackedConstant`,
/// `convert --prepare`), used in place from the mapping. Made under a lock: sessions on
/// several threads may plan at once.
final class PreparedWeightStore: Sendable {
    /// What one entry was made from.
    struct Key: Hashable {
        let constant: String
        let form: PreparedForm
        let generation: Int
    }

    /// What an entry is: an arrangement a file may store (`PackedLayout`), or int8 GEMM
    /// panels (`Int8GEMM.pack`), which are made at load only: packing them is a byte shuffle,
    /// cheap next to reading the weights (schemas/rgraph.md: `--prepare` keeps f32 weights).
    enum PreparedForm: Hashable {
        case packed(PackedLayout)
        case int8Panels
    }

    private enum Entry {
        /// Floats a kernel made, owned by the store.
        case made(UnsafeMutablePointer<Float>, count: Int)
        /// Packed values of the file, viewed in place; `used` once a kernel took them.
        case stored(PackedConstant, used: Bool)

        var count: Int {
            switch self {
            case .made(_, let count): count
            case .stored(let values, _): values.tensor.elementCount
            }
        }

        var madeBytes: Int {
            switch self {
            case .made(_, let count): count * MemoryLayout<Float>.size
            case .stored: 0
            }
        }
    }

    private let entries = Mutex<[Key: Entry]>([:])
    /// Most bytes all weights prepared at load of one model may take (the file's packed
    /// values, which the system can page out, do not count). Past it kernels work from
    /// the weights as stored (per-run transforms, OpenBLAS), so that a model whose
    /// derived weights would not fit in memory — a hostile file full of large 3×3 filters
    /// whose Winograd forms take 4× — runs slower instead of failing. Swin-T + UperNet
    /// prepares 357 MiB.
    let budgetBytes: Int

    /// Weights prepared by every store in this process, so tests can check that a code path
    /// (conversion, a prepared file) prepares none.
    static let preparedInProcess = Atomic<Int>(0)

    /// A store holding the file's packed values `packed` (generation 0 of their sources).
    init(packed: [PackedConstant] = [], budgetBytes: Int = 4 << 30) {
        self.budgetBytes = budgetBytes
        var stored: [Key: Entry] = [:]
        for values in packed {
            stored[Key(constant: values.source, form: .packed(values.layout), generation: 0)] = .stored(values, used: false)
        }
        entries.withLock { $0 = stored }
    }

    /// The weights arranged as `form` from this generation of `weight`: the file's packed
    /// values when it holds them with `count` floats, else made by `fill` on first request;
    /// nil when they would exceed `budgetBytes`. Entries of older generations of the
    /// constant are freed first.
    func prepared(from weight: ConstantWeight, as form: PreparedForm, count: Int,
                  fill: (UnsafeMutablePointer<Float>) -> Void) -> PreparedWeights? {
        entries.withLock { entries in
            let key = Key(constant: weight.name, form: form, generation: weight.generation)
            switch entries[key] {
            case .made(let floats, _)?:
                return PreparedWeights(pointer: UnsafePointer(floats))
            case .stored(let values, _)? where values.tensor.elementCount == count:
                entries[key] = .stored(values, used: true)
                // An empty arrangement has no elements to point at; any pointer does.
                return PreparedWeights(pointer: values.tensor.float32Elements.baseAddress
                                       ?? weight.elements.assumingMemoryBound(to: Float.self),
                                       fileTensor: values.tensor.name)
            case .stored?, nil:
                // Packed values of another count than this kernel's are not its arrangement.
                entries.removeValue(forKey: key)
            }
            Self.remove(from: &entries) { $0.constant == weight.name && $0.generation != weight.generation }
            let madeBytes = entries.values.reduce(0) { $0 + $1.madeBytes }
            guard count <= (budgetBytes - madeBytes) / MemoryLayout<Float>.size else { return nil }
            // 64-byte aligned, as the arena: SIMD kernels load prepared panels with aligned loads.
            let floats = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.size, alignment: 64)
                .initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
            fill(floats)
            Self.preparedInProcess.add(1, ordering: .relaxed)
            entries[key] = .made(floats, count: count)
            return PreparedWeights(pointer: UnsafePointer(floats))
        }
    }

    /// Frees every entry made from `constant`, whose values are being replaced. Plans that
    /// still point at them must not run again (`Session` replans after a replacement).
    func discard(_ constant: String) {
        entries.withLock { entries in Self.remove(from: &entries) { $0.constant == constant } }
    }

    /// Bytes of the weights kernels prepared at load, for `rrun info` and the benchmarks.
    var bytes: Int { entries.withLock { $0.values.reduce(0) { $0 + $1.madeBytes } } }

    /// What kernels took so far: weights prepared at load and packed values used from the
    /// file, each as a count and bytes; and the file's packed values no kernel took.
    var usage: PreparedWeightUsage {
        entries.withLock { entries in
            var usage = PreparedWeightUsage()
            for entry in entries.values {
                switch entry {
                case .made(_, let count):
                    usage.preparedAtLoad += 1
                    usage.preparedAtLoadBytes += count * MemoryLayout<Float>.size
                case .stored(let values, let used):
                    if used {
                        usage.usedFromFile += 1
                        usage.usedFromFileBytes += values.tensor.byteCount
                    } else {
                        usage.unusedInFile += 1
                    }
                }
            }
            return usage
        }
    }

    /// Copies of the weights kernels prepared (not the file's packed values), as packed
    /// constants of generation 0 of their sources, in a stable order: what `convert
    /// --prepare` stores.
    func madeAsConstants() -> [PackedConstant] {
        entries.withLock { entries in
            entries.compactMap { key, entry -> PackedConstant? in
                guard key.generation == 0, case .made(let floats, let count) = entry,
                      case .packed(let layout) = key.form else { return nil }
                let name = PackedConstant.name(source: key.constant, layout: layout)
                return PackedConstant(source: key.constant, layout: layout,
                                      tensor: ConstantTensor(name: name, shape: [count],
                                                             floats: Array(UnsafeBufferPointer(start: floats, count: count))))
            }
            .sorted { $0.tensor.name < $1.tensor.name }
        }
    }

    private static func remove(from entries: inout [Key: Entry], where isStale: (Key) -> Bool) {
        for key in entries.keys where isStale(key) {
            if case .made(let floats, _)? = entries.removeValue(forKey: key) { floats.deallocate() }
        }
    }

    deinit {
        entries.withLock { entries in
            for case .made(let floats, _) in entries.values { floats.deallocate() }
        }
    }
}

/// Where the weights a model's kernels use came from (`Model.preparedWeightUsage`, `rrun -v`).
public struct PreparedWeightUsage: Equatable, Sendable {
    /// Weights kernels arranged from constants when they were planned.
    public var preparedAtLoad = 0
    public var preparedAtLoadBytes = 0
    /// The file's packed values kernels used in place.
    public var usedFromFile = 0
    public var usedFromFileBytes = 0
    /// The file's packed values no kernel asked for (made for another CPU level, or for
    /// kernels the planned sizes did not choose).
    public var unusedInFile = 0
}

/// Floats a kernel derived from a constant, owned by the model's `PreparedWeightStore`:
/// 64-byte aligned, valid while the model lives and the constant is not replaced.
public struct PreparedWeights: @unchecked Sendable {
    public let pointer: UnsafePointer<Float>
    /// The packed tensor of the file viewed in place, nil for weights a kernel made.
    let fileTensor: String?

    init(pointer: UnsafePointer<Float>, fileTensor: String? = nil) {
        self.pointer = pointer
        self.fileTensor = fileTensor
    }
}

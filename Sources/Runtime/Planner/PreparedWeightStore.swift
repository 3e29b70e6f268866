import Format
import Synchronization

/// The weights kernels arranged from a model's constants (`ConstantInputs.prepared`), by
/// constant, arrangement and generation of the constant's values. Made under a lock:
/// sessions on several threads may plan at once.
final class PreparedWeightStore: Sendable {
    /// What one entry was made from.
    struct Key: Hashable {
        let constant: String
        let form: PackedLayout
        let generation: Int
    }

    private struct Entry {
        let floats: UnsafeMutablePointer<Float>
        let count: Int
    }

    private let entries = Mutex<[Key: Entry]>([:])
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

    /// The weights arranged as `form` from this generation of `weight`, made by `fill` on
    /// first request; nil when they would exceed `budgetBytes`. Entries of older
    /// generations of the constant are freed first.
    func prepared(from weight: ConstantWeight, as form: PackedLayout, count: Int,
                  fill: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> PreparedWeights? {
        entries.withLock { entries in
            let key = Key(constant: weight.name, form: form, generation: weight.generation)
            if let entry = entries[key] { return PreparedWeights(pointer: UnsafePointer(entry.floats)) }
            Self.remove(from: &entries) { $0.constant == weight.name && $0.generation != weight.generation }
            guard count <= (budgetBytes - Self.bytes(of: entries)) / MemoryLayout<Float>.size else { return nil }
            // 64-byte aligned, as the arena: SIMD kernels load prepared panels with aligned loads.
            let floats = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.size, alignment: 64)
                .initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
            fill(weight.floats, floats)
            Self.preparedInProcess.add(1, ordering: .relaxed)
            entries[key] = Entry(floats: floats, count: count)
            return PreparedWeights(pointer: UnsafePointer(floats))
        }
    }

    /// Frees every entry made from `constant`, whose values are being replaced. Plans that
    /// still point at them must not run again (`Session` replans after a replacement).
    func discard(_ constant: String) {
        entries.withLock { entries in Self.remove(from: &entries) { $0.constant == constant } }
    }

    /// Bytes of all prepared weights, for `rrun info` and the benchmarks.
    var bytes: Int { entries.withLock { Self.bytes(of: $0) } }

    private static func bytes(of entries: [Key: Entry]) -> Int {
        entries.values.reduce(0) { $0 + $1.count * MemoryLayout<Float>.size }
    }

    private static func remove(from entries: inout [Key: Entry], where isStale: (Key) -> Bool) {
        for key in entries.keys where isStale(key) {
            entries.removeValue(forKey: key)?.floats.deallocate()
        }
    }

    deinit { entries.withLock { $0.values.forEach { $0.floats.deallocate() } } }
}

/// Floats a kernel derived from a constant, owned by the model's `PreparedWeightStore`:
/// 64-byte aligned, valid while the model lives and the constant is not replaced.
public struct PreparedWeights: @unchecked Sendable {
    public let pointer: UnsafePointer<Float>
}

import Foundation
import Synchronization

/// The CRC-64 a 1.3 file records for each tensor (schemas/rgraph.md §4 `crc64`), for the
/// tensors not verified yet.
///
/// Reading a file does not sum its data section: a prepared model holds each weight twice
/// (as converted, and packed for the kernels of one CPU) and a run reads one of the two, so
/// summing all of it read twice the bytes a run needs, and its pages had to be released
/// again to keep peak memory down, only for the run to fault them back in. Instead whoever
/// reads a tensor verifies it first — the model its small constants as it loads, the planner
/// what the kernels of a plan read, before the plan runs — and each tensor is summed once.
public final class TensorChecksums: Sendable {
    /// The path, for errors.
    public let file: String
    private let pending: Mutex<[String: Entry]>

    struct Entry: @unchecked Sendable {
        let tensor: ConstantTensor
        let stored: UInt64
    }

    /// Verification started by `verifyInBackground`, which `verify` waits for.
    private let background = DispatchGroup()

    init(file: String, pending: [String: Entry]) {
        self.file = file
        self.pending = Mutex(pending)
    }

    /// Tensors not verified yet.
    public var unverified: Set<String> {
        background.wait()
        return pending.withLock { Set($0.keys) }
    }

    /// Starts verifying `names` on one background thread: the tensors a plan will most
    /// likely read, named as the model loads, so that summing them overlaps reading the
    /// input and planning instead of following them. `verify` waits for it before anything
    /// else, so no tensor is used unverified; one that does not match is left unverified
    /// here, for `verify` to report.
    public func verifyInBackground(_ names: some Sequence<String>) {
        let entries = pending.withLock { pending in names.compactMap { pending[$0] } }
        guard !entries.isEmpty else { return }
        DispatchQueue.global().async(group: background) { [self] in
            for entry in entries where RGraphChecksum.of(entry.tensor.bytes) == entry.stored {
                pending.withLock { $0[entry.tensor.name] = nil }
            }
        }
    }

    /// Verifies the tensors among `names` not verified yet (other names are ignored), the
    /// largest first, on one thread per core. Pages of those in `releasing` leave resident
    /// memory once summed (tensors read only to prepare others). A tensor whose bytes do not
    /// match stays unverified, so that every later attempt to use it fails too.
    public func verify(_ names: some Sequence<String>, releasing: Set<String> = []) throws(RGraphError) {
        background.wait()
        let entries = pending.withLock { pending in names.compactMap { pending[$0] } }
            .sorted { $0.tensor.byteCount > $1.tensor.byteCount }
        guard !entries.isEmpty else { return }
        let computed = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: entries.count)
        defer { computed.deallocate() }
        let next = Atomic<Int>(0)
        let workers = min(entries.count, ProcessInfo.processInfo.activeProcessorCount)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < entries.count else { return }
                let tensor = entries[index].tensor
                computed[index] = RGraphChecksum.of(tensor.bytes)
                if releasing.contains(tensor.name) {
                    tensor.storage.releasePages(offset: tensor.byteOffset, count: tensor.byteCount)
                }
            }
        }
        // The first mismatch in file order, so that the error names the same tensor every time.
        if let bad = entries.indices.filter({ computed[$0] != entries[$0].stored })
            .min(by: { entries[$0].tensor.byteOffset < entries[$1].tensor.byteOffset }) {
            let good = entries.indices.filter { computed[$0] == entries[$0].stored }.map { entries[$0].tensor.name }
            pending.withLock { pending in good.forEach { pending[$0] = nil } }
            throw .tensorChecksumMismatch(file: file, tensor: entries[bad].tensor.name,
                                          stored: entries[bad].stored, computed: computed[bad])
        }
        pending.withLock { pending in entries.forEach { pending[$0.tensor.name] = nil } }
    }
}

import Foundation
import Synchronization

/// The CRC-64 a 1.3 file records for each tensor (schemas/rgraph.md §4 `crc64`), and which
/// tensors have been verified against it.
///
/// Reading a file does not sum its data section: a prepared model holds each weight twice
/// (as converted, and packed for the kernels of one CPU) and a run reads one of the two, so
/// summing all of it read twice the bytes a run needs, and its pages had to be released
/// again to keep peak memory down, only for the run to fault them back in. Instead whoever
/// reads a tensor verifies it first — the model its small constants as it loads, the planner
/// what the kernels of a plan read, before the plan runs — and each tensor is summed once,
/// by whichever thread claims it first: background workers (`verifyInBackground`) and the
/// thread that needs the tensor (`verify`) share the work, so that one that arrives while
/// the background is still summing sums the rest with it instead of waiting.
///
/// Sendable by hand: the only mutable state, `states`, is guarded by `condition`.
public final class TensorChecksums: @unchecked Sendable {
    /// The path, for errors.
    public let file: String
    private let entries: [Entry]
    private let indexOfName: [String: Int]
    /// Guards `states`; waiters for a tensor another thread is summing wait on it.
    private let condition = NSCondition()
    /// One per entry, read and written only with `condition` locked.
    private var states: [State]

    struct Entry: @unchecked Sendable {
        let tensor: ConstantTensor
        let stored: UInt64
    }

    private enum State {
        case unclaimed
        /// A thread is summing it; others that need it wait.
        case summing
        case verified
        /// Its bytes do not match: it stays unverified, so that every use fails.
        case corrupt(computed: UInt64)
    }

    /// Background workers started by `verifyInBackground`, which `unverified` waits for.
    private let background = DispatchGroup()

    init(file: String, pending: [String: Entry]) {
        self.file = file
        entries = pending.values.sorted { $0.tensor.byteOffset < $1.tensor.byteOffset }
        indexOfName = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.tensor.name, $0) })
        states = Array(repeating: .unclaimed, count: entries.count)
    }

    /// Tensors not verified yet (corrupt ones included), once background work has ended.
    public var unverified: Set<String> {
        background.wait()
        condition.lock()
        defer { condition.unlock() }
        return Set(entries.indices.filter { if case .verified = states[$0] { false } else { true } }
            .map { entries[$0].tensor.name })
    }

    /// Starts verifying `names`, in this order, on `workers` background threads (default:
    /// one per core but one, at least one, for the thread that goes on loading): the
    /// tensors a plan will most likely read, named as the model loads, so that summing them
    /// overlaps loading, reading the input and planning. `verify` sums what is still
    /// unclaimed when it is called, so no tensor is used unverified; one that does not
    /// match is recorded for `verify` to report.
    public func verifyInBackground(_ names: some Sequence<String>,
                                   workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)) {
        let queue = names.compactMap { indexOfName[$0] }
        guard !queue.isEmpty else { return }
        for _ in 0..<min(workers, queue.count) {
            DispatchQueue.global().async(group: background) { [self] in
                for index in queue { sumIfUnclaimed(index) }
            }
        }
    }

    /// Sums entry `index` if no thread has claimed it, and records the result.
    private func sumIfUnclaimed(_ index: Int, releasingPages: Bool = false) {
        condition.lock()
        guard case .unclaimed = states[index] else {
            condition.unlock()
            return
        }
        states[index] = .summing
        condition.unlock()
        let entry = entries[index]
        let computed = RGraphChecksum.of(entry.tensor.bytes)
        if releasingPages {
            entry.tensor.storage.releasePages(offset: entry.tensor.byteOffset, count: entry.tensor.byteCount)
        }
        condition.lock()
        states[index] = computed == entry.stored ? .verified : .corrupt(computed: computed)
        condition.broadcast()
        condition.unlock()
    }

    /// Verifies every tensor not verified yet, as `verify` does (with background workers,
    /// if any are summing).
    public func verifyAll() throws(RGraphError) {
        try verify(entries.map(\.tensor.name))
    }

    /// Verifies the tensors among `names` not verified yet (other names are ignored): sums
    /// those no thread has claimed, the largest first, on one thread per core, and waits for
    /// those background workers are summing. Pages of those in `releasing` it sums leave
    /// resident memory once summed (tensors read only to prepare others). A tensor whose
    /// bytes do not match stays unverified, so that every later attempt to use it fails too;
    /// of several, the error names the first in file order, the same one every time.
    public func verify(_ names: some Sequence<String>, releasing: Set<String> = []) throws(RGraphError) {
        let wanted = Set(names.compactMap { indexOfName[$0] })
        guard !wanted.isEmpty else { return }
        condition.lock()
        let unclaimed = wanted.filter { if case .unclaimed = states[$0] { true } else { false } }
            .sorted { entries[$0].tensor.byteCount > entries[$1].tensor.byteCount }
        condition.unlock()
        if !unclaimed.isEmpty {
            let next = Atomic<Int>(0)
            let workers = min(unclaimed.count, ProcessInfo.processInfo.activeProcessorCount)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let position = next.add(1, ordering: .relaxed).oldValue
                    guard position < unclaimed.count else { return }
                    let index = unclaimed[position]
                    sumIfUnclaimed(index, releasingPages: releasing.contains(entries[index].tensor.name))
                }
            }
        }
        condition.lock()
        while wanted.contains(where: { if case .summing = states[$0] { true } else { false } }) { condition.wait() }
        let firstCorrupt = wanted.sorted().lazy.compactMap { index -> (Int, UInt64)? in
            if case .corrupt(let computed) = self.states[index] { (index, computed) } else { nil }
        }.first
        condition.unlock()
        if let (index, computed) = firstCorrupt {
            throw .tensorChecksumMismatch(file: file, tensor: entries[index].tensor.name,
                                          stored: entries[index].stored, computed: computed)
        }
    }
}

import Dispatch

/// Runs loops of Restore's own kernels on a fixed number of threads.
///
/// OpenBLAS is told to use one thread (see `GEMM`): Restore splits the work itself, so
/// the two never run more threads than cores between them.
public final class ThreadPool: Sendable {
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
    }

    /// Calls `body` on disjoint chunks covering 0..<count, on up to `threads` threads.
    /// `minimumChunk` keeps tiny loops on one thread where splitting costs more than it saves.
    public func parallelFor(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(1, minimumChunk)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { body(start..<end) }
        }
    }
}

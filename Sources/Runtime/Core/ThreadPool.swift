import CKernels

/// Runs loops of Restore's own kernels on a fixed number of threads.
///
/// OpenBLAS is told to use one thread (see `GEMM`): Restore splits the work itself, so
/// the two never run more threads than cores between them. The `threads - 1` workers
/// (CKernels' thread_pool.c) are started by the first loop that splits, stay awake for a
/// few µs between loops and then sleep, and are stopped when the pool is released.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    /// nil with one thread, or when the pool could not be allocated: loops then run inline.
    private let workers: OpaquePointer?

    public init(threads: Int) {
        self.threads = max(1, threads)
        workers = self.threads > 1 ? restore_pool_create(Int32(clamping: self.threads)) : nil
    }

    deinit {
        restore_pool_destroy(workers)
    }

    /// Calls `body` on disjoint chunks covering 0..<count, on up to `threads` threads.
    /// `minimumChunk` keeps tiny loops on one thread where splitting costs more than it saves.
    /// A call from inside a body, or from another thread while this pool runs a loop, runs
    /// its chunks on the calling thread: the same chunks, so the same results.
    public func parallelFor(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(1, minimumChunk)))
        guard chunks > 1, let workers else {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            var loop = ChunkedLoop(count: count, chunks: chunks, body: body)
            withUnsafeMutablePointer(to: &loop) { loop in
                restore_pool_run(workers, chunks, { context, chunk in
                    context!.assumingMemoryBound(to: ChunkedLoop.self).pointee.run(chunk: chunk)
                }, loop)
            }
        }
    }
}

/// One `parallelFor` call as the C workers see it: chunk `i` of `chunks` covers
/// count·i/chunks ..< count·(i+1)/chunks.
private struct ChunkedLoop {
    let count: Int
    let chunks: Int
    let body: (Range<Int>) -> Void

    func run(chunk: Int) {
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        if start < end { body(start..<end) }
    }
}

import Dispatch
import Foundation
import XCTest
@testable import Runtime

/// ThreadPool's persistent workers: every index covered once in the same chunks, nested and
/// concurrent calls, no thread left behind by released pools, no CPU burnt while idle.
final class ThreadPoolTests: XCTestCase {
    /// The chunk boundaries parallelFor promises (the kernels' results depend on them).
    private func expectedChunks(_ count: Int, threads: Int, minimumChunk: Int) -> [Range<Int>] {
        let chunks = min(threads, max(1, count / max(1, minimumChunk)))
        return (0..<chunks).map { count * $0 / chunks ..< count * ($0 + 1) / chunks }.filter { !$0.isEmpty }
    }

    /// Runs one loop; checks each index was visited once, in the promised chunks.
    private func checkLoop(_ pool: ThreadPool, count: Int, minimumChunk: Int = 1,
                           file: StaticString = #filePath, line: UInt = #line) {
        let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
        visits.initialize(repeating: 0)
        defer { visits.deallocate() }
        let expected = expectedChunks(count, threads: pool.threads, minimumChunk: minimumChunk)
        // How often each promised chunk ran; the last slot counts ranges that are none of them.
        let chunkRuns = UnsafeMutableBufferPointer<Int>.allocate(capacity: expected.count + 1)
        chunkRuns.initialize(repeating: 0)
        defer { chunkRuns.deallocate() }
        pool.parallelFor(count, minimumChunk: minimumChunk) { range in
            for i in range { visits[i] += 1 }
            chunkRuns[expected.firstIndex(of: range) ?? expected.count] += 1
        }
        XCTAssertTrue(visits.prefix(count).allSatisfy { $0 == 1 }, "count \(count)", file: file, line: line)
        XCTAssertEqual(Array(chunkRuns), Array(repeating: 1, count: expected.count) + [0],
                       "count \(count), \(pool.threads) threads, minimum chunk \(minimumChunk)", file: file, line: line)
    }

    func testEveryIndexOnceInThePromisedChunks() {
        for threads in [1, 2, 3, 4, 7] {
            let pool = ThreadPool(threads: threads)
            for count in [0, 1, 2, 3, 5, 16, 100, 1001] {
                for minimumChunk in [1, 4, 64] { checkLoop(pool, count: count, minimumChunk: minimumChunk) }
            }
        }
    }

    func testManyTinyLoops() {
        let pool = ThreadPool(threads: 4)
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
        defer { sums.deallocate() }
        for round in 0..<50_000 {
            sums.initialize(repeating: 0)
            pool.parallelFor(4) { range in for i in range { sums[i] = i + round } }
            if Array(sums) != [round, 1 + round, 2 + round, 3 + round] {
                XCTFail("round \(round): \(Array(sums))")
                return
            }
        }
    }

    func testNestedLoopsRunInline() {
        let pool = ThreadPool(threads: 3)
        let other = ThreadPool(threads: 2)
        let outer = 6, inner = 50
        let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: outer * inner)
        visits.initialize(repeating: 0)
        defer { visits.deallocate() }
        for _ in 0..<200 {
            pool.parallelFor(outer) { rows in
                for row in rows {
                    pool.parallelFor(inner / 2) { columns in
                        for column in columns { visits[row * inner + column] += 1 }
                    }
                    other.parallelFor(inner - inner / 2) { columns in
                        for column in columns { visits[row * inner + inner / 2 + column] += 1 }
                    }
                }
            }
        }
        XCTAssertTrue(visits.allSatisfy { $0 == 200 })
    }

    func testConcurrentCallersOfOnePool() {
        let pool = ThreadPool(threads: 2)
        let callers = 4, count = 64
        let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: callers * count)
        visits.initialize(repeating: 0)
        defer { visits.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for _ in 0..<2000 {
                pool.parallelFor(count) { range in for i in range { visits[caller * count + i] += 1 } }
            }
        }
        XCTAssertTrue(visits.allSatisfy { $0 == 2000 })
    }

    /// The threads of this process, from /proc/self/task.
    private func threadCount() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
    }

    func testReleasedPoolsLeaveNoThreads() throws {
        let before = try threadCount()
        do {
            let pool = ThreadPool(threads: 4)
            XCTAssertEqual(try threadCount(), before, "workers start with the first split loop")
            pool.parallelFor(8) { _ in }
            XCTAssertEqual(try threadCount(), before + 3)
            pool.parallelFor(8) { _ in }
            XCTAssertEqual(try threadCount(), before + 3, "the same workers serve every loop")
        }
        for _ in 0..<1000 {
            let pool = ThreadPool(threads: 3)
            pool.parallelFor(3) { _ in }
        }
        XCTAssertEqual(try threadCount(), before)
    }

    /// The workers sleep once their spin (50 µs) is over: a process idle after a loop uses
    /// about as much CPU as one that never started a pool (the test runner's own threads
    /// use some, hence the comparison rather than zero).
    func testIdleWorkersUseNoCPU() throws {
        let withoutPool = idleCPUSeconds()
        let pool = ThreadPool(threads: 2)
        pool.parallelFor(2) { _ in }
        let withPool = idleCPUSeconds()
        print(String(format: "CPU time over 200 ms idle: %.2f ms without a pool, %.2f ms after a loop", withoutPool * 1000, withPool * 1000))
        XCTAssertLessThan(withPool, withoutPool + 0.01)
        withExtendedLifetime(pool) {}
    }

    /// The process's CPU time over 200 ms of sleep.
    private func idleCPUSeconds() -> Double {
        usleep(20_000)
        let start = processCPUSeconds()
        usleep(200_000)
        return processCPUSeconds() - start
    }

    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

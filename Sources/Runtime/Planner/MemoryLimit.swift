#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How much memory a run may take, checked before anything large is allocated: Swift
/// aborts the process when an allocation fails, and with Linux's overcommit a too-large
/// allocation can also "succeed" and get the process killed later. So every size that
/// comes from a user (an image, a shape, a tensor) is weighed against a limit up front and
/// refused with `MemoryLimitError` instead.
public enum MemoryLimit {
    /// Bytes of physical memory (Int.max when the system does not say).
    public static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }()

    /// The default budget for one image restoration: a quarter of physical memory, at most
    /// 1 GiB. Above it images are tiled (`Restorer.tiling`). The cap is for speed as much as
    /// for memory: past a few hundred MiB of arena a larger tile buys nothing, since every
    /// layer's activations stream through the caches anyway (a 2048² photo through the demo
    /// denoiser took longer whole, at 1.27 GB, than in 512² tiles at 141 MB).
    public static var defaultImageBudget: Int { min(physicalMemory / 4, 1 << 30) }

    /// Bytes of `count` elements of `elementBytes` each, or nil on overflow.
    public static func bytes(_ count: Int, _ elementBytes: Int) -> Int? {
        let (value, overflow) = count.multipliedReportingOverflow(by: elementBytes)
        return overflow ? nil : value
    }

    /// The element count of `shape`, or nil on overflow or a negative dimension.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (value, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            count = value
        }
        return count
    }
}

/// A run or an image that would need more memory than it may take.
public struct MemoryLimitError: Error, Equatable, CustomStringConvertible {
    /// What needs the memory ("a run at input shapes [[1, 3, 100000, 100000]]").
    public var what: String
    /// Bytes needed, nil when the size does not even fit in an Int.
    public var needed: Int?
    public var limit: Int
    /// What the user can do ("give --tile", "raise --max-memory").
    public var advice: String

    public init(what: String, needed: Int?, limit: Int, advice: String) {
        self.what = what
        self.needed = needed
        self.limit = limit
        self.advice = advice
    }

    public var description: String {
        let need = needed.map(Self.format) ?? "more bytes than an Int counts"
        return "\(what) needs \(need), more than the \(Self.format(limit)) it may take\(advice.isEmpty ? "" : "; \(advice)")"
    }

    /// "1.27 GiB", "141.5 MiB", "512 B" (without Foundation, which the runtime does not link).
    public static func format(_ bytes: Int) -> String {
        let units: [(String, Int, Double)] = [("GiB", 30, 100), ("MiB", 20, 10), ("KiB", 10, 10)]
        for (unit, shift, precision) in units where bytes >= 1 << shift {
            let value = (Double(bytes) / Double(1 << shift) * precision).rounded() / precision
            return "\(value) \(unit)"
        }
        return "\(bytes) B"
    }
}

import CRestore
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Checked arithmetic on sizes that come from C, so that no overflow or negative value
/// reaches an allocation or a loop.
enum Sizes {
    /// The largest image restore_image_u8 takes, in pixels: 2³⁰ (a 32768×32768 image).
    /// Its copies (input and output image, 4 bytes a pixel each) already take 8 GiB; above
    /// this Swift's allocator would abort the process rather than fail.
    static let maximumPixels = 1 << 30

    /// a·b, or a failure naming `what` when it overflows.
    static func product(_ a: Int, _ b: Int, _ what: String) throws -> Int {
        let (value, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw CallFailure.memory("\(what) overflows (\(a) × \(b))") }
        return value
    }

    /// A tensor shape from C: `rank` in 1…RESTORE_MAX_RANK, every dimension ≥ 1, and an
    /// element count whose f32 byte size fits in an Int.
    static func shape(_ pointer: UnsafePointer<Int64>?, rank: Int32, _ what: String) throws -> (shape: [Int], count: Int) {
        guard let pointer else { throw CallFailure.argument("\(what) shape is NULL") }
        guard rank >= 1, rank <= RESTORE_MAX_RANK else {
            throw CallFailure.argument("\(what) rank is \(rank), expected 1…\(RESTORE_MAX_RANK)")
        }
        let shape = UnsafeBufferPointer(start: pointer, count: Int(rank)).map { Int($0) }
        guard shape.allSatisfy({ $0 >= 1 }) else {
            throw CallFailure.shape("\(what) shape \(shape) has a dimension below 1")
        }
        var count = 1
        for dimension in shape { count = try product(count, dimension, "\(what) element count") }
        _ = try product(count, MemoryLayout<Float>.stride, "\(what) byte size")
        return (shape, count)
    }

    /// An Int that C receives as `int`, or a failure when it does not fit.
    static func int32(_ value: Int, _ what: String) throws -> Int32 {
        guard let narrow = Int32(exactly: value) else { throw CallFailure.memory("\(what) \(value) does not fit in an int") }
        return narrow
    }
}

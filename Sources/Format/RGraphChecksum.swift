import CKernels
import Foundation

/// CRC-64/XZ, the checksum of `.rgraph` sections (schemas/rgraph.md §3).
///
/// ECMA-182 polynomial, bit-reflected, initial value and final XOR all ones; the check
/// value of "123456789" is 0x995DC9BBDF1939FA.
///
/// Where the CPU multiplies without carries (PCLMULQDQ, every x86-64 with AVX2, or
/// VPCLMULQDQ) it is computed by folding (Sources/CKernels/crc64_clmul.c): on the 2-core
/// Zen 4 of session 7, CPU time, data in memory, 13 GB/s with 128-bit and 26–28 GB/s with
/// 512-bit multiplies, against 2 GB/s for the tables below — the CRC of a 240 MB model
/// falls from ~0.12 s to under 20 ms, which is what made it the largest part of loading
/// one. CPUs with VPCLMULQDQ but no AVX-512 (AMD Zen 3, Intel Alder Lake and later client
/// cores) fold 256 bits at a time. Elsewhere, and as the reference the folding is tested
/// against, slicing-by-8: eight 256-entry tables let one step fold 8 input bytes with 8
/// independent lookups instead of 64 dependent shifts (2.1 GB/s on one core).
/// `RESTORE_CPU=avx2` keeps at most the 256-bit multiplies — 128-bit ones on AVX2 CPUs
/// without VPCLMULQDQ (Intel up to Comet Lake, AMD up to Zen 2), as `restore_crc64_clmul_level`
/// finds — and `RESTORE_CPU=generic` the tables, as for the kernels.
struct RGraphChecksum {
    /// How the checksum is computed: `RESTORE_CRC64_TABLE`, `_CLMUL128`, `_CLMUL256` or `_CLMUL512`.
    typealias Variant = Int32

    /// The fastest variant this CPU runs, at most the level `RESTORE_CPU` names.
    static let fastestVariant: Variant = {
        let asked = ProcessInfo.processInfo.environment[CPULevel.environmentVariable].flatMap(CPULevel.init(named:))
        return variant(detected: Variant(restore_crc64_clmul_level()), cappedAt: asked)
    }()

    /// The variant a CPU whose fastest is `detected` runs when `RESTORE_CPU` names `level`
    /// (nil: not set): the AVX2 path keeps VPCLMULQDQ on 256-bit registers, which AVX2 CPUs
    /// may have, and leaves the 512-bit ones to AVX-512.
    static func variant(detected: Variant, cappedAt level: CPULevel?) -> Variant {
        switch level {
        case nil, .avx512?: detected
        case .avx2?: min(detected, Variant(RESTORE_CRC64_CLMUL256))
        case .portable?: Variant(RESTORE_CRC64_TABLE)
        }
    }

    /// The variants this CPU runs, the tables first: what tests compare.
    static var supportedVariants: [Variant] {
        [RESTORE_CRC64_TABLE, RESTORE_CRC64_CLMUL128, RESTORE_CRC64_CLMUL256, RESTORE_CRC64_CLMUL512].map(Variant.init)
            .filter { $0 <= Variant(restore_crc64_clmul_level()) }
    }

    /// The reflected ECMA-182 polynomial.
    static let polynomial: UInt64 = 0xC96C_5795_D787_0F42

    /// `tables[k * 256 + b]`: the CRC of byte `b` followed by `k` zero bytes.
    static let tables: [UInt64] = {
        var tables = [UInt64](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt64(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1 }
            tables[byte] = crc
        }
        for k in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(k - 1) * 256 + byte]
                tables[k * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    private var state: UInt64 = ~0
    private let variant: Variant

    /// A checksum computed with `variant`, one `supportedVariants` holds.
    init(variant: Variant = Self.fastestVariant) { self.variant = variant }

    /// A checksum of bytes that follow others, to be `append`ed to theirs: summed on
    /// another thread, its register starts at 0 rather than all ones.
    static func ofFollowingPart(variant: Variant = Self.fastestVariant) -> RGraphChecksum {
        var checksum = RGraphChecksum(variant: variant)
        checksum.state = 0
        return checksum
    }

    /// Continues this checksum by `part`, begun with `ofFollowingPart` over the `count`
    /// bytes that come next (`restore_crc64_combine`).
    mutating func append(_ part: RGraphChecksum, count: Int) {
        state = restore_crc64_combine(state, part.state, count)
    }

    /// The checksum of `bytes` in one call.
    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var checksum = RGraphChecksum()
        checksum.update(bytes)
        return checksum.value
    }

    /// `value` as a tensor record's `crc64`: 16 lowercase hex digits.
    static func hexDigits(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// A `crc64` member's value, nil unless exactly 16 hex digits.
    static func value(hexDigits text: String) -> UInt64? {
        guard text.utf8.count == 16, text.utf8.allSatisfy({ $0 < 0x80 && Character(Unicode.Scalar($0)).isHexDigit }) else {
            return nil
        }
        return UInt64(text, radix: 16)
    }

    /// The checksum of everything passed to `update` so far.
    var value: UInt64 { ~state }

    /// Continues the checksum over `bytes`.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var crc = state
        if variant != Variant(RESTORE_CRC64_TABLE) {
            // The first 256 entries are the byte table the folding finishes with.
            state = Self.tables.withUnsafeBufferPointer { restore_crc64_clmul(crc, base, count, variant, $0.baseAddress) }
            return
        }
        Self.tables.withUnsafeBufferPointer { table in
            let t = table.baseAddress.unsafelyUnwrapped
            var index = 0
            while index + 8 <= count {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ crc
                crc = t[7 * 256 + Int(word & 0xFF)] ^ t[6 * 256 + Int((word >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((word >> 16) & 0xFF)] ^ t[4 * 256 + Int((word >> 24) & 0xFF)]
                    ^ t[3 * 256 + Int((word >> 32) & 0xFF)] ^ t[2 * 256 + Int((word >> 40) & 0xFF)]
                    ^ t[1 * 256 + Int((word >> 48) & 0xFF)] ^ t[Int(word >> 56)]
                index += 8
            }
            while index < count {
                let byte = UInt64(base.load(fromByteOffset: index, as: UInt8.self))
                crc = t[Int((crc ^ byte) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        state = crc
    }
}

/// Rewrites the three CRC-64/XZ checksums of a mutated `.rgraph` image so that it reaches
/// the JSON and tensor-table checks.
///
/// Almost every mutation of a real file breaks a checksum, and the reader then stops at the
/// first check; without this repair the fuzzer would spend its time on one error path. The
/// checksum checks themselves are covered by the hostile-input tests in Tests/FormatTests.
/// The algorithm is written out here (bitwise, schemas/rgraph.md §3) because the reader's
/// implementation is internal to Format.
public enum RGraphChecksumRepair {
    private static let fixedHeaderSize = 72
    private static let checksummedSize = 64

    /// `bytes` with valid checksums wherever its fixed header names sections inside it;
    /// unchanged if it is too short or a section lies outside.
    public static func repaired(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count >= fixedHeaderSize else { return bytes }
        var bytes = bytes
        let headerOffset = field(bytes, at: 16), headerLength = field(bytes, at: 24)
        let dataOffset = field(bytes, at: 32), dataLength = field(bytes, at: 40)
        if let header = slice(bytes, headerOffset, headerLength) { store(crc64(header), in: &bytes, at: 48) }
        if let data = slice(bytes, dataOffset, dataLength) { store(crc64(data), in: &bytes, at: 56) }
        store(crc64(bytes[0..<checksummedSize]), in: &bytes, at: checksummedSize)
        return bytes
    }

    private static func field(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { value, index in value | UInt64(bytes[offset + index]) << (8 * index) }
    }

    private static func store(_ value: UInt64, in bytes: inout [UInt8], at offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    private static func slice(_ bytes: [UInt8], _ offset: UInt64, _ length: UInt64) -> ArraySlice<UInt8>? {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= UInt64(bytes.count) else { return nil }
        return bytes[Int(offset)..<Int(end)]
    }

    /// CRC-64/XZ: reflected ECMA-182 polynomial, initial value and final XOR all ones.
    /// One table lookup per byte: the bitwise form's data-dependent branch, traced by the
    /// coverage instrumentation at every bit, made this repair most of an execution's time
    /// on the larger seeds.
    private static func crc64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var crc: UInt64 = ~0
        crc64Table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
        }
        return ~crc
    }

    /// `crc64Table[b]`: the CRC-64/XZ step for byte value `b`.
    private static let crc64Table: [UInt64] = (0..<256).map { byte in
        var crc = UInt64(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xC96C_5795_D787_0F42 : crc >> 1 }
        return crc
    }
}

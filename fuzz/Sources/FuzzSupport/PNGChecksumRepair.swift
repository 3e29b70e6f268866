/// Rewrites the CRC-32 of every complete chunk of a mutated PNG so that mutations reach
/// libpng's chunk parsers and the pixel conversion instead of stopping at "CRC error".
/// Only the chunk CRCs are repaired; zlib's Adler-32 inside IDAT is left to the fuzzer.
public enum PNGChecksumRepair {
    private static let signatureSize = 8

    /// `bytes` with each chunk's CRC recomputed, as far as the chunk lengths stay inside.
    public static func repaired(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        var offset = signatureSize
        while offset + 12 <= bytes.count {
            let length = (0..<4).reduce(0) { $0 << 8 | Int(bytes[offset + $1]) }
            let crcOffset = offset + 8 + length
            guard crcOffset + 4 <= bytes.count else { break }
            let crc = crc32(bytes[(offset + 4)..<crcOffset])
            for index in 0..<4 { bytes[crcOffset + index] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * index)) }
            offset = crcOffset + 4
        }
        return bytes
    }

    /// CRC-32 as PNG (and zlib) define it: reflected polynomial 0xEDB88320, all ones in and out.
    private static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = ~0
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}

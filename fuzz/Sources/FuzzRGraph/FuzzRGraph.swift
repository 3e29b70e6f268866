import Format
import FuzzSupport

/// One `.rgraph` image through the reader, its checksums repaired so that mutations reach
/// the JSON header and tensor table (see `RGraphChecksumRepair`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRGraph(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = RGraphChecksumRepair.repaired(fuzzInput(data, size))
    _ = bytes.withUnsafeBytes { try? RGraphReader.read(bytes: $0, name: "fuzz.rgraph") }
    return 0
}

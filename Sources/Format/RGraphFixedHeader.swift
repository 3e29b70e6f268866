/// A `.rgraph` format version: the reader refuses another major, accepts any minor.
public struct RGraphVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// The version this code writes, and the major version it reads.
    public static let current = RGraphVersion(major: 1, minor: 3)

    public var description: String { "\(major).\(minor)" }
}

/// The 72-byte little-endian fixed header at the start of every `.rgraph` file
/// (schemas/rgraph.md §3).
struct RGraphFixedHeader: Equatable {
    static let size = 72
    /// Bytes covered by `fixedHeaderChecksum`: every field before it.
    static let checksummedSize = 64
    static let magic: [UInt8] = Array("RGRAPH".utf8) + [0, 0]
    /// Alignment of the data section and of every tensor in it, from the start of the file.
    static let alignment = 64

    var major: UInt16
    var minor: UInt16
    var reserved: UInt32 = 0
    var headerOffset: UInt64
    var headerLength: UInt64
    var dataOffset: UInt64
    var dataLength: UInt64
    var headerChecksum: UInt64
    var dataChecksum: UInt64

    /// The header's bytes, its own checksum in the last 8.
    func encoded() -> [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.size)
        func append<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        append(major)
        append(minor)
        append(reserved)
        for field in [headerOffset, headerLength, dataOffset, dataLength, headerChecksum, dataChecksum] {
            append(field)
        }
        append(bytes.withUnsafeBytes { RGraphChecksum.of($0) })
        return bytes
    }

    /// Reads the fields at their fixed offsets; `bytes` holds at least `size` bytes.
    /// Checks nothing: `RGraphReader` validates in the order the spec gives.
    init(decoding bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= Self.size, "fixed header needs \(Self.size) bytes")
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        major = field(8, UInt16.self)
        minor = field(10, UInt16.self)
        reserved = field(12, UInt32.self)
        headerOffset = field(16, UInt64.self)
        headerLength = field(24, UInt64.self)
        dataOffset = field(32, UInt64.self)
        dataLength = field(40, UInt64.self)
        headerChecksum = field(48, UInt64.self)
        dataChecksum = field(56, UInt64.self)
    }

    init(major: UInt16, minor: UInt16, headerOffset: UInt64, headerLength: UInt64,
         dataOffset: UInt64, dataLength: UInt64, headerChecksum: UInt64, dataChecksum: UInt64) {
        self.major = major
        self.minor = minor
        self.headerOffset = headerOffset
        self.headerLength = headerLength
        self.dataOffset = dataOffset
        self.dataLength = dataLength
        self.headerChecksum = headerChecksum
        self.dataChecksum = dataChecksum
    }

    /// The checksum stored in the last 8 bytes of `bytes`' fixed header.
    static func storedChecksum(in bytes: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: checksummedSize, as: UInt64.self))
    }
}

/// `value` rounded up to a multiple of the format's 64-byte alignment.
func alignedUp(_ value: Int) -> Int {
    (value + RGraphFixedHeader.alignment - 1) & ~(RGraphFixedHeader.alignment - 1)
}

/// The two variable-size sections of an `.rgraph` file (schemas/rgraph.md §2).
public enum RGraphSection: String, Sendable, Equatable {
    case header = "header section"
    case data = "data section"
}

/// Why an `.rgraph` file could not be read or written. Every case names the file, and
/// the node or tensor where one is at fault.
public enum RGraphError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, measured or mapped (`reason` is the system's message).
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than the 72-byte fixed header (0 for an empty file).
    case tooSmall(file: String, size: Int)
    case badMagic(file: String)
    /// A major version this reader does not implement (newer, or 0).
    case unsupportedVersion(file: String, major: Int, minor: Int)
    case fixedHeaderChecksumMismatch(file: String, stored: UInt64, computed: UInt64)
    /// A section that does not lie inside the file (truncated file or corrupt offsets).
    case sectionOutOfRange(file: String, section: RGraphSection, offset: UInt64, length: UInt64, fileSize: Int)
    /// A section that starts where the format forbids (inside the fixed header, or data not 64-aligned).
    case misplacedSection(file: String, section: RGraphSection, offset: UInt64)
    case overlappingSections(file: String)
    case checksumMismatch(file: String, section: RGraphSection, stored: UInt64, computed: UInt64)
    /// A tensor's bytes do not match the CRC-64 its record holds (1.3 files, verified when
    /// the tensor is first read: `TensorChecksums`).
    case tensorChecksumMismatch(file: String, tensor: String, stored: UInt64, computed: UInt64)
    /// The JSON header section is not well-formed or not typed as the format requires.
    case malformedHeader(file: String, detail: String)
    case unknownOp(file: String, node: String, op: String)
    /// A node's attributes do not fit its op (unknown key, wrong type, missing or invalid value).
    case invalidAttributes(file: String, GraphError)
    /// `owner` is the tensor, graph input or graph output whose dtype is unknown.
    case unknownDType(file: String, owner: String, dtype: String)
    /// A negative or unnamed dimension, or a shape whose byte size overflows.
    case badShape(file: String, owner: String, detail: String)
    case tensorLengthMismatch(file: String, tensor: String, expected: Int, found: Int)
    case misalignedTensor(file: String, tensor: String, offset: Int)
    case tensorOutOfRange(file: String, tensor: String, offset: Int, length: Int, dataLength: Int)
    case duplicateTensor(file: String, tensor: String)
    /// A `quantization` scheme (or packed kernel, CPU level, version) this reader does not know.
    case unknownQuantization(file: String, tensor: String, scheme: String)
    /// A `quantization` record that does not fit its tensor: a missing member, a dtype
    /// other than i8, scales that are missing, not f32, of the wrong length or not finite;
    /// packed values whose source is missing or not plain f32, or of the wrong length.
    case invalidQuantization(file: String, tensor: String, detail: String)
    /// Creating, writing, syncing or renaming the output failed (`reason` is the system's message).
    case cannotWrite(file: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let file, let reason):
            "\(file): cannot open: \(reason)"
        case .tooSmall(let file, let size):
            size == 0 ? "\(file): file is empty, not an .rgraph model"
                : "\(file): file is \(size) bytes, shorter than the 72-byte .rgraph header (truncated?)"
        case .badMagic(let file):
            "\(file): not an .rgraph file (magic bytes are not RGRAPH)"
        case .unsupportedVersion(let file, let major, let minor):
            "\(file): .rgraph version \(major).\(minor) is not supported; this reader reads versions "
                + "\(RGraphVersion.current.major).x — use a newer Restore"
        case .fixedHeaderChecksumMismatch(let file, let stored, let computed):
            "\(file): fixed header is corrupt (checksum \(hex(stored)) stored, \(hex(computed)) computed)"
        case .sectionOutOfRange(let file, let section, let offset, let length, let fileSize):
            "\(file): \(section.rawValue) at offset \(offset), \(length) bytes, extends past the end of "
                + "the \(fileSize)-byte file (truncated or corrupt)"
        case .misplacedSection(let file, let section, let offset):
            "\(file): \(section.rawValue) at offset \(offset) is misplaced "
                + "(the header section must follow the fixed header; the data section must be 64-byte aligned)"
        case .overlappingSections(let file):
            "\(file): header and data sections overlap"
        case .checksumMismatch(let file, let section, let stored, let computed):
            "\(file): \(section.rawValue) is corrupt (checksum \(hex(stored)) stored, \(hex(computed)) computed)"
        case .tensorChecksumMismatch(let file, let tensor, let stored, let computed):
            "\(file): tensor '\(tensor)' is corrupt (checksum \(hex(stored)) stored, \(hex(computed)) computed)"
        case .malformedHeader(let file, let detail):
            "\(file): malformed header section: \(detail)"
        case .unknownOp(let file, let node, let op):
            "\(file): node '\(node)' has unknown op '\(op)' (written by a newer Restore?)"
        case .invalidAttributes(let file, let error):
            "\(file): \(error)"
        case .unknownDType(let file, let owner, let dtype):
            "\(file): '\(owner)' has unknown dtype '\(dtype)'"
        case .badShape(let file, let owner, let detail):
            "\(file): '\(owner)' has a bad shape: \(detail)"
        case .tensorLengthMismatch(let file, let tensor, let expected, let found):
            "\(file): tensor '\(tensor)' has \(found) bytes, its dtype and shape need \(expected)"
        case .misalignedTensor(let file, let tensor, let offset):
            "\(file): tensor '\(tensor)' at data offset \(offset) is not 64-byte aligned"
        case .tensorOutOfRange(let file, let tensor, let offset, let length, let dataLength):
            "\(file): tensor '\(tensor)' (offset \(offset), \(length) bytes) extends past the "
                + "\(dataLength)-byte data section"
        case .duplicateTensor(let file, let tensor):
            "\(file): tensor '\(tensor)' is listed twice"
        case .unknownQuantization(let file, let tensor, let scheme):
            "\(file): tensor '\(tensor)' uses a quantization this version of Restore does not know "
                + "(\(scheme); written by a newer Restore?)"
        case .invalidQuantization(let file, let tensor, let detail):
            "\(file): tensor '\(tensor)' has an invalid quantization: \(detail)"
        case .cannotWrite(let file, let reason):
            "\(file): cannot write: \(reason)"
        }
    }
}

private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
}

import Format
import Runtime

/// Why a `.npy` file could not be read or written; every case names the file.
public enum NumPyFileError: Error, Equatable, CustomStringConvertible {
    /// The bytes do not start with "\x93NUMPY"; `found` is what they look like.
    case notNumPy(file: String, found: FileKind)
    case unsupportedVersion(file: String, major: Int, minor: Int)
    /// The header is cut short, is not the dictionary NumPy writes, or lacks a key.
    case malformedHeader(file: String, detail: String)
    /// An element type this reader does not convert (big-endian, objects, structs, …).
    case unsupportedDType(file: String, descr: String, detail: String)
    case fortranOrder(file: String)
    /// The element count or byte size of the shape does not fit in memory's index range.
    case shapeOverflow(file: String, shape: String)
    /// The data after the header is not exactly as long as the shape says.
    case dataSize(file: String, expectedBytes: Int, foundBytes: Int)
    case fileSystem(file: String, detail: String)

    public var description: String {
        switch self {
        case .notNumPy(let file, let found): "\(file): not a .npy file: expected the \\x93NUMPY magic, found \(found)"
        case .unsupportedVersion(let file, let major, let minor): "\(file): unsupported .npy version \(major).\(minor)"
        case .malformedHeader(let file, let detail): "\(file): malformed .npy header (\(detail))"
        case .unsupportedDType(let file, let descr, let detail): "\(file): unsupported dtype '\(descr)' (\(detail))"
        case .fortranOrder(let file): "\(file): Fortran-order arrays are not supported (save with C order)"
        case .shapeOverflow(let file, let shape): "\(file): shape \(shape) is too large"
        case .dataSize(let file, let expected, let found):
            "\(file): data is \(found) bytes but the shape and dtype need \(expected)"
        case .fileSystem(let file, let detail): "\(file): \(detail)"
        }
    }
}

/// Reads and writes NumPy's `.npy` format (versions 1.0, 2.0 and 3.0), so tensors can be
/// compared with Python directly.
///
/// Written: float32 little-endian, C order, version 1.0 (2.0 when the header needs more
/// than 65535 bytes), header padded so the data starts on a 64-byte boundary as NumPy does.
/// Read: C order, little-endian. Float types become float32 tensors ('<f4' as is, '<f8'
/// and '<f2' rounded to nearest); integer and bool types keep their values exactly, as
/// integer tensors of dtype int64 ('<i8'), int32 ('<i4') or bool ('|b1', 0 or 1), so index,
/// shape and mask fixtures round-trip. A 0-d array has shape [] and one element.
public enum NumPyFile {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Reads the `.npy` file at `path`.
    public static func read(path: String) throws -> HostTensor {
        let bytes = try FileBytes.readAll(path) { NumPyFileError.fileSystem(file: path, detail: $0) }
        return try decode(bytes, source: path)
    }

    /// Decodes `.npy` bytes held in memory; `source` names them in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>") throws -> HostTensor {
        try decodeKeepingType(bytes, source: source).tensor
    }

    /// Reads the `.npy` file at `path`, with NumPy's name for the type it stores
    /// ("float64", say): float types all arrive as float32 tensors, and a caller that must
    /// not convert quietly (rrun's tensor mode) checks the stored type.
    public static func readKeepingType(path: String) throws -> (tensor: HostTensor, storedType: String) {
        let bytes = try FileBytes.readAll(path) { NumPyFileError.fileSystem(file: path, detail: $0) }
        return try decodeKeepingType(bytes, source: path)
    }

    /// `decode` with the stored type's NumPy name.
    public static func decodeKeepingType(_ bytes: [UInt8], source: String = "<memory>") throws
        -> (tensor: HostTensor, storedType: String) {
        guard bytes.count >= 8, Array(bytes[0..<6]) == magic else {
            throw NumPyFileError.notNumPy(file: source, found: FileKind(sniffing: bytes))
        }
        let major = Int(bytes[6]), minor = Int(bytes[7])
        guard (1...3).contains(major), minor == 0 else {
            throw NumPyFileError.unsupportedVersion(file: source, major: major, minor: minor)
        }
        let lengthBytes = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthBytes else {
            throw NumPyFileError.malformedHeader(file: source, detail: "file ends inside the header length")
        }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let headerStart = 8 + lengthBytes
        guard bytes.count - headerStart >= headerLength else {
            throw NumPyFileError.malformedHeader(file: source, detail: "file ends inside the \(headerLength)-byte header")
        }
        // Versions 1 and 2 are latin-1, 3 is UTF-8; every byte the header grammar needs is
        // ASCII, so reading bytes as scalars suffices for both.
        let headerText = String(String.UnicodeScalarView(bytes[headerStart..<headerStart + headerLength].map { Unicode.Scalar($0) }))
        let header: NumPyHeader
        do {
            header = try NumPyHeader(parsing: headerText)
        } catch let failure as NumPyHeader.Failure {
            throw NumPyFileError.malformedHeader(file: source, detail: failure.detail)
        }
        guard !header.fortranOrder else { throw NumPyFileError.fortranOrder(file: source) }
        let element = try ElementType(descr: header.descr, file: source)

        var count = 1
        for dimension in header.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw NumPyFileError.shapeOverflow(file: source, shape: "\(header.shape)") }
            count = product
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: element.size)
        guard !overflow else { throw NumPyFileError.shapeOverflow(file: source, shape: "\(header.shape)") }
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == byteCount else {
            throw NumPyFileError.dataSize(file: source, expectedBytes: byteCount, foundBytes: bytes.count - dataStart)
        }
        let tensor = bytes.withUnsafeBytes { raw in
            element.tensor(shape: header.shape, from: UnsafeRawBufferPointer(rebasing: raw[dataStart...]))
        }
        return (tensor, "\(element)")
    }

    /// Encodes `tensor` as float32 `.npy` bytes (integer tensors are converted to float).
    public static func encode(_ tensor: HostTensor) -> [UInt8] {
        var bytes = header(shape: tensor.shape)
        let littleEndianBits = tensor.floats.map { $0.bitPattern.littleEndian }
        littleEndianBits.withUnsafeBytes { bytes += $0 }
        return bytes
    }

    /// The magic, version and header dictionary of a float32 `.npy` file of `shape`, padded
    /// so that the data starts at a multiple of 64 bytes.
    private static func header(shape: [Int]) -> [UInt8] {
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let version: UInt8 = header.count + 1 + 10 <= 65535 ? 1 : 2
        let prefix = version == 1 ? 10 : 12
        let padding = (64 - (prefix + header.count + 1) % 64) % 64
        header += [UInt8](repeating: 0x20, count: padding) + [0x0A]
        var bytes = magic + [version, 0]
        for index in 0..<(version == 1 ? 2 : 4) { bytes.append(UInt8(truncatingIfNeeded: header.count >> (8 * index))) }
        return bytes + header
    }

    /// Writes `tensor` as a float32 `.npy` file at `path`, through a temporary file
    /// renamed into place only when complete. On a little-endian CPU the floats are written
    /// from the tensor as they are (a model's outputs are megabytes: two copies of them
    /// were most of the time tensor mode spent writing).
    public static func write(_ tensor: HostTensor, path: String) throws {
        let failure = { (detail: String) in NumPyFileError.fileSystem(file: path, detail: detail) }
        guard 1.littleEndian == 1, case .float(let values) = tensor.elements else {
            return try FileBytes.writeAtomically(encode(tensor), to: path, failure: failure)
        }
        let header = header(shape: tensor.shape)
        try header.withUnsafeBytes { head in
            try values.withUnsafeBytes { body in try FileBytes.writeAtomically([head, body], to: path, failure: failure) }
        }
    }

    /// The element types read: floats widened or narrowed to Float, integers and bools
    /// kept as integers of their own dtype.
    enum ElementType {
        case float32, float64, float16, int64, int32, bool

        init(descr: String, file: String) throws {
            switch descr {
            case "<f4": self = .float32
            case "<f8": self = .float64
            case "<f2": self = .float16
            case "<i8": self = .int64
            case "<i4": self = .int32
            case "|b1": self = .bool
            default:
                let detail: String
                if descr.hasPrefix(">") {
                    detail = "big-endian data; save it little-endian"
                } else if descr.contains("O") {
                    detail = "Python objects cannot be read"
                } else {
                    detail = "expected <f4, <f8, <f2, <i8, <i4 or |b1"
                }
                throw NumPyFileError.unsupportedDType(file: file, descr: descr, detail: detail)
            }
        }

        var size: Int {
            switch self {
            case .float32, .int32: 4
            case .float64, .int64: 8
            case .float16: 2
            case .bool: 1
            }
        }

        /// The tensor of `shape` held in the little-endian elements starting at `raw` (no
        /// alignment assumed).
        func tensor(shape: [Int], from raw: UnsafeRawBufferPointer) -> HostTensor {
            let count = shape.reduce(1, *)
            switch self {
            case .float32:
                return HostTensor(shape: shape, floats: (0..<count).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                })
            case .float64:
                return HostTensor(shape: shape, floats: (0..<count).map {
                    Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))))
                })
            case .float16:
                return HostTensor(shape: shape, floats: (0..<count).map {
                    Self.halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))
                })
            case .int64:
                return HostTensor(shape: shape, ints: (0..<count).map {
                    Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))
                }, dtype: .int64)
            case .int32:
                return HostTensor(shape: shape, ints: (0..<count).map {
                    Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)))
                }, dtype: .int32)
            case .bool:
                return HostTensor(shape: shape, ints: (0..<count).map { raw[$0] != 0 ? 1 : 0 }, dtype: .bool)
            }
        }

        /// IEEE binary16 to Float, written out so it works where `Float16` is unavailable
        /// (macOS on Intel).
        static func halfToFloat(_ bits: UInt16) -> Float {
            let sign: Float = bits & 0x8000 != 0 ? -1 : 1
            let exponent = Int(bits >> 10) & 0x1F
            let fraction = Float(bits & 0x3FF)
            switch exponent {
            case 0: return sign * fraction * 0x1p-24                                // zero, subnormal
            case 0x1F: return fraction == 0 ? sign * .infinity : .nan
            default: return sign * (1 + fraction / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
            }
        }
    }
}

/// The Python dictionary literal at the start of a `.npy` file, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
///
/// A small recursive-descent reader of exactly that grammar: quoted strings, True/False,
/// and tuples of non-negative integers; any other key or value is an error.
struct NumPyHeader {
    struct Failure: Error {
        var detail: String
    }

    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    init(parsing text: String) throws {
        var cursor = Cursor(scalars: Array(text.unicodeScalars))
        var descr: String?, fortranOrder: Bool?, shape: [Int]?
        try cursor.expect("{")
        while !cursor.consume("}") {
            let key = try cursor.string()
            try cursor.expect(":")
            switch key {
            case "descr":
                if cursor.peek == "[" { throw Failure(detail: "structured dtypes are not supported") }
                descr = try cursor.string()
            case "fortran_order": fortranOrder = try cursor.boolean()
            case "shape": shape = try cursor.integerTuple()
            default: throw Failure(detail: "unexpected key '\(key)'")
            }
            if !cursor.consume(",") {
                try cursor.expect("}")
                break
            }
        }
        cursor.skipWhitespace()
        guard cursor.isAtEnd else { throw Failure(detail: "text after the dictionary") }
        guard let descr, let fortranOrder, let shape else {
            throw Failure(detail: "needs the keys 'descr', 'fortran_order' and 'shape'")
        }
        self.descr = descr
        self.fortranOrder = fortranOrder
        self.shape = shape
    }

    private struct Cursor {
        var scalars: [Unicode.Scalar]
        var position = 0

        var isAtEnd: Bool { position >= scalars.count }
        var peek: Unicode.Scalar? {
            mutating get {
                skipWhitespace()
                return isAtEnd ? nil : scalars[position]
            }
        }

        mutating func skipWhitespace() {
            while !isAtEnd, scalars[position].properties.isWhitespace { position += 1 }
        }

        mutating func consume(_ symbol: Unicode.Scalar) -> Bool {
            guard peek == symbol else { return false }
            position += 1
            return true
        }

        mutating func expect(_ symbol: Unicode.Scalar) throws {
            guard consume(symbol) else { throw Failure(detail: "expected '\(symbol)' at character \(position)") }
        }

        mutating func string() throws -> String {
            guard let quote = peek, quote == "'" || quote == "\"" else {
                throw Failure(detail: "expected a quoted string at character \(position)")
            }
            position += 1
            var result = String.UnicodeScalarView()
            while !isAtEnd, scalars[position] != quote {
                result.append(scalars[position])
                position += 1
            }
            guard !isAtEnd else { throw Failure(detail: "unterminated string") }
            position += 1
            return String(result)
        }

        mutating func boolean() throws -> Bool {
            skipWhitespace()
            for (word, value) in [("True", true), ("False", false)] {
                let letters = Array(word.unicodeScalars)
                if scalars.count - position >= letters.count,
                   Array(scalars[position..<position + letters.count]) == letters {
                    position += letters.count
                    return value
                }
            }
            throw Failure(detail: "expected True or False at character \(position)")
        }

        mutating func integerTuple() throws -> [Int] {
            try expect("(")
            var values: [Int] = []
            while !consume(")") {
                values.append(try integer())
                if !consume(",") {
                    try expect(")")
                    break
                }
            }
            return values
        }

        mutating func integer() throws -> Int {
            skipWhitespace()
            var value = 0
            let start = position
            while !isAtEnd, ("0"..."9").contains(scalars[position]) {
                let digit = Int(scalars[position].value - 48)
                let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(digit)
                guard !overflow1, !overflow2 else { throw Failure(detail: "dimension too large") }
                value = sum
                position += 1
            }
            guard position > start else { throw Failure(detail: "expected a dimension at character \(start)") }
            return value
        }
    }
}

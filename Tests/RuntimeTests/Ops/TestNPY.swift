import Foundation
@testable import Runtime

/// A minimal reader of NumPy `.npy` files for test fixtures: version 1–3 headers,
/// little-endian f4, f8 (narrowed), i8 and i4, C order.
enum TestNPY {
    struct FormatError: Error, CustomStringConvertible {
        var file: String, message: String
        var description: String { "\(file): \(message)" }
    }

    static func read(_ url: URL) throws -> HostTensor {
        let data = try Data(contentsOf: url)
        let bytes = [UInt8](data)
        let fail = { (message: String) in FormatError(file: url.path, message: message) }
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("not an .npy file")
        }
        let major = bytes[6]
        let (headerLength, headerStart): (Int, Int) = major == 1
            ? (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
            : ((0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }, 12)
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw fail("truncated header")
        }
        guard !header.contains("'fortran_order': True") else { throw fail("Fortran order is not supported") }
        guard let descr = field("descr", in: header), let shapeText = field("shape", in: header) else {
            throw fail("header without descr or shape: \(header)")
        }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let payload = Data(bytes[(headerStart + headerLength)...])
        func values<T>(_ type: T.Type) throws -> [T] {
            guard payload.count >= count * MemoryLayout<T>.size else { throw fail("truncated data") }
            return payload.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) } }
        }
        switch descr {
        case "<f4": return HostTensor(shape: shape, floats: try values(Float.self))
        case "<f8": return HostTensor(shape: shape, floats: try values(Double.self).map { Float($0) })
        case "<i8": return HostTensor(shape: shape, ints: try values(Int64.self))
        case "<i4": return HostTensor(shape: shape, ints: try values(Int32.self).map { Int64($0) }, dtype: .int32)
        default: throw fail("unsupported dtype \(descr)")
        }
    }

    /// The text of `'key': value` in the header dictionary (quotes and parentheses stripped).
    private static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)':") else { return nil }
        let rest = header[keyRange.upperBound...].trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("(") {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.index(after: rest.startIndex)..<close])
        }
        let value = rest.prefix { $0 != "," && $0 != "}" }
        return value.trimmingCharacters(in: CharacterSet(charactersIn: "' "))
    }
}

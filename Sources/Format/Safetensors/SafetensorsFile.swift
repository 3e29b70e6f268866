import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The element types the safetensors format defines, by their header spelling.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", uint8 = "U8", int8 = "I8", float8E5M2 = "F8_E5M2", float8E4M3 = "F8_E4M3"
    case int16 = "I16", uint16 = "U16", float16 = "F16", bfloat16 = "BF16"
    case int32 = "I32", uint32 = "U32", float32 = "F32", float64 = "F64", int64 = "I64", uint64 = "U64"

    /// Bytes one element takes.
    public var byteSize: Int {
        switch self {
        case .bool, .uint8, .int8, .float8E5M2, .float8E4M3: 1
        case .int16, .uint16, .float16, .bfloat16: 2
        case .int32, .uint32, .float32: 4
        case .float64, .int64, .uint64: 8
        }
    }
}

/// One tensor record of a safetensors header, checked against the data buffer.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Where the tensor's bytes lie, relative to the start of the data buffer.
    public let dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file: an 8-byte little-endian header length, a JSON header mapping tensor
/// names to dtype, shape and `data_offsets` (plus an optional `__metadata__` object of
/// strings), then the data buffer every tensor's bytes lie in, back to back.
///
/// Every record is checked before any byte is used: a known dtype, a shape whose byte size
/// does not overflow, offsets inside the buffer that hold exactly shape × dtype bytes, and
/// ranges that tile the buffer with no overlap and no hole. Tensors are then viewed in
/// place from the mapping when their type is one Restore stores (f32, f16, bf16, i32, i64,
/// bool) and aligned for it.
public struct SafetensorsFile: @unchecked Sendable {
    /// The path, or for bytes read from memory the name given to the reader.
    public let file: String
    /// The `__metadata__` object (empty when the header has none).
    public let metadata: [String: String]
    /// Every tensor, in the order of their bytes in the data buffer.
    public let tensors: [SafetensorsTensorInfo]
    private let positions: [String: Int]
    private let storage: ByteStorage
    /// Where the data buffer starts in `storage`.
    private let dataOffset: Int

    /// The largest header accepted: real headers are kilobytes to a few megabytes; a bigger
    /// length is a corrupt or hostile file, refused before allocating for it.
    public static let maximumHeaderLength: UInt64 = 100_000_000

    /// Maps the file at `path` read-only and checks its header. Tensors view the mapping in
    /// place; it is unmapped when the last of them is released.
    public static func read(contentsOf path: String) throws(SafetensorsError) -> SafetensorsFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotOpen(file: path, reason: systemError()) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .cannotOpen(file: path, reason: systemError()) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw .cannotOpen(file: path, reason: "not a regular file") }
        let size = Int(status.st_size)
        guard size >= 8 else { throw .truncated(file: path, size: size, needed: 8) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .cannotOpen(file: path, reason: "mmap: \(systemError())")
        }
        let storage = ByteStorage(base: UnsafeRawPointer(base), count: size, isFileMapping: true) { munmap(base, size) }
        return try decode(storage, file: path)
    }

    /// Checks a safetensors file held in memory; the bytes are copied once into memory the
    /// tensors then view. `name` stands for the file in error messages.
    public static func read(bytes: UnsafeRawBufferPointer, name: String) throws(SafetensorsError) -> SafetensorsFile {
        guard bytes.count >= 8 else { throw .truncated(file: name, size: bytes.count, needed: 8) }
        return try decode(ByteStorage(copying: bytes), file: name)
    }

    private static func decode(_ storage: ByteStorage, file: String) throws(SafetensorsError) -> SafetensorsFile {
        let bytes = UnsafeRawBufferPointer(start: storage.base, count: storage.count)
        var headerLength: UInt64 = 0
        for index in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(bytes[index]) }
        guard headerLength <= maximumHeaderLength else { throw .headerTooLarge(file: file, length: headerLength) }
        let dataOffset = 8 + Int(headerLength)
        guard dataOffset <= bytes.count else {
            throw .truncated(file: file, size: bytes.count, needed: UInt64(dataOffset))
        }
        let header = try decodeHeader(Data(bytes[8..<dataOffset]), file: file)
        let tensors = try checkedRecords(header.records, bufferLength: bytes.count - dataOffset, file: file)
        var positions: [String: Int] = [:]
        for (position, tensor) in tensors.enumerated() { positions[tensor.name] = position }
        return SafetensorsFile(file: file, metadata: header.metadata, tensors: tensors, positions: positions,
                               storage: storage, dataOffset: dataOffset)
    }

    private static func decodeHeader(_ json: Data, file: String) throws(SafetensorsError) -> Header {
        do {
            return try JSONDecoder().decode(Header.self, from: json)
        } catch let error as DecodingError {
            throw .malformedHeader(file: file, detail: error.locatedDescription)
        } catch {
            throw .malformedHeader(file: file, detail: "\(error)")
        }
    }

    /// Checks each record alone, then that the records tile the data buffer.
    private static func checkedRecords(_ records: [(name: String, record: Header.Record)], bufferLength: Int,
                                       file: String) throws(SafetensorsError) -> [SafetensorsTensorInfo] {
        var tensors: [SafetensorsTensorInfo] = []
        for (name, record) in records {
            guard let dtype = SafetensorsDType(rawValue: record.dtype) else {
                throw .unknownDType(file: file, tensor: name, dtype: record.dtype)
            }
            var byteCount = dtype.byteSize
            for dimension in record.shape {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
                guard dimension >= 0, !overflow else { throw .badShape(file: file, tensor: name, shape: record.shape) }
                byteCount = product
            }
            guard record.dataOffsets.count == 2 else {
                throw .malformedHeader(file: file, detail: "tensor '\(name)': data_offsets has \(record.dataOffsets.count) "
                                           + "numbers, not [begin, end]")
            }
            let begin = record.dataOffsets[0], end = record.dataOffsets[1]
            guard begin <= end, end <= UInt64(bufferLength) else {
                throw .badOffsets(file: file, tensor: name, begin: begin, end: end, bufferLength: bufferLength)
            }
            guard Int(end - begin) == byteCount else {
                throw .sizeMismatch(file: file, tensor: name, expected: byteCount, found: Int(end - begin))
            }
            tensors.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: record.shape,
                                                 dataRange: Int(begin)..<Int(end)))
        }
        tensors.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name)
            < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name) }
        var cursor = 0
        var previous: String?
        for tensor in tensors {
            if tensor.dataRange.lowerBound < cursor, let previous {
                throw .overlappingTensors(file: file, tensor: tensor.name, other: previous)
            }
            if tensor.dataRange.lowerBound > cursor {
                throw .unusedBytes(file: file, offset: cursor, length: tensor.dataRange.lowerBound - cursor)
            }
            cursor = tensor.dataRange.upperBound
            previous = tensor.name
        }
        if cursor < bufferLength { throw .unusedBytes(file: file, offset: cursor, length: bufferLength - cursor) }
        return tensors
    }

    // MARK: Tensors

    /// The record of the tensor named `name`, if the file holds one.
    public func info(_ name: String) -> SafetensorsTensorInfo? { positions[name].map { tensors[$0] } }

    /// The tensor `name` as a constant named `graphName` (by default its own name).
    ///
    /// F32, F16, BF16, I32, I64 and BOOL keep their type, viewed in place when aligned for
    /// it (copied otherwise: the format does not promise alignment). F64 is converted to f32,
    /// since Restore computes in f32; a value beyond f32's range is refused. Other types
    /// (unsigned and 8/16-bit integers, 8-bit floats) are refused with the reason: none of
    /// the checkpoints Restore reads stores them, and guessing their meaning (a quantized
    /// weight, a mask) would be wrong.
    public func constant(named name: String, as graphName: String? = nil) throws(SafetensorsError) -> ConstantTensor {
        guard let tensor = info(name) else { throw .missingTensor(file: file, tensor: name) }
        let graphName = graphName ?? name
        let offset = dataOffset + tensor.dataRange.lowerBound
        let bytes = UnsafeRawBufferPointer(start: storage.base + offset, count: tensor.dataRange.count)
        func kept(_ dtype: DType) -> ConstantTensor {
            if Int(bitPattern: storage.base + offset) % dtype.byteSize == 0 {
                return ConstantTensor(name: graphName, dtype: dtype, shape: tensor.shape, storage: storage, byteOffset: offset)
            }
            return ConstantTensor(name: graphName, dtype: dtype, shape: tensor.shape, storage: ByteStorage(copying: bytes))
        }
        switch tensor.dtype {
        case .float32: return kept(.float32)
        case .float16: return kept(.float16)
        case .bfloat16: return kept(.bfloat16)
        case .int32: return kept(.int32)
        case .int64: return kept(.int64)
        case .bool: return kept(.bool)
        case .float64:
            var values = [Float](repeating: 0, count: tensor.elementCount)
            for index in values.indices {
                let value = bytes.loadUnaligned(fromByteOffset: index * 8, as: Double.self)
                if value.isFinite, abs(value) > Double(Float.greatestFiniteMagnitude) {
                    throw .unrepresentableValue(file: file, tensor: name, value: value)
                }
                values[index] = Float(value)
            }
            return ConstantTensor(name: graphName, shape: tensor.shape, floats: values)
        case .uint8, .int8, .int16, .uint16, .uint32, .uint64:
            throw .unsupportedDType(file: file, tensor: name, dtype: tensor.dtype,
                                    reason: "integer tensors are read as I32 or I64 indices; this width is not used by "
                                        + "the checkpoints Restore reads (a quantized weight would need its scales)")
        case .float8E5M2, .float8E4M3:
            throw .unsupportedDType(file: file, tensor: name, dtype: tensor.dtype,
                                    reason: "8-bit float weights need their scaling scheme, which the format does not record")
        }
    }
}

/// The JSON header: tensor records by name, and `__metadata__`.
private struct Header: Decodable {
    struct Record: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [UInt64]

        enum CodingKeys: String, CodingKey {
            case dtype, shape
            case dataOffsets = "data_offsets"
        }
    }

    var metadata: [String: String] = [:]
    var records: [(name: String, record: Record)] = []

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: NameKey.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                records.append((key.stringValue, try container.decode(Record.self, forKey: key)))
            }
        }
    }
}

/// A JSON object key that is data (a tensor name), not a field.
struct NameKey: CodingKey {
    let stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

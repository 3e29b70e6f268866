import CONNX
import Format
import Foundation

/// ONNX `TensorProto.DataType` values, with how each is stored in Restore.
enum ONNXDataType: Int32 {
    case float = 1, uint8, int8, uint16, int16, int32, int64, string, bool, float16, double
    case uint32, uint64, complex64, complex128, bfloat16

    /// The Restore type a tensor of this type becomes: narrower integers widen exactly,
    /// double narrows to f32 (kernels compute in f32), unsigned 32/64-bit become i64.
    var restoreType: DType? {
        switch self {
        case .float, .double: .float32
        case .float16: .float16
        case .bfloat16: .bfloat16
        case .int8: .int8
        case .uint8, .int16, .uint16, .int32: .int32
        case .int64, .uint32, .uint64: .int64
        case .bool: .bool
        case .string, .complex64, .complex128: nil
        }
    }

    /// Bytes per element in `raw_data` and external files.
    var storedByteSize: Int {
        switch self {
        case .uint8, .int8, .bool, .string: 1
        case .uint16, .int16, .float16, .bfloat16: 2
        case .float, .int32, .uint32: 4
        case .int64, .double, .uint64, .complex64: 8
        case .complex128: 16
        }
    }

    /// The ONNX name, for messages.
    var name: String { String(describing: self).uppercased() }
}

/// Turns ONNX tensors (initializers, attribute tensors) into `ConstantTensor`s, reading
/// `raw_data`, the typed repeated fields, or an external data file next to the model.
struct TensorDecoder {
    /// The model's file name, for messages.
    let fileName: String
    /// The folder external data paths are relative to; nil when the model has no file.
    let directory: URL?

    func decode(_ tensor: Onnx__TensorProto, fallbackName: String) throws -> ConstantTensor {
        var name = string(tensor.name)
        if name.isEmpty { name = fallbackName }
        let shape = cArray(tensor.dims, tensor.n_dims).map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw ONNXImportError.badTensor(file: fileName, tensor: name, reason: "negative dimension in shape \(shape)")
        }
        let count = try shape.reduce(1) { product, dim in
            let (result, overflow) = product.multipliedReportingOverflow(by: dim)
            if overflow || result > Int(Int32.max) * 64 {
                throw ONNXImportError.badTensor(file: fileName, tensor: name, reason: "shape \(shape) is too large")
            }
            return result
        }
        guard tensor.has_data_type != 0, let type = ONNXDataType(rawValue: tensor.data_type), type.restoreType != nil else {
            throw ONNXImportError.badTensor(file: fileName, tensor: name,
                                            reason: "element type \(tensor.data_type) is not supported")
        }
        let layout = TensorLayout(name: name, type: type, shape: shape, count: count)

        if tensor.has_data_location != 0 && tensor.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            let data = try readExternalData(tensor, layout: layout)
            return try data.withUnsafeBytes { try fromRawBytes($0, layout: layout) }
        }
        if tensor.has_raw_data != 0 {
            let raw = UnsafeRawBufferPointer(start: tensor.raw_data.data, count: tensor.raw_data.len)
            return try fromRawBytes(raw, layout: layout)
        }
        return try fromTypedFields(tensor, layout: layout)
    }

    /// A tensor's name, ONNX type, shape and element count, checked once.
    struct TensorLayout {
        var name: String
        var type: ONNXDataType
        var shape: [Int]
        var count: Int
        var byteCount: Int { count * type.storedByteSize }
    }

    /// Bytes in ONNX's little-endian layout (raw_data or an external file).
    private func fromRawBytes(_ raw: UnsafeRawBufferPointer, layout: TensorLayout) throws -> ConstantTensor {
        guard raw.count == layout.byteCount else {
            throw ONNXImportError.badTensor(
                file: fileName, tensor: layout.name,
                reason: "holds \(raw.count) bytes; shape \(layout.shape) of \(layout.type.name) needs \(layout.byteCount)")
        }
        func elements<T>(_: T.Type) -> [T] {
            (0..<layout.count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.stride, as: T.self) }
        }
        switch layout.type {
        case .float, .float16, .bfloat16, .int8, .int32, .int64:
            return tensor(layout, storage: ByteStorage(copying: raw))
        case .bool: return tensor(layout, raw.map { UInt8($0 != 0 ? 1 : 0) })
        case .double: return tensor(layout, elements(Double.self).map { Float($0) })
        case .uint8: return tensor(layout, raw.map { Int32($0) })
        case .int16: return tensor(layout, elements(Int16.self).map { Int32($0) })
        case .uint16: return tensor(layout, elements(UInt16.self).map { Int32($0) })
        case .uint32: return tensor(layout, elements(UInt32.self).map { Int64($0) })
        case .uint64: return tensor(layout, try signed(elements(UInt64.self), layout: layout))
        case .string, .complex64, .complex128:
            preconditionFailure("unsupported types are refused before decoding")
        }
    }

    /// The typed repeated fields: float_data, int32_data (all types up to 32 bits, and
    /// 16-bit floats as bit patterns), int64_data, double_data, uint64_data.
    private func fromTypedFields(_ proto: Onnx__TensorProto, layout: TensorLayout) throws -> ConstantTensor {
        func checked<T>(_ values: UnsafeBufferPointer<T>, field: String) throws -> UnsafeBufferPointer<T> {
            guard values.count == layout.count else {
                throw ONNXImportError.badTensor(
                    file: fileName, tensor: layout.name,
                    reason: "\(field) holds \(values.count) values; shape \(layout.shape) needs \(layout.count)")
            }
            return values
        }
        let int32Data = { try checked(cArray(proto.int32_data, proto.n_int32_data), field: "int32_data") }
        switch layout.type {
        case .float: return tensor(layout, Array(try checked(cArray(proto.float_data, proto.n_float_data), field: "float_data")))
        case .float16, .bfloat16: return tensor(layout, try int32Data().map { UInt16(truncatingIfNeeded: $0) })
        case .int8: return tensor(layout, try int32Data().map { Int8(truncatingIfNeeded: $0) })
        case .bool: return tensor(layout, try int32Data().map { UInt8($0 != 0 ? 1 : 0) })
        case .uint8, .int16, .uint16, .int32: return tensor(layout, Array(try int32Data()))
        case .int64: return tensor(layout, Array(try checked(cArray(proto.int64_data, proto.n_int64_data), field: "int64_data")))
        case .double:
            return tensor(layout, try checked(cArray(proto.double_data, proto.n_double_data), field: "double_data").map { Float($0) })
        case .uint32, .uint64:
            return tensor(layout, try signed(Array(try checked(cArray(proto.uint64_data, proto.n_uint64_data), field: "uint64_data")),
                                             layout: layout))
        case .string, .complex64, .complex128:
            preconditionFailure("unsupported types are refused before decoding")
        }
    }

    private func signed(_ values: [UInt64], layout: TensorLayout) throws -> [Int64] {
        try values.map { value in
            guard let signed = Int64(exactly: value) else {
                throw ONNXImportError.badTensor(file: fileName, tensor: layout.name,
                                                reason: "value \(value) does not fit in int64")
            }
            return signed
        }
    }

    private func tensor<T>(_ layout: TensorLayout, _ values: [T]) -> ConstantTensor {
        tensor(layout, storage: values.withUnsafeBytes { ByteStorage(copying: $0) })
    }

    private func tensor(_ layout: TensorLayout, storage: ByteStorage) -> ConstantTensor {
        // restoreType is non-nil here: decode() refuses the other types first.
        ConstantTensor(name: layout.name, dtype: layout.type.restoreType ?? .float32, shape: layout.shape, storage: storage)
    }

    /// Reads the bytes of a tensor stored outside the model (`location`, `offset`,
    /// `length` keys). The path must stay inside the model's folder, so a model cannot
    /// make the importer read arbitrary files.
    private func readExternalData(_ proto: Onnx__TensorProto, layout: TensorLayout) throws -> Data {
        var keys: [String: String] = [:]
        for entry in cArray(proto.external_data, proto.n_external_data) {
            guard let entry = entry?.pointee else { continue }
            keys[string(entry.key)] = string(entry.value)
        }
        let location = keys["location"] ?? ""
        func failure(_ reason: String) -> ONNXImportError {
            .badExternalData(file: fileName, tensor: layout.name, dataFile: location, reason: reason)
        }
        guard !location.isEmpty else { throw failure("is not named (no 'location' key)") }
        guard let directory else { throw failure("cannot be found: the model was not read from a file") }
        guard !location.hasPrefix("/"), !location.hasPrefix("\\") else {
            throw failure("is an absolute path; external data must be relative to the model's folder")
        }
        var depth = 0
        for component in location.split(whereSeparator: { $0 == "/" || $0 == "\\" }) {
            depth += component == ".." ? -1 : (component == "." ? 0 : 1)
            if depth < 0 { throw failure("is outside the model's folder") }
        }
        let folder = directory.standardizedFileURL.resolvingSymlinksInPath()
        let url = folder.appendingPathComponent(location).standardizedFileURL.resolvingSymlinksInPath()
        guard url.path.hasPrefix(folder.path.hasSuffix("/") ? folder.path : folder.path + "/") else {
            throw failure("is outside the model's folder (through a symbolic link)")
        }

        guard let offset = Int(keys["offset"] ?? "0"), offset >= 0 else {
            throw failure("has a bad offset '\(keys["offset"] ?? "")'")
        }
        if let lengthText = keys["length"] {
            guard let length = Int(lengthText), length == layout.byteCount else {
                throw failure("length '\(lengthText)' does not match the \(layout.byteCount) bytes of shape \(layout.shape) of \(layout.type.name)")
            }
        }
        guard let handle = try? FileHandle(forReadingFrom: url) else { throw failure("cannot be opened (missing?)") }
        defer { try? handle.close() }
        let fileSize = (try? handle.seekToEnd()).map { Int($0) } ?? 0
        guard offset <= fileSize, fileSize - offset >= layout.byteCount else {
            throw failure("has \(fileSize) bytes, too short for offset \(offset) + \(layout.byteCount) bytes")
        }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: layout.byteCount) ?? Data()
            guard data.count == layout.byteCount else { throw failure("could not be read completely") }
            return data
        } catch let error as ONNXImportError {
            throw error
        } catch {
            throw failure("could not be read (\(error))")
        }
    }
}

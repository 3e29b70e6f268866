/// Why a safetensors checkpoint could not be read. Every case names the file, and the
/// tensor where one is at fault.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, measured or mapped (`reason` is the system's message).
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than the 8-byte header length, or than the header it announces.
    case truncated(file: String, size: Int, needed: UInt64)
    /// A header length beyond `SafetensorsFile.maximumHeaderLength`.
    case headerTooLarge(file: String, length: UInt64)
    /// The JSON header is not well-formed, not an object, or not typed as the format says.
    case malformedHeader(file: String, detail: String)
    /// A tensor record whose dtype string is not one the format defines.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A negative dimension, or a shape whose byte size overflows.
    case badShape(file: String, tensor: String, shape: [Int])
    /// `data_offsets` that are not [begin, end] with begin ≤ end inside the data buffer.
    case badOffsets(file: String, tensor: String, begin: UInt64, end: UInt64, bufferLength: Int)
    /// A tensor whose byte range does not hold shape × dtype bytes.
    case sizeMismatch(file: String, tensor: String, expected: Int, found: Int)
    /// Two tensors whose byte ranges overlap.
    case overlappingTensors(file: String, tensor: String, other: String)
    /// Bytes of the data buffer no tensor covers (the format forbids holes), starting at `offset`.
    case unusedBytes(file: String, offset: Int, length: Int)
    /// A tensor the caller asked for that the checkpoint does not hold.
    case missingTensor(file: String, tensor: String)
    /// A tensor whose dtype Restore does not compute with, and why it is not converted.
    case unsupportedDType(file: String, tensor: String, dtype: SafetensorsDType, reason: String)
    /// An f64 tensor with a value f32 cannot hold (beyond ±3.4e38, or a NaN payload that matters).
    case unrepresentableValue(file: String, tensor: String, value: Double)
    /// `model.safetensors.index.json` is malformed, names a shard outside its folder, or does
    /// not match the shards (a tensor missing from its shard, held by two shards, or unlisted).
    case badIndex(file: String, detail: String)

    /// The file the error is about.
    public var file: String {
        switch self {
        case .cannotOpen(let file, _), .truncated(let file, _, _), .headerTooLarge(let file, _),
             .malformedHeader(let file, _), .unknownDType(let file, _, _), .badShape(let file, _, _),
             .badOffsets(let file, _, _, _, _), .sizeMismatch(let file, _, _, _), .overlappingTensors(let file, _, _),
             .unusedBytes(let file, _, _), .missingTensor(let file, _), .unsupportedDType(let file, _, _, _),
             .unrepresentableValue(let file, _, _), .badIndex(let file, _):
            file
        }
    }

    public var description: String {
        switch self {
        case .cannotOpen(let file, let reason):
            "\(file): cannot open: \(reason)"
        case .truncated(let file, let size, let needed):
            "\(file): file is \(size) bytes, the safetensors header needs \(needed) (truncated, or not a safetensors file)"
        case .headerTooLarge(let file, let length):
            "\(file): header length \(length) exceeds \(SafetensorsFile.maximumHeaderLength) bytes (not a safetensors file?)"
        case .malformedHeader(let file, let detail):
            "\(file): malformed safetensors header: \(detail)"
        case .unknownDType(let file, let tensor, let dtype):
            "\(file): tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case .badShape(let file, let tensor, let shape):
            "\(file): tensor '\(tensor)' has a bad shape \(shape) (negative dimension or too many bytes)"
        case .badOffsets(let file, let tensor, let begin, let end, let bufferLength):
            "\(file): tensor '\(tensor)' has data_offsets [\(begin), \(end)] outside the \(bufferLength)-byte data buffer "
                + "or reversed"
        case .sizeMismatch(let file, let tensor, let expected, let found):
            "\(file): tensor '\(tensor)' has \(found) bytes, its dtype and shape need \(expected)"
        case .overlappingTensors(let file, let tensor, let other):
            "\(file): tensors '\(other)' and '\(tensor)' overlap in the data buffer"
        case .unusedBytes(let file, let offset, let length):
            "\(file): \(length) bytes of the data buffer at offset \(offset) belong to no tensor (the format forbids holes)"
        case .missingTensor(let file, let tensor):
            "\(file): no tensor '\(tensor)'"
        case .unsupportedDType(let file, let tensor, let dtype, let reason):
            "\(file): tensor '\(tensor)' is \(dtype.rawValue), which is not read: \(reason)"
        case .unrepresentableValue(let file, let tensor, let value):
            "\(file): tensor '\(tensor)' is F64 and holds \(value), which f32 cannot represent"
        case .badIndex(let file, let detail):
            "\(file): \(detail)"
        }
    }
}

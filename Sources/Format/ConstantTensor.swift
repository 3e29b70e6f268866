import Foundation

/// Bytes that outlive the tensors viewing them: an `mmap`ed file region or heap memory.
public final class ByteStorage: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    /// Whether the bytes are a read-only mapping of a file, whose pages the kernel can
    /// drop and read again (`releasePages`).
    public let isFileMapping: Bool
    private let release: () -> Void

    /// Takes ownership of memory that `release` frees.
    public init(base: UnsafeRawPointer, count: Int, isFileMapping: Bool = false, release: @escaping () -> Void) {
        self.base = base
        self.count = count
        self.isFileMapping = isFileMapping
        self.release = release
    }

    /// Tells the kernel that bytes offset..<offset+count will not be read for a while: the
    /// whole pages among them leave this process's resident memory and are read back from
    /// the file if touched again. Does nothing to heap memory, whose contents it would lose.
    public func releasePages(offset: Int, count: Int) {
        guard isFileMapping, offset >= 0, count > 0, offset + count <= self.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let address = Int(bitPattern: base) + offset
        let first = (address + page - 1) / page * page
        let end = (address + count) / page * page
        guard end > first, let start = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(start, end - first, MADV_DONTNEED)
    }

    /// Copies `bytes` into 64-byte aligned heap memory.
    public convenience init(copying bytes: UnsafeRawBufferPointer) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if let source = bytes.baseAddress, bytes.count > 0 {
            memory.copyMemory(from: source, byteCount: bytes.count)
        }
        self.init(base: UnsafeRawPointer(memory), count: bytes.count) { memory.deallocate() }
    }

    deinit { release() }
}

/// A constant tensor: weights, or a value folded at convert time. Its bytes are viewed
/// in place (zero copy for an `mmap`ed `.rgraph`); `ByteStorage` keeps them alive.
public struct ConstantTensor: @unchecked Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// How the bytes encode the values: plain elements of `dtype`, or int8 with scales.
    public var layout: WeightLayout
    public let storage: ByteStorage
    public let byteOffset: Int

    public init(name: String, dtype: DType, shape: [Int], storage: ByteStorage, byteOffset: Int = 0,
                layout: WeightLayout = .elements) {
        precondition(byteOffset + shape.reduce(1, *) * dtype.byteSize <= storage.count,
                     "constant \(name) extends past its storage")
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.layout = layout
        self.storage = storage
        self.byteOffset = byteOffset
    }

    /// A float32 constant holding a copy of `values`.
    public init(name: String, shape: [Int], floats values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "constant \(name): \(values.count) values for shape \(shape)")
        let storage = values.withUnsafeBytes { ByteStorage(copying: $0) }
        self.init(name: name, dtype: .float32, shape: shape, storage: storage)
    }

    /// An int64 (or bool, stored one byte each) constant holding a copy of `values`.
    public init(name: String, shape: [Int], ints values: [Int64], dtype: DType = .int64) {
        precondition(values.count == shape.reduce(1, *), "constant \(name): \(values.count) values for shape \(shape)")
        let storage: ByteStorage
        switch dtype {
        case .int64: storage = values.withUnsafeBytes { ByteStorage(copying: $0) }
        case .int32: storage = values.map { Int32(truncatingIfNeeded: $0) }.withUnsafeBytes { ByteStorage(copying: $0) }
        case .bool: storage = values.map { UInt8($0 != 0 ? 1 : 0) }.withUnsafeBytes { ByteStorage(copying: $0) }
        default: preconditionFailure("ints stored as \(dtype)")
        }
        self.init(name: name, dtype: dtype, shape: shape, storage: storage)
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }

    /// The raw bytes of the tensor.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + byteOffset, count: byteCount)
    }

    /// The elements of a float32 tensor, in place.
    public var float32Elements: UnsafeBufferPointer<Float> {
        precondition(dtype == .float32, "\(name) is \(dtype), not f32")
        return bytes.bindMemory(to: Float.self)
    }

    /// Plain elements widened to Float (converting f16, bf16, int types). A constant in
    /// another layout needs its graph: `Graph.floatValues(of:)`.
    public func floatValues() -> [Float] {
        precondition(layout == .elements, "\(name) is stored as \(layout): read it with Graph.floatValues(of:)")
        let raw = bytes
        switch dtype {
        case .float32: return Array(raw.bindMemory(to: Float.self))
        case .float16: return raw.bindMemory(to: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        case .bfloat16: return raw.bindMemory(to: UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .int8: return raw.bindMemory(to: Int8.self).map { Float($0) }
        case .int32: return raw.bindMemory(to: Int32.self).map { Float($0) }
        case .int64: return raw.bindMemory(to: Int64.self).map { Float($0) }
        case .bool: return raw.map { $0 != 0 ? 1 : 0 }
        }
    }

    /// Elements as Int64 (truncating floats toward zero).
    public func intValues() -> [Int64] {
        let raw = bytes
        switch dtype {
        case .int64: return Array(raw.bindMemory(to: Int64.self))
        case .int32: return raw.bindMemory(to: Int32.self).map { Int64($0) }
        case .int8: return raw.bindMemory(to: Int8.self).map { Int64($0) }
        case .bool: return raw.map { $0 != 0 ? 1 : 0 }
        case .float32, .float16, .bfloat16: return floatValues().map { Int64($0) }
        }
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a `Graph` as an `.rgraph` file (schemas/rgraph.md), version 1.3: each tensor
/// records its own CRC-64 beside the data section's.
public enum RGraphWriter {
    /// Writes `graph` to `path` through a temporary file in the same directory, renamed over
    /// `path` only once complete and synced: readers never see a half-written file, and on
    /// failure the previous file at `path` (if any) is untouched and no temporary is left.
    public static func write(_ graph: Graph, to path: String) throws(RGraphError) {
        try write(graph, to: path, beforeRename: { _ throws(RGraphError) in })
    }

    /// `write(_:to:)` with a hook run on the complete temporary file just before the rename;
    /// tests use it to observe the target before replacement and to fail at the last step.
    static func write(_ graph: Graph, to path: String,
                      beforeRename: (_ temporaryPath: String) throws(RGraphError) -> Void) throws(RGraphError) {
        let layout = try RGraphLayout(graph, file: path)
        let temporaryPath = temporaryName(for: path)
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .cannotWrite(file: path, reason: systemError()) }
        var renamed = false
        defer { if !renamed { unlink(temporaryPath) } }
        do {
            defer { close(descriptor) }
            try layout.emit { (chunk) throws(RGraphError) in try writeAll(chunk, to: descriptor, file: path) }
            guard fsync(descriptor) == 0 else { throw .cannotWrite(file: path, reason: systemError()) }
        }
        try beforeRename(temporaryPath)
        guard rename(temporaryPath, path) == 0 else { throw .cannotWrite(file: path, reason: systemError()) }
        renamed = true
    }

    /// A fresh hidden name next to `path`, so the final rename stays within one file system.
    private static func temporaryName(for path: String) -> String {
        let suffix = ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        guard let slash = path.lastIndex(of: "/") else { return "." + path + suffix }
        let directory = path[...slash]
        let base = path[path.index(after: slash)...]
        return directory + "." + base + suffix
    }

    private static func writeAll(_ chunk: UnsafeRawBufferPointer, to descriptor: Int32,
                                 file: String) throws(RGraphError) {
        guard var cursor = chunk.baseAddress else { return }
        var remaining = chunk.count
        while remaining > 0 {
            let written = Glibc.write(descriptor, cursor, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw .cannotWrite(file: file, reason: systemError())
            }
            cursor += written
            remaining -= written
        }
    }
}

/// The message of the last failed system call.
func systemError() -> String { String(cString: strerror(errno)) }

/// Where everything of a graph goes in its `.rgraph` file, with the checksums.
struct RGraphLayout {
    let version: RGraphVersion
    let fixedHeader: RGraphFixedHeader
    let headerJSON: [UInt8]
    /// Constants in file order with their offsets relative to the data section.
    let tensors: [(constant: ConstantTensor, offset: Int)]
    let dataLength: Int

    init(_ graph: Graph, file: String) throws(RGraphError) {
        for value in graph.inputs + graph.outputs { try Self.checkShape(value.shape, of: value.name, file: file) }
        var tensors: [(constant: ConstantTensor, offset: Int)] = []
        var cursor = 0
        for constant in graph.orderedConstants {
            try RGraphReader.checkLayout(constant, among: graph.constants, file: file)
            tensors.append((constant, cursor))
            cursor = alignedUp(cursor + constant.byteCount)
        }
        var sources: [String: String] = [:]
        for values in graph.packedConstants {
            guard graph.constants[values.tensor.name] == nil, sources[values.tensor.name] == nil else {
                throw .duplicateTensor(file: file, tensor: values.tensor.name)
            }
            try RGraphReader.checkPacked(values, among: graph.constants, file: file)
            sources[values.tensor.name] = values.source
            tensors.append((values.tensor, cursor))
            cursor = alignedUp(cursor + values.tensor.byteCount)
        }
        self.tensors = tensors
        dataLength = cursor

        // Every file is 1.3, for the tensors' crc64 (§7); older readers ignore that member, so
        // they read a 1.3 file as they read a 1.0, 1.1 or 1.2 one with the same tensors.
        version = .current
        let document = RGraphDocument(
            format: .init(major: version.major, minor: version.minor, generator: "Restore"),
            metadata: graph.metadata,
            inputs: graph.inputs.map(RGraphDocument.Value.init),
            outputs: graph.outputs.map(RGraphDocument.Value.init),
            nodes: graph.nodes.map { node in
                RGraphDocument.NodeRecord(name: node.name, op: node.op.rawValue, inputs: node.inputs,
                                          outputs: node.outputs,
                                          attributes: node.attributes.mapValues(AttributeRecord.init))
            },
            tensors: tensors.map { constant, offset in
                var quantization = QuantizationRecord(constant.layout)
                quantization?.source = sources[constant.name]
                return RGraphDocument.TensorRecord(name: constant.name, dtype: constant.dtype.rawValue,
                                                   shape: constant.shape, offset: offset,
                                                   length: constant.byteCount, quantization: quantization,
                                                   crc64: RGraphChecksum.hexDigits(RGraphChecksum.of(constant.bytes)))
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            headerJSON = Array(try encoder.encode(document))
        } catch {
            throw .cannotWrite(file: file, reason: "cannot encode the header section: \(error)")
        }

        var dataChecksum = RGraphChecksum()
        try Self.forEachDataChunk(tensors) { dataChecksum.update($0) }
        fixedHeader = RGraphFixedHeader(
            major: UInt16(version.major), minor: UInt16(version.minor),
            headerOffset: UInt64(RGraphFixedHeader.size), headerLength: UInt64(headerJSON.count),
            dataOffset: UInt64(alignedUp(RGraphFixedHeader.size + headerJSON.count)),
            dataLength: UInt64(dataLength),
            headerChecksum: headerJSON.withUnsafeBytes { RGraphChecksum.of($0) },
            dataChecksum: dataChecksum.value)
    }

    /// Passes the whole file to `sink`, in order, in chunks.
    func emit(_ sink: (UnsafeRawBufferPointer) throws(RGraphError) -> Void) throws(RGraphError) {
        let fixed = fixedHeader.encoded()
        try Self.pass(fixed[...], to: sink)
        try Self.pass(headerJSON[...], to: sink)
        try Self.zeroPadding(count: Int(fixedHeader.dataOffset) - fixed.count - headerJSON.count, sink)
        try Self.forEachDataChunk(tensors, sink)
    }

    /// The data section's bytes in order: each tensor, then zeros up to the next multiple of 64.
    private static func forEachDataChunk(
        _ tensors: [(constant: ConstantTensor, offset: Int)],
        _ body: (UnsafeRawBufferPointer) throws(RGraphError) -> Void
    ) throws(RGraphError) {
        for (constant, _) in tensors {
            try body(constant.bytes)
            try zeroPadding(count: alignedUp(constant.byteCount) - constant.byteCount, body)
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: RGraphFixedHeader.alignment)

    private static func zeroPadding(count: Int,
                                    _ body: (UnsafeRawBufferPointer) throws(RGraphError) -> Void) throws(RGraphError) {
        precondition(count >= 0 && count < RGraphFixedHeader.alignment, "padding of \(count) bytes")
        try pass(zeros[0..<count], to: body)
    }

    /// Passes `bytes` to `body`, keeping the error typed (`withUnsafeBytes` only rethrows untyped).
    private static func pass(_ bytes: ArraySlice<UInt8>,
                             to body: (UnsafeRawBufferPointer) throws(RGraphError) -> Void) throws(RGraphError) {
        let result = bytes.withUnsafeBytes { (buffer) -> Result<Void, RGraphError> in
            do throws(RGraphError) {
                try body(buffer)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Refuses what the reader would refuse: negative sizes and unnamed symbols.
    private static func checkShape(_ shape: [Dim], of owner: String, file: String) throws(RGraphError) {
        for dim in shape {
            switch dim {
            case .fixed(let size) where size < 0:
                throw .badShape(file: file, owner: owner, detail: "dimension \(size) is negative")
            case .symbol(let name) where name.isEmpty:
                throw .badShape(file: file, owner: owner, detail: "a symbolic dimension has an empty name")
            case .fixed, .symbol:
                break
            }
        }
    }
}

extension RGraphDocument.Value {
    init(_ value: ValueInfo) {
        self.init(name: value.name, dtype: value.dtype.rawValue, shape: value.shape.map(DimRecord.init))
    }
}

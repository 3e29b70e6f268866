import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A model read from an `.rgraph` file, with what the file says about itself.
public struct RGraphFile: Sendable {
    /// The model; its constants view the file's bytes in place.
    public let graph: Graph
    public let version: RGraphVersion
    /// The `format.generator` text of the header section, if any.
    public let generator: String?
    /// The path, or for a file read from memory the name given to the reader.
    public let file: String
    public let fileSize: Int
    /// Packed values the file holds for kernels this version does not have (another kernel,
    /// CPU level name or version): not read; kernels prepare from their sources instead.
    public let foreignPackedConstants: [ForeignPackedConstant]
    /// The tensors whose checksums are still to be verified, by whoever reads them first
    /// (`Model` and the planner); nil when the data section was verified whole on reading
    /// (a file before 1.3).
    public let checksums: TensorChecksums?
}

/// Reads `.rgraph` files (schemas/rgraph.md), validating every field before use.
public enum RGraphReader {
    /// Maps the file at `path` read-only and decodes it. Constants view the mapping in
    /// place (zero copy, 64-byte aligned); it is unmapped when the last of them is released.
    public static func read(contentsOf path: String) throws(RGraphError) -> RGraphFile {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotOpen(file: path, reason: systemError()) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .cannotOpen(file: path, reason: systemError()) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw .cannotOpen(file: path, reason: "not a regular file")
        }
        let size = Int(status.st_size)
        guard size >= RGraphFixedHeader.size else { throw .tooSmall(file: path, size: size) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .cannotOpen(file: path, reason: "mmap: \(systemError())")
        }
        let storage = ByteStorage(base: UnsafeRawPointer(base), count: size, isFileMapping: true) { munmap(base, size) }
        return try decode(storage, file: path)
    }

    /// Decodes an `.rgraph` file held in memory (`restore_model_load_memory`). The bytes are
    /// copied once into 64-byte aligned memory that the constants then view; `name` stands
    /// for the file in error messages.
    public static func read(bytes: UnsafeRawBufferPointer, name: String) throws(RGraphError) -> RGraphFile {
        guard bytes.count >= RGraphFixedHeader.size else { throw .tooSmall(file: name, size: bytes.count) }
        return try decode(ByteStorage(copying: bytes), file: name)
    }

    /// Bytes of the data section summed before their pages are released.
    static let verifiedChunkBytes = 8 << 20

    /// Least bytes of the data section per thread that sums part of it.
    static let checksumPartBytes = 32 << 20

    /// The CRC-64 of the data section, on one thread per core for a large file (a part
    /// each, combined in order), as most of the CPU time left in loading a prepared model
    /// was this checksum and the page faults of reading the file.
    ///
    /// The checksum reads every page of the weights; each chunk's pages are let go as soon
    /// as it is summed, until a kernel needs them, so that verifying a file never holds all
    /// of it resident (peak RSS) and weights only ever read to prepare others
    /// (Winograd-transformed, packed), or packed for another CPU, do not stay resident.
    /// `threads`, `partBytes` and `chunkBytes` are parameters for the tests.
    static func dataChecksum(_ data: UnsafeRawBufferPointer, storage: ByteStorage, dataOffset: Int,
                             threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                             partBytes: Int = checksumPartBytes, chunkBytes: Int = verifiedChunkBytes) -> UInt64 {
        let parts = max(1, min(threads, data.count / partBytes))
        // Part p covers whole chunks, so that only the section's two ends split a page.
        let chunks = (data.count + chunkBytes - 1) / chunkBytes
        func bounds(_ part: Int) -> Range<Int> {
            min(data.count, chunks * part / parts * chunkBytes) ..< min(data.count, chunks * (part + 1) / parts * chunkBytes)
        }
        var checksums = [RGraphChecksum](repeating: RGraphChecksum(), count: parts)
        checksums.withUnsafeMutableBufferPointer { results in
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                var checksum = part == 0 ? RGraphChecksum() : RGraphChecksum.ofFollowingPart()
                let range = bounds(part)
                var chunkStart = range.lowerBound
                while chunkStart < range.upperBound {
                    let chunkEnd = min(range.upperBound, chunkStart + chunkBytes)
                    checksum.update(UnsafeRawBufferPointer(rebasing: data[chunkStart..<chunkEnd]))
                    storage.releasePages(offset: dataOffset + chunkStart, count: chunkEnd - chunkStart)
                    chunkStart = chunkEnd
                }
                results[part] = checksum
            }
        }
        // The pages chunk edges split.
        storage.releasePages(offset: dataOffset, count: data.count)
        var checksum = checksums[0]
        for part in 1..<parts { checksum.append(checksums[part], count: bounds(part).count) }
        return checksum.value
    }

    /// Validates and decodes a whole file, in the order of schemas/rgraph.md §3 and §6.
    static func decode(_ storage: ByteStorage, file: String) throws(RGraphError) -> RGraphFile {
        let bytes = UnsafeRawBufferPointer(start: storage.base, count: storage.count)
        let fixedHeader = try validatedFixedHeader(bytes, file: file)
        let header = section(bytes, fixedHeader.headerOffset, fixedHeader.headerLength)
        let data = section(bytes, fixedHeader.dataOffset, fixedHeader.dataLength)
        try verify(header, .header, stored: fixedHeader.headerChecksum, file: file)

        let document: RGraphDocument
        do {
            document = try JSONDecoder().decode(RGraphDocument.self, from: Data(header))
        } catch let error as DecodingError {
            throw .malformedHeader(file: file, detail: error.locatedDescription)
        } catch {
            throw .malformedHeader(file: file, detail: "\(error)")
        }
        let version = RGraphVersion(major: Int(fixedHeader.major), minor: Int(fixedHeader.minor))
        guard document.format.major == version.major, document.format.minor == version.minor else {
            throw .malformedHeader(file: file, detail: "format version \(document.format.major)."
                                   + "\(document.format.minor) differs from the fixed header's \(version)")
        }
        let tensors = try constants(document.tensors, storage: storage,
                                    dataOffset: Int(fixedHeader.dataOffset), dataLength: data.count, file: file)
        // Tensors are verified when first read if each records its checksum (1.3); otherwise
        // the data section is verified whole, now.
        let checksums = try tensorChecksums(document.tensors, of: tensors.constants + tensors.packed.map(\.tensor),
                                            file: file)
        if checksums == nil {
            let computed = dataChecksum(data, storage: storage, dataOffset: Int(fixedHeader.dataOffset))
            guard computed == fixedHeader.dataChecksum else {
                throw .checksumMismatch(file: file, section: .data, stored: fixedHeader.dataChecksum, computed: computed)
            }
        }
        let graph = Graph(
            inputs: try document.inputs.map { (value) throws(RGraphError) in try valueInfo(value, file: file) },
            outputs: try document.outputs.map { (value) throws(RGraphError) in try valueInfo(value, file: file) },
            nodes: try document.nodes.map { (node) throws(RGraphError) in try self.node(node, file: file) },
            constants: tensors.constants, metadata: document.metadata, packedConstants: tensors.packed)
        return RGraphFile(graph: graph, version: version, generator: document.format.generator,
                          file: file, fileSize: storage.count, foreignPackedConstants: tensors.foreign,
                          checksums: checksums)
    }

    /// Each tensor's recorded CRC-64, to verify when it is read; nil unless every record has
    /// one (files before 1.3 have none). A `crc64` that is not 16 hex digits is refused.
    private static func tensorChecksums(_ records: [RGraphDocument.TensorRecord], of tensors: [ConstantTensor],
                                        file: String) throws(RGraphError) -> TensorChecksums? {
        guard records.allSatisfy({ $0.crc64 != nil }) else { return nil }
        var stored: [String: UInt64] = [:]
        for record in records {
            guard let text = record.crc64, let value = RGraphChecksum.value(hexDigits: text) else {
                throw .malformedHeader(file: file, detail: "tensor '\(record.name)': crc64 must be 16 hex digits, "
                                       + "found '\(record.crc64 ?? "")'")
            }
            stored[record.name] = value
        }
        var pending: [String: TensorChecksums.Entry] = [:]
        for tensor in tensors {
            guard let value = stored[tensor.name] else { continue }
            pending[tensor.name] = TensorChecksums.Entry(tensor: tensor, stored: value)
        }
        return TensorChecksums(file: file, pending: pending)
    }

    /// Checks magic, version, the header's own checksum and the section bounds.
    private static func validatedFixedHeader(_ bytes: UnsafeRawBufferPointer,
                                             file: String) throws(RGraphError) -> RGraphFixedHeader {
        guard bytes.count >= RGraphFixedHeader.size else { throw .tooSmall(file: file, size: bytes.count) }
        guard bytes.prefix(RGraphFixedHeader.magic.count).elementsEqual(RGraphFixedHeader.magic) else {
            throw .badMagic(file: file)
        }
        let fixedHeader = RGraphFixedHeader(decoding: bytes)
        // The version is checked before the checksum: a newer major may lay the header out
        // differently, and its reader deserves "newer version", not "corrupt".
        guard Int(fixedHeader.major) == RGraphVersion.current.major else {
            throw .unsupportedVersion(file: file, major: Int(fixedHeader.major), minor: Int(fixedHeader.minor))
        }
        let stored = RGraphFixedHeader.storedChecksum(in: bytes)
        let computed = RGraphChecksum.of(UnsafeRawBufferPointer(rebasing: bytes[0..<RGraphFixedHeader.checksummedSize]))
        guard stored == computed else {
            throw .fixedHeaderChecksumMismatch(file: file, stored: stored, computed: computed)
        }
        let sections: [(RGraphSection, offset: UInt64, length: UInt64)] = [
            (.header, fixedHeader.headerOffset, fixedHeader.headerLength),
            (.data, fixedHeader.dataOffset, fixedHeader.dataLength),
        ]
        for (section, offset, length) in sections {
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow, end <= UInt64(bytes.count) else {
                throw .sectionOutOfRange(file: file, section: section, offset: offset, length: length,
                                         fileSize: bytes.count)
            }
            guard offset >= UInt64(RGraphFixedHeader.size),
                  section == .header || offset % UInt64(RGraphFixedHeader.alignment) == 0 else {
                throw .misplacedSection(file: file, section: section, offset: offset)
            }
        }
        let headerEnd = fixedHeader.headerOffset + fixedHeader.headerLength
        let dataEnd = fixedHeader.dataOffset + fixedHeader.dataLength
        let bothNonEmpty = fixedHeader.headerLength > 0 && fixedHeader.dataLength > 0
        guard !(bothNonEmpty && fixedHeader.headerOffset < dataEnd && fixedHeader.dataOffset < headerEnd) else {
            throw .overlappingSections(file: file)
        }
        return fixedHeader
    }

    /// The bytes of a section whose bounds `validatedFixedHeader` has checked.
    private static func section(_ bytes: UnsafeRawBufferPointer, _ offset: UInt64,
                                _ length: UInt64) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(offset) ..< Int(offset + length)])
    }

    private static func verify(_ bytes: UnsafeRawBufferPointer, _ section: RGraphSection, stored: UInt64,
                               file: String) throws(RGraphError) {
        let computed = RGraphChecksum.of(bytes)
        guard computed == stored else {
            throw .checksumMismatch(file: file, section: section, stored: stored, computed: computed)
        }
    }

    private static func dtype(_ text: String, of owner: String, file: String) throws(RGraphError) -> DType {
        guard let dtype = DType(rawValue: text) else { throw .unknownDType(file: file, owner: owner, dtype: text) }
        return dtype
    }

    private static func valueInfo(_ value: RGraphDocument.Value, file: String) throws(RGraphError) -> ValueInfo {
        for record in value.shape {
            switch record.dim {
            case .fixed(let size) where size < 0:
                throw .badShape(file: file, owner: value.name, detail: "dimension \(size) is negative")
            case .symbol(let name) where name.isEmpty:
                throw .badShape(file: file, owner: value.name, detail: "a symbolic dimension has an empty name")
            case .fixed, .symbol:
                break
            }
        }
        return ValueInfo(name: value.name, dtype: try dtype(value.dtype, of: value.name, file: file),
                         shape: value.shape.map(\.dim))
    }

    private static func node(_ record: RGraphDocument.NodeRecord, file: String) throws(RGraphError) -> Node {
        guard let op = OpKind(rawValue: record.op) else {
            throw .unknownOp(file: file, node: record.name, op: record.op)
        }
        do {
            return try Node(name: record.name, op: op, inputs: record.inputs, outputs: record.outputs,
                            attributes: record.attributes.mapValues(\.attribute))
        } catch let error as GraphError {
            throw .invalidAttributes(file: file, error)
        } catch {
            throw .malformedHeader(file: file, detail: "node '\(record.name)': \(error)")
        }
    }

    /// The tensor table as constants viewing `storage` and packed values made from them,
    /// after checking each entry's dtype, shape (no negative dims, no overflowing byte size),
    /// length, alignment, bounds and layout (an int8 tensor's scales and packed values'
    /// sources are checked once every tensor is known). Packed values this version has no
    /// kernel for are listed as foreign, not read.
    private static func constants(_ records: [RGraphDocument.TensorRecord], storage: ByteStorage,
                                  dataOffset: Int, dataLength: Int, file: String) throws(RGraphError)
        -> (constants: [ConstantTensor], packed: [PackedConstant], foreign: [ForeignPackedConstant]) {
        var names = Set<String>()
        var constants: [ConstantTensor] = []
        var packed: [PackedConstant] = []
        var foreign: [ForeignPackedConstant] = []
        var foreignSources: [(name: String, source: String)] = []
        constants.reserveCapacity(records.count)
        for record in records {
            let name = record.name
            guard names.insert(name).inserted else { throw .duplicateTensor(file: file, tensor: name) }
            let dtype = try dtype(record.dtype, of: name, file: file)
            var byteCount = dtype.byteSize
            for size in record.shape {
                guard size >= 0 else {
                    throw .badShape(file: file, owner: name, detail: "dimension \(size) is negative")
                }
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: size)
                guard !overflow else {
                    throw .badShape(file: file, owner: name, detail: "byte size of shape \(record.shape) overflows")
                }
                byteCount = product
            }
            guard record.length == byteCount else {
                throw .tensorLengthMismatch(file: file, tensor: name, expected: byteCount, found: record.length)
            }
            let (end, overflow) = record.offset.addingReportingOverflow(record.length)
            guard record.offset >= 0, !overflow, end <= dataLength else {
                throw .tensorOutOfRange(file: file, tensor: name, offset: record.offset, length: record.length,
                                        dataLength: dataLength)
            }
            guard record.offset % RGraphFixedHeader.alignment == 0 else {
                throw .misalignedTensor(file: file, tensor: name, offset: record.offset)
            }
            let tensor = ConstantTensor(name: name, dtype: dtype, shape: record.shape, storage: storage,
                                        byteOffset: dataOffset + record.offset)
            switch record.quantization {
            case let quantization? where quantization.scheme == QuantizationRecord.packed:
                let (source, layout, madeFor) = try quantization.packedLayout(file: file, tensor: name)
                if let layout {
                    packed.append(PackedConstant(source: source, layout: layout, tensor: tensor))
                } else {
                    foreign.append(ForeignPackedConstant(name: name, source: source, madeFor: madeFor))
                    foreignSources.append((name, source))
                }
            case let quantization?:
                var constant = tensor
                constant.layout = try quantization.layout(file: file, tensor: name)
                constants.append(constant)
            case nil:
                constants.append(tensor)
            }
        }
        let byName = Dictionary(constants.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for constant in constants {
            try checkLayout(constant, among: byName, file: file)
        }
        var arrangements = Set<String>()
        for values in packed {
            try checkPacked(values, among: byName, file: file)
            guard arrangements.insert(PackedConstant.name(source: values.source, layout: values.layout)).inserted else {
                throw .invalidQuantization(file: file, tensor: values.tensor.name,
                                           detail: "'\(values.source)' already has packed values \(values.layout)")
            }
        }
        // Foreign values are not read, but their source must still be a constant of the file.
        for (name, source) in foreignSources where byName[source] == nil {
            throw .invalidQuantization(file: file, tensor: name, detail: "its source constant '\(source)' does not exist")
        }
        return (constants, packed, foreign)
    }

    /// Checks packed values against their source (`PackedConstant.validate`); the writer
    /// checks the same before writing.
    static func checkPacked(_ values: PackedConstant, among constants: [String: ConstantTensor],
                            file: String) throws(RGraphError) {
        do {
            try values.validate { constants[$0] }
        } catch {
            switch error {
            case .invalid(let detail):
                throw .invalidQuantization(file: file, tensor: values.tensor.name, detail: detail)
            }
        }
    }

    /// Checks that a constant's layout fits it and names scales that exist and fit
    /// (`WeightLayout.validate`); the writer checks the same before writing.
    static func checkLayout(_ constant: ConstantTensor, among constants: [String: ConstantTensor],
                            file: String) throws(RGraphError) {
        do {
            try constant.layout.validate(constant) { constants[$0] }
        } catch {
            switch error {
            case .invalid(let detail):
                throw .invalidQuantization(file: file, tensor: constant.name, detail: detail)
            }
        }
    }
}

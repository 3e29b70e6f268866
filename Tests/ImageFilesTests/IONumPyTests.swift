import Format
@testable import ImageFiles
import XCTest
@testable import Runtime

/// `.npy` reading and writing: files NumPy itself wrote in every accepted dtype and
/// version, round trips, and each kind of malformed or refused file.
final class IONumPyTests: XCTestCase {
    func testReadsWhatNumPyWroteInEveryAcceptedDTypeAndVersion() throws {
        let cases = try XCTUnwrap(IOTestSupport.json("npy/cases.json") as? [String: [String: Any]])
        XCTAssertEqual(cases.count, 10)
        for (name, expected) in cases.sorted(by: { $0.key < $1.key }) {
            let tensor = try NumPyFile.read(path: IOTestSupport.fixture("npy/\(name).npy"))
            let shape = try XCTUnwrap(expected["shape"] as? [Int])
            let values = try XCTUnwrap(expected["values"] as? [Double]).map { Float($0) }
            let maxError = zip(tensor.floats, values).map { abs($0 - $1) }.max() ?? 0
            print("\(name): shape \(tensor.shape), max abs error \(maxError)")
            XCTAssertEqual(tensor.shape, shape, name)
            XCTAssertEqual(tensor.dtype, ["dtype_i8": .int64, "dtype_i4": .int32][name] ?? .float32, name)
            XCTAssertEqual(tensor.floats, values, name)
        }
    }

    func testRoundTripsThroughAFileWithNumPysAlignment() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        for (index, shape) in [[2, 3, 5], [7], [], [0, 3], [1, 3, 37, 53]].enumerated() {
            let tensor = IOTestSupport.random(shape, seed: UInt64(index + 1))
            let path = "\(directory)/tensor\(index).npy"
            try NumPyFile.write(tensor, path: path)
            let bytes = try IOTestSupport.readFile(path)
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0, "data of \(shape) is not 64-byte aligned")
            XCTAssertEqual(try NumPyFile.read(path: path), tensor, "\(shape)")
        }
        XCTAssertEqual(try IOTestSupport.listing(directory), (0..<5).map { "tensor\($0).npy" })
    }

    /// `encode` and `write` (which writes a float tensor's elements without encoding them
    /// first) both give numpy.save's bytes.
    func testWritesTheSameBytesAsNumPySave() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        for name in ["dtype_f4", "version_1", "scalar", "empty", "dtype_i8"] {
            let path = IOTestSupport.fixture("npy/\(name).npy")
            let tensor = try NumPyFile.read(path: path)
            let written = "\(directory)/\(name).npy"
            try NumPyFile.write(tensor, path: written)
            if tensor.isFloat {
                XCTAssertEqual(NumPyFile.encode(tensor), try IOTestSupport.readFile(path), name)
            }
            XCTAssertEqual(try IOTestSupport.readFile(written), NumPyFile.encode(tensor), name)
        }
    }

    func testRefusesFortranOrderBigEndianAndObjects() throws {
        let fortran = IOTestSupport.fixture("npy/refuse_fortran.npy")
        XCTAssertThrowsError(try NumPyFile.read(path: fortran)) {
            XCTAssertEqual($0 as? NumPyFileError, .fortranOrder(file: fortran))
        }
        for name in ["refuse_bigendian", "refuse_object"] {
            let path = IOTestSupport.fixture("npy/\(name).npy")
            XCTAssertThrowsError(try NumPyFile.read(path: path)) { error in
                print("\(name): \(error)")
                guard case NumPyFileError.unsupportedDType(let file, _, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(file, path)
            }
        }
    }

    /// A version-1 file with the given header text (padded as NumPy pads) and data.
    private func npy(_ header: String, data: [UInt8] = [], version: UInt8 = 1) -> [UInt8] {
        var text = Array(header.utf8)
        text += [UInt8](repeating: 0x20, count: (64 - (10 + text.count + 1) % 64) % 64) + [0x0A]
        return NumPyFile.magic + [version, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + data
    }

    private func decodeError(_ bytes: [UInt8], _ name: String) -> NumPyFileError? {
        do {
            _ = try NumPyFile.decode(bytes, source: name)
            XCTFail("\(name) was accepted")
        } catch let error as NumPyFileError {
            print("\(name): \(error)")
            XCTAssertTrue(error.description.hasPrefix(name), "\(error) does not name the file")
            return error
        } catch {
            XCTFail("\(name): untyped error \(error)")
        }
        return nil
    }

    func testMalformedFilesGiveTypedErrorsNamingTheFile() {
        let good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
        let eightBytes = [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(decodeError([], "empty.npy"), .notNumPy(file: "empty.npy", found: .empty))
        XCTAssertEqual(decodeError(Array("NUMPY not really".utf8), "magic.npy"), .notNumPy(file: "magic.npy", found: .unknown))
        XCTAssertEqual(decodeError(npy(good, data: eightBytes, version: 4), "v4.npy"),
                       .unsupportedVersion(file: "v4.npy", major: 4, minor: 0))
        XCTAssertEqual(decodeError(NumPyFile.magic + [1, 0, 0x40], "cut_length.npy"),
                       .malformedHeader(file: "cut_length.npy", detail: "file ends inside the header length"))
        XCTAssertEqual(decodeError(Array(npy(good, data: eightBytes)[0..<30]), "cut_header.npy"),
                       .malformedHeader(file: "cut_header.npy", detail: "file ends inside the 118-byte header"))
        let badHeaders = [
            "not_a_dict": "['descr', '<f4']",
            "missing_key": "{'descr': '<f4', 'shape': (2,), }",
            "unknown_key": "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
            "bad_boolean": "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }",
            "negative_dim": "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
            "unclosed": "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
            "structured": "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }",
            "huge_digits": "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
        ]
        for (name, header) in badHeaders.sorted(by: { $0.key < $1.key }) {
            guard case .malformedHeader = decodeError(npy(header, data: eightBytes), name) else {
                return XCTFail("\(name) is not a malformed header")
            }
        }
        XCTAssertEqual(decodeError(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"), "overflow.npy"),
                       .shapeOverflow(file: "overflow.npy", shape: "[4294967296, 4294967296]"))
        XCTAssertEqual(decodeError(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1152921504606846976,), }"), "bytes_overflow.npy"),
                       .shapeOverflow(file: "bytes_overflow.npy", shape: "[1152921504606846976]"))
        XCTAssertEqual(decodeError(npy(good, data: [0, 0, 0, 0]), "short.npy"),
                       .dataSize(file: "short.npy", expectedBytes: 8, foundBytes: 4))
        XCTAssertEqual(decodeError(npy(good, data: eightBytes + [0]), "long.npy"),
                       .dataSize(file: "long.npy", expectedBytes: 8, foundBytes: 9))
        XCTAssertEqual(decodeError(npy("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", data: [0, 0, 0, 0]), "u2.npy"),
                       .unsupportedDType(file: "u2.npy", descr: "<u2", detail: "expected <f4, <f8, <f2, <i8, <i4 or |b1"))
    }

    func testHeaderVariantsNumPyAcceptsAreRead() throws {
        // Double quotes, no trailing comma, keys in another order, extra spaces.
        let bytes = npy("{\"shape\": ( 1 , 2 ), \"fortran_order\": False, \"descr\": \"<i4\"}", data: [1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF])
        let tensor = try NumPyFile.decode(bytes)
        XCTAssertEqual(tensor.shape, [1, 2])
        XCTAssertEqual(tensor.floats, [1, -2])
        XCTAssertEqual(tensor.dtype, .int32)
    }

    func testIntegersAndBoolsStayExactIntegersOfTheirType() throws {
        // 2^53 + 1 and -(2^40) + 3 have no exact float32, so only an integer read keeps them.
        let large: [Int64] = [(1 << 53) + 1, -(1 << 40) + 3]
        let i8 = npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                     data: large.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } })
        XCTAssertEqual(try NumPyFile.decode(i8), HostTensor(shape: [2], ints: large, dtype: .int64))
        let b1 = npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }", data: [1, 0, 0, 1])
        XCTAssertEqual(try NumPyFile.decode(b1), HostTensor(shape: [2, 2], ints: [1, 0, 0, 1], dtype: .bool))
    }

    /// The error a corrupted copy of version_1.npy must give, when where the change landed
    /// decides it; nil when a changed header text may be read or refused several ways.
    /// The file: magic 0..<6, version 6 and 7, header length 8 and 9 (118), header text
    /// 10..<128, 96 bytes of data.
    private func certainOutcome(changedByte position: Int?, to value: UInt8, length: Int, bytes: [UInt8]) -> NumPyFileError? {
        let file = "fuzz.npy"
        if length < 8 || position.map({ $0 < 6 }) == true {
            return .notNumPy(file: file, found: FileKind(sniffing: bytes.prefix(length)))
        }
        if position == 6 && !(1...3).contains(value) { return .unsupportedVersion(file: file, major: Int(value), minor: 0) }
        if position == 7 { return .unsupportedVersion(file: file, major: 1, minor: Int(value)) }
        guard position == nil else { return nil }
        if length < 10 { return .malformedHeader(file: file, detail: "file ends inside the header length") }
        if length < 128 { return .malformedHeader(file: file, detail: "file ends inside the 118-byte header") }
        if length < 224 { return .dataSize(file: file, expectedBytes: 96, foundBytes: length - 128) }
        return nil
    }

    func testRandomlyCorruptedFilesAreRefusedWithTheErrorTheirDamageCalls() throws {
        // One byte of magic, version, header length or header text replaced, and every other
        // file also cut at a random length. Where the damage is known to decide the outcome
        // (magic, version, a cut behind an intact header), the error must be exactly that
        // one; a changed header text may be refused in several ways, or read when it still
        // says something valid (a dtype of the same size), but never as another element
        // count, and never with an error that is untyped or does not name the file.
        let original = try IOTestSupport.readFile(IOTestSupport.fixture("npy/version_1.npy"))
        XCTAssertTrue(original.count == 224 && original[8] == 118, "the offsets in certainOutcome no longer hold")
        let intact = try NumPyFile.decode(original)
        var state: UInt64 = 0x9E3779B97F4A7C15
        var outcomes: [String: Int] = [:]
        for iteration in 0..<500 {
            var bytes = original
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let position = Int(state % 128)   // header bytes; data bytes are any float
            bytes[position] = UInt8(truncatingIfNeeded: state >> 40)
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let length = iteration.isMultiple(of: 2) ? bytes.count : Int(state % UInt64(bytes.count + 1))
            let changed = bytes[position] != original[position] ? position : nil
            let certain = certainOutcome(changedByte: changed, to: bytes[position], length: length, bytes: bytes)
            let context = "iteration \(iteration): byte \(position) → \(bytes[position]), cut at \(length)"
            do {
                let tensor = try NumPyFile.decode(Array(bytes[0..<length]), source: "fuzz.npy")
                outcomes["read", default: 0] += 1
                XCTAssertNil(certain, "\(context): read, expected \(String(describing: certain))")
                XCTAssertEqual(length, bytes.count, "\(context): a cut file was read")
                XCTAssertEqual(tensor.shape.reduce(1, *), 24, "\(context): read as \(tensor.shape)")
                if changed == nil { XCTAssertEqual(tensor, intact, context) }
            } catch let error as NumPyFileError {
                outcomes[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
                XCTAssertTrue(error.description.hasPrefix("fuzz.npy: "), "\(context): \(error) does not name the file")
                if let certain {
                    XCTAssertEqual(error, certain, context)
                } else {
                    // Magic and version are intact here, and one changed byte cannot turn
                    // False into True or (2, 3, 4) into a shape that overflows.
                    switch error {
                    case .malformedHeader, .unsupportedDType, .dataSize:
                        break
                    case .notNumPy, .unsupportedVersion, .fortranOrder, .shapeOverflow, .fileSystem:
                        XCTFail("\(context): \(error)")
                    }
                }
            } catch {
                XCTFail("\(context): untyped error \(error)")
            }
        }
        print("500 corrupted/truncated files: \(outcomes.sorted { $0.key < $1.key })")
    }

    func testAFailedWriteLeavesNoFileBehind() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        let blocked = "\(directory)/out.npy"
        try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: false)
        XCTAssertThrowsError(try NumPyFile.write(IOTestSupport.random([3], seed: 9), path: blocked)) { error in
            XCTAssertTrue("\(error)".hasPrefix(blocked), "\(error)")
        }
        XCTAssertEqual(try IOTestSupport.listing(directory), ["out.npy"])
    }
}

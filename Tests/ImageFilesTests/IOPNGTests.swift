import ImageFiles
import XCTest
@testable import Runtime

/// PNG decoding/encoding through libpng: every colour type and bit depth, palettes,
/// tRNS, interlacing, the RGB tensor round trip, and hostile files.
final class IOPNGTests: XCTestCase {
    private func variants() throws -> [String] {
        try XCTUnwrap(IOTestSupport.json("png/variants.json") as? [String])
    }

    private func expectedSamples(_ name: String) throws -> (channels: Int, values: [Int]) {
        let expected = try NumPyFile.read(path: IOTestSupport.fixture("png/\(name).expected.npy"))
        return (expected.shape[2], expected.floats.map { Int($0) })
    }

    func testEveryVariantDecodesToTheSamplesItWasWrittenWith() throws {
        let names = try variants()
        XCTAssertGreaterThanOrEqual(names.count, 25)
        for name in names {
            let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/\(name).png"))
            let expected = try expectedSamples(name)
            XCTAssertEqual(image.colorType.channels, expected.channels, name)
            XCTAssertEqual(image.bitDepth, name.contains("16") ? 16 : 8, name)
            XCTAssertEqual((image.width, image.height) == (13, 11), true, name)
            let decoded = image.quantizedSamples().map { Int($0) }
            let mismatches = zip(decoded, expected.values).filter { $0 != $1 }.count
            print("\(name): \(image.colorType) \(image.bitDepth)-bit, \(mismatches) mismatched samples")
            XCTAssertEqual(decoded, expected.values, name)
        }
    }

    func testEveryVariantRoundTripsExactlyThroughAFile() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        for name in try variants() {
            let original = try PixelImage.readPNG(path: IOTestSupport.fixture("png/\(name).png"))
            let output = "\(directory)/\(name).png"
            try original.writePNG(path: output)
            let reread = try PixelImage.readPNG(path: output)
            XCTAssertEqual(reread, original, name)
        }
        XCTAssertEqual(try IOTestSupport.listing(directory), try variants().map { "\($0).png" }.sorted())
    }

    func testEvery16BitValueSurvivesWriteAndRead() throws {
        let values = (0..<65536).map { Float($0) / 65535 }
        let image = PixelImage(width: 256, height: 256, bitDepth: 16, colorType: .gray, samples: values)
        let reread = try PixelImage.decodePNG(image.encodePNG())
        XCTAssertEqual(reread.quantizedSamples(), (0..<65536).map { UInt16($0) })
        XCTAssertEqual(reread.samples, values)
    }

    func testRGBTensorRoundTripKeepsColourAndAlphaExactly() throws {
        for name in ["rgba16", "rgba8", "grayalpha16", "gray8", "gray16", "rgb8", "palette4_trns"] {
            let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/\(name).png"))
            let tensor = image.rgbTensor()
            XCTAssertEqual(tensor.shape, [1, 3, image.height, image.width], name)
            XCTAssertEqual(try image.withRGB(tensor), image, name)
        }
    }

    func testGrayIsReplicatedIntoThreeEqualPlanes() throws {
        let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/grayalpha16.png"))
        let planes = image.rgbTensor().floats
        let plane = image.width * image.height
        XCTAssertEqual(Array(planes[0..<plane]), Array(planes[plane..<2 * plane]))
        XCTAssertEqual(Array(planes[0..<plane]), Array(planes[2 * plane..<3 * plane]))
        XCTAssertEqual(Array(planes[0..<plane]), stride(from: 0, to: image.samples.count, by: 2).map { image.samples[$0] })
    }

    func testChangedColourLeavesAlphaUntouched() throws {
        let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/rgba16.png"))
        let inverted = HostTensor(shape: [1, 3, image.height, image.width], floats: image.rgbTensor().floats.map { 1 - $0 })
        let result = try image.withRGB(inverted)
        for pixel in 0..<image.width * image.height {
            XCTAssertEqual(result.samples[pixel * 4 + 3], image.samples[pixel * 4 + 3])
            XCTAssertEqual(result.samples[pixel * 4], PixelImage.quantize(1 - image.samples[pixel * 4], levels: 65535))
        }
    }

    func testGrayOutputIsBT601LumaClampedAndRounded() throws {
        let image = PixelImage(width: 3, height: 1, bitDepth: 8, colorType: .gray, samples: [0, 0, 0])
        // Pixel 0: a colour; pixel 1: out of range (clamped to 1); pixel 2: NaN (becomes 0).
        let tensor = HostTensor(shape: [1, 3, 1, 3], floats: [0.2, 3, .nan, 0.6, 3, .nan, 0.9, 3, .nan])
        let result = try image.withRGB(tensor)
        let luma = 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 0.9
        XCTAssertEqual(result.quantizedSamples(), [UInt16((luma * 255).rounded()), 255, 0])
    }

    func testIntegerUpscaleRepeatsAlphaAndOtherSizesAreRefused() throws {
        let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/rgba8.png"))
        let (width, height) = (image.width, image.height)
        let doubled = HostTensor(shape: [1, 3, 2 * height, 2 * width], floats: [Float](repeating: 0.5, count: 12 * width * height))
        let result = try image.withRGB(doubled)
        XCTAssertEqual(result.width, 2 * width)
        for y in 0..<2 * height {
            for x in 0..<2 * width {
                XCTAssertEqual(result.samples[(y * 2 * width + x) * 4 + 3], image.samples[((y / 2) * width + x / 2) * 4 + 3])
            }
        }
        let odd = HostTensor(shape: [1, 3, height + 1, width], floats: [Float](repeating: 0, count: 3 * (height + 1) * width))
        XCTAssertThrowsError(try image.withRGB(odd)) { XCTAssertTrue($0 is PixelImageError, "\($0)") }
        XCTAssertThrowsError(try image.withRGB(HostTensor(shape: [3, height, width], floats: [Float](repeating: 0, count: 3 * height * width))))
    }

    func testPaletteImagesAreWrittenAsEightBitRGBOrRGBA() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        for (name, colorType) in [("palette8", PixelImage.ColorType.rgb), ("palette4_trns", .rgba), ("palette1", .rgb)] {
            let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/\(name).png"))
            XCTAssertEqual(image.colorType, colorType, name)
            XCTAssertEqual(image.bitDepth, 8, name)
            let bytes = try image.encodePNG()
            XCTAssertEqual(bytes[25], colorType == .rgb ? 2 : 6, "IHDR colour type of \(name)")
            XCTAssertEqual(bytes[24], 8, "IHDR bit depth of \(name)")
            try image.writePNG(path: "\(directory)/\(name).png")
            XCTAssertEqual(try PixelImage.readPNG(path: "\(directory)/\(name).png"), image)
        }
    }

    // MARK: Hostile files

    /// Writes `bytes` under `name`, reads it, and returns the error (which must name the file).
    private func readError(_ bytes: [UInt8], named name: String, in directory: String,
                           file: StaticString = #filePath, line: UInt = #line) throws -> ImageIOError? {
        let path = "\(directory)/\(name)"
        try IOTestSupport.writeFile(bytes, path)
        do {
            _ = try PixelImage.readPNG(path: path)
            XCTFail("\(name) was accepted", file: file, line: line)
            return nil
        } catch let error as ImageIOError {
            print("\(name): \(error)")
            XCTAssertTrue(error.description.contains(path), "\(error) does not name the file", file: file, line: line)
            return error
        }
    }

    func testEmptyAndWrongSignatureAreNotPNG() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        var bytes = try IOTestSupport.readFile(IOTestSupport.fixture("png/rgb8.png"))
        XCTAssertEqual(try readError([], named: "empty.png", in: directory), .notPNG(file: "\(directory)/empty.png", found: .empty))
        bytes[1] = UInt8(ascii: "J")
        XCTAssertEqual(try readError(bytes, named: "signature.png", in: directory), .notPNG(file: "\(directory)/signature.png", found: .unknown))
        XCTAssertEqual(try readError(Array(bytes[0..<5]), named: "short.png", in: directory), .notPNG(file: "\(directory)/short.png", found: .unknown))
    }

    func testTruncationAnywhereIsReportedAsTruncated() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        let bytes = try IOTestSupport.readFile(IOTestSupport.fixture("png/rgba16_interlaced.png"))
        // After the signature, inside IHDR, after IHDR, inside IDAT, before IEND's CRC.
        for length in [8, 20, 33, 45, bytes.count / 2, bytes.count - 1] {
            let name = "truncated_\(length).png"
            let error = try readError(Array(bytes[0..<length]), named: name, in: directory)
            guard case .truncated = error else { return XCTFail("\(String(describing: error)) is not truncated") }
        }
    }

    func testCorruptedCriticalChunksGiveCRCErrors() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        let bytes = try IOTestSupport.readFile(IOTestSupport.fixture("png/rgb8.png"))
        // Byte 29 is IHDR's CRC; the 4 bytes before IEND's 12 are IDAT's CRC.
        for offset in [29, bytes.count - 13] {
            var corrupted = bytes
            corrupted[offset] ^= 0x5A
            let error = try readError(corrupted, named: "crc_\(offset).png", in: directory)
            guard case .crcMismatch = error else { return XCTFail("\(String(describing: error)) is not a CRC error") }
        }
    }

    func testCorruptedCompressedDataIsCorrupt() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        var bytes = try IOTestSupport.readFile(IOTestSupport.fixture("png/rgb8.png"))
        // Inside the IDAT data: zlib's own check fails before libpng reaches the chunk CRC.
        bytes[50] ^= 0x5A
        let error = try readError(bytes, named: "idat_data.png", in: directory)
        guard case .corrupt = error else { return XCTFail("\(String(describing: error)) is not corrupt") }
    }

    func testHugeDeclaredDimensionsAreRefusedBeforeAllocating() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        for name in ["hostile_huge_side.png", "hostile_huge_area.png"] {
            let bytes = try IOTestSupport.readFile(IOTestSupport.fixture("png/\(name)"))
            let error = try readError(bytes, named: name, in: directory)
            guard case .tooLarge = error else { return XCTFail("\(String(describing: error)) is not tooLarge") }
        }
        // 8000x8000 declared, about 100 bytes of data: refused as truncated without decoding.
        let bytes = try IOTestSupport.readFile(IOTestSupport.fixture("png/hostile_unbacked.png"))
        let error = try readError(bytes, named: "unbacked.png", in: directory)
        guard case .truncated = error else { return XCTFail("\(String(describing: error)) is not truncated") }
    }

    /// The chunk types of a PNG file, in order.
    private func chunkTypes(_ bytes: [UInt8]) -> [String] {
        var types: [String] = [], offset = 8
        while offset + 8 <= bytes.count {
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            types.append(String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self))
            offset += 12 + length
        }
        return types
    }

    func testRandomlyCorruptedFilesAreRefusedWithAnErrorNamingFileAndFault() throws {
        // Seeded byte flips anywhere in an interlaced 16-bit file that holds only the
        // signature and critical, CRC-protected chunks: no flipped file is a valid PNG, so
        // each must be refused with a typed error naming the file: notPNG exactly when the
        // signature changed, else a corruption error saying what libpng found. (A longjmp
        // escaping into Swift or an abort would crash here instead.)
        let original = try IOTestSupport.readFile(IOTestSupport.fixture("png/rgba16_interlaced.png"))
        XCTAssertEqual(chunkTypes(original), ["IHDR", "IDAT", "IEND"])
        var state: UInt64 = 0x2545F4914F6CDD1D
        var outcomes: [String: Int] = [:]
        for trial in 0..<300 {
            var bytes = original
            for _ in 0..<3 {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                bytes[Int(state % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: state >> 32) | 1
            }
            guard bytes != original else { continue }   // two flips of one byte cancelled
            let signatureChanged = bytes[0..<8] != original[0..<8]
            do {
                _ = try PixelImage.decodePNG(bytes, source: "flipped.png")
                XCTFail("trial \(trial): a corrupted file was decoded")
            } catch let error as ImageIOError {
                outcomes[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
                XCTAssertTrue(error.description.hasPrefix("flipped.png: "), "trial \(trial): \(error) does not name the file")
                switch error {
                case .notPNG:
                    XCTAssertTrue(signatureChanged, "trial \(trial): \(error) with the signature intact")
                case .truncated(_, let detail), .crcMismatch(_, let detail), .corrupt(_, let detail),
                     .tooLarge(_, let detail), .unsupported(_, let detail):
                    XCTAssertFalse(signatureChanged, "trial \(trial): \(error) for a changed signature")
                    XCTAssertFalse(detail.isEmpty, "trial \(trial): \(error) does not say what is wrong")
                case .outOfMemory, .fileSystem, .notJPEG, .corruptJPEG, .unsupportedJPEG, .notWebP, .corruptWebP, .unsupportedWebP,
                     .unknownFormat:
                    XCTFail("trial \(trial): \(error) from PNG bytes in memory")
                }
            } catch {
                XCTFail("trial \(trial): untyped error \(error)")
            }
        }
        print("300 corrupted files: \(outcomes.sorted { $0.key < $1.key })")
        XCTAssertGreaterThan(outcomes["crcMismatch", default: 0], 0, "no flip reached a chunk CRC check")
    }

    func testAFailedWriteLeavesNoFileBehind() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        let image = try PixelImage.readPNG(path: IOTestSupport.fixture("png/rgb8.png"))
        // The destination is an existing directory: the rename fails after the data is written.
        let blocked = "\(directory)/blocked.png"
        try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: false)
        XCTAssertThrowsError(try image.writePNG(path: blocked)) { error in
            print("write onto a directory: \(error)")
            guard case ImageIOError.fileSystem(let file, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, blocked)
        }
        XCTAssertThrowsError(try image.writePNG(path: "\(directory)/missing/out.png"))
        XCTAssertEqual(try IOTestSupport.listing(directory), ["blocked.png"])
    }

    func testMissingFileNamesThePath() {
        let path = "/nonexistent/restore/input.png"
        XCTAssertThrowsError(try PixelImage.readPNG(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }
}

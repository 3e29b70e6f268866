import ImageFiles
import Runtime
import XCTest

/// WebP through libwebp: lossless writing is exact, the fixtures Pillow wrote
/// (scripts/fixtures/make_webp_fixtures.py) read, and every way a file can be wrong gives a
/// typed error that names the file.
final class IOWebPTests: XCTestCase {
    private func image(width: Int, height: Int, colorType: PixelImage.ColorType, bitDepth: Int = 8, seed: UInt64 = 1) -> PixelImage {
        var state = seed
        let samples = (0..<width * height * colorType.channels).map { _ -> Float in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state % 256) / 255
        }
        return PixelImage(width: width, height: height, bitDepth: bitDepth, colorType: colorType, samples: samples)
    }

    private func fixture(_ name: String) throws -> [UInt8] {
        try IOTestSupport.readFile(IOTestSupport.fixture("webp/\(name)"))
    }

    func testLosslessRoundTripIsExactAndGrayComesBackAsRGB() throws {
        for colorType in [PixelImage.ColorType.rgb, .rgba] {
            let original = image(width: 37, height: 21, colorType: colorType)
            let encoded = try original.encodeWebP()
            XCTAssertEqual(FileKind(sniffing: encoded), .webp)
            let decoded = try PixelImage.decodeWebP(encoded)
            XCTAssertEqual(decoded, original, "\(colorType)")
        }
        // WebP stores colour only: gray is written as R = G = B, alpha kept.
        for (gray, colour) in [(PixelImage.ColorType.gray, PixelImage.ColorType.rgb), (.grayAlpha, .rgba)] {
            let original = image(width: 9, height: 7, colorType: gray)
            let decoded = try PixelImage.decodeWebP(try original.encodeWebP())
            XCTAssertEqual(decoded.colorType, colour)
            let channels = gray.channels, wide = colour.channels
            for pixel in 0..<63 {
                let expected = original.bytes[pixel * channels]
                XCTAssertEqual(Array(decoded.bytes[(pixel * wide)..<(pixel * wide + 3)]), [expected, expected, expected])
                if gray.hasAlpha { XCTAssertEqual(decoded.bytes[pixel * wide + 3], original.bytes[pixel * channels + 1]) }
            }
        }
    }

    func testPillowsFilesRead() throws {
        let expected: [(String, Int, Int, PixelImage.ColorType)] = [
            ("lossy.webp", 32, 24, .rgb), ("lossy_alpha.webp", 32, 24, .rgba), ("lossless.webp", 32, 24, .rgb),
            ("lossless_alpha.webp", 32, 24, .rgba), ("odd_size.webp", 7, 5, .rgb),
        ]
        for (name, width, height, colorType) in expected {
            let decoded = try PixelImage.decodeWebP(try fixture(name), source: name)
            XCTAssertEqual([decoded.width, decoded.height], [width, height], name)
            XCTAssertEqual(decoded.colorType, colorType, name)
            XCTAssertEqual(PixelImage.pixelCount(header: Array(try fixture(name).prefix(30)), format: .webp), width * height, name)
        }
        // Pillow stored lossless.webp's pixels exactly; the lossy one is close to them.
        let exact = try PixelImage.decodeWebP(try fixture("lossless.webp"))
        let lossy = try PixelImage.decodeWebP(try fixture("lossy.webp"))
        // Lossy WebP halves the chroma resolution, so single pixels of this noisy image move
        // far; on average they stay within a few levels.
        let differences = zip(exact.bytes, lossy.bytes).map { abs(Int($0) - Int($1)) }
        let mean = Double(differences.reduce(0, +)) / Double(differences.count)
        print(String(format: "lossy WebP at quality 80 against the lossless file: mean difference %.2f levels, largest %d",
                     mean, differences.max() ?? 0))
        XCTAssertLessThan(mean, 12)
    }

    func testAnimationsAreRefused() throws {
        let animated = try fixture("animated.webp")
        XCTAssertThrowsError(try PixelImage.decodeWebP(animated, source: "moving.webp")) { error in
            guard case .unsupportedWebP(let file, let detail)? = error as? ImageIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "moving.webp")
            XCTAssertTrue(detail.contains("animation"), detail)
        }
    }

    func testReadersSayWhatTheyExpectedAndWhatTheyFound() throws {
        let png = try image(width: 8, height: 8, colorType: .rgb).encodePNG()
        XCTAssertThrowsError(try PixelImage.decodeWebP(png, source: "photo.webp")) { error in
            XCTAssertEqual(error as? ImageIOError, .notWebP(file: "photo.webp", found: .png))
            XCTAssertEqual("\(error)", "photo.webp: not a WebP file: expected a RIFF header of form WEBP, found a PNG image")
        }
        XCTAssertThrowsError(try PixelImage.decodeWebP([], source: "empty.webp")) { error in
            XCTAssertEqual(error as? ImageIOError, .notWebP(file: "empty.webp", found: .empty))
        }
        let webp = try image(width: 8, height: 8, colorType: .rgb).encodeWebP()
        XCTAssertThrowsError(try PixelImage.decodePNG(webp, source: "photo.png")) { error in
            XCTAssertEqual(error as? ImageIOError, .notPNG(file: "photo.png", found: .webp))
        }
    }

    /// The simple API decodes the whole bitstream or nothing: a cut file is an error, never
    /// an image with a missing part.
    func testTruncatedAndCorruptWebPsAreRefused() throws {
        for name in ["lossy.webp", "lossless_alpha.webp"] {
            let bytes = try fixture(name)
            for cut in [bytes.count - 1, bytes.count / 2, 40, 20, 12] {
                XCTAssertThrowsError(try PixelImage.decodeWebP(Array(bytes.prefix(cut)), source: "cut.webp"), "\(name) cut at \(cut)") { error in
                    guard case .corruptWebP(let file, let detail)? = error as? ImageIOError else {
                        return XCTFail("\(name) cut at \(cut): \(error)")
                    }
                    XCTAssertEqual(file, "cut.webp")
                    XCTAssertFalse(detail.isEmpty)
                }
            }
        }
        let webp = try image(width: 64, height: 48, colorType: .rgba).encodeWebP()
        var state: UInt64 = 0x2545F4914F6CDD1D
        var refused = 0
        for trial in 0..<200 {
            var bytes = webp
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            bytes[12 + Int(state % UInt64(bytes.count - 12))] ^= UInt8(truncatingIfNeeded: state >> 32) | 1
            do {
                let decoded = try PixelImage.decodeWebP(bytes, source: "flipped.webp")
                XCTAssertEqual(decoded.bytes.count, decoded.width * decoded.height * decoded.colorType.channels, "trial \(trial)")
            } catch let error as ImageIOError {
                refused += 1
                XCTAssertTrue(error.description.hasPrefix("flipped.webp: "), "trial \(trial): \(error)")
            }
        }
        print("lossless WebP with one byte changed: \(refused) of 200 refused, the rest decoded to a full image")
        XCTAssertGreaterThan(refused, 0)
    }

    func testHugeDeclaredSizeIsRefusedBeforeAllocating() throws {
        // A lossless (VP8L) header declaring 16384 × 16384 (2^28 pixels, above the 2^27 limit):
        // signature 0x2F, then width − 1 and height − 1 in 14 bits each, alpha, version 0.
        let bits: UInt32 = 0x3FFF | 0x3FFF << 14
        let header = [0x2F] + (0..<4).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) }
        let chunk = Array("VP8L".utf8) + [UInt8(header.count + 1), 0, 0, 0] + header + [0, 0]
        let riff = Array("RIFF".utf8) + [UInt8(chunk.count + 4), 0, 0, 0] + Array("WEBP".utf8) + chunk
        XCTAssertEqual(PixelImage.pixelCount(header: riff, format: .webp), 1 << 28)
        XCTAssertThrowsError(try PixelImage.decodeWebP(riff, source: "huge.webp")) { error in
            guard case .tooLarge(let file, _)? = error as? ImageIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "huge.webp")
        }
    }

    func testSixteenBitsAreRefusedUnlessMadeCompatibleAndFilesFollowTheExtension() throws {
        let deep = image(width: 8, height: 8, colorType: .rgba, bitDepth: 16)
        XCTAssertThrowsError(try deep.encodeWebP(name: "out.webp")) { error in
            guard case .unsupportedWebP(let file, let detail)? = error as? ImageIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "out.webp")
            XCTAssertTrue(detail.contains("16-bit"), detail)
        }
        XCTAssertEqual(deep.loss(in: .webp), "16-bit precision (WebP holds 8 bits)")
        let compatible = deep.compatible(with: .webp)
        XCTAssertEqual([compatible.bitDepth, compatible.colorType.channels], [8, 4], "alpha kept")

        let directory = try IOTestSupport.scratchDirectory(for: self)
        try compatible.write(path: "\(directory)/a.WebP")
        XCTAssertEqual(FileKind(sniffing: try IOTestSupport.readFile("\(directory)/a.WebP")), .webp)
        XCTAssertEqual(try PixelImage.read(path: "\(directory)/a.WebP"), compatible)
        XCTAssertThrowsError(try deep.write(path: "\(directory)/b.webp"))
        XCTAssertEqual(try IOTestSupport.listing(directory), ["a.WebP"], "a refused write leaves nothing")
    }
}

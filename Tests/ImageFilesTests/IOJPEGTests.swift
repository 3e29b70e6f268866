import ImageFiles
import Runtime
import XCTest

/// JPEG through libjpeg-turbo: what is read and written, and every way a file can be
/// wrong giving a typed error that names the file and says what was expected.
final class IOJPEGTests: XCTestCase {
    /// A smooth photo-like image (JPEG's lossy coding keeps it within a few levels).
    private func photo(width: Int, height: Int, colorType: PixelImage.ColorType) -> PixelImage {
        let channels = colorType.channels
        var samples = [Float](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    samples[(y * width + x) * channels + c] = 0.5 + 0.4 * Float(sin(Double(x + 3 * c) / 9) * cos(Double(y) / 7))
                }
            }
        }
        return PixelImage(width: width, height: height, bitDepth: 8, colorType: colorType, samples: samples)
    }

    func testGrayAndRGBRoundTripWithinJPEGLoss() throws {
        for colorType in [PixelImage.ColorType.gray, .rgb] {
            let image = photo(width: 37, height: 21, colorType: colorType)
            let encoded = try image.encodeJPEG()
            XCTAssertEqual(Array(encoded.prefix(3)), [0xFF, 0xD8, 0xFF])
            let decoded = try PixelImage.decodeJPEG(encoded)
            XCTAssertEqual([decoded.width, decoded.height, decoded.bitDepth], [37, 21, 8])
            XCTAssertEqual(decoded.colorType, colorType)
            let largest = zip(image.bytes, decoded.bytes).map { abs(Int($0) - Int($1)) }.max() ?? 255
            print("JPEG \(colorType) at quality \(PixelImage.jpegQuality): largest difference \(largest) levels")
            XCTAssertLessThanOrEqual(largest, 8, "\(colorType)")
        }
    }

    func testReadAndWriteFollowTheExtension() throws {
        let directory = try IOTestSupport.scratchDirectory(for: self)
        let image = photo(width: 16, height: 16, colorType: .rgb)
        for name in ["a.jpg", "b.JPEG", "c.png"] {
            try image.write(path: "\(directory)/\(name)")
            let bytes = try IOTestSupport.readFile("\(directory)/\(name)")
            XCTAssertEqual(FileKind(sniffing: bytes), name.hasSuffix("png") ? .png : .jpeg, name)
            XCTAssertEqual(try PixelImage.read(path: "\(directory)/\(name)").width, 16)
        }
        XCTAssertThrowsError(try image.write(path: "\(directory)/d.bmp")) { error in
            XCTAssertEqual(error as? ImageIOError, .unknownFormat(file: "\(directory)/d.bmp"))
            XCTAssertTrue("\(error)".contains(".png, .jpg, .jpeg or .webp"), "\(error)")
        }
        XCTAssertEqual(try IOTestSupport.listing(directory), ["a.jpg", "b.JPEG", "c.png"])
    }

    func testReadersSayWhatTheyExpectedAndWhatTheyFound() throws {
        let jpeg = try photo(width: 8, height: 8, colorType: .rgb).encodeJPEG()
        let png = try photo(width: 8, height: 8, colorType: .rgb).encodePNG()
        XCTAssertThrowsError(try PixelImage.decodeJPEG(png, source: "photo.jpg")) { error in
            XCTAssertEqual(error as? ImageIOError, .notJPEG(file: "photo.jpg", found: .png))
            XCTAssertEqual("\(error)", "photo.jpg: not a JPEG file: expected the FF D8 FF start marker, found a PNG image")
        }
        XCTAssertThrowsError(try PixelImage.decodePNG(jpeg, source: "photo.png")) { error in
            XCTAssertEqual(error as? ImageIOError, .notPNG(file: "photo.png", found: .jpeg))
        }
        XCTAssertThrowsError(try NumPyFile.decode(jpeg, source: "photo.npy")) { error in
            XCTAssertEqual("\(error)", "photo.npy: not a .npy file: expected the \\x93NUMPY magic, found a JPEG image")
        }
        XCTAssertThrowsError(try PixelImage.decodeJPEG([], source: "empty.jpg")) { error in
            XCTAssertEqual(error as? ImageIOError, .notJPEG(file: "empty.jpg", found: .empty))
        }
    }

    /// libjpeg fills a cut or damaged stream with grey and only warns; here that is an error.
    func testTruncatedAndCorruptJPEGsAreRefusedNotPaddedWithGrey() throws {
        let jpeg = try photo(width: 64, height: 48, colorType: .rgb).encodeJPEG()
        for cut in [jpeg.count - 2, jpeg.count / 2, 200, 20, 3] {
            XCTAssertThrowsError(try PixelImage.decodeJPEG(Array(jpeg.prefix(cut)), source: "cut.jpg"), "cut at \(cut)") { error in
                guard case .corruptJPEG(let file, let detail)? = error as? ImageIOError else {
                    return XCTFail("cut at \(cut): \(error)")
                }
                XCTAssertEqual(file, "cut.jpg")
                XCTAssertFalse(detail.isEmpty)
            }
        }
        var state: UInt64 = 0x2545F4914F6CDD1D
        var refused = 0
        for trial in 0..<200 {
            var bytes = jpeg
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            bytes[3 + Int(state % UInt64(bytes.count - 3))] ^= UInt8(truncatingIfNeeded: state >> 32) | 1
            do {
                let image = try PixelImage.decodeJPEG(bytes, source: "flipped.jpg")
                XCTAssertEqual(image.bytes.count, image.width * image.height * image.colorType.channels, "trial \(trial)")
            } catch let error as ImageIOError {
                refused += 1
                XCTAssertTrue(error.description.hasPrefix("flipped.jpg: "), "trial \(trial): \(error)")
            }
        }
        print("JPEG with one byte changed: \(refused) of 200 refused, the rest decoded to a full image")
    }

    func testHugeDeclaredSizeIsRefusedBeforeAllocating() throws {
        var jpeg = try photo(width: 8, height: 8, colorType: .gray).encodeJPEG()
        // The SOF0 marker FF C0: length (2), precision (1), height (2), width (2).
        guard let sof = (0..<jpeg.count - 1).first(where: { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 }) else {
            return XCTFail("no SOF0 marker")
        }
        // 32752 × 32752: within JPEG's 65500 a side, above the 2^27-pixel limit.
        jpeg[sof + 5] = 0x7F; jpeg[sof + 6] = 0xF0
        jpeg[sof + 7] = 0x7F; jpeg[sof + 8] = 0xF0
        XCTAssertThrowsError(try PixelImage.decodeJPEG(jpeg, source: "huge.jpg")) { error in
            guard case .tooLarge(let file, _)? = error as? ImageIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "huge.jpg")
        }
    }

    func testAlphaAndSixteenBitsAreRefusedUnlessMadeCompatible() throws {
        let rgba = photo(width: 8, height: 8, colorType: .rgba)
        XCTAssertThrowsError(try rgba.encodeJPEG(name: "out.jpg")) { error in
            guard case .unsupportedJPEG(let file, let detail)? = error as? ImageIOError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "out.jpg")
            XCTAssertTrue(detail.contains("alpha"), detail)
        }
        let deep = PixelImage(width: 8, height: 8, bitDepth: 16, colorType: .gray, samples: Array(repeating: 0.25, count: 64))
        XCTAssertNotNil(deep.jpegLoss)
        let compatible = deep.jpegCompatible()
        XCTAssertEqual([compatible.bitDepth, compatible.colorType.channels], [8, 1])
        XCTAssertEqual(try PixelImage.decodeJPEG(try compatible.encodeJPEG()).colorType, .gray)
        XCTAssertEqual(rgba.jpegCompatible().colorType, .rgb)
    }
}

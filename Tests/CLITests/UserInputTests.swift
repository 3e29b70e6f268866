import Foundation
import Format
import ImageFiles
import Runtime
import XCTest

/// What a new user gives `rrun` and `convert` (issue 17): the command as documented,
/// flags checked before any work, outputs in the format their name says, memory bounded
/// by default, wrong inputs refused with what was expected and what to do.
final class UserInputTests: CommandLineTestCase {
    private func bytes(_ path: String) throws -> [UInt8] { try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) }

    func testImageModeWithoutOutputWritesBesideTheInputAndNeverOverwrites() throws {
        let model = try convertedDnCNN()
        let input = try writePNG("photo.png", width: 20, height: 18)
        let original = try bytes(input)
        let first = try run("rrun", [model, input])
        XCTAssertEqual(first.status, 0, first.stderr)
        let written = path("photo.restored.png")
        XCTAssertTrue(first.stdout.contains("wrote \(written) (20×18)"), first.stdout)
        XCTAssertEqual(FileKind(sniffing: try bytes(written)), .png)
        let restored = try bytes(written)

        try Data("keep me".utf8).write(to: URL(fileURLWithPath: written))
        assertFails(try run("rrun", [model, input]), mentioning: "--force")
        XCTAssertEqual(try String(contentsOfFile: written, encoding: .utf8), "keep me")
        let forced = try run("rrun", [model, input, "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try bytes(written), restored)

        assertFails(try run("rrun", [model, input, "-o", input]), mentioning: "is the input")
        XCTAssertEqual(try bytes(input), original)
        let jpegInput = path("photo.jpg")
        try PixelImage.readPNG(path: input).write(path: jpegInput)
        let fromJPEG = try run("rrun", [model, jpegInput])
        XCTAssertEqual(fromJPEG.status, 0, fromJPEG.stderr)
        XCTAssertEqual(FileKind(sniffing: try bytes(path("photo.restored.jpg"))), .jpeg)
    }

    func testFlagsAreCheckedBeforeAnyWork() throws {
        let model = try convertedDnCNN()
        let input = try writePNG("in.png", width: 20, height: 18)
        let output = path("out.png")
        for (arguments, mention) in [
            (["--tile", "-5"], "--tile must be 0 (chosen for you) or at least 16 pixels, found -5"),
            (["--tile", "1"], "found 1"),
            (["--overlap", "-3"], "--overlap must be 0 or more"),
            (["--tile", "32", "--overlap", "32"], "must be smaller than --tile 32"),
            (["--threads", "0"], "--threads must be 1 to"),
            (["--threads", "-2"], "found -2"),
            (["--max-memory", "lots"], "--max-memory takes a size"),
            (["--max-memory", "0"], "--max-memory takes a size"),
        ] {
            assertFails(try run("rrun", [model, input, "-o", output] + arguments), mentioning: mention, noFileAt: output)
        }
        // --ref of another size or colour is found before the model runs, not after.
        let small = try writePNG("small.png", width: 8, height: 8)
        assertFails(try run("rrun", [model, input, "-o", output, "--ref", small]),
                    mentioning: "--ref \(small) is 8×8, the output will be 20×18", noFileAt: output)
        let gray = try writePNG("gray.png", width: 20, height: 18, colorType: .gray)
        assertFails(try run("rrun", [model, input, "-o", output, "--ref", gray]), mentioning: "is gray", noFileAt: output)
        assertFails(try run("rrun", [model, input, "-o", path("missing/out.png")]), mentioning: "does not exist")
    }

    func testOutputFormatFollowsTheExtensionAndUnknownOnesAreRefused() throws {
        let model = try convertedDnCNN()
        let input = try writePNG("in.png", width: 20, height: 18, colorType: .rgba)
        for (name, kind) in [("out.png", FileKind.png), ("out.jpg", .jpeg), ("OUT.JPEG", .jpeg)] {
            let outcome = try run("rrun", [model, input, "-o", path(name)])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            XCTAssertEqual(FileKind(sniffing: try bytes(path(name))), kind, name)
            // RGBA into JPEG: the alpha channel cannot go along, and rrun says so.
            XCTAssertEqual(outcome.stderr.contains("JPEG cannot hold its alpha channel"), kind == .jpeg, outcome.stderr)
        }
        XCTAssertEqual(try PixelImage.read(path: path("out.jpg")).colorType, .rgb)
        assertFails(try run("rrun", [model, input, "-o", path("out.npy")]), mentioning: "image mode writes .png, .jpg, .jpeg or .webp",
                    noFileAt: path("out.npy"))
        assertFails(try run("rrun", [model, input, "-o", path("out.bmp")]), mentioning: "not '\(path("out.bmp"))'",
                    noFileAt: path("out.bmp"))
        let tensor = Self.fixtures.appendingPathComponent("models/dncnn/32x32/input_0.npy").path
        assertFails(try run("rrun", [model, tensor, "-o", path("y.png")]), mentioning: "tensor mode writes .npy",
                    noFileAt: path("y.png"))
        assertFails(try run("rrun", [model, path("in.tiff"), "-o", path("y.png")]), mentioning: "neither an image")
    }

    func testReadersSayWhatTheyExpectedWhenGivenAnotherKindOfFile() throws {
        let model = try convertedDnCNN()
        let png = try writePNG("in.png", width: 20, height: 18)
        let disguised = path("photo.jpg")
        try FileManager.default.copyItem(atPath: png, toPath: disguised)
        assertFails(try run("rrun", [model, disguised, "-o", path("out.png")]),
                    mentioning: "not a JPEG file: expected the FF D8 FF start marker, found a PNG image", noFileAt: path("out.png"))
        let asTensor = path("photo.npy")
        try FileManager.default.copyItem(atPath: png, toPath: asTensor)
        assertFails(try run("rrun", [model, asTensor, "-o", path("out.npy")]),
                    mentioning: "not a .npy file: expected the \\x93NUMPY magic, found a PNG image", noFileAt: path("out.npy"))
    }

    func testModelWithoutPixelContractWarnsNamingTheConvertFlags() throws {
        let model = path("bare.rgraph")
        let converted = try run("convert", [Self.fixtures.appendingPathComponent("models/dncnn/model.onnx").path, "-o", model])
        XCTAssertEqual(converted.status, 0, converted.stderr)
        let input = try writePNG("in.png", width: 20, height: 18)
        let outcome = try run("rrun", [model, input, "-o", path("out.png")])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("records no pixel contract"), outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("--range") && outcome.stderr.contains("--residual"), outcome.stderr)
        let recorded = try run("rrun", [try convertedDnCNN(), input, "-o", path("out2.png")])
        XCTAssertFalse(recorded.stderr.contains("pixel contract"), recorded.stderr)
    }

    func testAnONNXModelIsToldToBeConvertedFirst() throws {
        let onnx = Self.fixtures.appendingPathComponent("models/dncnn/model.onnx").path
        let input = try writePNG("in.png", width: 20, height: 18)
        assertFails(try run("rrun", [onnx, input, "-o", path("out.png")]),
                    mentioning: "convert it first with `convert \(onnx) -o model.rgraph`", noFileAt: path("out.png"))
    }

    func testBothToolsPrintTheirVersion() throws {
        for tool in ["rrun", "convert"] {
            let outcome = try run(tool, ["--version"])
            XCTAssertEqual(outcome.status, 0, outcome.stderr)
            XCTAssertEqual(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(RestoreVersion.string)")
        }
    }

    func testTensorOfAnotherDTypeIsRefusedWithTheFix() throws {
        let model = try convertedDnCNN()
        // What np.save writes for np.ones((1, 3, 8, 8), dtype): version 1.0, a header padded
        // to 128 bytes in all, then 192 little-endian elements.
        for (descr, one, name) in [("<i8", [1, 0, 0, 0, 0, 0, 0, 0], "int64"), ("<f8", [0, 0, 0, 0, 0, 0, 0xF0, 0x3F], "float64")] {
            let tensor = path("x-\(name).npy")
            var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': (1, 3, 8, 8), }".utf8)
            header += Array(repeating: UInt8(ascii: " "), count: 127 - 10 - header.count) + [UInt8(ascii: "\n")]
            var file: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header
            for _ in 0..<192 { file += one.map(UInt8.init) }
            try Data(file).write(to: URL(fileURLWithPath: tensor))
            XCTAssertEqual(try NumPyFile.read(path: tensor).floats, Array(repeating: 1, count: 192))
            assertFails(try run("rrun", [model, tensor, "-o", path("y.npy")]),
                        mentioning: "input 'image' takes float32 data, given \(name); convert it first (in NumPy: x.astype(np.float32))",
                        noFileAt: path("y.npy"))
        }
    }

    /// Without --tile the tiles come from the memory budget; with the overlap derived from
    /// the model's receptive field the tiled result is the whole image's, byte for byte.
    func testTilesAreChosenFromTheMemoryBudgetWithTheModelsOverlap() throws {
        let model = try convertedDnCNN()
        let input = try writePNG("in.png", width: 96, height: 96)
        let whole = try run("rrun", [model, input, "-o", path("whole.png"), "-v"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertTrue(whole.stdout.contains("tiles 96×96 (the whole image fits the memory budget)"), whole.stdout)
        let tiled = try run("rrun", [model, input, "-o", path("tiled.png"), "-v", "--max-memory", "3.5M"])
        XCTAssertEqual(tiled.status, 0, tiled.stderr)
        XCTAssertTrue(tiled.stdout.contains("tiles 64×64 (the largest tile that fits the memory budget), overlap 24 "
                                            + "(4 × the receptive field radius 6 px derived from the graph)"), tiled.stdout)
        XCTAssertEqual(try bytes(path("tiled.png")), try bytes(path("whole.png")))
        // --tile alone takes the model's overlap too, kept below half the tile.
        let small = try run("rrun", [model, input, "-o", path("small.png"), "-v", "--tile", "32"])
        XCTAssertTrue(small.stdout.contains("tiles 32×32 (as asked), overlap 15"), small.stdout)
        assertFails(try run("rrun", [model, input, "-o", path("none.png"), "--max-memory", "100K"]),
                    mentioning: "more than the 100.0 KiB it may take; give a larger --max-memory", noFileAt: path("none.png"))
    }

    /// Sizes far beyond memory are errors with a message and exit 1, not an abort.
    func testImpossibleAllocationsAreErrorsNotAborts() throws {
        let model = try convertedDnCNN()
        let bench = try run("rrun", ["bench", model, "--shape", "1,3,100000,100000", "--runs", "1", "--warmup", "0"])
        assertFails(bench, mentioning: "[1, 3, 100000, 100000]")
        XCTAssertEqual(bench.status, 1)
        let overflow = try run("rrun", ["bench", model, "--shape", "1,3,4000000000,4000000000"])
        assertFails(overflow, mentioning: "needs more bytes than an Int counts")
        let tile = try run("rrun", [model, try writePNG("in.png", width: 40, height: 40), "-o", path("out.png"),
                                    "--tile", "32", "--max-memory", "20K"])
        assertFails(tile, mentioning: "give a smaller --tile or a larger --max-memory", noFileAt: path("out.png"))
    }
}

import Foundation
import ImageFiles
import Runtime
import TestSupport
import XCTest

/// `rrun MODEL IN_DIR -o OUT_DIR [--ref REF_DIR] [--report REPORT.html]`: every PNG and
/// JPEG of a folder, as image mode would restore it one by one.
final class FolderModeTests: CommandLineTestCase {
    /// A PNG of seeded random samples under `folder`.
    @discardableResult
    private func writeImage(_ folder: String, _ name: String, width: Int, height: Int, bitDepth: Int = 8,
                            colorType: PixelImage.ColorType = .rgb, seed: UInt64) throws -> String {
        var random = SplitMix64(seed: seed)
        let samples = (0..<width * height * colorType.channels).map { _ in Float(random.next() % 1000) / 999 }
        try FileManager.default.createDirectory(atPath: path(folder), withIntermediateDirectories: true)
        let file = path(folder + "/" + name)
        try PixelImage(width: width, height: height, bitDepth: bitDepth, colorType: colorType, samples: samples)
            .writePNG(path: file)
        return file
    }

    private func contents(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path(folder)).sorted()
    }

    /// Three images of different layouts, their references, a truncated PNG and files that
    /// are not inputs.
    private func makeFolders() throws {
        let layouts: [(String, PixelImage.ColorType, Int, Int, Int)] = [
            ("a.png", .rgb, 8, 23, 17), ("b.png", .gray, 16, 20, 19), ("c.png", .rgba, 8, 31, 12),
        ]
        for (index, (name, colorType, bitDepth, width, height)) in layouts.enumerated() {
            try writeImage("in", name, width: width, height: height, bitDepth: bitDepth, colorType: colorType,
                           seed: UInt64(index))
            try writeImage("ref", name, width: width, height: height, bitDepth: bitDepth, colorType: colorType,
                           seed: UInt64(index + 10))
        }
        let good = try Data(contentsOf: URL(fileURLWithPath: path("in/a.png")))
        try good.prefix(good.count - 30).write(to: URL(fileURLWithPath: path("in/bad.png")))
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: path("in/notes.txt")))
        try writeImage("in", ".hidden.png", width: 8, height: 8, seed: 99)
    }

    func testFolderModeRestoresEveryImageAsImageModeDoesAndMeasuresThem() throws {
        let model = try convertedDnCNN()
        try makeFolders()
        let outcome = try run("rrun", [model, path("in"), "-o", path("out"), "--ref", path("ref"),
                                       "--jobs", "2", "--threads", "2", "--tile", "16", "--overlap", "4"])
        // The truncated file is named and makes the exit status non-zero; the others are restored.
        XCTAssertNotEqual(outcome.status, 0, outcome.stdout)
        XCTAssertTrue(outcome.stderr.contains(path("in/bad.png")), outcome.stderr)
        XCTAssertFalse(outcome.stderr.contains("Fatal error"), outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("restored 3, already complete 0, failed 1 of 4 images"), outcome.stdout)
        XCTAssertTrue(outcome.stdout.contains("mean over 3 images against"), outcome.stdout)
        XCTAssertEqual(try contents("out"), ["a.png", "b.png", "c.png", "metrics.csv"])

        for name in ["a.png", "b.png", "c.png"] {
            // Byte for byte what image mode writes (here on one session of 2 threads, there
            // on two sessions of 1 thread each), so bit depth, colour type and alpha are kept.
            let single = path("single-" + name)
            let alone = try run("rrun", [model, path("in/" + name), "-o", single, "--tile", "16", "--overlap", "4"])
            XCTAssertEqual(alone.status, 0, alone.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path("out/" + name))),
                           try Data(contentsOf: URL(fileURLWithPath: single)), name)
            let input = try PixelImage.readPNG(path: path("in/" + name))
            let output = try PixelImage.readPNG(path: path("out/" + name))
            XCTAssertEqual([output.width, output.height, output.bitDepth], [input.width, input.height, input.bitDepth])
            XCTAssertEqual(output.colorType, input.colorType)
        }

        let rows = try String(contentsOfFile: path("out/metrics.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first, "name,input_psnr,input_ssim,output_psnr,output_ssim")
        XCTAssertEqual(rows.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).first ?? "" },
                       ["a.png", "b.png", "bad.png", "c.png"])
        XCTAssertEqual(rows[3], "bad.png,,,,")
        // a.png's row holds the same PSNR and SSIM image mode prints for it.
        let measured = try run("rrun", [model, path("in/a.png"), "--ref", path("ref/a.png"), "--tile", "16", "--overlap", "4"])
        let cells = rows[1].split(separator: ",").dropFirst().compactMap { Double($0) }
        XCTAssertEqual(cells.count, 4, String(rows[1]))
        XCTAssertTrue(measured.stdout.contains(String(format: "input : PSNR %.2f dB  SSIM %.4f", cells[0], cells[1])), measured.stdout)
        XCTAssertTrue(measured.stdout.contains(String(format: "output: PSNR %.2f dB  SSIM %.4f", cells[2], cells[3])), measured.stdout)
    }

    func testARerunSkipsCompleteOutputsAndRedoesMissingAndStaleOnes() throws {
        let model = try convertedDnCNN()
        try makeFolders()
        try FileManager.default.removeItem(atPath: path("in/bad.png"))
        let first = try run("rrun", [model, path("in"), "-o", path("out"), "--threads", "2", "-v"])
        XCTAssertEqual(first.status, 0, first.stderr)
        // Small images: one per kernel thread.
        XCTAssertTrue(first.stdout.contains("3 to restore: 2 at a time × 1 kernel threads"), first.stdout)
        XCTAssertTrue(first.stdout.contains("restored 3, already complete 0, failed 0 of 3 images"), first.stdout)

        // a.png's output goes missing, as if the run had been killed writing it (by a process
        // that no longer exists: pid 2^22 + 1 is above Linux's pid_max), b.png's input changes
        // after its output was written.
        try FileManager.default.removeItem(atPath: path("out/a.png"))
        try Data("partial".utf8).write(to: URL(fileURLWithPath: path("out/.a.png.4194305-0-12345.tmp")))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: path("in/b.png"))
        let kept = try FileManager.default.attributesOfItem(atPath: path("out/c.png"))[.modificationDate] as? Date
        let second = try run("rrun", [model, path("in"), "-o", path("out")])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("restored 2, already complete 1, failed 0 of 3 images"), second.stdout)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path("out/c.png"))[.modificationDate] as? Date, kept)
        XCTAssertEqual(try contents("out"), ["a.png", "b.png", "c.png"])
    }

    func testFolderModeRefusesBadFoldersBeforeAnyWork() throws {
        let model = try convertedDnCNN()
        try makeFolders()
        assertFails(try run("rrun", [model, path("in")]), mentioning: "-o OUT_DIR")
        assertFails(try run("rrun", [model, path("in"), "-o", path("in")]), mentioning: "is the input folder")
        assertFails(try run("rrun", [model, path("in"), "-o", path("out"), "--ref", path("ref/a.png")]),
                    mentioning: "is not a folder")
        try FileManager.default.createDirectory(atPath: path("empty"), withIntermediateDirectories: true)
        assertFails(try run("rrun", [model, path("empty"), "-o", path("out")]), mentioning: "holds no .png, .jpg, .jpeg or .webp files")
        assertFails(try run("rrun", [model, path("in/a.png"), "-o", path("x.png"), "--report", path("r.html")]),
                    mentioning: "folder mode")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/a.png")))
    }

    /// A JPEG of seeded random samples under `folder`.
    private func writeJPEG(_ folder: String, _ name: String, width: Int, height: Int, seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let samples = (0..<width * height * 3).map { _ in Float(random.next() % 1000) / 999 }
        try FileManager.default.createDirectory(atPath: path(folder), withIntermediateDirectories: true)
        try PixelImage(width: width, height: height, bitDepth: 8, colorType: .rgb, samples: samples)
            .writeJPEG(path: path(folder + "/" + name))
    }

    private func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(file))))
    }

    /// The line image mode's -v prints for the tiles it chose.
    private func tilingLine(_ stdout: String) -> String? {
        stdout.split(separator: "\n").first { $0.hasPrefix("tiles ") }.map(String.init)
    }

    func testFolderModeTakesJPEGsAndSharesTheMemoryBudgetAmongItsJobs() throws {
        let model = try convertedDnCNN()
        try writeImage("in", "a.png", width: 40, height: 36, seed: 1)
        try writeJPEG("in", "d.jpg", width: 32, height: 28, seed: 2)
        try writeImage("in", "e.png", width: 24, height: 20, colorType: .rgba, seed: 3)
        let outcome = try run("rrun", [model, path("in"), "-o", path("out"), "--jobs", "2", "--threads", "2",
                                       "--max-memory", "64M", "-v"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        // Two images in flight hold half of --max-memory each, so together they stay within it.
        XCTAssertTrue(outcome.stdout.contains("3 to restore: 2 at a time × 1 kernel threads, 32.0 MiB of the memory budget each"),
                      outcome.stdout)
        XCTAssertEqual(try contents("out"), ["a.png", "d.jpg", "e.png"])
        XCTAssertEqual(Array(try bytes("out/d.jpg").prefix(2)), [0xFF, 0xD8], "a JPEG in, a JPEG out")
        for name in ["a.png", "d.jpg", "e.png"] {
            // Each image chose its tiles from its share: image mode given that share picks the
            // same tiles and writes the same bytes.
            let alone = try run("rrun", [model, path("in/" + name), "-o", path("single-" + name), "--max-memory", "32M", "-v"])
            XCTAssertEqual(alone.status, 0, alone.stderr)
            let tiling = try XCTUnwrap(tilingLine(alone.stdout), alone.stdout)
            XCTAssertTrue(tiling.hasSuffix("of the 32.0 MiB memory budget"), tiling)
            XCTAssertTrue(outcome.stdout.contains("\(name): \(tiling)\n"), "\(name): \(outcome.stdout)")
            XCTAssertEqual(try bytes("out/" + name), try bytes("single-" + name), name)
        }

        // Given --max-memory without --jobs, one job (large images, or one kernel thread) has all of it.
        let one = try run("rrun", [model, path("in"), "-o", path("out1"), "--threads", "1", "--max-memory", "64M", "-v"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("1 at a time × 1 kernel threads, 64.0 MiB of the memory budget each"), one.stdout)
    }

    /// How many images run at once follows their sizes read from the headers, JPEG's start
    /// of frame as PNG's IHDR, also past an EXIF segment. The files are cut short after their
    /// headers, so they fail quickly once decoded; the choice is printed before.
    func testJobsFollowJPEGSizesReadFromTheirHeaders() throws {
        let model = try convertedDnCNN()
        for (folder, side) in [("small", 64), ("large", 600)] {
            for name in ["p.jpg", "q.jpg"] {
                try writeJPEG("whole", name, width: side, height: side, seed: 5)
                let jpeg = try bytes("whole/" + name)
                let exif: [UInt8] = [0xFF, 0xE1, 0x00, 0x10] + Array("Exif".utf8) + [UInt8](repeating: 0, count: 10)
                try FileManager.default.createDirectory(atPath: path(folder), withIntermediateDirectories: true)
                try Data(jpeg.prefix(2) + exif + jpeg.dropFirst(2).prefix(700))
                    .write(to: URL(fileURLWithPath: path(folder + "/" + name)))
            }
            let outcome = try run("rrun", [model, path(folder), "-o", path("out-" + folder), "--threads", "2", "-v"])
            XCTAssertNotEqual(outcome.status, 0, "the files are cut short")
            XCTAssertTrue(outcome.stdout.contains("2 to restore: \(side == 64 ? 2 : 1) at a time"), folder + ": " + outcome.stdout)
        }
    }

    func testFolderModeWritesTheFormatAskedForUnderEachInputsStem() throws {
        let model = try convertedDnCNN()
        try writeJPEG("in", "d.jpg", width: 32, height: 28, seed: 2)
        try writeImage("in", "e.png", width: 24, height: 20, colorType: .rgba, seed: 3)
        let png = try run("rrun", [model, path("in"), "-o", path("png"), "--format", "png", "--report", path("report.html")])
        XCTAssertEqual(png.status, 0, png.stderr)
        XCTAssertEqual(try contents("png"), ["d.png", "e.png"])
        let restored = try PixelImage.readPNG(path: path("png/d.png"))
        XCTAssertEqual([restored.width, restored.height], [32, 28])
        // The report shows each output under its own name beside the input under the input's.
        let page = try String(contentsOfFile: path("report.html"), encoding: .utf8)
        XCTAssertTrue(page.contains("src=\"png/d.png\"") && page.contains("src=\"in/d.jpg\""), page)

        // JPEG holds no alpha: the output keeps the colour and says so.
        let jpeg = try run("rrun", [model, path("in"), "-o", path("jpeg"), "--format", "jpg"])
        XCTAssertEqual(jpeg.status, 0, jpeg.stderr)
        XCTAssertEqual(try contents("jpeg"), ["d.jpg", "e.jpg"])
        XCTAssertTrue(jpeg.stderr.contains("e.jpg: JPEG cannot hold its alpha channel"), jpeg.stderr)
        XCTAssertEqual(try PixelImage.readJPEG(path: path("jpeg/e.jpg")).colorType, .rgb)
        // A rerun finds the outputs under their new names complete.
        let again = try run("rrun", [model, path("in"), "-o", path("jpeg"), "--format", "jpeg"])
        XCTAssertTrue(again.stdout.contains("restored 0, already complete 2, failed 0 of 2 images"), again.stdout)

        // Two inputs that would share an output name are refused before any work.
        try writeImage("in", "d.png", width: 8, height: 8, seed: 4)
        assertFails(try run("rrun", [model, path("in"), "-o", path("clash"), "--format", "png"]),
                    mentioning: "d.jpg and d.png would both be written as d.png")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("clash")))
        assertFails(try run("rrun", [model, path("in"), "-o", path("clash"), "--format", "webm"]), mentioning: "--format")
    }

    func testWebPInAndOutInFolderAndImageMode() throws {
        let model = try convertedDnCNN()
        try writeImage("in", "a.png", width: 20, height: 18, bitDepth: 16, seed: 1)
        var random = SplitMix64(seed: 6)
        let samples = (0..<22 * 16 * 4).map { _ in Float(random.next() % 1000) / 999 }
        try PixelImage(width: 22, height: 16, bitDepth: 8, colorType: .rgba, samples: samples).writeWebP(path: path("in/w.webp"))
        let outcome = try run("rrun", [model, path("in"), "-o", path("out")])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(try contents("out"), ["a.png", "w.webp"])
        let restored = try PixelImage.readWebP(path: path("out/w.webp"))
        XCTAssertEqual([restored.width, restored.height], [22, 16])
        XCTAssertEqual(restored.colorType, .rgba, "alpha kept")
        let alone = try run("rrun", [model, path("in/w.webp"), "-o", path("single.webp")])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        XCTAssertTrue(alone.stdout.contains("wrote \(path("single.webp")) (22×16)"), alone.stdout)
        XCTAssertEqual(try bytes("out/w.webp"), try bytes("single.webp"))

        // WebP holds 8 bits: a 16-bit PNG written as WebP says what it loses.
        let webp = try run("rrun", [model, path("in"), "-o", path("webp"), "--format", "webp"])
        XCTAssertEqual(webp.status, 0, webp.stderr)
        XCTAssertEqual(try contents("webp"), ["a.webp", "w.webp"])
        XCTAssertTrue(webp.stderr.contains("a.webp: WebP cannot hold 16-bit precision"), webp.stderr)
        XCTAssertEqual(try PixelImage.readWebP(path: path("webp/a.webp")).bitDepth, 8)
    }

    func testImageModeNamesItsDefaultOutputAfterTheFormatAskedFor() throws {
        let model = try convertedDnCNN()
        try writeImage("in", "a.png", width: 20, height: 18, seed: 1)
        let outcome = try run("rrun", [model, path("in/a.png"), "--format", "jpeg"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertTrue(outcome.stdout.contains("wrote \(path("in/a.restored.jpg"))"), outcome.stdout)
        XCTAssertEqual(Array(try bytes("in/a.restored.jpg").prefix(2)), [0xFF, 0xD8])
        assertFails(try run("rrun", [model, path("in/a.png"), "-o", path("x.png"), "--format", "jpeg"]),
                    mentioning: "is not a jpeg file")
    }

    /// The report in Debian's chromium, headless: a script added in front of the page
    /// records any error, then after loading checks that every image decoded and that a
    /// click on a column's title sorts the table, and writes what it found into the title.
    func testReportLoadsInAHeadlessBrowserAndShowsEveryImage() throws {
        guard let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        }) else {
            throw XCTSkip("chromium is not installed: scripts/install-deps.sh installs it (apt-get install chromium)")
        }
        let model = try convertedDnCNN()
        try makeFolders()
        let report = path("report/index.html")
        try FileManager.default.createDirectory(atPath: path("report"), withIntermediateDirectories: true)
        let outcome = try run("rrun", [model, path("in"), "-o", path("out"), "--ref", path("ref"), "--report", report])
        XCTAssertNotEqual(outcome.status, 0, "bad.png fails")
        let page = try String(contentsOfFile: report, encoding: .utf8)
        // Three images with input, output and reference, each shown whole and enlarged.
        XCTAssertEqual(page.components(separatedBy: "<img ").count - 1, 3 * 3 * 2)

        let check = """
            <script>
            const problems = [];
            window.addEventListener("error", event => problems.push("error: " + event.message));
            window.addEventListener("load", () => {
              const pictures = Array.from(document.images);
              const broken = pictures.filter(image => !image.complete || image.naturalWidth === 0);
              broken.forEach(image => problems.push("not shown: " + image.getAttribute("src")));
              const header = document.querySelectorAll("#metrics th")[3];  // output PSNR
              header.click(); header.click();  // descending
              const column = Array.from(document.querySelectorAll("#metrics tbody tr")).map(row => row.cells[3].dataset.value);
              const values = column.filter(value => value !== "").map(Number);
              const sorted = values.every((value, i) => i === 0 || values[i - 1] >= value) && column[column.length - 1] === "";
              document.title = "CHECK " + JSON.stringify({images: pictures.length, problems, sorted});
            });
            </script>
            """
        let checkPage = path("report/check.html")
        try page.replacingOccurrences(of: "<head>", with: "<head>\n" + check)
            .write(toFile: checkPage, atomically: true, encoding: .utf8)
        let browsed = try run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + path("chromium"),
                                        "--virtual-time-budget=10000", "--dump-dom", "file://" + checkPage], timeout: 120)
        XCTAssertEqual(browsed.status, 0, browsed.stderr)
        guard let start = browsed.stdout.range(of: "<title>CHECK "), let end = browsed.stdout.range(of: "</title>") else {
            return XCTFail("the check did not run: \(browsed.stdout.prefix(500)) \(browsed.stderr.suffix(1000))")
        }
        let found = String(browsed.stdout[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&quot;", with: "\"")
        print("chromium: \(found)")
        XCTAssertEqual(found, #"{"images":18,"problems":[],"sorted":true}"#)
    }
}

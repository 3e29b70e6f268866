import Foundation
import ImageFiles
import Runtime
import TestSupport
import XCTest

/// `rrun MODEL IN_DIR -o OUT_DIR [--ref REF_DIR] [--report REPORT.html]`: every PNG of a
/// folder, as image mode would restore it one by one.
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
        assertFails(try run("rrun", [model, path("empty"), "-o", path("out")]), mentioning: "holds no .png files")
        assertFails(try run("rrun", [model, path("in/a.png"), "-o", path("x.png"), "--report", path("r.html")]),
                    mentioning: "folder mode")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/a.png")))
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

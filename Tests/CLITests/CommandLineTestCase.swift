import Foundation
import ImageFiles
import Runtime
import XCTest

/// What the command-line tests share: a scratch folder per test, running the built
/// executables, the converted DnCNN fixture and small PNGs.
class CommandLineTestCase: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repository.appendingPathComponent("Tests/Fixtures")
    /// The executables sit beside the test bundle in the build folder.
    static let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("restore-cli-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `tool` (an executable built beside the tests, or an absolute path) to its end,
    /// or until `timeout` seconds have passed, when it is terminated.
    func run(_ tool: String, _ arguments: [String], timeout: TimeInterval? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = tool.hasPrefix("/") ? URL(fileURLWithPath: tool) : Self.binaries.appendingPathComponent(tool)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let timeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { if process.isRunning { process.terminate() } }
        }
        // stderr is read on another thread so that neither pipe fills up and blocks the tool.
        let stderr = ReadToEnd(err.fileHandleForReading)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                       stderr: String(decoding: stderr.wait(), as: UTF8.self))
    }

    func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    /// Asserts a failed run: non-zero exit, a message containing `mention`, no `output`.
    func assertFails(_ outcome: Outcome, mentioning mention: String, noFileAt output: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(outcome.status, 0, "should fail: \(outcome.stdout)", file: file, line: line)
        XCTAssertTrue(outcome.stderr.contains(mention), "stderr should name \(mention): \(outcome.stderr)", file: file, line: line)
        XCTAssertFalse(outcome.stderr.contains("Fatal error"), outcome.stderr, file: file, line: line)
        if let output {
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(output) left behind", file: file, line: line)
        }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []
        XCTAssertFalse(leftovers.contains { $0.hasPrefix(".") }, "temporary files left: \(leftovers)", file: file, line: line)
    }

    /// Converts the DnCNN fixture as a 0…1 denoiser (its graph adds the input back itself).
    func convertedDnCNN() throws -> String {
        let output = path("dncnn.rgraph")
        let outcome = try run("convert", [Self.fixtures.appendingPathComponent("models/dncnn/model.onnx").path,
                                          "-o", output, "--range", "0,1", "--task", "denoise"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        return output
    }

    func writePNG(_ name: String, width: Int, height: Int, bitDepth: Int = 8,
                          colorType: PixelImage.ColorType = .rgb) throws -> String {
        let channels = colorType.channels
        let samples = (0..<width * height * channels).map { i in Float((i * 37) % 255) / 255 }
        let image = PixelImage(width: width, height: height, bitDepth: bitDepth, colorType: colorType, samples: samples)
        try image.writePNG(path: path(name))
        return path(name)
    }
}

/// Everything a file handle gives until its end, read on another thread.
private final class ReadToEnd: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchGroup()

    init(_ handle: FileHandle) {
        DispatchQueue.global().async(group: done) { self.data = handle.readDataToEndOfFile() }
    }

    /// The data, once the end is reached (the group orders the write before this read).
    func wait() -> Data {
        done.wait()
        return data
    }
}

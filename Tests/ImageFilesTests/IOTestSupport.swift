import Foundation
import Runtime
import TestSupport
import XCTest

/// Paths of the image/NPY/metric fixtures (built by scripts/fixtures/make_metric_cases.py),
/// scratch directories for files the tests write, and seeded random tensors.
enum IOTestSupport {
    /// A tensor of `shape` filled with TestSupport's seeded values.
    static func random(_ shape: [Int], seed: UInt64) -> HostTensor {
        HostTensor(shape: shape, floats: xorshiftFloats(count: shape.reduce(1, *), seed: seed))
    }

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images")

    static func fixture(_ relative: String) -> String {
        fixtures.appendingPathComponent(relative).path
    }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture(relative))))
    }

    /// A fresh empty directory, removed when the test ends.
    static func scratchDirectory(for test: XCTestCase) throws -> String {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("restore-io-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// The names in `directory`, sorted (to show that no temporary file was left behind).
    static func listing(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    static func writeFile(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

import Format
import Foundation
import XCTest
@testable import Convert

/// Access to Tests/Fixtures/importer (written by scripts/fixtures/make_importer_cases.py).
enum ImporterFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/importer")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func load(_ name: String) throws -> Graph { try ONNXImporter().importGraph(at: url(name)) }
}

extension Graph {
    /// The node writing `value`, failing the test when there is none.
    func producer(of value: String, file: StaticString = #filePath, line: UInt = #line) throws -> Node {
        try XCTUnwrap(nodes.first { $0.outputs.contains(value) }, "no node produces \(value)", file: file, line: line)
    }

    /// The constant `name`'s values as floats, failing the test when it is missing.
    func floats(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Float] {
        try XCTUnwrap(constants[name], "no constant \(name)", file: file, line: line).floatValues()
    }

    func ints(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Int64] {
        try XCTUnwrap(constants[name], "no constant \(name)", file: file, line: line).intValues()
    }

    /// Whether every node's inputs are graph inputs, constants or outputs of earlier nodes.
    var isTopologicallySorted: Bool {
        var available = Set(inputs.map(\.name)).union(constants.keys)
        for node in nodes {
            guard node.inputs.allSatisfy({ $0.isEmpty || available.contains($0) }) else { return false }
            available.formUnion(node.outputs)
        }
        return true
    }
}

/// Asserts that `body` throws an `ONNXImportError` whose message starts with `file` and
/// contains every one of `fragments`; returns the error.
@discardableResult
func assertImportError(_ file: String, contains fragments: [String] = [], _ body: () throws -> Graph,
                       sourceFile: StaticString = #filePath, line: UInt = #line) -> ONNXImportError? {
    do {
        _ = try body()
        XCTFail("import of \(file) succeeded", file: sourceFile, line: line)
        return nil
    } catch let error as ONNXImportError {
        let message = error.description
        print("  \(message)")
        XCTAssertTrue(message.hasPrefix("\(file): "), "message does not start with the file: \(message)", file: sourceFile, line: line)
        for fragment in fragments {
            XCTAssertTrue(message.contains(fragment), "'\(fragment)' missing from: \(message)", file: sourceFile, line: line)
        }
        return error
    } catch {
        XCTFail("unexpected error type \(error)", file: sourceFile, line: line)
        return nil
    }
}

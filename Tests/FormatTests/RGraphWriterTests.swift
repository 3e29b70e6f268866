import Foundation
import XCTest
@testable import Format

/// The writer never leaves a half-written or stray file.
final class RGraphWriterTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try FileManager.default.removeItem(atPath: directory) }

    private func directoryListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    func testWritingIntoAMissingDirectoryFailsAndLeavesNothing() throws {
        let path = directory + "/missing/model.rgraph"
        XCTAssertThrowsError(try RGraphWriter.write(sampleGraph(), to: path)) { error in
            guard case .cannotWrite(let file, _)? = error as? RGraphError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path)
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        XCTAssertEqual(try directoryListing(), [])
    }

    func testAnExistingFileIsReplacedOnlyOnceTheNewOneIsComplete() throws {
        let path = directory + "/model.rgraph"
        try RGraphWriter.write(Graph(metadata: ["version": "old"]), to: path)
        var observedTemporary = ""
        try RGraphWriter.write(sampleGraph(), to: path) { (temporary) throws(RGraphError) in
            observedTemporary = temporary
            // Just before the rename: the target is still the old model, the new one complete beside it.
            XCTAssertEqual(try? RGraphReader.read(contentsOf: path).graph.metadata["version"], "old")
            XCTAssertEqual(try? RGraphReader.read(contentsOf: temporary).graph.nodes.count, 4)
            XCTAssertTrue(temporary.hasPrefix(directory + "/"), "temporary \(temporary) is not beside the target")
        }
        XCTAssertFalse(observedTemporary.isEmpty)
        assertSameGraph(try RGraphReader.read(contentsOf: path).graph, sampleGraph())
        XCTAssertEqual(try directoryListing(), ["model.rgraph"])
    }

    func testAFailureBeforeTheRenameKeepsTheOldFileAndRemovesTheTemporary() throws {
        let path = directory + "/model.rgraph"
        try RGraphWriter.write(Graph(metadata: ["version": "old"]), to: path)
        let before = try fileBytes(path)
        XCTAssertThrowsError(try RGraphWriter.write(sampleGraph(), to: path) { (_) throws(RGraphError) in
            throw RGraphError.cannotWrite(file: path, reason: "injected failure")
        })
        XCTAssertEqual(try fileBytes(path), before)
        XCTAssertEqual(try directoryListing(), ["model.rgraph"])
    }

    func testTheWriterRefusesShapesTheReaderWouldRefuse() throws {
        let path = directory + "/model.rgraph"
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(-1), .symbol("H")])])
        XCTAssertThrowsError(try RGraphWriter.write(graph, to: path)) { error in
            guard case .badShape(path, "x", _)? = error as? RGraphError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try directoryListing(), [])
    }
}

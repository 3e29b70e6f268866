import Foundation
import XCTest
@testable import Convert

/// `convert` chooses the importer of a file from `Importers.all`.
final class ImporterTests: XCTestCase {
    func testAnONNXFileIsReadByTheONNXImporterWhateverTheCaseOfItsExtension() throws {
        for path in ["model.onnx", "dir/Model.ONNX"] {
            let importer = try Importers.importer(for: URL(fileURLWithPath: path))
            XCTAssertTrue(importer is ONNXImporter, path)
        }
    }

    func testAFileNoImporterReadsIsRefusedNamingItAndTheFormatsRead() {
        XCTAssertThrowsError(try Conversion.convert("weights/model.pt", options: ConversionOptions())) { error in
            XCTAssertEqual(error as? ConversionError, .unknownFormat("weights/model.pt"))
            XCTAssertEqual("\(error)", "weights/model.pt: not a model file convert reads (ONNX (.onnx), safetensors (.safetensors))")
        }
    }
}

import Convert
import Foundation
import FuzzSupport

/// One ONNX model through the importer: protobuf decoding, tensor decoding and lowering.
/// No directory is given, so external-data references fail with an error, never a read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = try? ONNXImporter.importModel(bytes: Data(fuzzInput(data, size)), fileName: "fuzz.onnx", directory: nil)
    return 0
}

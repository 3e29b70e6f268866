import FuzzSupport
import Runtime

/// One PNG through the decoder (libpng behind CImageIO, then conversion to planar floats).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = try? PixelImage.decodePNG(fuzzInput(data, size), source: "fuzz.png")
    return 0
}

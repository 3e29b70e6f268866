import FuzzSupport
import Runtime

/// One `.npy` file through the NumPy reader (header dictionary, dtype, shape, payload).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    _ = try? NumPyFile.decode(fuzzInput(data, size), source: "fuzz.npy")
    return 0
}

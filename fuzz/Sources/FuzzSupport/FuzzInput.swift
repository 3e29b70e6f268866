/// The bytes libFuzzer hands to `LLVMFuzzerTestOneInput`, as an array (empty for size 0,
/// where libFuzzer may pass a null pointer).
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

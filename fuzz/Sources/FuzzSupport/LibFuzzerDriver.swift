import CLibFuzzer

/// The test the running fuzzer calls; libFuzzer's callback is a C function pointer, which
/// cannot capture it.
private var currentTest: (([UInt8]) -> Void)?

/// Runs libFuzzer with the process's arguments, calling `test` on every input; returns
/// libFuzzer's exit status. Errors the test throws are the expected outcome for bad input
/// and are ignored; crashes, hangs and memory blow-ups are what libFuzzer reports.
public func runLibFuzzer(_ test: @escaping ([UInt8]) throws -> Void) -> Int32 {
    currentTest = { bytes in _ = try? test(bytes) }
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        // libFuzzer may pass a null pointer for an empty input.
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        currentTest?(bytes)
        return 0
    }
}

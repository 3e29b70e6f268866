// libFuzzer's entry for programs that have their own main (compiler-rt FuzzerDriver.cpp).
// SwiftPM gives every executable a main of its own, so the targets call this instead of
// relying on libFuzzer's main; the library is linked by -sanitize=fuzzer.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

import Foundation
import FuzzSupport
import ImageFiles

// One `.npy` file through the NumPy reader (header dictionary, dtype, shape, payload).
exit(runLibFuzzer { bytes in
    _ = try NumPyFile.decode(bytes, source: "fuzz.npy")
})

import Format
import Foundation
import FuzzSupport

// One `.rgraph` image through the reader, its checksums repaired so that mutations reach
// the JSON header and tensor table (see `RGraphChecksumRepair`).
exit(runLibFuzzer { bytes in
    _ = try RGraphChecksumRepair.repaired(bytes).withUnsafeBytes { buffer throws(RGraphError) in
        try RGraphReader.read(bytes: buffer, name: "fuzz.rgraph")
    }
})

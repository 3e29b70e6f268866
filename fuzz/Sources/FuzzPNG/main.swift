import Foundation
import FuzzSupport
import ImageFiles
import Runtime

// One PNG through the decoder (libpng behind CImageIO, then conversion to planar floats),
// its chunk CRCs repaired so that mutations reach the chunk parsers (see PNGChecksumRepair).
exit(runLibFuzzer { bytes in
    _ = try PixelImage.decodePNG(PNGChecksumRepair.repaired(bytes), source: "fuzz.png")
})

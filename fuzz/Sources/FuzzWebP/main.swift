import Foundation
import FuzzSupport
import ImageFiles
import Runtime

// One WebP through the decoder (libwebp, header and size checks first); what decodes is
// encoded again (lossless, exact), so the writer sees every size and layout the reader
// can produce.
exit(runLibFuzzer { bytes in
    let image = try PixelImage.decodeWebP(bytes, source: "fuzz.webp")
    _ = try image.encodeWebP()
})

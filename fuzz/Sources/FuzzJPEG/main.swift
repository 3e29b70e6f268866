import Foundation
import FuzzSupport
import ImageFiles
import Runtime

// One JPEG through the decoder (libjpeg-turbo behind CImageIO); what decodes is encoded
// again, so the writer sees every size and layout the reader can produce.
exit(runLibFuzzer { bytes in
    let image = try PixelImage.decodeJPEG(bytes, source: "fuzz.jpg")
    _ = try image.encodeJPEG()
})

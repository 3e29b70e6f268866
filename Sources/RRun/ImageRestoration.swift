import Foundation
import ImageFiles
import Runtime

/// PSNR (dB) and SSIM of an image against a clean reference.
struct Quality {
    var psnr: Double
    var ssim: Double
}

/// How close an input and its restoration are to a clean reference. `input` is nil when
/// the input's size differs from the reference's (a super-resolution model's input).
struct QualityPair {
    var input: Quality?
    var output: Quality
}

/// Restoring one image with the options given on the command line: the steps image mode
/// (`rrun MODEL IN.png`) and folder mode (`rrun MODEL IN_DIR`) share.
struct ImageRestoration {
    let restorer: Restorer
    let tile: Int
    let overlap: Int?
    /// Bytes one restoration may hold (`--max-memory`): tiles are chosen to fit it.
    let budget: Int
    let extraInputs: [String: HostTensor]

    /// The tiles and overlap for `image` (`Restorer.tiling`), before any work.
    func tiling(for image: PixelImage) throws -> Restorer.Tiling {
        let size = restorer.outputSize(height: image.height, width: image.width)
        let outputBytes = MemoryLimit.elementCount([size.height, size.width, image.colorType.channels, image.bitDepth / 8])
        return try restorer.tiling(height: image.height, width: image.width, tile: tile, overlap: overlap, budget: budget,
                                   imageBytes: image.bytes.count + (outputBytes ?? Int.max / 2))
    }

    /// The restored image, of `image`'s bit depth and colour type; `progress` gets (tiles done, tiles).
    func restore(_ image: PixelImage, progress: ((Int, Int) -> Void)? = nil) throws -> PixelImage {
        try restore(image, tiling: try tiling(for: image), progress: progress)
    }

    /// The same in the tiles `tiling` chose.
    func restore(_ image: PixelImage, tiling: Restorer.Tiling, progress: ((Int, Int) -> Void)? = nil) throws -> PixelImage {
        try restorer.restore(image, tiling: tiling, extraInputs: extraInputs, progress: progress)
    }

    /// PSNR and SSIM of `input` (when of the reference's size) and of `output` against
    /// `reference`, whose file is `referencePath`, on the colour channels in 0…1 as stored.
    static func measure(input: PixelImage, output: PixelImage, reference: PixelImage,
                        referencePath: String) throws -> QualityPair {
        let clean = reference.rgbTensor()
        guard output.width == reference.width && output.height == reference.height else {
            throw ReferenceSizeMismatch(reference: referencePath, referenceSize: [reference.width, reference.height],
                                        outputSize: [output.width, output.height])
        }
        let inputQuality = input.width == reference.width && input.height == reference.height
            ? try quality(input.rgbTensor(), clean) : nil
        return QualityPair(input: inputQuality, output: try quality(output.rgbTensor(), clean))
    }

    private static func quality(_ tensor: HostTensor, _ reference: HostTensor) throws -> Quality {
        Quality(psnr: try ImageMetrics.psnr(tensor, reference, dataRange: 1),
                ssim: try ImageMetrics.ssim(tensor, reference, dataRange: 1))
    }
}

/// A reference image whose size is not the restored image's.
struct ReferenceSizeMismatch: Error, CustomStringConvertible {
    let reference: String
    let referenceSize: [Int]
    let outputSize: [Int]

    var description: String {
        "the reference \(reference) is \(referenceSize[0])×\(referenceSize[1]), the output is \(outputSize[0])×\(outputSize[1])"
    }
}

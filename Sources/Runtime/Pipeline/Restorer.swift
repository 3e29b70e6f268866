import Format

/// Restores images with a model according to its `RestorationContract`: maps pixels to
/// the model's range and normalisation, pads to `restore.multiple` (reflect), adds the
/// input back for residual models, crops, and maps the output back to pixels. Large
/// images run in overlapping tiles blended with linear feathering (`TileAxis`), so memory
/// stays bounded and no seam shows.
///
/// Memory: besides the model (its weights, mapped from the file, and the arena of one
/// tile's plan) a restoration holds the input image, the output image and one band of
/// float accumulators as tall as a tile and as wide as the output. Each tile's float input
/// is made from the input image when the tile runs, and output rows are stored in the
/// output image (rounded to its bit depth, for a `PixelImage`) as soon as no later tile
/// reaches them. A 4096×4096 8-bit RGB photo in 384² tiles holds 48 + 48 MiB of pixels and
/// an 18 MiB band, against 192 MiB for each full float copy of it.
public final class Restorer {
    public let session: Session
    public let contract: RestorationContract
    private let fixedSize: (height: Int, width: Int)?

    public init(session: Session) throws {
        self.session = session
        let contract = try RestorationContract(graph: session.model.graph)
        self.contract = contract
        let inputInfo = session.model.graph.inputs.first { $0.name == contract.input }
        self.fixedSize = inputInfo.flatMap(RestorationContract.fixedSize)
    }

    /// Size of the restored image for an input of `height`×`width`.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        (height * contract.scale, width * contract.scale)
    }

    /// Restores `image` into a new image of the same bit depth and colour type, larger by
    /// `restore.scale`: colour as `PixelImage.writeColour` stores it, alpha carried over
    /// (repeated over scale×scale blocks). `tile` 0 means the model's default;
    /// `extraInputs` feed the model's other inputs (an attribute vector, say). `progress`
    /// is called after each tile with (done, total).
    public func restore(_ image: PixelImage, tile: Int = 0, overlap: Int? = nil,
                        extraInputs: [String: HostTensor] = [:],
                        progress: ((Int, Int) -> Void)? = nil) throws -> PixelImage {
        let size = outputSize(height: image.height, width: image.width)
        var output = image.blankCopy(width: size.width, height: size.height, scale: contract.scale)
        try restore(image, into: &output, tile: tile, overlap: overlap, extraInputs: extraInputs, progress: progress)
        return output
    }

    /// Restores `image` ([1, 3, H, W], pixel values 0…1) and returns [1, 3, H·s, W·s]
    /// pixel values (not clamped), with the options of `restore(_:tile:overlap:…)` above.
    public func restore(_ image: HostTensor, tile: Int = 0, overlap: Int? = nil,
                        extraInputs: [String: HostTensor] = [:],
                        progress: ((Int, Int) -> Void)? = nil) throws -> HostTensor {
        guard image.rank == 4, image.shape[0] == 1, image.shape[1] == 3, image.shape[2] > 0, image.shape[3] > 0 else {
            throw RestoreError.imageShape(image.shape)
        }
        let size = outputSize(height: image.shape[2], width: image.shape[3])
        var output = PlanarRGB(height: size.height, width: size.width)
        try restore(PlanarRGB(image), into: &output, tile: tile, overlap: overlap, extraInputs: extraInputs,
                    progress: progress)
        return HostTensor(shape: [1, 3, size.height, size.width], floats: output.values)
    }

    /// The tile size used for an image of `height`×`width` when `requestedTile` is asked
    /// for (0: the model's default): a fixed-size model's own size, else the requested or
    /// default square, else the whole image. Not clipped to the image.
    public func tileSize(height: Int, width: Int, requested requestedTile: Int) throws -> (height: Int, width: Int) {
        if let fixed = fixedSize {
            if requestedTile > 0 && (requestedTile != fixed.height || requestedTile != fixed.width) {
                throw RestoreError.tileForFixedModel(requested: requestedTile, fixed: [fixed.height, fixed.width])
            }
            return fixed
        }
        let size = requestedTile > 0 ? requestedTile : contract.tile
        return size > 0 ? (size, size) : (height, width)
    }

    /// The shape the model runs at for a region of `height`×`width` pixels: the fixed
    /// size, or the region padded up to `restore.multiple`.
    public func modelInputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        let multiple = contract.multiple
        return (fixedSize?.height ?? (height + multiple - 1) / multiple * multiple,
                fixedSize?.width ?? (width + multiple - 1) / multiple * multiple)
    }

    /// Bytes of float buffers a restoration of a `height`×`width` image in `tile`s holds
    /// besides the model's arena and the input and output images: the accumulator band and
    /// one tile's input, result and weights.
    public func workingBytes(height: Int, width: Int, tile: (height: Int, width: Int)) -> Int {
        let scale = contract.scale
        let regionHeight = min(tile.height, height), regionWidth = min(tile.width, width)
        let model = modelInputSize(height: regionHeight, width: regionWidth)
        let band = 3 * regionHeight * scale * width * scale
        let tileFloats = 3 * model.height * model.width * (1 + scale * scale) + 3 * regionHeight * regionWidth * scale * scale
        return 4 * (band + tileFloats)
    }

    /// The restoration itself, from any pixel source into any row sink.
    ///
    /// Tile rows run top to bottom. Output row y accumulates the weighted results of the
    /// tiles covering it in a ring of `tile.height × scale` rows; before tile row r starts,
    /// every row above its top is complete and goes to `output`.
    func restore<Input: RestorationInput, Output: RestorationOutput>(
        _ input: Input, into output: inout Output, tile requestedTile: Int, overlap requestedOverlap: Int?,
        extraInputs: [String: HostTensor], progress: ((Int, Int) -> Void)?
    ) throws {
        let (height, width) = (input.height, input.width)
        let tile = try tileSize(height: height, width: width, requested: requestedTile)
        let overlap = requestedOverlap ?? contract.overlap
        guard overlap >= 0, overlap < min(tile.height, tile.width) || (height <= tile.height && width <= tile.width) else {
            throw RestoreError.overlap(overlap, tile: min(tile.height, tile.width))
        }
        let scale = contract.scale
        let rows = TileAxis(size: height, tile: tile.height, overlap: overlap, scale: scale)
        let columns = TileAxis(size: width, tile: tile.width, overlap: overlap, scale: scale)
        let outWidth = width * scale, outHeight = height * scale
        let ringRows = min(tile.height, height) * scale
        let rowFloats = 3 * outWidth
        var ring = [Float](repeating: 0, count: ringRows * rowFloats)
        var finishedRows = 0
        func finishRows(below end: Int) {
            ring.withUnsafeMutableBufferPointer { ring in
                guard let base = ring.baseAddress else { return }
                while finishedRows < end {
                    let row = base + (finishedRows % ringRows) * rowFloats
                    output.writeColour(row: finishedRows, from: row, planeStride: outWidth)
                    row.update(repeating: 0, count: rowFloats)
                    finishedRows += 1
                }
            }
        }
        let total = rows.starts.count * columns.starts.count
        var done = 0
        for (row, y) in rows.starts.enumerated() {
            finishRows(below: y * scale)
            for (column, x) in columns.starts.enumerated() {
                let (h, w) = (rows.lengths[row], columns.lengths[column])
                let result = try runRegion(input, y: y, x: x, height: h, width: w, extraInputs: extraInputs)
                let (th, tw) = (h * scale, w * scale)
                let rowWeights = rows.weights[row], columnWeights = columns.weights[column]
                ring.withUnsafeMutableBufferPointer { ring in
                    for ty in 0..<th {
                        let target = ((y * scale + ty) % ringRows) * rowFloats + x * scale
                        for c in 0..<3 {
                            for tx in 0..<tw {
                                ring[target + c * outWidth + tx] +=
                                    rowWeights[ty] * columnWeights[tx] * result[(c * th + ty) * tw + tx]
                            }
                        }
                    }
                }
                done += 1
                progress?(done, total)
            }
        }
        finishRows(below: outHeight)
    }

    /// Runs one region of the image through the model: normalise, pad (reflect) to the
    /// model's size or multiple, run, add the input for residual models, crop, and map
    /// back to pixel values. Returns 3×(h·s)×(w·s) planar floats.
    private func runRegion<Input: RestorationInput>(_ image: Input, y: Int, x: Int, height h: Int, width w: Int,
                                                    extraInputs: [String: HostTensor]) throws -> [Float] {
        let (paddedHeight, paddedWidth) = modelInputSize(height: h, width: w)
        let (low, high) = contract.range.bounds
        let gains = (0..<3).map { (high - low) / contract.std[$0] }
        let offsets = (0..<3).map { (low - contract.mean[$0]) / contract.std[$0] }
        let sourceColumns = (0..<paddedWidth).map { Self.reflect($0, size: w) }
        var pixels = [Float](repeating: 0, count: 3 * w)
        var input = [Float](repeating: 0, count: 3 * paddedHeight * paddedWidth)
        pixels.withUnsafeMutableBufferPointer { pixels in
            guard let row = pixels.baseAddress else { return }
            for py in 0..<paddedHeight {
                image.readColour(row: y + Self.reflect(py, size: h), columns: x..<(x + w), into: row, planeStride: w)
                for c in 0..<3 {
                    let target = (c * paddedHeight + py) * paddedWidth
                    for px in 0..<paddedWidth {
                        input[target + px] = pixels[c * w + sourceColumns[px]] * gains[c] + offsets[c]
                    }
                }
            }
        }
        var inputs = extraInputs
        inputs[contract.input] = HostTensor(shape: [1, 3, paddedHeight, paddedWidth], floats: input)
        let scale = contract.scale
        let expected = [1, 3, paddedHeight * scale, paddedWidth * scale]
        guard let output = try session.run(inputs)[contract.output] else {
            throw RestoreError.outputShape(expected: expected, found: [])
        }
        guard output.shape == expected else { throw RestoreError.outputShape(expected: expected, found: output.shape) }
        let values = output.floats
        let (outHeight, outWidth) = (h * scale, w * scale)
        var result = [Float](repeating: 0, count: 3 * outHeight * outWidth)
        for c in 0..<3 {
            let std = contract.std[c], mean = contract.mean[c]
            for oy in 0..<outHeight {
                for ox in 0..<outWidth {
                    let index = (c * expected[2] + oy) * expected[3] + ox
                    var value = values[index]
                    if contract.residual { value += input[index] }
                    result[(c * outHeight + oy) * outWidth + ox] = (value * std + mean - low) / (high - low)
                }
            }
        }
        return result
    }

    /// Mirror index for reflect padding (edge pixel not repeated), folding as often as
    /// needed when the padding exceeds the region.
    static func reflect(_ index: Int, size: Int) -> Int {
        guard size > 1 else { return 0 }
        let period = 2 * (size - 1)
        let folded = index % period
        return folded < size ? folded : period - folded
    }
}

/// Where the restorer reads colour from, a row segment at a time, in 0…1.
protocol RestorationInput {
    var height: Int { get }
    var width: Int { get }
    /// Writes R, G and B of pixels `columns` of row `y` at `planes[i]`,
    /// `planes[planeStride + i]` and `planes[2 * planeStride + i]`.
    func readColour(row y: Int, columns: Range<Int>, into planes: UnsafeMutablePointer<Float>, planeStride: Int)
}

/// Where the restorer puts finished rows, each once, top to bottom.
protocol RestorationOutput {
    /// Stores row `y` from R, G and B planes of the output's width, `planeStride` apart.
    mutating func writeColour(row y: Int, from planes: UnsafePointer<Float>, planeStride: Int)
}

extension PixelImage: RestorationInput, RestorationOutput {}

/// A planar RGB float image (a [1, 3, H, W] tensor's elements), as input or output.
struct PlanarRGB: RestorationInput, RestorationOutput {
    let height: Int
    let width: Int
    private(set) var values: [Float]

    init(height: Int, width: Int) {
        self.height = height
        self.width = width
        values = [Float](repeating: 0, count: 3 * height * width)
    }

    init(_ tensor: HostTensor) {
        height = tensor.shape[2]
        width = tensor.shape[3]
        values = tensor.floats
    }

    func readColour(row y: Int, columns: Range<Int>, into planes: UnsafeMutablePointer<Float>, planeStride: Int) {
        for c in 0..<3 {
            let start = (c * height + y) * width
            for (i, x) in columns.enumerated() { planes[c * planeStride + i] = values[start + x] }
        }
    }

    mutating func writeColour(row y: Int, from planes: UnsafePointer<Float>, planeStride: Int) {
        for c in 0..<3 {
            let start = (c * height + y) * width
            for x in 0..<width { values[start + x] = planes[c * planeStride + x] }
        }
    }
}

public enum RestoreError: Error, CustomStringConvertible, Equatable {
    case imageShape([Int])
    case outputShape(expected: [Int], found: [Int])
    case tileForFixedModel(requested: Int, fixed: [Int])
    case overlap(Int, tile: Int)

    public var description: String {
        switch self {
        case .imageShape(let shape): "the image tensor should be [1, 3, H, W], found \(shape)"
        case .outputShape(let expected, let found):
            "the model's output should be \(expected) for this input (restore.scale), found \(found)"
        case .tileForFixedModel(let requested, let fixed):
            "the model was exported for \(fixed[0])×\(fixed[1]) images, so it runs in tiles of that size, not \(requested)"
        case .overlap(let overlap, let tile): "tile overlap \(overlap) must be smaller than the tile (\(tile))"
        }
    }
}

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
    /// Whether the model records how its pixels are scaled (`restore.range` or
    /// `restore.residual`, given to `convert` as --range and --residual). Without it the
    /// contract's defaults (0…1, not residual) are a guess, and a wrong guess runs without
    /// error and restores badly.
    public let recordsPixelContract: Bool
    /// The overlap `restore.overlap` records, nil when absent.
    public let recordedOverlap: Int?
    /// How far an output pixel sees into the input (`ReceptiveField`), nil when not derivable.
    public let receptiveFieldRadius: Int?
    private let fixedSize: (height: Int, width: Int)?

    /// The overlap for models whose receptive field cannot be derived and which record none:
    /// 32 pixels, so that with `TileAxis`'s feathering tiling is exact for a reach of 8 pixels
    /// and blends smoothly beyond (a 4096² image in 512² tiles computes ~14% more pixels).
    public static let defaultOverlap = 32
    /// The largest overlap derived from a receptive field: deep models' theoretical fields
    /// are far wider than what their output depends on in practice.
    public static let maximumDerivedOverlap = 64
    /// The smallest tile accepted: below it padding and overlap leave nothing to restore.
    public static let minimumTile = 16

    public init(session: Session) throws {
        self.session = session
        let graph = session.model.graph
        let contract = try RestorationContract(graph: graph)
        self.contract = contract
        let settings = try RestorationContract.Settings(metadata: graph.metadata)
        recordsPixelContract = settings.range != nil || settings.residual != nil
        recordedOverlap = settings.overlap
        receptiveFieldRadius = ReceptiveField.radius(of: graph, from: contract.input, to: contract.output)
        let inputInfo = graph.inputs.first { $0.name == contract.input }
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
    /// `budget` bounds the memory the restoration holds (`tiling`); nil is
    /// `MemoryLimit.defaultImageBudget`.
    public func restore(_ image: PixelImage, tile: Int = 0, overlap: Int? = nil, budget: Int? = nil,
                        extraInputs: [String: HostTensor] = [:],
                        progress: ((Int, Int) -> Void)? = nil) throws -> PixelImage {
        let size = outputSize(height: image.height, width: image.width)
        let outputBytes = MemoryLimit.elementCount([size.height, size.width, image.colorType.channels, image.bitDepth / 8])
        let tiling = try self.tiling(height: image.height, width: image.width, tile: tile, overlap: overlap,
                                     budget: budget ?? MemoryLimit.defaultImageBudget,
                                     imageBytes: image.bytes.count + (outputBytes ?? Int.max / 2))
        return try restore(image, tiling: tiling, extraInputs: extraInputs, progress: progress)
    }

    /// Restores `image` in the tiles `tiling` chose.
    public func restore(_ image: PixelImage, tiling: Tiling, extraInputs: [String: HostTensor] = [:],
                        progress: ((Int, Int) -> Void)? = nil) throws -> PixelImage {
        let size = outputSize(height: image.height, width: image.width)
        var output = image.blankCopy(width: size.width, height: size.height, scale: contract.scale)
        try restore(image, into: &output, tiling: tiling, extraInputs: extraInputs, progress: progress)
        return output
    }

    /// Restores `image` ([1, 3, H, W], pixel values 0…1) and returns [1, 3, H·s, W·s]
    /// pixel values (not clamped), with the options of `restore(_:tile:overlap:…)` above.
    public func restore(_ image: HostTensor, tile: Int = 0, overlap: Int? = nil, budget: Int? = nil,
                        extraInputs: [String: HostTensor] = [:],
                        progress: ((Int, Int) -> Void)? = nil) throws -> HostTensor {
        guard image.rank == 4, image.shape[0] == 1, image.shape[1] == 3, image.shape[2] > 0, image.shape[3] > 0 else {
            throw RestoreError.imageShape(image.shape)
        }
        let size = outputSize(height: image.shape[2], width: image.shape[3])
        let tiling = try self.tiling(height: image.shape[2], width: image.shape[3], tile: tile, overlap: overlap,
                                     budget: budget ?? MemoryLimit.defaultImageBudget,
                                     imageBytes: 4 * (image.count + 3 * size.height * size.width))
        var output = PlanarRGB(height: size.height, width: size.width)
        try restore(PlanarRGB(image), into: &output, tiling: tiling, extraInputs: extraInputs, progress: progress)
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

    /// How an image is cut into tiles and why (printed by `rrun -v`).
    public struct Tiling: Equatable, Sendable, CustomStringConvertible {
        public var tileHeight: Int
        public var tileWidth: Int
        public var overlap: Int
        /// Bytes the restoration is estimated to hold at its peak: the model's arena for one
        /// tile, the restorer's buffers and the input and output images.
        public var estimatedBytes: Int
        public var budget: Int
        public var tileReason: String
        public var overlapReason: String

        public var description: String {
            "tiles \(tileWidth)×\(tileHeight) (\(tileReason)), overlap \(overlap) (\(overlapReason)), "
                + "about \(MemoryLimitError.format(estimatedBytes)) of the \(MemoryLimitError.format(budget)) memory budget"
        }
    }

    /// The tiles and overlap for a `height`×`width` image. `requestedTile` > 0 and
    /// `requestedOverlap` are the caller's; otherwise: a fixed-size model's own size, else
    /// the model's `restore.tile` when it fits `budget`, else the whole image when it fits,
    /// else the largest of a ladder of square tiles that fits. The overlap is
    /// `restore.overlap` when recorded, else 4 × the receptive field radius (exact tiling,
    /// see `TileAxis`; at most `maximumDerivedOverlap`), else `defaultOverlap`; an overlap
    /// not asked for is kept below half the tile. `imageBytes` are the caller's input and
    /// output images. Plans made here are cached by the session for the run.
    public func tiling(height: Int, width: Int, tile requestedTile: Int = 0, overlap requestedOverlap: Int? = nil,
                       budget: Int, imageBytes: Int) throws -> Tiling {
        guard requestedTile >= 0 else { throw RestoreError.tileTooSmall(requestedTile, minimum: Self.minimumTile) }
        if requestedTile > 0 && requestedTile < Self.minimumTile && fixedSize == nil {
            throw RestoreError.tileTooSmall(requestedTile, minimum: Self.minimumTile)
        }
        if let requestedOverlap, requestedOverlap < 0 { throw RestoreError.overlap(requestedOverlap, tile: requestedTile) }
        var overlap: Int, overlapReason: String
        if let requestedOverlap {
            (overlap, overlapReason) = (requestedOverlap, "as asked")
        } else if let recordedOverlap {
            (overlap, overlapReason) = (recordedOverlap, "the model's restore.overlap")
        } else if let radius = receptiveFieldRadius {
            overlap = min(4 * radius, Self.maximumDerivedOverlap)
            overlapReason = "4 × the receptive field radius \(radius) px derived from the graph"
                + (4 * radius > Self.maximumDerivedOverlap ? ", capped" : "")
        } else {
            (overlap, overlapReason) = (Self.defaultOverlap, "the default: the receptive field is not derivable from the graph")
        }
        func estimate(_ tile: (height: Int, width: Int)) throws -> Int? {
            let region = modelInputSize(height: min(tile.height, height), width: min(tile.width, width))
            var shapes = [[Int]]()
            for info in session.model.graph.inputs {
                if info.name == contract.input { shapes.append([1, 3, region.height, region.width]) } else { return nil }
            }
            let arena: Int
            do {
                arena = try session.plan(for: shapes).arenaBytes
            } catch ModelError.valueTooLarge {
                return Int.max  // one of its values alone passes the planner's limit: does not fit
            }
            let (total, overflow) = arena.addingReportingOverflow(workingBytes(height: height, width: width, tile: tile) + imageBytes)
            return overflow ? Int.max : total
        }
        func choice(_ tile: (height: Int, width: Int), _ reason: String, bytes: Int) -> Tiling {
            // An overlap nobody asked for must leave each tile a core of its own.
            if requestedOverlap == nil && (height > tile.height || width > tile.width) {
                let limit = (min(tile.height, tile.width) - 1) / 2
                if overlap > limit { (overlap, overlapReason) = (limit, overlapReason + ", reduced below half the tile") }
            }
            return Tiling(tileHeight: tile.height, tileWidth: tile.width, overlap: overlap, estimatedBytes: bytes,
                          budget: budget, tileReason: reason, overlapReason: overlapReason)
        }
        func tooLarge(_ tile: (height: Int, width: Int), _ bytes: Int?, advice: String) -> MemoryLimitError {
            MemoryLimitError(what: "restoring a \(width)×\(height) image in \(tile.width)×\(tile.height) tiles",
                             needed: bytes == Int.max ? nil : bytes, limit: budget, advice: advice)
        }
        guard imageBytes <= budget else {
            throw MemoryLimitError(what: "the \(width)×\(height) input and its output image", needed: imageBytes, limit: budget,
                                   advice: "give a larger --max-memory")
        }
        // Extra inputs (a conditioning vector) are the caller's: the estimate plans the
        // image input alone and is skipped (nil) for models with others.
        let fixedOrRequested: (tile: (height: Int, width: Int), reason: String)?
        if let fixedSize {
            _ = try tileSize(height: height, width: width, requested: requestedTile)
            fixedOrRequested = (fixedSize, "the model's fixed input size")
        } else if requestedTile > 0 {
            fixedOrRequested = ((requestedTile, requestedTile), "as asked")
        } else {
            fixedOrRequested = nil
        }
        if let (tile, reason) = fixedOrRequested {
            let bytes = try estimate(tile)
            if let bytes, bytes > budget {
                throw tooLarge(tile, bytes, advice: fixedSize == nil ? "give a smaller --tile or a larger --max-memory" : "give a larger --max-memory")
            }
            return choice(tile, reason, bytes: bytes ?? 0)
        }
        var candidates: [(tile: (height: Int, width: Int), reason: String)] = []
        if contract.tile > 0 { candidates.append(((contract.tile, contract.tile), "the model's restore.tile")) }
        candidates.append(((height, width), "the whole image fits the memory budget"))
        let ladder = [4096, 3072, 2048, 1536, 1024, 768, 512, 384, 256, 192, 128, 96, 64, 48, 32, Self.minimumTile]
        for side in ladder where side < max(height, width) && side > 2 * min(overlap, Self.maximumDerivedOverlap) {
            let rounded = (side + contract.multiple - 1) / contract.multiple * contract.multiple
            candidates.append(((rounded, rounded), "the largest tile that fits the memory budget"))
        }
        var smallest: (tile: (height: Int, width: Int), bytes: Int?)?
        for (tile, reason) in candidates {
            guard let bytes = try estimate(tile) else { return choice(tile, reason, bytes: 0) }
            if bytes <= budget { return choice(tile, reason, bytes: bytes) }
            smallest = (tile, bytes)
        }
        let last = smallest ?? ((height, width), nil)
        throw tooLarge(last.tile, last.bytes, advice: "give a larger --max-memory")
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
        _ input: Input, into output: inout Output, tiling: Tiling,
        extraInputs: [String: HostTensor], progress: ((Int, Int) -> Void)?
    ) throws {
        let (height, width) = (input.height, input.width)
        let tile = (height: tiling.tileHeight, width: tiling.tileWidth)
        let overlap = tiling.overlap
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
    case tileTooSmall(Int, minimum: Int)

    public var description: String {
        switch self {
        case .imageShape(let shape): "the image tensor should be [1, 3, H, W], found \(shape)"
        case .outputShape(let expected, let found):
            "the model's output should be \(expected) for this input (restore.scale), found \(found)"
        case .tileForFixedModel(let requested, let fixed):
            "the model was exported for \(fixed[0])×\(fixed[1]) images, so it runs in tiles of that size, not \(requested)"
        case .overlap(let overlap, let tile):
            overlap < 0 ? "tile overlap \(overlap) must be 0 or more" : "tile overlap \(overlap) must be smaller than the tile (\(tile))"
        case .tileTooSmall(let tile, let minimum):
            "tile \(tile) is too small: tiles are at least \(minimum) pixels (0 chooses them from the memory budget)"
        }
    }
}

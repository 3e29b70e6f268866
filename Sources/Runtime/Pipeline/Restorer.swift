import Format

/// Restores images with a model according to its `RestorationContract`: maps pixels to
/// the model's range and normalisation, pads to `restore.multiple` (reflect), adds the
/// input back for residual models, crops, and maps the output back to pixels. Large
/// images run in overlapping tiles blended with linear feathering, so memory stays
/// bounded and no seam shows.
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

    /// Restores `image` ([1, 3, H, W], pixel values 0…1) and returns [1, 3, H·s, W·s]
    /// pixel values (not clamped). `tile` 0 means the model's default; `extraInputs` feed
    /// the model's other inputs (an attribute vector, say). `progress` is called after
    /// each tile with (done, total).
    public func restore(_ image: HostTensor, tile requestedTile: Int = 0, overlap requestedOverlap: Int? = nil,
                        extraInputs: [String: HostTensor] = [:],
                        progress: ((Int, Int) -> Void)? = nil) throws -> HostTensor {
        guard image.rank == 4, image.shape[0] == 1, image.shape[1] == 3, image.shape[2] > 0, image.shape[3] > 0 else {
            throw RestoreError.imageShape(image.shape)
        }
        let (height, width) = (image.shape[2], image.shape[3])
        let tile: (height: Int, width: Int)
        if let fixed = fixedSize {
            if requestedTile > 0 && (requestedTile != fixed.height || requestedTile != fixed.width) {
                throw RestoreError.tileForFixedModel(requested: requestedTile, fixed: [fixed.height, fixed.width])
            }
            tile = fixed
        } else {
            let size = requestedTile > 0 ? requestedTile : contract.tile
            tile = size > 0 ? (size, size) : (height, width)
        }
        let overlap = requestedOverlap ?? contract.overlap
        guard overlap >= 0, overlap < min(tile.height, tile.width) || (height <= tile.height && width <= tile.width) else {
            throw RestoreError.overlap(overlap, tile: min(tile.height, tile.width))
        }
        let pixels = image.floats
        if height <= tile.height && width <= tile.width {
            let result = try runRegion(pixels, imageWidth: width, y: 0, x: 0, height: height, width: width,
                                       extraInputs: extraInputs)
            progress?(1, 1)
            return HostTensor(shape: [1, 3, height * contract.scale, width * contract.scale], floats: result)
        }
        return try runTiles(pixels, height: height, width: width, tile: tile, overlap: overlap,
                            extraInputs: extraInputs, progress: progress)
    }

    /// Tile origins along one axis: steps of tile−overlap, the last flush with the end.
    static func tileStarts(size: Int, tile: Int, overlap: Int) -> [Int] {
        guard size > tile else { return [0] }
        var starts: [Int] = []
        var start = 0
        while start + tile < size {
            starts.append(start)
            start += tile - overlap
        }
        starts.append(size - tile)
        return starts
    }

    /// Feathering weight of output position `p` of a tile spanning [0, length): it rises
    /// linearly across `ramp` pixels on a side that overlaps a neighbouring tile.
    static func featherWeight(_ p: Int, length: Int, ramp: Int, rampBefore: Bool, rampAfter: Bool) -> Float {
        var weight: Float = 1
        if rampBefore && ramp > 0 { weight = min(weight, Float(p + 1) / Float(ramp + 1)) }
        if rampAfter && ramp > 0 { weight = min(weight, Float(length - p) / Float(ramp + 1)) }
        return weight
    }

    private func runTiles(_ pixels: [Float], height: Int, width: Int, tile: (height: Int, width: Int), overlap: Int,
                          extraInputs: [String: HostTensor], progress: ((Int, Int) -> Void)?) throws -> HostTensor {
        let scale = contract.scale
        let ys = Self.tileStarts(size: height, tile: tile.height, overlap: overlap)
        let xs = Self.tileStarts(size: width, tile: tile.width, overlap: overlap)
        let (outHeight, outWidth) = (height * scale, width * scale)
        var accumulated = [Float](repeating: 0, count: 3 * outHeight * outWidth)
        var weights = [Float](repeating: 0, count: outHeight * outWidth)
        var done = 0
        for (row, y) in ys.enumerated() {
            for (column, x) in xs.enumerated() {
                let h = min(tile.height, height - y), w = min(tile.width, width - x)
                let result = try runRegion(pixels, imageWidth: width, y: y, x: x, height: h, width: w,
                                           extraInputs: extraInputs)
                let (th, tw) = (h * scale, w * scale)
                // The actual overlap with a neighbour can exceed `overlap` for the last tile.
                let rampY = overlap * scale, rampX = overlap * scale
                for ty in 0..<th {
                    let wy = Self.featherWeight(ty, length: th, ramp: rampY, rampBefore: row > 0, rampAfter: row < ys.count - 1)
                    for tx in 0..<tw {
                        let weight = wy * Self.featherWeight(tx, length: tw, ramp: rampX,
                                                             rampBefore: column > 0, rampAfter: column < xs.count - 1)
                        let target = (y * scale + ty) * outWidth + x * scale + tx
                        weights[target] += weight
                        for c in 0..<3 {
                            accumulated[c * outHeight * outWidth + target] += weight * result[(c * th + ty) * tw + tx]
                        }
                    }
                }
                done += 1
                progress?(done, ys.count * xs.count)
            }
        }
        let plane = outHeight * outWidth
        for c in 0..<3 {
            for i in 0..<plane { accumulated[c * plane + i] /= weights[i] }
        }
        return HostTensor(shape: [1, 3, outHeight, outWidth], floats: accumulated)
    }

    /// Runs one region of the image through the model: normalise, pad (reflect) to the
    /// model's size or multiple, run, add the input for residual models, crop, and map
    /// back to pixel values. Returns 3×(h·s)×(w·s) planar floats.
    private func runRegion(_ pixels: [Float], imageWidth: Int, y: Int, x: Int, height h: Int, width w: Int,
                           extraInputs: [String: HostTensor]) throws -> [Float] {
        let imageHeight = pixels.count / (3 * imageWidth)
        let multiple = contract.multiple
        let paddedHeight = fixedSize?.height ?? (h + multiple - 1) / multiple * multiple
        let paddedWidth = fixedSize?.width ?? (w + multiple - 1) / multiple * multiple
        let (low, high) = contract.range.bounds
        var input = [Float](repeating: 0, count: 3 * paddedHeight * paddedWidth)
        for c in 0..<3 {
            let gain = (high - low) / contract.std[c]
            let offset = (low - contract.mean[c]) / contract.std[c]
            for py in 0..<paddedHeight {
                let sy = y + Self.reflect(py, size: h)
                for px in 0..<paddedWidth {
                    let sx = x + Self.reflect(px, size: w)
                    input[(c * paddedHeight + py) * paddedWidth + px] =
                        pixels[(c * imageHeight + sy) * imageWidth + sx] * gain + offset
                }
            }
        }
        var inputs = extraInputs
        inputs[contract.input] = HostTensor(shape: [1, 3, paddedHeight, paddedWidth], floats: input)
        guard let output = try session.run(inputs)[contract.output] else {
            throw RestoreError.outputShape(expected: [1, 3, paddedHeight * contract.scale, paddedWidth * contract.scale], found: [])
        }
        let scale = contract.scale
        let expected = [1, 3, paddedHeight * scale, paddedWidth * scale]
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

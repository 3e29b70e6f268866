/// How tiles divide one axis of an image, and how much each tile's result counts at each
/// output position (feathering). Tiles on a grid blend with weight
/// `rows.weights[r][y] × columns.weights[c][x]`; since each axis's weights sum to one at
/// every position, so do these products over the grid, and no full-image weight map is
/// needed.
///
/// Where two neighbouring tiles overlap by `o` output pixels (`overlap × scale`, more
/// for the last tile, which is flush with the end), the outer quarter of the overlap on
/// each tile's inner edge gets weight 0 and the middle half ramps linearly from one tile to
/// the other. The discarded quarter is where a tile's result is least like the whole
/// image's, since its receptive field there reaches past the tile into reflected padding.
/// So tiling is exact for a model whose receptive field reaches at most `o / 4` pixels
/// from the output pixel (a stack of n 3×3 convolutions: n pixels), and the ramp hides the
/// small differences of models that see further.
struct TileAxis {
    /// Where each tile starts (input pixels): steps of tile − overlap, the last flush
    /// with the end; a single tile when the axis fits in one.
    let starts: [Int]
    /// Each tile's length in input pixels (the tile, or the whole axis when shorter).
    let lengths: [Int]
    /// `weights[i][p]`: the share of tile i's result in output position
    /// `starts[i] × scale + p`, for p in 0..<lengths[i] × scale.
    let weights: [[Float]]

    init(size: Int, tile: Int, overlap: Int, scale: Int) {
        precondition(size > 0 && tile > 0 && overlap >= 0 && scale > 0 && (size <= tile || overlap < tile),
                     "tiles of \(tile) with overlap \(overlap) over \(size)")
        let starts = Self.starts(size: size, tile: tile, overlap: overlap)
        let lengths = starts.map { min(tile, size - $0) }
        var raw: [[Float]] = zip(starts, lengths).map { _, length in [Float](repeating: 1, count: length * scale) }
        for i in starts.indices.dropLast() {
            let shared = (starts[i] + lengths[i] - starts[i + 1]) * scale
            for q in 0..<shared {
                let next = Self.ramp(q, overlap: shared)
                raw[i + 1][q] = min(raw[i + 1][q], next)
                let previous = raw[i].count - shared + q
                raw[i][previous] = min(raw[i][previous], 1 - next)
            }
        }
        var sums = [Float](repeating: 0, count: size * scale)
        for (start, values) in zip(starts, raw) {
            for (p, value) in values.enumerated() { sums[start * scale + p] += value }
        }
        weights = zip(starts, raw).map { start, values in
            values.enumerated().map { p, value in
                let sum = sums[start * scale + p]
                precondition(sum > 0, "no tile covers position \(start * scale + p) with a positive weight")
                return value / sum
            }
        }
        self.starts = starts
        self.lengths = lengths
    }

    /// Tile origins along one axis: steps of tile−overlap, the last flush with the end.
    static func starts(size: Int, tile: Int, overlap: Int) -> [Int] {
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

    /// The later tile's weight at position q of an overlap of `overlap` pixels (the earlier
    /// tile gets 1 minus it): 0 across the first quarter, a linear ramp across the middle
    /// half, 1 across the last quarter.
    static func ramp(_ q: Int, overlap: Int) -> Float {
        let margin = overlap / 4
        let rampLength = overlap - 2 * margin
        if q < margin { return 0 }
        if q >= margin + rampLength { return 1 }
        return Float(q - margin + 1) / Float(rampLength + 1)
    }
}

import Foundation
import Format
import ImageFiles
import TestSupport
import XCTest
@testable import Convert
@testable import Runtime

/// Tiles on trained models and a real photograph: a model whose receptive field fits in
/// the discarded quarter of the overlap gives the whole image's result; with a smaller
/// overlap the results differ slightly, and no seam shows where tiles meet.
final class TileSeamTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The demo denoiser (scripts/demo/train_denoiser.py): nine 3×3 convolutions, so each
    /// output pixel sees 9 pixels in every direction; residual, range 0…1.
    private static let demoDenoiser: (path: String, options: ConversionOptions) = {
        var options = ConversionOptions()
        options.contract.range = .unit
        options.contract.residual = true
        options.contract.task = .denoise
        return (repository.appendingPathComponent("examples/models/denoiser.onnx").path, options)
    }()

    /// The demo's Swin + UperNet denoiser (scripts/demo/train_swin_denoiser.py): shifted
    /// 8×8 windows over three stages and pyramid pooling over the whole input, so unlike
    /// the CNN its output depends on the whole tile; residual, range 0…1, multiple 32.
    private static let swinDenoiser: (path: String, options: ConversionOptions) = {
        var options = ConversionOptions()
        options.contract.range = .unit
        options.contract.residual = true
        options.contract.multiple = 32
        options.contract.task = .denoise
        return (repository.appendingPathComponent("examples/models/swin_denoiser.onnx").path, options)
    }()

    /// The centre of the demo's noisy photo (the debug build runs the models too slowly
    /// for all of its 256×256 pixels).
    private static func noisyPhoto(side: Int) throws -> PixelImage {
        try SeamCheck.centre(of: repository.appendingPathComponent("examples/images/noisy.png").path, side: side)
    }

    /// With an overlap of 40 the discarded quarter is 10 pixels, more than the demo
    /// denoiser's reach of 9, so the tiles' results equal the whole image's up to rounding.
    func testTilesOfTheDemoDenoiserEqualTheWholeImageWhenItsReachFitsTheDiscardedQuarter() throws {
        let restorer = try SeamCheck.restorer(Self.demoDenoiser.path, options: Self.demoDenoiser.options)
        let photo = try Self.noisyPhoto(side: 120)
        let whole = try restorer.restore(photo.rgbTensor())
        let tiled = try restorer.restore(photo.rgbTensor(), tile: 80, overlap: 40)
        let (maxAbs, relative) = maxAbsAndRelativeError(tiled.floats, whole.floats)
        let levels = zip(try photo.withRGB(tiled).quantizedSamples(), try photo.withRGB(whole).quantizedSamples())
            .map { abs(Int($0) - Int($1)) }.max() ?? -1
        print("demo denoiser, tiles of 80 overlapping by 40 vs whole: max abs \(maxAbs), relative \(relative), "
              + "max difference \(levels) of 255 levels")
        // The kernels are chosen and blocked per shape, so whole image and tiles round
        // differently (Winograd F(4×4, 3×3) is within ~1e-5 of direct convolution): the
        // fp32 parity tolerance. Reflected padding inside the reach would show as ~1e-2.
        XCTAssertLessThan(maxAbs, 1e-4)
        XCTAssertLessThanOrEqual(levels, 1)
    }

    func testTileSeamsOfTheDemoDenoiserAreInvisible() throws {
        try SeamCheck.assertInvisible(model: Self.demoDenoiser.path, options: Self.demoDenoiser.options,
                                      image: try Self.noisyPhoto(side: 160), tile: 64, overlap: 16)
    }

    func testTileSeamsOfTheSwinDenoiserAreInvisible() throws {
        try SeamCheck.assertInvisible(model: Self.swinDenoiser.path, options: Self.swinDenoiser.options,
                                      image: try Self.noisyPhoto(side: 160), tile: 64, overlap: 16)
    }

    /// The check sees seams where there are some: without overlap the first two tiles of
    /// each axis meet edge to edge (at 64), and the denoiser's zero padding at their edges
    /// leaves steps of several levels there.
    func testSeamCheckFindsTheEdgesOfTilesWithoutOverlap() throws {
        let report = try SeamCheck.measure(model: Self.demoDenoiser.path, options: Self.demoDenoiser.options,
                                           image: try Self.noisyPhoto(side: 160), tile: 64, overlap: 0)
        print(report)
        XCTAssertFalse(report.problems.isEmpty, "\(report)")
    }
}

/// How a tiled restoration differs from the whole-image one, and whether tile boundaries
/// show, measured on the 8-bit images as saved.
struct SeamReport: CustomStringConvertible {
    /// Mean absolute difference between horizontally (then vertically) neighbouring
    /// samples, in levels, over the positions that straddle or lie in a blend band between
    /// two tiles, and over all the others.
    struct Gradients {
        var boundary: (horizontal: Double, vertical: Double)
        var elsewhere: (horizontal: Double, vertical: Double)

        /// Boundary over elsewhere, per direction: ≈ 1 when boundaries are like any other place.
        var ratios: (horizontal: Double, vertical: Double) {
            (boundary.horizontal / elsewhere.horizontal, boundary.vertical / elsewhere.vertical)
        }
    }

    var name: String
    var tile: Int
    var overlap: Int
    var maxLevelDifference: Int
    var psnr: Double
    var tiled: Gradients
    var whole: Gradients
    /// The largest excess, over one boundary line (a column or row of neighbour pairs), of
    /// the tiled image's mean gradient over the whole image's there, in levels: a seam is a
    /// step along a whole line.
    var worstLineExcess: Double

    /// What would make tiles visible: the tiles change more than a few levels (PSNR
    /// against the whole image under 40 dB); relative to the whole image, a direction's
    /// boundary/elsewhere gradient ratio grows by more than 5%; or a boundary line gains
    /// more than half a level of mean gradient (measured: 0.13 with overlap 16 on the demo
    /// denoiser, 3.8 with overlap 4 and 6.1 without overlap).
    var problems: [String] {
        var found: [String] = []
        if psnr < 40 { found.append(String(format: "PSNR %.2f dB against the whole image", psnr)) }
        if tiled.ratios.horizontal > whole.ratios.horizontal * 1.05 { found.append("horizontal gradients grow on boundaries") }
        if tiled.ratios.vertical > whole.ratios.vertical * 1.05 { found.append("vertical gradients grow on boundaries") }
        if worstLineExcess > 0.5 { found.append(String(format: "a boundary line gains %.2f levels of gradient", worstLineExcess)) }
        return found
    }

    var description: String {
        let f = { (value: Double) in String(format: "%.3f", value) }
        return """
            \(name), tiles of \(tile) overlapping by \(overlap) vs whole image: max difference \(maxLevelDifference) levels, \
            PSNR \(String(format: "%.2f", psnr)) dB; mean |gradient| on boundaries / elsewhere: \
            tiled h \(f(tiled.boundary.horizontal))/\(f(tiled.elsewhere.horizontal)) v \(f(tiled.boundary.vertical))/\(f(tiled.elsewhere.vertical)), \
            whole h \(f(whole.boundary.horizontal))/\(f(whole.elsewhere.horizontal)) v \(f(whole.boundary.vertical))/\(f(whole.elsewhere.vertical)); \
            worst boundary line excess \(f(worstLineExcess)) levels
            """
    }
}

/// The seam check for any trained restorer with dynamic H and W (the whole image must fit
/// in one run): one line per model in `TileSeamTests`.
enum SeamCheck {
    static func restorer(_ path: String, options: ConversionOptions) throws -> Restorer {
        let graph = try Conversion.convert(path, options: options).graph
        return try Restorer(session: Session(model: try Model(graph: graph), threads: 2))
    }

    /// Converts `model`, restores `image` whole and in tiles, prints the report and asserts
    /// that it finds no problem (`SeamReport.problems`).
    static func assertInvisible(model: String, options: ConversionOptions, image: PixelImage, tile: Int, overlap: Int,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let report = try measure(model: model, options: options, image: image, tile: tile, overlap: overlap)
        print(report)
        XCTAssertEqual(report.problems, [], "\(report)", file: file, line: line)
    }

    static func measure(model: String, options: ConversionOptions, image photo: PixelImage, tile: Int, overlap: Int) throws -> SeamReport {
        let restorer = try self.restorer(model, options: options)
        let whole = try restorer.restore(photo)
        let tiled = try restorer.restore(photo, tile: tile, overlap: overlap)
        let (a, b) = (tiled.quantizedSamples().map(Int.init), whole.quantizedSamples().map(Int.init))
        let maxDifference = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        let squared = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(a.count)
        let peak = Double(whole.maximumSampleValue)
        let scale = restorer.contract.scale
        // Neighbour pairs (p − 1, p) along an axis that touch a blend band: p from the later
        // tile's start through the earlier tile's end.
        func boundaries(_ axis: TileAxis) -> Set<Int> {
            var positions = Set<Int>()
            for i in axis.starts.indices.dropLast() {
                positions.formUnion((axis.starts[i + 1] * scale)...((axis.starts[i] + axis.lengths[i]) * scale))
            }
            return positions
        }
        let rows = boundaries(TileAxis(size: photo.height, tile: tile, overlap: overlap, scale: scale))
        let columns = boundaries(TileAxis(size: photo.width, tile: tile, overlap: overlap, scale: scale))
        let tiledLines = lineGradients(tiled), wholeLines = lineGradients(whole)
        var worst = 0.0
        for x in columns where x < tiledLines.columns.count { worst = max(worst, tiledLines.columns[x] - wholeLines.columns[x]) }
        for y in rows where y < tiledLines.rows.count { worst = max(worst, tiledLines.rows[y] - wholeLines.rows[y]) }
        return SeamReport(name: URL(fileURLWithPath: model).lastPathComponent, tile: tile, overlap: overlap,
                          maxLevelDifference: maxDifference, psnr: 10 * log10(peak * peak / squared),
                          tiled: gradients(tiledLines, rows: rows, columns: columns),
                          whole: gradients(wholeLines, rows: rows, columns: columns), worstLineExcess: worst)
    }

    /// The central `side`×`side` pixels of the PNG at `path`.
    static func centre(of path: String, side: Int) throws -> PixelImage {
        let image = try PixelImage.readPNG(path: path)
        let (top, left, channels) = ((image.height - side) / 2, (image.width - side) / 2, image.colorType.channels)
        let samples = image.samples
        var crop: [Float] = []
        for y in top..<(top + side) {
            let rowStart = (y * image.width + left) * channels
            crop += samples[rowStart..<(rowStart + side * channels)]
        }
        return PixelImage(width: side, height: side, bitDepth: image.bitDepth, colorType: image.colorType, samples: crop)
    }

    /// Mean |sample(p) − sample(p − 1)| over the colour samples of each line of neighbour
    /// pairs: `columns[x]` for horizontal pairs (x − 1, x), `rows[y]` for vertical pairs
    /// (y − 1, y); index 0 has no pairs and stays 0.
    private static func lineGradients(_ image: PixelImage) -> (columns: [Double], rows: [Double]) {
        let levels = image.quantizedSamples()
        let channels = image.colorType.channels, colour = image.colorType.hasAlpha ? channels - 1 : channels
        let (width, height) = (image.width, image.height)
        var columns = [Double](repeating: 0, count: width), rows = [Double](repeating: 0, count: height)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<colour {
                    let here = Int(levels[(y * width + x) * channels + c])
                    if x > 0 { columns[x] += Double(abs(here - Int(levels[(y * width + x - 1) * channels + c]))) }
                    if y > 0 { rows[y] += Double(abs(here - Int(levels[((y - 1) * width + x) * channels + c]))) }
                }
            }
        }
        return (columns.map { $0 / Double(height * colour) }, rows.map { $0 / Double(width * colour) })
    }

    private static func gradients(_ lines: (columns: [Double], rows: [Double]), rows: Set<Int>, columns: Set<Int>) -> SeamReport.Gradients {
        func split(_ values: [Double], _ boundary: Set<Int>) -> (Double, Double) {
            let inside = values.indices.dropFirst().filter { boundary.contains($0) }
            let outside = values.indices.dropFirst().filter { !boundary.contains($0) }
            return (inside.map { values[$0] }.reduce(0, +) / Double(inside.count),
                    outside.map { values[$0] }.reduce(0, +) / Double(outside.count))
        }
        let (h, v) = (split(lines.columns, columns), split(lines.rows, rows))
        return SeamReport.Gradients(boundary: (h.0, v.0), elsewhere: (h.1, v.1))
    }
}

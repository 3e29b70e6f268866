import Foundation
import ImageFiles
import Runtime

/// The part of an image the report enlarges, as fractions of its width and height so that
/// the same rectangle applies to the input, the output (larger by the model's scale) and
/// the reference.
struct ZoomCrop {
    var x: Double
    var y: Double
    var width: Double
    var height: Double

    /// Side of the enlarged square, in input pixels (smaller for smaller images).
    static let side = 64

    /// The `side`² square of the output with the most detail (the sum of absolute
    /// differences between neighbouring pixels, over cells of half a side, on the input's
    /// grid): edges and texture are where restorations differ, flat areas all look alike.
    init(mostDetailIn output: PixelImage, inputWidth width: Int, inputHeight height: Int) {
        let scale = max(1, output.width / width)
        let side = min(Self.side, width, height)
        let cell = max(1, side / 2)
        let pixels = output.rgbTensor().floats
        let (columns, rows) = ((width + cell - 1) / cell, (height + cell - 1) / cell)
        var detail = [Double](repeating: 0, count: columns * rows)
        let (plane, outWidth) = (output.width * output.height, output.width)
        for channel in 0..<3 {
            for y in 0..<height {
                for x in 0..<width {
                    let at = { (column: Int, row: Int) in pixels[channel * plane + row * scale * outWidth + column * scale] }
                    let here = at(x, y)
                    let right = x + 1 < width ? at(x + 1, y) : here, below = y + 1 < height ? at(x, y + 1) : here
                    detail[(y / cell) * columns + x / cell] += Double(abs(here - right) + abs(here - below))
                }
            }
        }
        // The window of side×side pixels (two cells) with the most change, kept inside the image.
        let span = max(1, side / cell)
        var best = (score: -1.0, column: 0, row: 0)
        for row in 0..<rows {
            for column in 0..<columns {
                var score = 0.0
                for r in row..<min(row + span, rows) {
                    for c in column..<min(column + span, columns) { score += detail[r * columns + c] }
                }
                if score > best.score { best = (score, column, row) }
            }
        }
        let left = min(best.column * cell, width - side), top = min(best.row * cell, height - side)
        self.init(x: Double(left) / Double(width), y: Double(top) / Double(height),
                  width: Double(side) / Double(width), height: Double(side) / Double(height))
    }

    init(x: Double, y: Double, width: Double, height: Double) {
        (self.x, self.y, self.width, self.height) = (x, y, width, height)
    }
}

/// The HTML page of `--report`: for every image its input, output and reference side by
/// side with the same region enlarged under them, and a table of PSNR/SSIM whose columns
/// sort on a click. One file with its style and script inside; the images are the files
/// themselves, linked by paths relative to the page, so it works where it was written
/// (or moved together with the folders) without copying any image.
struct FolderReport {
    let items: [FolderRestoration.Item]
    let inputFolder: String
    let outputFolder: String
    let referenceFolder: String?
    let reportPath: String

    /// Width in CSS pixels of each enlarged crop.
    static let cropPixels = 256

    func write() throws {
        let path = reportPath
        try FileBytes.writeAtomically(Array(html().utf8), to: path) { ImageIOError.fileSystem(file: path, detail: $0) }
    }

    func html() -> String {
        let measured = referenceFolder != nil
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>Restore report: \(escape(outputFolder))</title>
            <style>\(Self.style)</style>
            </head>
            <body>
            <h1>Restore report</h1>
            <p>\(items.count) images from <code>\(escape(inputFolder))</code> restored into <code>\(escape(outputFolder))</code>\
            \(referenceFolder.map { ", compared with <code>\(escape($0))</code>" } ?? "").
            Click a column's title to sort; click a name to see the image.</p>
            <table id="metrics">
            <thead><tr><th data-type="text">image</th><th data-type="text">status</th>
            """
        if measured {
            page += "<th data-type=\"number\">input PSNR (dB)</th><th data-type=\"number\">output PSNR (dB)</th>"
                + "<th data-type=\"number\">PSNR gain (dB)</th><th data-type=\"number\">input SSIM</th>"
                + "<th data-type=\"number\">output SSIM</th>"
        }
        page += "</tr></thead>\n<tbody>\n"
        for (index, item) in items.enumerated() {
            page += "<tr><td data-value=\"\(escape(item.name))\"><a href=\"#image-\(index)\">\(escape(item.name))</a></td>"
            page += "<td data-value=\"\(status(item))\">\(status(item))</td>"
            if measured {
                let q = item.quality
                let gain = q.flatMap { quality in quality.input.map { quality.output.psnr - $0.psnr } }
                for value in [q?.input?.psnr, q?.output.psnr, gain] { page += numberCell(value, digits: 2) }
                for value in [q?.input?.ssim, q?.output.ssim] { page += numberCell(value, digits: 4) }
            }
            page += "</tr>\n"
        }
        page += "</tbody>\n</table>\n"
        for (index, item) in items.enumerated() { page += section(item, index: index) }
        page += "<script>\(Self.script)</script>\n</body>\n</html>\n"
        return page
    }

    private func status(_ item: FolderRestoration.Item) -> String {
        switch item.outcome {
        case .restored: "restored"
        case .alreadyComplete: "already complete"
        case .failed: "failed"
        }
    }

    private func numberCell(_ value: Double?, digits: Int) -> String {
        guard let value else { return "<td data-value=\"\"></td>" }
        let text = value.isFinite ? String(format: "%.\(digits)f", value) : "∞"
        let sortable = value.isFinite ? "\(value)" : "Infinity"
        return "<td data-value=\"\(sortable)\">\(text)</td>"
    }

    private func section(_ item: FolderRestoration.Item, index: Int) -> String {
        var html = "<section id=\"image-\(index)\">\n<h2>\(escape(item.name))</h2>\n"
        if case .failed(let message) = item.outcome {
            html += "<p class=\"error\">\(escape(message))</p>\n"
        }
        // Images only where there is an output: a file that failed to restore may not even decode.
        guard FileManager.default.fileExists(atPath: outputFolder + "/" + item.outputName) else { return html + "</section>\n" }
        // (label, path): the output's name follows --format, the reference's the input's.
        var pictures = [("input", inputFolder + "/" + item.name), ("output", outputFolder + "/" + item.outputName)]
        if let referenceFolder, FileManager.default.fileExists(atPath: referenceFolder + "/" + item.name) {
            pictures.append(("reference", referenceFolder + "/" + item.name))
        }
        html += "<div class=\"row\">\n"
        for (label, path) in pictures {
            let source = link(to: path)
            html += "<figure><div class=\"frame\"><img src=\"\(source)\" alt=\"\(label) \(escape(item.name))\">"
            if let crop = item.crop {
                html += String(format: "<div class=\"marker\" style=\"left:%.3f%%;top:%.3f%%;width:%.3f%%;height:%.3f%%\"></div>",
                               100 * crop.x, 100 * crop.y, 100 * crop.width, 100 * crop.height)
            }
            html += "</div><figcaption>\(label)</figcaption></figure>\n"
        }
        html += "</div>\n"
        if let crop = item.crop {
            // The whole image scaled so that the crop fills the square, shifted so it shows.
            html += "<div class=\"row\">\n"
            for (label, path) in pictures {
                html += String(format: "<figure><div class=\"zoom\"><img src=\"%@\" alt=\"%@ crop\" "
                               + "style=\"width:%.3f%%;height:%.3f%%;left:%.3f%%;top:%.3f%%\"></div>"
                               + "<figcaption>%@, enlarged</figcaption></figure>\n",
                               link(to: path), label, 100 / crop.width, 100 / crop.height,
                               -100 * crop.x / crop.width, -100 * crop.y / crop.height, label)
            }
            html += "</div>\n"
        }
        return html + "</section>\n"
    }

    /// `path` relative to the report's folder, percent-encoded for a URL.
    private func link(to path: String) -> String {
        let target = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
        let base = URL(fileURLWithPath: reportPath).standardizedFileURL.deletingLastPathComponent().pathComponents
        var shared = 0
        while shared < min(target.count, base.count) && target[shared] == base[shared] { shared += 1 }
        let components = Array(repeating: "..", count: base.count - shared) + target[shared...]
        return components.map { escape($0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? $0) }
            .joined(separator: "/")
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static let style = """
        body { font-family: sans-serif; margin: 2em; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; }
        th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
        th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
        th { cursor: pointer; background: #f0f0f0; user-select: none; }
        th[aria-sort="ascending"]::after { content: " ▲"; }
        th[aria-sort="descending"]::after { content: " ▼"; }
        section { margin: 2em 0; border-top: 1px solid #ccc; }
        .row { display: flex; gap: 1em; flex-wrap: wrap; }
        figure { margin: 0.5em 0; }
        .frame { position: relative; width: 320px; }
        .frame img { width: 100%; display: block; }
        .marker { position: absolute; outline: 2px solid #e33; }
        .zoom { position: relative; overflow: hidden; width: \(cropPixels)px; height: \(cropPixels)px; }
        .zoom img { position: absolute; max-width: none; image-rendering: pixelated; }
        figcaption { font-size: 0.9em; color: #555; }
        .error { color: #b00; }
        """

    /// Sorts the table by the clicked column (numbers by value, empty cells last), toggling
    /// the direction on a second click.
    private static let script = """
        document.querySelectorAll("#metrics th").forEach((header, column) => {
          header.addEventListener("click", () => {
            const body = document.querySelector("#metrics tbody");
            const numeric = header.dataset.type === "number";
            const ascending = header.getAttribute("aria-sort") !== "ascending";
            document.querySelectorAll("#metrics th").forEach(other => other.removeAttribute("aria-sort"));
            header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
            const key = row => row.cells[column].dataset.value;
            const rows = Array.from(body.rows);
            rows.sort((a, b) => {
              const x = key(a), y = key(b);
              if (x === "" || y === "") return (x === "") - (y === "");
              const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
              return ascending ? order : -order;
            });
            rows.forEach(row => body.appendChild(row));
          });
        });
        """
}

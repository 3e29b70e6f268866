import ArgumentParser
import Foundation
import Format
import Runtime

/// `rrun`: runs a converted `.rgraph` model on an image or on tensors.
@main
struct RRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rrun",
        abstract: "Run a Restore model (.rgraph) on a PNG or JPEG image, a folder of PNGs or .npy tensors.",
        discussion: """
            Image mode:  rrun MODEL.rgraph IN.png            (writes IN.restored.png)
                         rrun MODEL.rgraph IN.jpg -o OUT.png [--ref CLEAN.png] [--max-memory 2G]
            Folder mode: rrun MODEL.rgraph IN_DIR -o OUT_DIR [--ref REF_DIR] [--report REPORT.html]
            Tensor mode: rrun MODEL.rgraph X.npy [NAME=Y.npy ...] -o OUT.npy
                         rrun MODEL.rgraph X.npy --outputs DIR
            Inspect:     rrun info MODEL.rgraph
            Benchmark:   rrun bench MODEL.rgraph --shape 1,3,512,512
            Gradients:   rrun grad MODEL.rgraph X.npy --target T.npy --loss mse --wrt NAME --outputs DIR
            Fine-tune:   rrun finetune MODEL.rgraph --pairs NOISY_DIR CLEAN_DIR [--epochs E] [--lr LR] -o TUNED.rgraph
            Prior:       rrun dip DEGRADED.png --task denoise|inpaint|sr4 -o OUT.png [--ref CLEAN.png]
            Generator:   rrun generate G.rgraph --class N [--seed S] [--count K] -o OUT.png
                         rrun dgp G.rgraph DEGRADED.png --task colorize|inpaint|sr4 -o OUT.png [--ref CLEAN.png]
            """,
        version: "\(RestoreVersion.string)",
        subcommands: [Restore.self, Info.self, Bench.self, DIP.self, Grad.self, Finetune.self, Generate.self, DGP.self],
        defaultSubcommand: Restore.self)
}

/// Runs `body`, printing an error as one line on stderr with a non-zero exit.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("rrun: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// Prints "rrun: warning: …" on stderr.
func warn(_ message: String) {
    FileHandle.standardError.write(Data("rrun: warning: \(message)\n".utf8))
}

/// A model file that is not an .rgraph, with what to do about it.
struct NotConvertedError: Error, CustomStringConvertible {
    var path: String
    var description: String {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return "\(path) is not an .rgraph model; rrun runs converted models: convert it first with "
            + "`convert \(path) -o \(stem).rgraph` (add --range and --residual to record its pixel contract)"
    }
}

/// Loads and checks a model file.
func loadModel(_ path: String) throws -> Model {
    do {
        return try Model(file: try RGraphReader.read(contentsOf: path))
    } catch RGraphError.badMagic {
        throw NotConvertedError(path: path)
    }
}

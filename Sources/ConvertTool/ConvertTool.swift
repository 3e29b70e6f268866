import ArgumentParser
import Convert
import Foundation
import Format

/// `convert`: imports a model, simplifies and fuses it, and writes one `.rgraph` file.
@main
struct ConvertTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an ONNX model or a safetensors checkpoint to Restore's .rgraph format.",
        discussion: """
            The restoration options record how rrun and libRestore turn pixels into the \
            model's input and its output back into pixels (docs/design.md §4).
            A checkpoint (a folder with config.json and model.safetensors or a sharded \
            model.safetensors.index.json, or a .safetensors file with config.json beside it) \
            is built by the architecture template its tensor names select (--list-archs).
            Examples: convert denoiser.onnx -o denoiser.rgraph --range 0,1 --residual
                      convert biggan-deep-128/ -o g.rgraph --truncation 0.4
            """,
        version: "\(RestoreVersion.string)")

    @Argument(help: ArgumentHelp("The model to convert: .onnx (external data files next to it are read), or a checkpoint "
                                 + "folder, .safetensors file or model.safetensors.index.json."))
    var model: String?

    @Option(name: .shortAndLong, help: "The .rgraph file to write.")
    var output: String?

    @Flag(help: "List the architecture templates for safetensors checkpoints, and exit.")
    var listArchs = false

    @Option(help: "The architecture template for a checkpoint (default: detected from its tensor names).")
    var arch: String?

    @Option(help: "BigGAN truncation in (0, 1]: picks or blends the rows of its batch norms' statistics (default 1).")
    var truncation: Double?

    @Option(help: "Attach a head: rgb turns a dense-prediction network into a 3-channel restorer.")
    var head: String?

    @Option(help: ArgumentHelp("How --head rgb makes an N-class classifier (N ≠ 3) emit RGB: first3 or zero.",
                               discussion: "first3 keeps the first three classifier channels; zero makes a zero "
                                   + "classifier (with --residual the model starts as the identity, for fine-tuning). On a "
                                   + "Mask2Former, zero is a zero 1×1 conv on the mask features and first3 keeps mask queries 0,1,2."))
    var headInit: String?

    @Option(help: ArgumentHelp("A Mask2Former's --head rgb as three of its mask queries' logits: A,B,C.",
                               discussion: "Instead of --head-init zero (a zero 1×1 conv on the pixel decoder's mask "
                                   + "features); --head-init first3 is --head-queries 0,1,2."))
    var headQueries: String?

    @Option(help: "Pixel range the model expects: 0,1 or -1,1 or 0,255.")
    var range: String?

    @Option(help: "Per-channel mean subtracted after the range mapping: R,G,B.")
    var mean: String?

    @Option(help: "Per-channel standard deviation divided by after the mean: R,G,B.")
    var std: String?

    @Flag(help: "The network predicts a correction: output = input + network output.")
    var residual = false

    @Option(help: "Integer upscaling factor (1 for same-size restoration).")
    var scale: Int?

    @Option(help: "H and W are padded (reflect) to a multiple of this and cropped after.")
    var multiple: Int?

    @Option(help: "Default tile size in pixels for large images.")
    var tile: Int?

    @Option(help: "Default overlap between tiles in pixels.")
    var overlap: Int?

    @Option(help: "Task stored in the model: denoise, deblur, inpaint, colorize, super-resolve, generate or restore.")
    var task: String?

    @Option(help: ArgumentHelp("How weights are stored: f32, f16 or bf16 (computation stays f32), or int8 (linear and "
                               + "convolution weights per output channel, computed by int8 kernels; -v lists those kept f32). "
                               + "Default: a checkpoint's own f16/bf16, else f32."))
    var weights: String?

    @Option(help: ArgumentHelp("Store weights already arranged for Restore's kernels, so rrun needs no preparation at load: "
                               + "auto (default: native when weights are stored as f32, else none), none (smallest file, "
                               + "readable before format 1.2), portable (Winograd-domain filters, for any CPU) or native "
                               + "(everything this CPU's kernels use: also GEMM panels for its AVX2 or AVX-512 kernel). "
                               + "Prepared at the model's fixed size, else its --tile, else 512².",
                               valueName: "auto|none|portable|native"))
    var prepare = "auto"

    @Option(name: .customLong("no-fusion"),
            help: "Leave out a fusion the model would get (to benchmark it or bisect a conversion): deformable-attention.")
    var noFusion: [String] = []

    @Flag(name: .shortAndLong, help: "Print what the import and the rewrite passes did.")
    var verbose = false

    func run() throws {
        if listArchs {
            for template in ArchitectureTemplates.all { print("\(template.name): \(template.summary)") }
            return
        }
        guard let model, let output else { throw ValidationError("convert needs a model and -o OUT.rgraph (or --list-archs)") }
        do {
            var options = ConversionOptions()
            options.importing.architecture = arch
            options.importing.truncation = truncation
            if let head {
                guard let kind = ConversionOptions.Head(rawValue: head) else {
                    throw ValidationError("--head is rgb, found '\(head)'")
                }
                options.head = kind
            }
            if let headInit {
                guard let initialisation = HeadInitialisation(rawValue: headInit) else {
                    throw ValidationError("--head-init is first3 or zero, found '\(headInit)'")
                }
                options.headInitialisation = initialisation
            }
            if let headQueries {
                let queries = headQueries.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard queries.count == 3, queries.allSatisfy({ $0 != nil }) else {
                    throw ValidationError("--head-queries takes three query indices A,B,C, found '\(headQueries)'")
                }
                options.headQueries = queries.compactMap { $0 }
            }
            options.contract.task = try task.map(RestorationContract.Task.init(decoding:))
            options.contract.range = try range.map(RestorationContract.PixelRange.init(decoding:))
            options.contract.mean = try mean.map { try floats($0, option: "--mean") }
            options.contract.std = try std.map { try floats($0, option: "--std") }
            // Unset rather than false: the model's own restore.residual, if any, stays.
            options.contract.residual = residual ? true : nil
            options.contract.scale = scale
            options.contract.multiple = multiple
            options.contract.tile = tile
            options.contract.overlap = overlap
            if let weights {
                guard let weightType = ConversionOptions.WeightType(rawValue: weights) else {
                    throw ValidationError("--weights is f32, f16, bf16 or int8, found '\(weights)'")
                }
                options.weights = weightType
            }
            for name in noFusion {
                guard let fusion = Simplifier.Fusion(rawValue: name) else {
                    throw ValidationError("--no-fusion takes \(Simplifier.Fusion.allCases.map(\.rawValue).joined(separator: ", ")), found '\(name)'")
                }
                options.skippedFusions.insert(fusion)
            }
            options.preparation = try WeightPreparation(prepare)
            let result = try Conversion.convert(model, options: options)
            try RGraphWriter.write(result.graph, to: output)
            print("\(model) → \(output): \(result.report.nodesBefore) nodes imported, \(result.report.nodesAfter) after fusion, "
                  + "\(result.graph.constants.count) tensors")
            if !result.prepared.shapes.isEmpty {
                let shapes = result.prepared.shapes.map { $0.map(String.init).joined(separator: "×") }.joined(separator: ", ")
                let choice = options.preparation == .automatic ? "auto: native" : prepare
                print("prepared for kernels (--prepare \(choice), planned at \(shapes)): \(result.prepared.count) tensors, "
                      + String(format: "%.1f MiB", Double(result.prepared.bytes) / 1048576))
            }
            if let head = result.head { print(head) }
            if verbose {
                result.int8.map { print($0) }
                result.importNotes.forEach { print($0) }
                let weightInputs = result.graph.weightInputNames
                if !weightInputs.isEmpty {
                    let shown = weightInputs.prefix(5).joined(separator: ", ") + (weightInputs.count > 5 ? ", …" : "")
                    print("\(weightInputs.count) graph input\(weightInputs.count == 1 ? " is" : "s are") also initializers "
                          + "(\(shown)): read as constant weights; feeding them at run time is refused")
                }
                print(result.report)
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("convert: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    private func floats(_ text: String, option: String) throws -> [Float] {
        let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == 3, values.allSatisfy({ $0 != nil }) else {
            throw ValidationError("\(option) takes three numbers R,G,B, found '\(text)'")
        }
        return values.compactMap { $0 }
    }
}

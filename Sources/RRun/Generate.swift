import ArgumentParser
import Foundation
import ImageFiles
import Runtime

extension RRun {
    /// `rrun generate`: images from a class-conditional generator (BigGAN), with z and the
    /// class vector made as pytorch-pretrained-biggan's utilities make them.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate images of a class with a BigGAN generator (.rgraph with inputs z and class_vector).",
            discussion: """
                z is truncation · truncnorm(−2, 2) drawn as pytorch-pretrained-biggan's \
                truncated_noise_sample(count, Z, truncation, seed) draws it (the same seed gives the same z), \
                the class vector one-hot; pixels are quantized as its convert_to_images does. \
                BigGAN-deep's batch-norm statistics depend on the truncation too: they are fixed when the \
                checkpoint is converted (convert --truncation), so --truncation must match the model's.
                """)

        @Argument(help: "The generator (.rgraph).")
        var model: String

        @Option(name: .customLong("class"), help: "Class index (0-based, e.g. an ImageNet class).")
        var classIndex: Int

        @Option(help: "Seed of z (NumPy RandomState seed, 0 to 2³²−1).")
        var seed: UInt32 = 0

        @Option(help: "Images to generate (one batch); with more than one, OUT-0.png, OUT-1.png, …")
        var count: Int = 1

        @Option(help: "Truncation in (0, 1]; default: the one the model was converted at, else 1.")
        var truncation: Float?

        @OptionGroup var threads: KernelThreads

        @Option(name: .shortAndLong, help: "Output PNG.")
        var output: String

        mutating func validate() throws {
            guard count >= 1 else { throw ValidationError("--count must be at least 1, found \(count)") }
            if let truncation, !(truncation > 0 && truncation <= 1) {
                throw ValidationError("--truncation must be in (0, 1], found \(truncation)")
            }
        }

        func run() throws {
            try reportingErrors {
                let generator = try DeepGenerativePrior.Generator(model: try loadModel(model))
                guard (0..<generator.classes).contains(classIndex) else {
                    throw GeneratorError.classOutOfRange(classIndex, classes: generator.classes)
                }
                let recorded = generator.model.graph.metadata["convert.truncation"].flatMap(Float.init)
                if let truncation, let recorded, abs(truncation - recorded) > 1e-6 {
                    throw GeneratorError.truncationMismatch(requested: truncation, converted: recorded)
                }
                let used = truncation ?? recorded ?? 1
                if recorded == nil {
                    print("note: the model does not record a truncation (an ONNX export fixes it when exported); "
                          + "z is scaled by \(used)")
                }
                let latents = GeneratorSampling.truncatedNoise(count: count, dimension: generator.latentSize,
                                                               truncation: used, seed: seed)
                let images = try generator.generate(latents: latents, classIndices: Array(repeating: classIndex, count: count),
                                                    threads: threads.count)
                let (height, width) = generator.size
                let paths = count == 1 ? [output] : (0..<count).map { Self.numbered(output, $0) }
                for (index, path) in paths.enumerated() {
                    let planes = images.floats[(index * 3 * height * width)..<((index + 1) * 3 * height * width)]
                    let image = PixelImage(width: width, height: height, bitDepth: 8, colorType: .rgb,
                                           bytes: GeneratorSampling.imageBytes(planes, height: height, width: width))
                    try image.write(path: path)
                }
                print("generated \(count) image\(count == 1 ? "" : "s") of class \(classIndex), \(width)×\(height), "
                      + "seed \(seed), truncation \(used): \(paths.joined(separator: ", "))")
            }
        }

        /// OUT.png → OUT-i.png.
        static func numbered(_ path: String, _ index: Int) -> String {
            let url = URL(fileURLWithPath: path)
            let stem = url.deletingPathExtension().lastPathComponent
            return url.deletingLastPathComponent().appendingPathComponent("\(stem)-\(index).\(url.pathExtension)").path
        }
    }
}

import CRestore
import Format
import Runtime

// Class-conditional generators (BigGAN): generation and Deep Generative Prior
// (restore.h, "generators"), the C side of `rrun generate` and `rrun dgp`.

@c @implementation
public func restore_generator_info(_ generator: OpaquePointer?, _ width: UnsafeMutablePointer<Int32>?,
                                   _ height: UnsafeMutablePointer<Int32>?, _ classes: UnsafeMutablePointer<Int32>?,
                                   _ latent_size: UnsafeMutablePointer<Int32>?) -> restore_status {
    reporting("restore_generator_info") {
        let found = try DeepGenerativePrior.Generator(model: try ModelHandle.from(generator).model)
        width?.pointee = Int32(clamping: found.size.width)
        height?.pointee = Int32(clamping: found.size.height)
        classes?.pointee = Int32(clamping: found.classes)
        latent_size?.pointee = Int32(clamping: found.latentSize)
    }
}

@c @implementation
public func restore_generate(_ generator: OpaquePointer?, _ class_index: Int32, _ seed: UInt32, _ truncation: Float,
                             _ count: Int32, _ threads: Int32, _ out: UnsafeMutablePointer<UInt8>?,
                             _ out_stride: Int32) -> restore_status {
    reporting("restore_generate") {
        let found = try DeepGenerativePrior.Generator(model: try ModelHandle.from(generator).model)
        guard let out else { throw CallFailure.argument("out is NULL") }
        guard (0..<Int32(clamping: found.classes)).contains(class_index) else {
            throw GeneratorError.classOutOfRange(Int(class_index), classes: found.classes)
        }
        guard count >= 1, count <= 1024 else { throw CallFailure.argument("count is \(count), expected 1 to 1024") }
        guard threads >= 1 else { throw CallFailure.argument("threads is \(threads), expected 1 or more") }
        let (height, width) = found.size
        guard Int(out_stride) >= width * 3 else {
            throw CallFailure.argument("out_stride \(out_stride) is below the row's \(width * 3) bytes (RGB, \(width) wide)")
        }
        let recorded = found.model.graph.metadata["convert.truncation"].flatMap(Float.init)
        let used: Float
        if truncation > 0 {
            guard truncation <= 1 else { throw CallFailure.argument("truncation is \(truncation), expected (0, 1] or 0") }
            if let recorded, abs(truncation - recorded) > 1e-6 {
                throw GeneratorError.truncationMismatch(requested: truncation, converted: recorded)
            }
            used = truncation
        } else {
            used = recorded ?? 1
        }
        let latents = GeneratorSampling.truncatedNoise(count: Int(count), dimension: found.latentSize, truncation: used,
                                                       seed: seed)
        let images = try found.generate(latents: latents, classIndices: Array(repeating: Int(class_index), count: Int(count)),
                                        threads: Int(threads))
        let plane = 3 * height * width
        for index in 0..<Int(count) {
            let bytes = GeneratorSampling.imageBytes(images.floats[(index * plane)..<((index + 1) * plane)],
                                                     height: height, width: width)
            let image = out + index * height * Int(out_stride)
            for y in 0..<height {
                for x in 0..<(width * 3) { image[y * Int(out_stride) + x] = bytes[y * width * 3 + x] }
            }
        }
    }
}

@c @implementation
public func restore_dgp_options_init(_ options: UnsafeMutablePointer<restore_dgp_options>?) {
    guard let options else { return }
    let defaults = DeepGenerativePrior()
    options.pointee = restore_dgp_options(task: RESTORE_DGP_COLORIZE, schedule: RESTORE_DGP_SCHEDULE_PROGRESSIVE,
                                          class_index: -1, iterations: Int32(defaults.iterations),
                                          candidates: Int32(defaults.candidates), seed: defaults.seed,
                                          threads: Int32(defaults.threads), discriminator: nil, mask: nil, mask_stride: 0)
}

@c @implementation
public func restore_dgp(_ generator: OpaquePointer?, _ options: UnsafePointer<restore_dgp_options>?,
                        _ pixels: UnsafeRawPointer?, _ width: Int32, _ height: Int32, _ channels: Int32, _ bits: Int32,
                        _ stride: Int32, _ out: UnsafeMutablePointer<UInt8>?, _ out_stride: Int32,
                        _ progress: restore_progress_fn?, _ user_data: UnsafeMutableRawPointer?) -> restore_status {
    reporting("restore_dgp") {
        guard let options = options?.pointee else { throw CallFailure.argument("options is NULL") }
        let found = try DeepGenerativePrior.Generator(model: try ModelHandle.from(generator).model)
        guard let out else { throw CallFailure.argument("out is NULL") }
        var prior = DeepGenerativePrior()
        guard options.iterations >= 1 else { throw CallFailure.argument("iterations is \(options.iterations), expected 1 or more") }
        guard options.candidates >= 1 else { throw CallFailure.argument("candidates is \(options.candidates), expected 1 or more") }
        guard options.threads >= 1 else { throw CallFailure.argument("threads is \(options.threads), expected 1 or more") }
        prior.iterations = Int(options.iterations)
        prior.candidates = Int(options.candidates)
        prior.seed = options.seed
        prior.threads = Int(options.threads)
        switch options.schedule {
        case RESTORE_DGP_SCHEDULE_PROGRESSIVE: prior.schedule = .progressive
        case RESTORE_DGP_SCHEDULE_ALL: prior.schedule = .all
        default: throw CallFailure.argument("schedule is \(options.schedule.rawValue), expected a restore_dgp_schedule")
        }
        if options.class_index >= 0 { prior.classIndex = Int(options.class_index) }
        let factor: Int
        switch options.task {
        case RESTORE_DGP_COLORIZE, RESTORE_DGP_INPAINT: factor = 1
        case RESTORE_DGP_SR4: factor = 4
        default: throw CallFailure.argument("task is \(options.task.rawValue), expected a restore_dgp_task")
        }
        if options.task != RESTORE_DGP_INPAINT && options.mask != nil {
            throw CallFailure.argument("mask is set but the task is not RESTORE_DGP_INPAINT")
        }
        // The input is checked and read as restore_image reads it. The output is always RGB
        // (a colorized gray image has colour), so only the input half of the layout is used:
        // its output side is the input itself, never written.
        guard let pixels else { throw CallFailure.argument("pixels is NULL") }
        let input = try PixelLayout(pixels: pixels, width: width, height: height, channels: channels, bits: bits,
                                    stride: stride, out: UnsafeMutableRawPointer(mutating: pixels), outStride: stride) {
            (Int(width), Int(height))
        }.read()
        let fitting = try GeneratorFitting(inputSize: (input.height, input.width), generatorSize: found.size, factor: factor)
        let side = fitting.crop.side * factor
        guard Int(out_stride) >= side * 3 else {
            throw CallFailure.argument("out_stride \(out_stride) is below the output row's \(side * 3) bytes "
                                       + "(the output is \(side)×\(side) RGB)")
        }
        if let discriminator = options.discriminator {
            prior.features = try FeatureDistance(model: try ModelHandle.from(discriminator).model, imageSize: found.size,
                                                 threads: prior.threads)
        }
        let task: DeepGenerativePrior.Task
        switch options.task {
        case RESTORE_DGP_INPAINT:
            let known = try knownPixels(options.mask, stride: options.mask_stride, width: input.width,
                                        height: input.height, task: "RESTORE_DGP_INPAINT")
            task = .inpaint(mask: fitting.fitMask(known))
        case RESTORE_DGP_SR4: task = .superResolve4
        default: task = .colorize
        }
        let fitted = fitting.fit(input.rgbTensor())
        let outcome = try prior.restore(fitted, task: task, generator: found) { iteration, total, loss in
            guard let progress else { return true }
            return progress(user_data, Int32(iteration), Int32(total), loss) == 0
        }
        let restored = fitting.restoreSize(outcome.image).floats
        let plane = side * side
        for y in 0..<side {
            for x in 0..<side {
                for c in 0..<3 {
                    let value = restored[c * plane + y * side + x]
                    out[y * Int(out_stride) + x * 3 + c] = UInt8((min(max(value, 0), 1) * 255).rounded())
                }
            }
        }
    }
}


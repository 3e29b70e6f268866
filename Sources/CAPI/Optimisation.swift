import CRestore
import Format
import Runtime

// The entry points that optimise at run time (restore.h, "optimisation at run time"):
// each reports progress through a restore_progress_fn, which may cancel.

@c @implementation
public func restore_dip_options_init(_ options: UnsafeMutablePointer<restore_dip_options>?) {
    guard let options else { return }
    let defaults = DeepImagePrior()
    options.pointee = restore_dip_options(task: RESTORE_DIP_DENOISE, net: RESTORE_DIP_NET_UNET,
                                          iterations: Int32(defaults.iterations), seed: defaults.seed,
                                          threads: Int32(defaults.threads), mask: nil, mask_stride: 0)
}

@c @implementation
public func restore_dip(_ options: UnsafePointer<restore_dip_options>?, _ pixels: UnsafeRawPointer?, _ width: Int32,
                        _ height: Int32, _ channels: Int32, _ bits: Int32, _ stride: Int32, _ out: UnsafeMutableRawPointer?,
                        _ out_stride: Int32, _ progress: restore_progress_fn?, _ user_data: UnsafeMutableRawPointer?) -> restore_status {
    reporting("restore_dip") {
        guard let options = options?.pointee else { throw CallFailure.argument("options is NULL") }
        var prior = DeepImagePrior()
        switch options.net {
        case RESTORE_DIP_NET_UNET: prior.network = .unet
        case RESTORE_DIP_NET_VIT: prior.network = .vit
        default: throw CallFailure.argument("net is \(options.net.rawValue), expected RESTORE_DIP_NET_UNET or RESTORE_DIP_NET_VIT")
        }
        guard options.iterations >= 1 else { throw CallFailure.argument("iterations is \(options.iterations), expected 1 or more") }
        guard options.threads >= 1 else { throw CallFailure.argument("threads is \(options.threads), expected 1 or more") }
        prior.iterations = Int(options.iterations)
        prior.seed = options.seed
        prior.threads = Int(options.threads)
        let factor: Int
        switch options.task {
        case RESTORE_DIP_DENOISE, RESTORE_DIP_INPAINT: factor = 1
        case RESTORE_DIP_SR4: factor = 4
        default: throw CallFailure.argument("task is \(options.task.rawValue), expected a restore_dip_task")
        }
        if options.task != RESTORE_DIP_INPAINT && options.mask != nil {
            throw CallFailure.argument("mask is set but the task is not RESTORE_DIP_INPAINT")
        }
        let layout = try PixelLayout(pixels: pixels, width: width, height: height, channels: channels, bits: bits,
                                     stride: stride, out: out, outStride: out_stride) {
            (try Sizes.product(Int(width), factor, "output width"), try Sizes.product(Int(height), factor, "output height"))
        }
        let task: DeepImagePrior.Task
        switch options.task {
        case RESTORE_DIP_INPAINT:
            task = .inpaint(mask: try knownPixels(options.mask, stride: options.mask_stride, width: layout.width,
                                                  height: layout.height, task: "RESTORE_DIP_INPAINT"))
        case RESTORE_DIP_SR4: task = .superResolve4
        default: task = .denoise
        }
        let image = layout.read()
        let total = Int32(options.iterations)
        let restored = try prior.restore(image.rgbTensor(), task: task) { iteration, loss in
            guard let progress else { return true }
            return progress(user_data, Int32(iteration), total, loss) == 0
        }
        try layout.write(try image.withRGB(restored))
    }
}

/// The known pixels of an inpainting mask given through the C ABI (nonzero byte = known),
/// as the 1/0 floats the priors' inpainting loss weighs by; DIP and DGP read it alike.
func knownPixels(_ mask: UnsafePointer<UInt8>?, stride: Int32, width: Int, height: Int, task: String) throws -> [Float] {
    guard let mask else { throw CallFailure.argument("\(task) needs options.mask") }
    guard Int(stride) >= width else { throw CallFailure.argument("mask_stride \(stride) is below the image width \(width)") }
    var known = [Float](repeating: 0, count: width * height)
    for y in 0..<height {
        for x in 0..<width where mask[y * Int(stride) + x] != 0 { known[y * width + x] = 1 }
    }
    return known
}

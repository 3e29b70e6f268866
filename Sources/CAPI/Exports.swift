import CRestore
import Format
import Runtime
#if canImport(Glibc)
import Glibc
#endif

// The entry points of restore.h, one per declaration. Each validates its pointers and
// sizes, does its work inside `reporting` so every error becomes a status and a message,
// and never traps on what a caller passes (docs/design.md §6).

@c @implementation
public func restore_version() -> UnsafePointer<CChar>? {
    StaticCString.pointer(RestoreVersion.string)
}

@c @implementation
public func restore_last_error() -> UnsafePointer<CChar>? {
    LastError.current
}

@c @implementation
public func restore_status_string(_ status: restore_status) -> UnsafePointer<CChar>? {
    switch status {
    case RESTORE_OK: StaticCString.pointer("RESTORE_OK")
    case RESTORE_ERROR_IO: StaticCString.pointer("RESTORE_ERROR_IO")
    case RESTORE_ERROR_FORMAT: StaticCString.pointer("RESTORE_ERROR_FORMAT")
    case RESTORE_ERROR_UNSUPPORTED: StaticCString.pointer("RESTORE_ERROR_UNSUPPORTED")
    case RESTORE_ERROR_SHAPE: StaticCString.pointer("RESTORE_ERROR_SHAPE")
    case RESTORE_ERROR_ARGUMENT: StaticCString.pointer("RESTORE_ERROR_ARGUMENT")
    case RESTORE_ERROR_MEMORY: StaticCString.pointer("RESTORE_ERROR_MEMORY")
    case RESTORE_ERROR_INTERNAL: StaticCString.pointer("RESTORE_ERROR_INTERNAL")
    case RESTORE_CANCELLED: StaticCString.pointer("RESTORE_CANCELLED")
    default: StaticCString.pointer("RESTORE_STATUS_UNKNOWN")
    }
}

// MARK: - Models

@c @implementation
public func restore_model_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> restore_status {
    reporting("restore_model_load") {
        guard let path else { throw CallFailure.argument("path is NULL") }
        guard let out else { throw CallFailure.argument("out is NULL") }
        out.pointee = retainedModel(try verifiedModel(try RGraphReader.read(contentsOf: String(cString: path))))
    }
}

@c @implementation
public func restore_model_load_memory(_ data: UnsafeRawPointer?, _ size: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> restore_status {
    reporting("restore_model_load_memory") {
        guard let data else { throw CallFailure.argument("data is NULL") }
        guard let out else { throw CallFailure.argument("out is NULL") }
        // size_t arrives as Int: a "size" above Int.max is a negative number here.
        guard size >= 0 else { throw CallFailure.argument("size \(UInt(bitPattern: size)) is not a plausible byte count") }
        let file = try RGraphReader.read(bytes: UnsafeRawBufferPointer(start: data, count: size), name: "<memory>")
        out.pointee = retainedModel(try verifiedModel(file))
    }
}

/// The model of `file` with every tensor verified: a corrupt file fails to load through the
/// C ABI (RESTORE_ERROR_FORMAT), as it always has, rather than at its first run as in rrun.
private func verifiedModel(_ file: RGraphFile) throws -> Model {
    let model = try Model(file: file)
    try model.verifyAllConstants()
    return model
}

/// A +1 reference to a new model handle, as C receives it.
private func retainedModel(_ model: Model) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(ModelHandle(model)).toOpaque())
}

@c @implementation
public func restore_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

@c @implementation
public func restore_model_metadata(_ model: OpaquePointer?, _ key: UnsafePointer<CChar>?) -> UnsafePointer<CChar>? {
    guard let handle = try? ModelHandle.from(model), let key else { return nil }
    return handle.metadataValues[String(cString: key)].map { UnsafePointer($0.pointer) }
}

@c @implementation
public func restore_model_metadata_count(_ model: OpaquePointer?) -> Int32 {
    guard let handle = try? ModelHandle.from(model) else { return 0 }
    return Int32(clamping: handle.metadataKeys.count)
}

@c @implementation
public func restore_model_metadata_key(_ model: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    guard let handle = try? ModelHandle.from(model) else { return nil }
    return element(handle.metadataKeys, index)
}

@c @implementation
public func restore_model_input_count(_ model: OpaquePointer?) -> Int32 {
    guard let handle = try? ModelHandle.from(model) else { return 0 }
    return Int32(clamping: handle.inputNames.count)
}

@c @implementation
public func restore_model_input_name(_ model: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    guard let handle = try? ModelHandle.from(model) else { return nil }
    return element(handle.inputNames, index)
}

@c @implementation
public func restore_model_output_count(_ model: OpaquePointer?) -> Int32 {
    guard let handle = try? ModelHandle.from(model) else { return 0 }
    return Int32(clamping: handle.outputNames.count)
}

@c @implementation
public func restore_model_output_name(_ model: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    guard let handle = try? ModelHandle.from(model) else { return nil }
    return element(handle.outputNames, index)
}

/// Entry `index` of a list of strings, or NULL when out of range.
private func element(_ strings: [OwnedCString], _ index: Int32) -> UnsafePointer<CChar>? {
    guard index >= 0, Int(index) < strings.count else { return nil }
    return UnsafePointer(strings[Int(index)].pointer)
}

@c @implementation
public func restore_output_size(_ model: OpaquePointer?, _ width: Int32, _ height: Int32,
                                _ out_width: UnsafeMutablePointer<Int32>?, _ out_height: UnsafeMutablePointer<Int32>?) -> restore_status {
    reporting("restore_output_size") {
        let handle = try ModelHandle.from(model)
        guard let out_width, let out_height else { throw CallFailure.argument("out_width or out_height is NULL") }
        let size = try outputSize(handle, width: width, height: height)
        out_width.pointee = size.width
        out_height.pointee = size.height
    }
}

/// The restored size of a width×height image: positive sizes in, `restore.scale` times
/// larger out, still fitting in a C int.
private func outputSize(_ handle: ModelHandle, width: Int32, height: Int32) throws -> (width: Int32, height: Int32) {
    guard width >= 1, height >= 1 else { throw CallFailure.argument("image size \(width)×\(height) is not positive") }
    let scale = try handle.contract.get().scale
    return (try Sizes.int32(try Sizes.product(Int(width), scale, "output width"), "output width"),
            try Sizes.int32(try Sizes.product(Int(height), scale, "output height"), "output height"))
}

// MARK: - Sessions

@c @implementation
public func restore_session_create(_ model: OpaquePointer?, _ threads: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> restore_status {
    reporting("restore_session_create") {
        let handle = try ModelHandle.from(model)
        guard let out else { throw CallFailure.argument("out is NULL") }
        guard threads >= 0 else { throw CallFailure.argument("threads is \(threads), expected 0 (one per processor) or more") }
        let count = threads == 0 ? Int(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))) : Int(threads)
        let session = SessionHandle(owner: handle, threads: count)
        out.pointee = OpaquePointer(Unmanaged.passRetained(session).toOpaque())
    }
}

@c @implementation
public func restore_session_free(_ session: OpaquePointer?) {
    guard let session else { return }
    Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(session)).release()
}

@c @implementation
public func restore_session_set_input(_ session: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                      _ data: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32) -> restore_status {
    reporting("restore_session_set_input") {
        try SessionHandle.with(session) { handle in
            guard let name else { throw CallFailure.argument("name is NULL") }
            let inputName = String(cString: name)
            let inputs = handle.owner.model.graph.inputs.map(\.name)
            guard inputs.contains(inputName) else {
                if handle.owner.model.graph.weightInputNames.contains(inputName) {
                    throw CallFailure.argument(ModelError.weightFed(inputName).description)
                }
                throw CallFailure.argument("the model has no input named '\(inputName)'; its inputs are \(inputs.joined(separator: ", "))")
            }
            if data == nil && rank == 0 {
                handle.extraInputs[inputName] = nil
                return
            }
            guard let data else { throw CallFailure.argument("data is NULL (pass rank 0 too to clear the input)") }
            let (dimensions, count) = try Sizes.shape(shape, rank: rank, "input '\(inputName)'")
            handle.extraInputs[inputName] = HostTensor(shape: dimensions, floats: Array(UnsafeBufferPointer(start: data, count: count)))
        }
    }
}

@c @implementation
public func restore_run_f32(_ s: OpaquePointer?, _ input: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                            _ output: UnsafeMutablePointer<Float>?, _ output_capacity: Int,
                            _ output_shape: UnsafeMutablePointer<Int64>?, _ output_rank: UnsafeMutablePointer<Int32>?) -> restore_status {
    reporting("restore_run_f32") {
        try SessionHandle.with(s) { handle in
            guard let input else { throw CallFailure.argument("input is NULL") }
            guard let output_shape, let output_rank else { throw CallFailure.argument("output_shape or output_rank is NULL") }
            let (dimensions, count) = try Sizes.shape(shape, rank: rank, "input")
            let graph = handle.owner.model.graph
            guard let firstInput = graph.inputs.first, let firstOutput = graph.outputs.first else {
                throw CallFailure.unsupported("the model has no inputs or no outputs")
            }
            // Plan first (cached for the run) to learn the memory and output size the run
            // needs before reading the input or running.
            let plan = try handle.session.checkedPlan(for: try handle.inputShapes(setting: firstInput.name, to: dimensions),
                                              besides: count * MemoryLayout<Float>.stride)
            guard let outputDimensions = plan.valueShapes[firstOutput.name] else {
                throw CallFailure.internal("the plan has no shape for output '\(firstOutput.name)'")
            }
            guard outputDimensions.count <= RESTORE_MAX_RANK else {
                throw CallFailure.unsupported("output '\(firstOutput.name)' has rank \(outputDimensions.count), above RESTORE_MAX_RANK")
            }
            for (index, dimension) in outputDimensions.enumerated() { output_shape[index] = Int64(dimension) }
            output_rank.pointee = Int32(outputDimensions.count)
            let needed = outputDimensions.reduce(1, *)
            guard output_capacity >= needed else {
                throw CallFailure.argument("output holds \(output_capacity) floats; output '\(firstOutput.name)' "
                                           + "\(outputDimensions) needs \(needed)")
            }
            guard let output else { throw CallFailure.argument("output is NULL") }

            var feeds = handle.extraInputs
            feeds[firstInput.name] = HostTensor(shape: dimensions, floats: Array(UnsafeBufferPointer(start: input, count: count)))
            guard let result = try handle.session.run(feeds)[firstOutput.name], result.shape == outputDimensions else {
                throw CallFailure.internal("output '\(firstOutput.name)' does not have its planned shape \(outputDimensions)")
            }
            result.floats.withUnsafeBufferPointer { values in
                if let base = values.baseAddress { output.update(from: base, count: values.count) }
            }
        }
    }
}

@c @implementation
public func restore_image_u8(_ s: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                             _ channels: Int32, _ stride: Int32, _ out: UnsafeMutablePointer<UInt8>?, _ out_stride: Int32,
                             _ tile: Int32, _ overlap: Int32) -> restore_status {
    reporting("restore_image_u8") {
        guard channels == 3 || channels == 4 else {
            throw CallFailure.argument("channels is \(channels), expected 3 (RGB) or 4 (RGBA); restore_image takes 1 to 4")
        }
        try restoreImage(s, UnsafeRawPointer(pixels), width: width, height: height, channels: channels, bits: 8,
                         stride: stride, out: UnsafeMutableRawPointer(out), outStride: out_stride, tile: tile, overlap: overlap)
    }
}

@c @implementation
public func restore_image(_ s: OpaquePointer?, _ pixels: UnsafeRawPointer?, _ width: Int32, _ height: Int32,
                          _ channels: Int32, _ bits: Int32, _ stride: Int32, _ out: UnsafeMutableRawPointer?,
                          _ out_stride: Int32, _ tile: Int32, _ overlap: Int32) -> restore_status {
    reporting("restore_image") {
        try restoreImage(s, pixels, width: width, height: height, channels: channels, bits: bits,
                         stride: stride, out: out, outStride: out_stride, tile: tile, overlap: overlap)
    }
}

@c @implementation
public func restore_session_set_memory_limit(_ session: OpaquePointer?, _ bytes: Int) -> restore_status {
    reporting("restore_session_set_memory_limit") {
        try SessionHandle.with(session) { handle in
            // size_t arrives as Int: above Int.max it is negative here, and means "no limit" in effect.
            handle.imageBudget = bytes == 0 ? nil : (bytes < 0 ? Int.max : bytes)
        }
    }
}

/// restore_image and restore_image_u8: checks every size, chooses tiles as `rrun` does
/// (`Restorer.tiling` against the session's image budget), then restores.
private func restoreImage(_ s: OpaquePointer?, _ pixels: UnsafeRawPointer?, width: Int32, height: Int32, channels: Int32,
                          bits: Int32, stride: Int32, out: UnsafeMutableRawPointer?, outStride: Int32,
                          tile: Int32, overlap: Int32) throws {
    try SessionHandle.with(s) { handle in
        guard tile >= 0 else { throw CallFailure.argument("tile is \(tile), expected 0 (chosen from the memory budget) or more") }
        let layout = try PixelLayout(pixels: pixels, width: width, height: height, channels: channels, bits: bits, stride: stride,
                                     out: out, outStride: outStride) {
            let size = try outputSize(handle.owner, width: width, height: height)
            return (Int(size.width), Int(size.height))
        }
        let restorer = try handle.restorer()
        let tiling = try restorer.tiling(height: Int(height), width: Int(width), tile: Int(tile),
                                         overlap: overlap < 0 ? nil : Int(overlap),
                                         budget: handle.imageBudget ?? MemoryLimit.defaultImageBudget,
                                         imageBytes: layout.imageBytes)
        // Read everything before writing, so `out` may alias `pixels`.
        let image = layout.read()
        // The same quantisation and alpha handling as `rrun` writing a PNG.
        try layout.write(try restorer.restore(image, tiling: tiling, extraInputs: handle.extraInputs))
    }
}

/// An image passed in and the buffer its result goes to, as restore_image and the
/// optimising entry points take them, with every size checked.
struct PixelLayout {
    let pixels: UnsafeRawPointer, out: UnsafeMutableRawPointer
    let width: Int, height: Int, channels: Int, bits: Int, stride: Int
    let colorType: PixelImage.ColorType
    let outWidth: Int, outHeight: Int, outStride: Int

    private var rowBytes: Int { width * channels * bits / 8 }
    private var outRow: Int { outWidth * channels * bits / 8 }
    /// The input's and output's bytes.
    var imageBytes: Int { outRow * outHeight + rowBytes * height }

    /// `outputSize` gives the result's width and height once the arguments are known to be valid.
    init(pixels: UnsafeRawPointer?, width: Int32, height: Int32, channels: Int32, bits: Int32, stride: Int32,
         out: UnsafeMutableRawPointer?, outStride: Int32, outputSize: () throws -> (width: Int, height: Int)) throws {
        guard let pixels else { throw CallFailure.argument("pixels is NULL") }
        guard let out else { throw CallFailure.argument("out is NULL") }
        guard let colorType = PixelImage.ColorType(channels: Int(channels)) else {
            throw CallFailure.argument("channels is \(channels), expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)")
        }
        guard bits == 8 || bits == 16 else { throw CallFailure.argument("bits is \(bits), expected 8 or 16") }
        guard width >= 1, height >= 1 else { throw CallFailure.argument("image size \(width)×\(height) is not positive") }
        let (outWidth, outHeight) = try outputSize()
        let (w, h, c, sampleBytes) = (Int(width), Int(height), Int(channels), Int(bits) / 8)
        guard try Sizes.product(w, h, "pixel count") <= Sizes.maximumPixels,
              try Sizes.product(outWidth, outHeight, "output pixel count") <= Sizes.maximumPixels else {
            throw CallFailure.memory("\(width)×\(height) is above the \(Sizes.maximumPixels)-pixel limit")
        }
        let rowBytes = w * c * sampleBytes
        guard Int(stride) >= rowBytes else { throw CallFailure.argument("stride \(stride) is below the row's \(rowBytes) bytes") }
        let outRow = try Sizes.product(try Sizes.product(outWidth, c, "output row samples"), sampleBytes, "output row bytes")
        guard Int(outStride) >= outRow else {
            throw CallFailure.argument("out_stride \(outStride) is below the output row's \(outRow) bytes "
                                       + "(the output is \(outWidth)×\(outHeight))")
        }
        _ = try Sizes.product(outRow, outHeight, "output bytes")
        self.pixels = pixels
        self.out = out
        self.width = w; self.height = h; self.channels = c; self.bits = Int(bits); self.stride = Int(stride)
        self.colorType = colorType
        self.outWidth = outWidth; self.outHeight = outHeight; self.outStride = Int(outStride)
    }

    /// A copy of the input image.
    func read() -> PixelImage {
        var bytes = [UInt8](repeating: 0, count: rowBytes * height)
        bytes.withUnsafeMutableBytes { target in
            guard let base = target.baseAddress else { return }
            for y in 0..<height { (base + y * rowBytes).copyMemory(from: pixels + y * stride, byteCount: rowBytes) }
        }
        return PixelImage(width: width, height: height, bitDepth: bits, colorType: colorType, bytes: bytes)
    }

    /// Writes `result` (outWidth × outHeight, the input's layout) to the output buffer.
    func write(_ result: PixelImage) throws {
        guard result.width == outWidth, result.height == outHeight else {
            throw CallFailure.internal("made \(result.width)×\(result.height), expected \(outWidth)×\(outHeight)")
        }
        let outRow = self.outRow
        result.bytes.withUnsafeBytes { levels in
            guard let base = levels.baseAddress else { return }
            for y in 0..<outHeight { (out + y * outStride).copyMemory(from: base + y * outRow, byteCount: outRow) }
        }
    }
}

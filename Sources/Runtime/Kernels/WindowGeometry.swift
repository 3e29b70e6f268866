import Synchronization
import Foundation
import Format

/// A window resolved for one input size: every number a kernel loop needs.
///
/// For a forward window (convolution, pooling) output pixel `o` reads input pixels
/// `o·stride − padBegin + k·dilation`; for a transposed convolution input pixel `i`
/// writes output pixels `i·stride − padBegin + k·dilation`.
struct WindowGeometry: Sendable, Equatable {
    var inputHeight: Int, inputWidth: Int
    var outputHeight: Int, outputWidth: Int
    var kernelHeight: Int, kernelWidth: Int
    var strideY: Int, strideX: Int
    var dilationY: Int, dilationX: Int
    var padTop: Int, padLeft: Int
    var padBottom: Int, padRight: Int

    var inputPixels: Int { inputHeight * inputWidth }
    var outputPixels: Int { outputHeight * outputWidth }
    var kernelPixels: Int { kernelHeight * kernelWidth }

    /// The window of a convolution or pooling over an input of `input` (H, W) pixels.
    /// `ceilMode` keeps a last partial window (ONNX pooling), which must start inside
    /// the input or its left padding.
    static func forward(_ attributes: SlidingWindow, kernel: (Int, Int), input: (Int, Int),
                        ceilMode: Bool = false, node: String) throws -> WindowGeometry {
        let y = try forwardAxis(attributes, axis: 0, kernel: kernel.0, input: input.0, ceilMode: ceilMode, node: node)
        let x = try forwardAxis(attributes, axis: 1, kernel: kernel.1, input: input.1, ceilMode: ceilMode, node: node)
        return WindowGeometry(attributes, kernel: kernel, input: input, y: y, x: x)
    }

    /// The window of a transposed convolution over an input of `input` (H, W) pixels;
    /// output size per ONNX ConvTranspose.
    static func transposed(_ attributes: SlidingWindow, kernel: (Int, Int), input: (Int, Int),
                           outputPadding: [Int], node: String) throws -> WindowGeometry {
        let y = try transposedAxis(attributes, axis: 0, kernel: kernel.0, input: input.0, outputPadding: outputPadding[0], node: node)
        let x = try transposedAxis(attributes, axis: 1, kernel: kernel.1, input: input.1, outputPadding: outputPadding[1], node: node)
        return WindowGeometry(attributes, kernel: kernel, input: input, y: y, x: x)
    }

    private init(_ attributes: SlidingWindow, kernel: (Int, Int), input: (Int, Int),
                 y: AxisWindow, x: AxisWindow) {
        inputHeight = input.0; inputWidth = input.1
        outputHeight = y.output; outputWidth = x.output
        kernelHeight = kernel.0; kernelWidth = kernel.1
        strideY = attributes.strides[0]; strideX = attributes.strides[1]
        dilationY = attributes.dilations[0]; dilationX = attributes.dilations[1]
        padTop = y.padBegin; padLeft = x.padBegin
        padBottom = y.padEnd; padRight = x.padEnd
    }

    private struct AxisWindow { var output: Int, padBegin: Int, padEnd: Int }

    private static func forwardAxis(_ attributes: SlidingWindow, axis: Int, kernel: Int, input: Int,
                                    ceilMode: Bool, node: String) throws -> AxisWindow {
        let stride = attributes.strides[axis]
        let extent = (kernel - 1) * attributes.dilations[axis] + 1
        var padBegin = attributes.pads[axis], padEnd = attributes.pads[axis + 2]
        switch attributes.autoPad {
        case .sameUpper, .sameLower:
            let output = (input + stride - 1) / stride
            let total = max(0, (output - 1) * stride + extent - input)
            padBegin = attributes.autoPad == .sameUpper ? total / 2 : total - total / 2
            return AxisWindow(output: output, padBegin: padBegin, padEnd: total - padBegin)
        case .valid:
            padBegin = 0; padEnd = 0
        case .notset:
            break
        }
        let span = input + padBegin + padEnd - extent
        guard span >= 0 else {
            throw OpError.shape(node: node, "window of \(extent) pixels does not fit an axis of \(input) pixels with padding \(padBegin)+\(padEnd)")
        }
        var output = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
        // ONNX: with ceil mode, a last window that would start in the end padding is dropped.
        if ceilMode && (output - 1) * stride >= input + padBegin { output -= 1 }
        return AxisWindow(output: output, padBegin: padBegin, padEnd: padEnd)
    }

    private static func transposedAxis(_ attributes: SlidingWindow, axis: Int, kernel: Int, input: Int,
                                       outputPadding: Int, node: String) throws -> AxisWindow {
        let stride = attributes.strides[axis]
        let extent = (kernel - 1) * attributes.dilations[axis] + 1
        let full = stride * (input - 1) + outputPadding + extent
        switch attributes.autoPad {
        case .sameUpper, .sameLower:
            let output = input * stride
            let total = max(0, full - output)
            let padBegin = attributes.autoPad == .sameUpper ? total / 2 : total - total / 2
            return AxisWindow(output: output, padBegin: padBegin, padEnd: total - padBegin)
        case .valid:
            return AxisWindow(output: full, padBegin: 0, padEnd: 0)
        case .notset:
            let padBegin = attributes.pads[axis], padEnd = attributes.pads[axis + 2]
            let output = full - padBegin - padEnd
            guard output > 0 else {
                throw OpError.shape(node: node, "transposed convolution output axis would have \(output) pixels")
            }
            return AxisWindow(output: output, padBegin: padBegin, padEnd: padEnd)
        }
    }

    /// The range of positions `o` in 0..<count for which `o·stride + offset` lies in 0..<limit:
    /// the part of a row a window tap reaches without bounds checks.
    @inline(__always)
    static func validRange(count: Int, stride: Int, offset: Int, limit: Int) -> Range<Int> {
        // o·stride + offset >= 0  ⇔  o >= ceil(-offset / stride)
        let low = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        // o·stride + offset <= limit − 1  ⇔  o <= floor((limit − 1 − offset) / stride)
        let lastReach = limit - 1 - offset
        let high = lastReach < 0 ? 0 : lastReach / stride + 1
        let lower = min(low, count), upper = min(high, count)
        return lower < upper ? lower..<upper : lower..<lower
    }
}

extension WindowGeometry {
    /// For each output row (`vertical`) or column, the kernel taps whose input position
    /// lies in `-padBefore ..< input + padAfter`: with no padding allowance these are the
    /// taps that read real pixels, the bounds-check-free loop ranges of pooling kernels.
    func taps(vertical: Bool, padBefore: Int = 0, padAfter: Int = 0) -> [Range<Int>] {
        let (outputs, kernel, stride, dilation, pad, input) = vertical
            ? (outputHeight, kernelHeight, strideY, dilationY, padTop, inputHeight)
            : (outputWidth, kernelWidth, strideX, dilationX, padLeft, inputWidth)
        return (0..<outputs).map { o in
            // Taps k with 0 <= start + k·dilation + padBefore < input + padBefore + padAfter.
            WindowGeometry.validRange(count: kernel, stride: dilation, offset: o * stride - pad + padBefore,
                                      limit: input + padBefore + padAfter)
        }
    }

    /// Calls `body(ky, kx, y, x)` for each kernel tap, row by row, whose position
    /// `origin·stride − padBegin + k·dilation` lies inside `bounds` (height, width): the
    /// input pixels a forward window at output `origin` reads (padding skipped), or the
    /// output pixels a transposed one at input `origin` writes.
    @inline(__always)
    func forEachTap(at origin: (y: Int, x: Int), inside bounds: (height: Int, width: Int),
                    _ body: (_ ky: Int, _ kx: Int, _ y: Int, _ x: Int) -> Void) {
        for ky in 0..<kernelHeight {
            let y = origin.y * strideY - padTop + ky * dilationY
            guard y >= 0 && y < bounds.height else { continue }
            for kx in 0..<kernelWidth {
                let x = origin.x * strideX - padLeft + kx * dilationX
                guard x >= 0 && x < bounds.width else { continue }
                body(ky, kx, y, x)
            }
        }
    }

    /// The output columns whose whole window row lies inside the input: there a pooling
    /// kernel can sweep each kernel column across the row as one vectorisable loop.
    var interiorColumns: Range<Int> {
        let reach = (kernelWidth - 1) * dilationX
        return WindowGeometry.validRange(count: outputWidth, stride: strideX, offset: -padLeft,
                                         limit: max(0, inputWidth - reach))
    }
}


/// Scratch memory split into slots, one per worker: kernels whose workers need private
/// buffers (im2col tiles) ask for `slotCount × bytes` and run at most `slotCount` workers.
enum ScratchSlots {
    /// One slot per core: the thread pool never usefully runs more workers than that.
    static let slotCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `items` work items on `min(pool.threads, slotCount)` workers; each worker
    /// gets its slot index and claims the next unclaimed item until none are left.
    /// Claiming rather than a fixed share per worker: when another process takes one core
    /// for a while, the other worker takes over the remaining items instead of the kernel
    /// waiting for the slow share. On a quiet machine it costs nothing measurable
    /// (DnCNN-17×64 at 512², 2 threads: 552 ms median claiming vs 567 ms fixed shares).
    static func run(items: Int, pool: ThreadPool, _ body: (_ slot: Int, _ item: Int) -> Void) {
        let workers = min(pool.threads, slotCount, items)
        guard workers > 0 else { return }
        let next = Atomic<Int>(0)
        pool.parallelFor(workers) { slots in
            for slot in slots {
                while case let item = next.wrappingAdd(1, ordering: .relaxed).oldValue, item < items {
                    body(slot, item)
                }
            }
        }
    }
}

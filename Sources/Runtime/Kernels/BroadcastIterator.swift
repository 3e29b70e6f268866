/// How several inputs are read when NumPy-broadcast to one output shape, with adjacent
/// dimensions merged wherever every input steps through them the same way.
///
/// Merging is what gives element-wise kernels their fast paths without special-casing
/// shapes: same-shape inputs collapse to one dimension with unit strides; a scalar side
/// gets stride 0; a per-channel [C,1,1] operand of an [N,C,H,W] tensor is read over
/// [N, C, H·W] with strides (0, 1, 0), i.e. as a scalar along every run of H·W elements.
/// Kernels then only specialise the innermost run on its strides being 0 or 1.
struct BroadcastLayout: Sendable {
    /// The merged output shape, at least one dimension.
    let shape: [Int]
    /// For each input, its element stride along each merged dimension (0 = broadcast).
    let strides: [[Int]]
    /// Output elements in all.
    let count: Int

    /// The layout of `inputs` broadcast to `output`; each input must broadcast to it.
    init(output: [Int], inputs: [[Int]]) {
        let full = inputs.map { ShapeRules.broadcastStrides($0, to: output) }
        var mergedShape: [Int] = []
        var mergedStrides: [[Int]] = Array(repeating: [], count: inputs.count)
        // Size-1 dimensions never move an index, so they are dropped before merging.
        for axis in output.indices where output[axis] != 1 {
            let canMerge = !mergedShape.isEmpty && full.indices.allSatisfy { input in
                mergedStrides[input][mergedStrides[input].count - 1] == full[input][axis] * output[axis]
            }
            if canMerge {
                mergedShape[mergedShape.count - 1] *= output[axis]
                for input in full.indices { mergedStrides[input][mergedStrides[input].count - 1] = full[input][axis] }
            } else {
                mergedShape.append(output[axis])
                for input in full.indices { mergedStrides[input].append(full[input][axis]) }
            }
        }
        if mergedShape.isEmpty {
            mergedShape = [1]
            mergedStrides = mergedStrides.map { _ in [0] }
        }
        self.shape = mergedShape
        self.strides = mergedStrides
        self.count = output.reduce(1, *)
    }

    /// The innermost stride of input `input` (0 when it is constant along a run).
    func innerStride(_ input: Int) -> Int { strides[input][shape.count - 1] }

    /// Calls `body(outputOffset, inputOffsets, length)` for each run of consecutive output
    /// elements within `range` that lie in one innermost row; input `i` is read at
    /// `inputOffsets[i] + j · innerStride(i)` for `j` in `0..<length`.
    ///
    /// Any output range may be given, so callers split the work across threads by
    /// element count regardless of the shape.
    @inline(__always)
    func forEachRun(in range: Range<Int>, _ body: (Int, UnsafeBufferPointer<Int>, Int) -> Void) {
        guard !range.isEmpty else { return }
        let rank = shape.count
        let inputCount = strides.count
        withUnsafeTemporaryAllocation(of: Int.self, capacity: rank + inputCount) { buffer in
            // buffer[0..<rank] is the multi-index of the current element; buffer[rank + i]
            // is input i's offset there.
            var remainder = range.lowerBound
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                buffer[axis] = remainder % shape[axis]
                remainder /= shape[axis]
            }
            for input in 0..<inputCount {
                var offset = 0
                for axis in 0..<rank { offset += buffer[axis] * strides[input][axis] }
                buffer[rank + input] = offset
            }
            let offsets = UnsafeBufferPointer(rebasing: buffer[rank...])
            let innerSize = shape[rank - 1]
            var position = range.lowerBound
            while position < range.upperBound {
                let length = Swift.min(innerSize - buffer[rank - 1], range.upperBound - position)
                body(position, offsets, length)
                position += length
                guard position < range.upperBound else { break }
                // The run ended at its row's end: move to the next row's first element,
                // carrying into outer axes like an odometer.
                for input in 0..<inputCount { buffer[rank + input] -= buffer[rank - 1] * strides[input][rank - 1] }
                buffer[rank - 1] = 0
                var axis = rank - 2
                while axis >= 0 {
                    buffer[axis] += 1
                    for input in 0..<inputCount { buffer[rank + input] += strides[input][axis] }
                    if buffer[axis] < shape[axis] { break }
                    for input in 0..<inputCount { buffer[rank + input] -= shape[axis] * strides[input][axis] }
                    buffer[axis] = 0
                    axis -= 1
                }
            }
        }
    }
}

extension ShapeRules {
    /// For each element of `target` in row-major order, the flat index of the element of
    /// `shape` that NumPy broadcasting reads there: the plain form reference kernels use.
    static func broadcastSourceIndices(_ shape: [Int], to target: [Int]) -> [Int] {
        let count = target.reduce(1, *)
        if shape == target { return Array(0..<count) }
        let sourceStrides = broadcastStrides(shape, to: target)
        // An odometer over the target's axes: planning a dynamic-size model runs these
        // reference kernels on whole attention masks (4 M elements for the Swin demo at
        // 256²), where a division per axis and element took most of the planning time.
        var position = [Int](repeating: 0, count: target.count)
        var source = 0
        return [Int](unsafeUninitializedCapacity: count) { result, initialized in
            for flat in 0..<count {
                result[flat] = source
                var axis = target.count - 1
                while axis >= 0 {
                    position[axis] += 1
                    source += sourceStrides[axis]
                    if position[axis] < target[axis] { break }
                    source -= target[axis] * sourceStrides[axis]
                    position[axis] = 0
                    axis -= 1
                }
            }
            initialized = count
        }
    }
}

/// A broadcast layout read block by block: the trailing dimensions whose product fits in a
/// block, with each input's offset at every element of a block listed once.
///
/// Layouts whose innermost run is short — the sampling offsets [B, Q, heads, L, P, 2] of
/// deformable attention divided by a per-level [L, 1, 2] normaliser and added to reference
/// points [B, Q, 1, L, 1, 2], with runs of 2 — cost a call and an odometer step per run,
/// five times the arithmetic; in blocks they are one flat loop per block.
struct BroadcastBlocks: Sendable {
    /// Output elements per block.
    let size: Int
    /// Per input, its offset from the block's first element at each element of the block.
    let offsets: [[Int]]
    /// The dimensions outside the block, and each input's strides along them.
    let outerShape: [Int]
    let outerStrides: [[Int]]
    /// Blocks in all.
    let count: Int

    /// Innermost runs shorter than this are read in blocks.
    static let shortRun = 16

    /// `layout` in blocks of at most `maximumSize` elements, or nil when its runs are long
    /// enough already or no two dimensions fit in a block.
    init?(_ layout: BroadcastLayout, maximumSize: Int = 4096) {
        let shape = layout.shape
        guard let inner = shape.last, inner < Self.shortRun else { return nil }
        var first = shape.count, size = 1
        while first > 0 && size * shape[first - 1] <= maximumSize {
            first -= 1
            size *= shape[first]
        }
        guard shape.count - first >= 2, size > 0 else { return nil }
        self.size = size
        offsets = layout.strides.map { strides in
            (0..<size).map { element in
                var (rest, offset) = (element, 0)
                for axis in (first..<shape.count).reversed() {
                    offset += rest % shape[axis] * strides[axis]
                    rest /= shape[axis]
                }
                return offset
            }
        }
        outerShape = Array(shape[..<first])
        outerStrides = layout.strides.map { Array($0[..<first]) }
        count = outerShape.reduce(1, *)
    }

    /// Input `input`'s offset at the first element of block `block`.
    @inline(__always)
    func start(of block: Int, input: Int) -> Int {
        var (rest, offset) = (block, 0)
        for axis in outerShape.indices.reversed() {
            offset += rest % outerShape[axis] * outerStrides[input][axis]
            rest /= outerShape[axis]
        }
        return offset
    }
}


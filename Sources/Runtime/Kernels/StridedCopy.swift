import Format

/// A copy of a strided view of one float buffer into a strided view of another: the
/// fast kernel under transpose, slice, expand, tile, concat and split, and the plain
/// copy of the view ops.
///
/// Element `index` of the iteration `shape` moves from
/// `source[sourceOffset + Σ index[k]·sourceStrides[k]]` to
/// `destination[destinationOffset + Σ index[k]·destinationStrides[k]]`. Strides may be
/// zero (broadcast) or negative (reversed slices).
struct StridedCopy: Sendable {
    let shape: [Int]
    let sourceStrides: [Int]
    let destinationStrides: [Int]
    let sourceOffset: Int
    let destinationOffset: Int
    let count: Int

    /// Tile of the blocked transpose: `tileRows` positions along the source-contiguous
    /// axis by `tileColumns` along the destination-contiguous one. Reads are then 8
    /// streams of 1 KB and writes 256 partly written lines (16 KB), all within L1, and
    /// the long read runs avoid the cache-set conflicts that power-of-two strides
    /// (H·W = 65536) cause with square tiles. Measured on [C, P] → [P, C] for eight
    /// shapes (C·P from 3·512² to 64·256², both directions; `swiftc -O`, one thread,
    /// noisy shared 2-core machine): geometric mean 15 GB/s for 256×8 against 9 GB/s
    /// for 32×32 and 3–6 GB/s for the untiled loop on the power-of-two shapes.
    static let tileRows = 256
    static let tileColumns = 8

    /// Builds the copy, merging axes that stay adjacent in both buffers so that, for
    /// example, an identity permutation becomes one contiguous copy and NCHW→NHWC
    /// becomes a batch of 2-D [C, H·W] transposes.
    init(shape: [Int], sourceStrides: [Int], sourceOffset: Int = 0,
         destinationStrides: [Int], destinationOffset: Int = 0) {
        precondition(shape.count == sourceStrides.count && shape.count == destinationStrides.count)
        var mergedShape: [Int] = []
        var mergedSource: [Int] = []
        var mergedDestination: [Int] = []
        for axis in shape.indices where shape[axis] != 1 {
            if let last = mergedShape.indices.last,
               mergedSource[last] == sourceStrides[axis] * shape[axis],
               mergedDestination[last] == destinationStrides[axis] * shape[axis] {
                mergedShape[last] *= shape[axis]
                mergedSource[last] = sourceStrides[axis]
                mergedDestination[last] = destinationStrides[axis]
            } else {
                mergedShape.append(shape[axis])
                mergedSource.append(sourceStrides[axis])
                mergedDestination.append(destinationStrides[axis])
            }
        }
        self.shape = mergedShape
        self.sourceStrides = mergedSource
        self.destinationStrides = mergedDestination
        self.sourceOffset = sourceOffset
        self.destinationOffset = destinationOffset
        self.count = shape.reduce(1, *)
    }

    /// A contiguous copy of `count` elements.
    init(contiguous count: Int) {
        self.init(shape: [count], sourceStrides: [1], destinationStrides: [1])
    }

    /// The axis that is contiguous in the source but not innermost, when the innermost
    /// axis reads with a stride: then a row-by-row copy would touch one cache line per
    /// element, and tiling that axis against the innermost one keeps both sides in cache.
    private var transposedAxis: Int? {
        guard let inner = shape.indices.last, sourceStrides[inner] != 1, destinationStrides[inner] == 1 else { return nil }
        return shape.indices.dropLast().first { sourceStrides[$0] == 1 }
    }

    func run(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        guard count > 0 else { return }
        let source = source + sourceOffset
        let destination = destination + destinationOffset
        guard let inner = shape.indices.last else {
            destination.pointee = source.pointee
            return
        }
        if let blocked = transposedAxis {
            runBlocked(from: source, to: destination, blockedAxis: blocked, pool: pool)
            return
        }
        let rowLength = shape[inner]
        let rowSourceStride = sourceStrides[inner]
        let rowDestinationStride = destinationStrides[inner]
        // Rows of at least ~16K elements per chunk: below that, waking a second thread
        // costs more than the copy.
        pool.parallelFor(count / rowLength, minimumChunk: max(1, 16_384 / rowLength)) { rows in
            forEachRow(in: rows, outerAxes: inner) { sourceRow, destinationRow in
                let from = source + sourceRow
                let to = destination + destinationRow
                if rowSourceStride == 1 && rowDestinationStride == 1 {
                    to.update(from: from, count: rowLength)
                } else {
                    for i in 0..<rowLength {
                        to[i * rowDestinationStride] = from[i * rowSourceStride]
                    }
                }
            }
        }
    }

    /// Calls `body` with the source and destination offsets of rows `rows` of the
    /// `outerAxes` leading axes, walking them like an odometer.
    private func forEachRow(in rows: Range<Int>, outerAxes: Int,
                            _ body: (_ sourceOffset: Int, _ destinationOffset: Int) -> Void) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(outerAxes, 1)) { index in
            var remaining = rows.lowerBound
            var sourceOffset = 0
            var destinationOffset = 0
            for axis in stride(from: outerAxes - 1, through: 0, by: -1) {
                index[axis] = remaining % shape[axis]
                remaining /= shape[axis]
                sourceOffset += index[axis] * sourceStrides[axis]
                destinationOffset += index[axis] * destinationStrides[axis]
            }
            for _ in rows {
                body(sourceOffset, destinationOffset)
                var axis = outerAxes - 1
                while axis >= 0 {
                    index[axis] += 1
                    sourceOffset += sourceStrides[axis]
                    destinationOffset += destinationStrides[axis]
                    if index[axis] < shape[axis] { break }
                    sourceOffset -= shape[axis] * sourceStrides[axis]
                    destinationOffset -= shape[axis] * destinationStrides[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }

    /// The transpose case: tiles of `tileRows`×`tileColumns` over `blockedAxis`
    /// (contiguous in the source) and the innermost axis (contiguous in the destination). Work items are
    /// (other axes' index, tile row), so one image of a batch still uses every thread.
    private func runBlocked(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>,
                            blockedAxis: Int, pool: ThreadPool) {
        let inner = shape.count - 1
        let (rowsPerTile, columnsPerTile) = (Self.tileRows, Self.tileColumns)
        let blockedLength = shape[blockedAxis]
        let innerLength = shape[inner]
        let tileRows = (blockedLength + rowsPerTile - 1) / rowsPerTile
        let others = count / (blockedLength * innerLength)
        let innerSourceStride = sourceStrides[inner]
        let blockedDestinationStride = destinationStrides[blockedAxis]
        pool.parallelFor(others * tileRows, minimumChunk: max(1, 16_384 / (rowsPerTile * innerLength))) { items in
            for item in items {
                var remaining = item / tileRows
                var sourceBase = 0
                var destinationBase = 0
                for axis in stride(from: inner - 1, through: 0, by: -1) where axis != blockedAxis {
                    let position = remaining % shape[axis]
                    remaining /= shape[axis]
                    sourceBase += position * sourceStrides[axis]
                    destinationBase += position * destinationStrides[axis]
                }
                let rowStart = (item % tileRows) * rowsPerTile
                let rowEnd = min(rowStart + rowsPerTile, blockedLength)
                for columnStart in stride(from: 0, to: innerLength, by: columnsPerTile) {
                    let columnEnd = min(columnStart + columnsPerTile, innerLength)
                    for row in rowStart..<rowEnd {
                        let from = source + sourceBase + row
                        let to = destination + destinationBase + row * blockedDestinationStride
                        for column in columnStart..<columnEnd {
                            to[column] = from[column * innerSourceStride]
                        }
                    }
                }
            }
        }
    }
}

/// One `StridedCopy` from a kernel input to a kernel output.
struct StridedMove: Sendable {
    let input: Int
    let output: Int
    let copy: StridedCopy
}

/// A fast kernel made of strided copies, run one after another.
struct StridedCopyKernel: Kernel {
    let moves: [StridedMove]

    init(_ moves: [StridedMove]) {
        self.moves = moves
    }

    /// Copies input 0 into output 0 under `copy`.
    init(_ copy: StridedCopy) {
        self.init([StridedMove(input: 0, output: 0, copy: copy)])
    }

    func run(_ io: KernelIO) {
        for move in moves {
            move.copy.run(from: io.input(move.input), to: io.outputs[move.output], pool: io.pool)
        }
    }
}

/// Index arithmetic shared by the reference kernels of the layout ops. They work on
/// flat element indices, so one loop serves float and integer tensors alike.
enum LayoutIndexing {
    /// Calls `body` with every multi-index of `shape`, in row-major order.
    static func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
        guard shape.allSatisfy({ $0 > 0 }) else { return }
        var index = Array(repeating: 0, count: shape.count)
        while true {
            body(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
            if axis < 0 { return }
        }
    }

    /// Flat source indices of a strided view: element `index` of `shape` reads
    /// `offset + Σ index[k]·strides[k]`.
    static func stridedIndices(shape: [Int], strides: [Int], offset: Int = 0) -> [Int] {
        var indices: [Int] = []
        indices.reserveCapacity(shape.reduce(1, *))
        forEachIndex(shape) { index in
            indices.append(offset + zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 })
        }
        return indices
    }

    /// Input `index` of a reference kernel, or throws when a required input is absent.
    static func required(_ inputs: [HostTensor?], _ index: Int, node: String) throws -> HostTensor {
        guard index < inputs.count, let tensor = inputs[index] else {
            throw GraphError.missingInput(node: node, index: index)
        }
        return tensor
    }

    /// The integer elements of a plan-time input (shapes, indices, repeats), which ONNX
    /// types as i64; a float tensor there is a graph error, not something to truncate.
    static func integers(_ tensor: HostTensor, input: Int, node: String) throws -> [Int] {
        guard case .int(let values) = tensor.elements else {
            throw OpError.shape(node: node, "input \(input) must be integer, found \(tensor.dtype)")
        }
        return values.map { Int($0) }
    }
}

extension HostTensor {
    /// A tensor of this one's dtype whose element `i` is this tensor's element
    /// `sourceIndices[i]`: every layout op's reference kernel ends here.
    func picking(_ sourceIndices: [Int], shape: [Int]) -> HostTensor {
        var result: HostTensor
        switch elements {
        case .float(let values): result = HostTensor(shape: shape, floats: sourceIndices.map { values[$0] })
        case .int(let values): result = HostTensor(shape: shape, ints: sourceIndices.map { values[$0] }, dtype: dtype)
        }
        result.dtype = dtype
        return result
    }
}

/// An op whose output 0 is input 0's elements, in order, under another shape (reshape,
/// squeeze, unsqueeze, flatten). The planner aliases the buffer; the kernel, a plain
/// copy, exists for running the op on its own.
protocol ReshapingOperator: Differentiable {
    var name: String { get }
    /// The output shape for an input of `shape`; `parameters` are the op's other inputs
    /// (plan-time, so known here), nil where absent.
    func outputShape(_ shape: [Int], parameters: [HostTensor?]) throws -> [Int]
}

extension ReshapingOperator {
    public var isView: Bool { true }

    /// Backward: the same elements under the input's shape (`ViewGradient`).
    func saved(inputs: [ValueFact?], outputs: [ValueFact]) -> SavedValues { .nothing }

    func backward(inputs: [ValueFact?], outputs: [ValueFact], wanted: [Bool]) throws -> any BackwardKernel {
        ViewGradient(count: outputs[0].count)
    }

    func outputShape(facts inputs: [ValueFact?]) throws -> [Int] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        let parameters = try inputs.indices.dropFirst().map { index in
            try inputs[index].map { _ in try ShapeRules.planTimeValue(inputs, index, node: name) }
        }
        return try outputShape(input.shape, parameters: parameters)
    }

    public func outputs(for inputs: [ValueFact?]) throws -> [ValueFact] {
        let input = try ShapeRules.required(inputs, 0, node: name)
        return [ValueFact(dtype: input.dtype, shape: try outputShape(facts: inputs))]
    }

    public func reference(_ inputs: [HostTensor?]) throws -> [HostTensor] {
        let input = try LayoutIndexing.required(inputs, 0, node: name)
        return [input.reshaped(try outputShape(input.shape, parameters: Array(inputs.dropFirst())))]
    }

    public func kernel(inputs: [ValueFact?], outputs: [ValueFact]) throws -> any Kernel {
        StridedCopyKernel(StridedCopy(contiguous: try outputShape(facts: inputs).reduce(1, *)))
    }
}

/// The fast kernel of an op whose output is fully known when planning (shape, range):
/// it writes the values the reference kernel computed.
struct KnownValuesKernel: Kernel {
    let values: [Float]

    func run(_ io: KernelIO) {
        values.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            io.outputs[0].update(from: base, count: buffer.count)
        }
    }
}

extension Graph {
    /// The constants Restore's int8 kernels can compute from (Sources/CKernels/gemm_int8.c):
    /// those whose every use is the weight (input 1) of a `linear` or of an ungrouped `conv`,
    /// with the consumers' names. `convert --weights int8` quantizes among these, and the
    /// runtime keeps these int8 when a file stores them so (any other int8 constant is
    /// dequantized when the model loads). A grouped (depthwise) convolution runs a direct
    /// loop rather than a GEMM, and its weights are small.
    public var int8KernelWeights: [String: [String]] {
        var consumers: [String: [String]] = [:]
        var excluded = Set<String>()
        for node in nodes {
            for (slot, input) in node.inputs.enumerated() where constants[input] != nil {
                let readsAsWeight: Bool
                switch node.operation {
                case .linear: readsAsWeight = slot == 1
                case .conv(let attributes): readsAsWeight = slot == 1 && attributes.group == 1
                default: readsAsWeight = false
                }
                if readsAsWeight { consumers[input, default: []].append(node.name) } else { excluded.insert(input) }
            }
        }
        for output in outputs { excluded.insert(output.name) }
        return consumers.filter { !excluded.contains($0.key) }
    }
}

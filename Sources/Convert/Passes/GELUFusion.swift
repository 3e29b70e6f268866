import Format

/// Recognises activations that exporters write out as elementary ops and replaces each by
/// one `unary` node (which `ActivationFusion` can then fold into a preceding linear/conv):
///
/// - `gelu`: x · 0.5 · (1 + erf(x / √2)), the division also as · 1/√2, the three factors
///   multiplied in any order (PyTorch's GELU exports (x·(1+erf))·0.5, transformers'
///   hand-written one (x·0.5)·(1+erf));
/// - `geluTanh`: x · 0.5 · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), x³ as Pow 3 or x·x·x;
/// - `silu`: x · sigmoid(x).
enum GELUFusion {
    static func run(_ graph: inout Graph) throws -> Int {
        let view = PatternView(graph)
        var rewrites: [Rewrite] = []
        for index in graph.nodes.indices {
            let match: (x: String, nodes: [Int], output: String, function: UnaryFunction)?
            if view.isNode(index, .unary(.erf)) {
                match = erfGELU(index, view)
            } else if view.isNode(index, .unary(.tanh)) {
                match = tanhGELU(index, view)
            } else if view.isNode(index, .unary(.sigmoid)) {
                match = silu(index, view)
            } else {
                match = nil
            }
            guard let match else { continue }
            let name = graph.nodes[index].name
            rewrites.append(Rewrite(matched: match.nodes, replacement: [
                Node(name: name, .unary(Activation(function: match.function)), inputs: [match.x], outputs: [match.output]),
            ]))
        }
        return graph.apply(rewrites)
    }

    /// erf(x/√2) → +1 → product with x and 0.5.
    private static func erfGELU(_ erf: Int, _ view: PatternView) -> (String, [Int], String, UnaryFunction)? {
        guard let argument = view.graph.nodes[erf].input(0), view.consumers.soleReader(of: argument) == erf else { return nil }
        let halfSqrt2 = Float(0.5.squareRoot())
        let x: String
        let scaling: Int
        if let division = view.producer(of: argument, .binary(.div)), view.isScalar(view.graph.nodes[division].inputs[1], Float(2.0.squareRoot())) {
            (x, scaling) = (view.graph.nodes[division].inputs[0], division)
        } else if let product = view.producer(of: argument, .binary(.mul)),
                  let input = view.graph.nodes[product].inputs.first(where: { !view.isScalar($0, halfSqrt2) }),
                  view.operand(of: product, besides: input).map({ view.isScalar($0, halfSqrt2) }) == true {
            (x, scaling) = (input, product)
        } else {
            return nil
        }
        guard let (nodes, output) = onePlusTimesHalfX(view.output(erf), x: x, view) else { return nil }
        return (x, [scaling, erf] + nodes, output, .gelu)
    }

    /// tanh(√(2/π)·(x + 0.044715·x³)) → +1 → product with x and 0.5.
    private static func tanhGELU(_ tanh: Int, _ view: PatternView) -> (String, [Int], String, UnaryFunction)? {
        let graph = view.graph
        guard let argument = graph.nodes[tanh].input(0), view.consumers.soleReader(of: argument) == tanh,
              let outer = view.producer(of: argument, .binary(.mul)),
              let inner = graph.nodes[outer].inputs.first(where: { !view.isScalar($0, Float((2 / Double.pi).squareRoot())) }),
              view.operand(of: outer, besides: inner).map({ view.isScalar($0, Float((2 / Double.pi).squareRoot())) }) == true,
              view.consumers.soleReader(of: inner) == outer,
              let sum = view.producer(of: inner, .binary(.add)) else { return nil }
        // x + 0.044715·x³: find which addend is the cubic term of the other.
        for (x, cubicTerm) in [(graph.nodes[sum].inputs[0], graph.nodes[sum].inputs[1]), (graph.nodes[sum].inputs[1], graph.nodes[sum].inputs[0])] {
            guard view.consumers.soleReader(of: cubicTerm) == sum,
                  let scaled = view.producer(of: cubicTerm, .binary(.mul)),
                  let kappa = graph.nodes[scaled].inputs.first(where: { view.isScalar($0, 0.044715) }),
                  let cube = view.operand(of: scaled, besides: kappa),
                  view.consumers.soleReader(of: cube) == scaled,
                  let cubeNodes = self.cube(cube, of: x, view),
                  let (nodes, output) = onePlusTimesHalfX(view.output(tanh), x: x, view) else { continue }
            return (x, cubeNodes + [scaled, sum, outer, tanh] + nodes, output, .geluTanh)
        }
        return nil
    }

    /// The nodes computing `value` = x³ as `pow(x, 3)`, `(x·x)·x` or `x·(x·x)`.
    private static func cube(_ value: String, of x: String, _ view: PatternView) -> [Int]? {
        if let power = view.producer(of: value, .binary(.pow)), view.graph.nodes[power].inputs[0] == x,
           view.isScalar(view.graph.nodes[power].inputs[1], 3) {
            return [power]
        }
        guard let outer = view.producer(of: value, .binary(.mul)), let square = view.operand(of: outer, besides: x),
              view.consumers.soleReader(of: square) == outer,
              let inner = view.producer(of: square, .binary(.mul)), view.graph.nodes[inner].inputs == [x, x] else { return nil }
        return [inner, outer]
    }

    /// From `value` = erf(…) or tanh(…): the nodes computing x · 0.5 · (1 + value) in any
    /// association — (x·a)·0.5, (x·a)/2, (0.5·a)·x, (x·0.5)·a — and the product's name.
    private static func onePlusTimesHalfX(_ value: String, x: String, _ view: PatternView) -> ([Int], String)? {
        guard let plusOne = view.soleReader(of: value, .binary(.add)),
              view.operand(of: plusOne, besides: value).map({ view.isScalar($0, 1) }) == true else { return nil }
        let a = view.output(plusOne)
        guard let first = view.soleReader(of: a, .binary(.mul)), let factor = view.operand(of: first, besides: a) else { return nil }
        let product = view.output(first)
        if factor == x {
            if let half = view.soleReader(of: product, .binary(.mul)),
               view.operand(of: half, besides: product).map({ view.isScalar($0, 0.5) }) == true {
                return ([plusOne, first, half], view.output(half))
            }
            if let halve = view.soleReader(of: product, .binary(.div)), view.graph.nodes[halve].inputs[0] == product,
               view.isScalar(view.graph.nodes[halve].inputs[1], 2) {
                return ([plusOne, first, halve], view.output(halve))
            }
            return nil
        }
        if view.isScalar(factor, 0.5) {
            guard let second = view.soleReader(of: product, .binary(.mul)),
                  view.operand(of: second, besides: product) == x else { return nil }
            return ([plusOne, first, second], view.output(second))
        }
        guard let halfX = view.producer(of: factor, .binary(.mul)), view.consumers.soleReader(of: factor) == first,
              view.operand(of: halfX, besides: x).map({ view.isScalar($0, 0.5) }) == true else { return nil }
        return ([halfX, plusOne, first], product)
    }

    /// sigmoid(x) · x.
    private static func silu(_ sigmoid: Int, _ view: PatternView) -> (String, [Int], String, UnaryFunction)? {
        guard let x = view.graph.nodes[sigmoid].input(0),
              let product = view.soleReader(of: view.output(sigmoid), .binary(.mul)),
              view.operand(of: product, besides: view.output(sigmoid)) == x else { return nil }
        return (x, [sigmoid, product], view.output(product), .silu)
    }
}

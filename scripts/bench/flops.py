"""Counts the floating-point work of an ONNX model at concrete input shapes.

Only the ops that dominate restoration networks are counted, each as 2·MACs (one
multiply and one add per multiply-accumulate): Conv, ConvTranspose, Gemm and MatMul.
Element-wise ops, norms, pooling and resizing are left out, so GFLOP/s figures are
comparable with those usually quoted for convolution networks.

Usage: .venv/bin/python scripts/bench/flops.py MODEL.onnx --shape 1,3,512,512 [--shape ...]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference

from shapes import parse_shape


def with_concrete_inputs(model: onnx.ModelProto, shapes: list[list[int]]) -> onnx.ModelProto:
    """Returns a copy of `model` whose graph inputs (in order) have the given shapes."""
    concrete = onnx.ModelProto()
    concrete.CopyFrom(model)
    initializers = {tensor.name for tensor in concrete.graph.initializer}
    inputs = [value for value in concrete.graph.input if value.name not in initializers]
    if len(inputs) != len(shapes):
        raise ValueError(f"model has {len(inputs)} inputs ({[v.name for v in inputs]}) but {len(shapes)} shapes were given")
    for value, shape in zip(inputs, shapes):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ValueError(f"input '{value.name}' has rank {len(dims)}, shape {shape} has rank {len(shape)}")
        for dim, size in zip(dims, shape):
            dim.Clear()
            dim.dim_value = size
    return concrete


def inferred_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Shapes of every tensor whose dimensions are all known after shape inference."""
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int]] = {}
    values = list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    for tensor in inferred.graph.initializer:
        shapes[tensor.name] = list(tensor.dims)
    return shapes


COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def measured_shapes(model: onnx.ModelProto, names: list[str], input_shapes: list[list[int]]) -> dict[str, list[int]]:
    """Shapes of `names` found by running the model once in onnxruntime on zeros.

    The fallback for graphs whose shapes flow through ops that ONNX shape inference
    cannot follow (e.g. Pad or Reshape with computed operands).
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    element_types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
    feeds = {}
    for value, shape in zip(session.get_inputs(), input_shapes):
        if value.type not in element_types:
            raise ValueError(f"input '{value.name}' has type {value.type}, which the shape probe cannot feed")
        feeds[value.name] = np.zeros(shape, dtype=element_types[value.type])
    values = session.run(names, feeds)
    return {name: list(value.shape) for name, value in zip(names, values)}


def node_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    """Multiply-accumulates of one Conv/ConvTranspose/Gemm/MatMul node; 0 for other ops."""
    if node.op_type not in COUNTED_OPS:
        return 0

    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv":
        # Each output element sums over (input channels / group) × kernel window.
        weight = shapes[node.input[1]]
        return math.prod(shapes[node.output[0]]) * math.prod(weight[1:])
    if node.op_type == "ConvTranspose":
        # Each input element scatters into (output channels / group) × kernel window.
        weight = shapes[node.input[1]]
        return math.prod(shapes[node.input[0]]) * math.prod(weight[1:])
    if node.op_type == "Gemm":
        a = shapes[node.input[0]]
        k = a[0] if attributes.get("transA", 0) else a[1]
        return math.prod(shapes[node.output[0]]) * k
    a = shapes[node.input[0]]
    return math.prod(shapes[node.output[0]]) * a[-1]


def count_flops(model: onnx.ModelProto, input_shapes: list[list[int]]) -> int:
    """Total FLOPs (2·MACs) of the counted ops for one inference at `input_shapes`."""
    shapes = inferred_shapes(with_concrete_inputs(model, input_shapes))
    needed = {name for node in model.graph.node if node.op_type in COUNTED_OPS for name in (*node.input[:2], node.output[0])}
    missing = sorted(needed - shapes.keys())
    if missing:
        shapes.update(measured_shapes(model, missing, input_shapes))
    return 2 * sum(node_macs(node, shapes) for node in model.graph.node)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--shape", action="append", type=parse_shape, required=True, help="one per graph input, in order")
    args = parser.parse_args()
    flops = count_flops(onnx.load(args.model), args.shape)
    print(f"{flops / 1e9:.3f} GFLOP")


if __name__ == "__main__":
    main()

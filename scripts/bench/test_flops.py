"""Checks flops.py against hand-computed counts on tiny graphs (run with pytest)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flops import count_flops


def single_node_model(node: onnx.NodeProto, inputs: dict[str, list], weights: dict[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A graph of one node with symbolic-H/W float inputs and random initializers."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_grouped_strided_conv_counts_output_elements_times_window():
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=2, strides=[2, 2], pads=[1, 1, 1, 1])
    model = single_node_model(node, {"x": [1, 4, "h", "w"]}, {"w": (6, 2, 3, 3)})
    # output 1×6×⌈7/2⌉×⌈9/2⌉ = 6·4·5, each summing 2 input channels × 3×3.
    assert count_flops(model, [[1, 4, 7, 9]]) == 2 * (6 * 4 * 5) * (2 * 9)


def test_conv_transpose_counts_input_elements_times_scatter():
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])
    model = single_node_model(node, {"x": [1, 3, "h", "w"]}, {"w": (3, 5, 4, 4)})
    assert count_flops(model, [[1, 3, 5, 6]]) == 2 * (3 * 5 * 6) * (5 * 16)


def test_gemm_and_matmul_count_m_n_k():
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)
    assert count_flops(single_node_model(gemm, {"x": [2, 7]}, {"w": (11, 7)}), [[2, 7]]) == 2 * 2 * 11 * 7
    matmul = helper.make_node("MatMul", ["x", "w"], ["y"])
    assert count_flops(single_node_model(matmul, {"x": [3, 5, 7]}, {"w": (7, 4)}), [[3, 5, 7]]) == 2 * 3 * 5 * 4 * 7


def test_computed_pad_falls_back_to_measured_shapes():
    # Pads come from a graph input, so shape inference cannot know the Conv's input.
    pad = helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect")
    conv = helper.make_node("Conv", ["padded", "w"], ["y"])
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [pad, conv],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "h", "w"]), helper.make_tensor_value_info("pads", TensorProto.INT64, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    # Zeros for `pads` mean no padding: output 1×3×4×6 from a 6×8 input.
    assert count_flops(model, [[1, 2, 6, 8], [8]]) == 2 * (3 * 4 * 6) * (2 * 9)

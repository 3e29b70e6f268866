"""Writes vector_relu.onnx: y = Relu(x) for x of shape [1, 4], a model that is not an image
model (no [N, 3, H, W] input), so image mode must refuse it as unsupported.

Rebuild: .venv/bin/python python/tests/data/make_vector_model.py (needs the onnx package).
"""

import pathlib

import onnx
from onnx import TensorProto, helper

graph = helper.make_graph(
    [helper.make_node("Relu", ["x"], ["y"], name="relu")],
    "vector_relu",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="restore-tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, pathlib.Path(__file__).with_name("vector_relu.onnx"))

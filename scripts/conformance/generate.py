#!/usr/bin/env python3
"""Writes ONNX's own node test cases, as Restore's conformance run reads them.

The cases come from the installed onnx package (`collect_testcases`), so they follow the
package's version (pinned in scripts/test.sh and scripts/setup-python.sh). A case is kept
when its first input and all its outputs are float32 tensors; every input but the first
becomes an initializer, as weights are in a real model (models of IR version < 4 keep
them listed as graph inputs too, as exporters of that time wrote them).

Each case is a folder OUT/<name>/ holding model.onnx, input_0.npy, output_<i>.npy and
case.json (output names, rtol, atol from the case, and where the reference comes from).
For the cases reference_disagreements.json lists, the reference is onnxruntime's output
(see that file for why); that onnxruntime still disagrees with ONNX there is checked.

Usage: generate.py OUT
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases


def as_tensor(value):
    """A data-set entry as an array (a few cases give numpy scalars), or None for sequences/optionals."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    return None


def selected(case):
    """The case's first data set when the case fits the conformance run, else None."""
    if case.model is None or not case.data_sets:
        return None
    inputs, outputs = case.data_sets[0]
    inputs = [as_tensor(value) for value in inputs]
    outputs = [as_tensor(value) for value in outputs]
    if not inputs or not outputs or any(value is None for value in inputs + outputs):
        return None
    if inputs[0].dtype != np.float32 or any(value.dtype != np.float32 for value in outputs):
        return None
    if len(case.model.graph.input) != len(inputs) or len(case.model.graph.output) != len(outputs):
        return None
    return inputs, outputs


def with_weights_as_initializers(model, inputs):
    """The model with every graph input but the first given its value as an initializer."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    keep_listed = model.ir_version < 4
    for info, value in zip(list(graph.input)[1:], inputs[1:]):
        graph.initializer.append(numpy_helper.from_array(value, info.name))
    if not keep_listed:
        first = graph.input[0]
        del graph.input[1:]
        assert graph.input[0] is first or graph.input[0].name == first.name
    return model


def onnxruntime_outputs(model, first_input):
    import onnxruntime
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: first_input})


def disagrees(ours, theirs, case):
    return any(a.shape != b.shape or not np.allclose(a, b, rtol=case.rtol, atol=case.atol, equal_nan=True)
               for a, b in zip(ours, theirs))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT")
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_disagreements.json")) as file:
        disagreements = json.load(file)["cases"]
    count = 0
    written = set()
    for case in cases:
        chosen = selected(case)
        if chosen is None:
            continue
        inputs, outputs = chosen
        folder = os.path.join(out, case.name)
        os.makedirs(folder)
        model = with_weights_as_initializers(case.model, inputs)
        reference = "onnx"
        if case.name in disagreements:
            runtime_outputs = onnxruntime_outputs(model, inputs[0])
            if not disagrees(outputs, runtime_outputs, case):
                sys.exit(f"{case.name}: onnxruntime now agrees with ONNX's reference; remove it from reference_disagreements.json")
            outputs, reference = runtime_outputs, "onnxruntime"
        onnx.save(model, os.path.join(folder, "model.onnx"))
        np.save(os.path.join(folder, "input_0.npy"), np.asarray(inputs[0], order="C"))
        for index, value in enumerate(outputs):
            np.save(os.path.join(folder, f"output_{index}.npy"), np.asarray(value, order="C"))
        with open(os.path.join(folder, "case.json"), "w") as file:
            json.dump({"outputs": [info.name for info in model.graph.output],
                       "rtol": case.rtol, "atol": case.atol, "reference": reference,
                       "opset": next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None),
                       "ir_version": model.ir_version}, file)
        count += 1
        written.add(case.name)
    missing = sorted(set(disagreements) - written)
    if missing:
        sys.exit(f"reference_disagreements.json names cases this onnx package does not have: {', '.join(missing)}")
    print(f"onnx {onnx.__version__}: {count} node cases written to {out}")


if __name__ == "__main__":
    main()

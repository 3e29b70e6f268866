#!/usr/bin/env python3
"""Times one ONNX model in OpenVINO's CPU runtime and prints one JSON line, like `rrun bench --json`.

Output: {"median_ms": float, "times_ms": [...], "peak_rss_bytes": int}
Inputs as ort_worker.py's (uniform 0..1, fixed seed, one --shape per graph input). The
model is read from the ONNX file, reshaped to the given input shapes (so OpenVINO plans
for static shapes, as Restore plans per size) and compiled for the CPU with `--threads`
inference threads, the f32 precision hint (no bf16 or f16 on CPUs that have them) and the
latency performance hint (one stream: one request at a time, as the other engines run).

Usage: .venv/bin/python scripts/bench/openvino_worker.py MODEL.onnx --shape 1,3,512,512 --runs 10 --warmup 2 --threads 2 --json
"""

from __future__ import annotations

import openvino as ov

from worker_common import parse_worker_arguments, random_inputs, time_and_report


def main() -> None:
    arguments = parse_worker_arguments(__doc__.splitlines()[0])
    core = ov.Core()
    model = core.read_model(arguments.model)
    names = [value.get_any_name() for value in model.inputs]
    feeds = random_inputs(names, arguments)
    model.reshape({name: ov.PartialShape(list(value.shape)) for name, value in feeds.items()})
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": arguments.threads,
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
    })
    request = compiled.create_infer_request()
    time_and_report(f"OpenVINO {ov.__version__}", lambda: request.infer(feeds), arguments)


if __name__ == "__main__":
    main()

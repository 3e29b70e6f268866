#!/usr/bin/env python3
"""Checks the op versions Restore's ONNX lowerings list against the installed onnx package.

Each lowering (Sources/Convert/ONNX/LoweringTable.swift and the tables of
LowerElementwise.swift) lists its op's since-versions, from the one in force at opset 7 up
to the newest opset Restore reads, implemented or `refused`. Those lists are Restore's own
facts; this script checks that they are ONNX's: a missing since-version would make a node
of that version run with an older version's semantics. Also checks that the importer's
newest opset is the package's. Exits 1 on any difference.
"""
import collections
import os
import re
import sys

import onnx.defs

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ONNX_SOURCES = os.path.join(ROOT, "Sources", "Convert", "ONNX")
FIRST_OPSET = 7


def listed_versions():
    """{op type: set of since-versions} as written in the Swift tables."""
    listed = {}
    for file in sorted(os.listdir(ONNX_SOURCES)):
        text = open(os.path.join(ONNX_SOURCES, file)).read()
        # A Lowering may span lines; each entry's own `versions:` is the first after its name.
        entries = r'"(\w+)": Lowering\((.*?)versions: \[([\d, ]*)\](?:,\s*refused: \[([^\]]*)\])?\)'
        for match in re.finditer(entries, text, flags=re.S):
            refused = {int(key) for key in re.findall(r"(\d+):", match.group(4) or "")}
            listed[match.group(1)] = {int(v) for v in match.group(3).split(",")} | refused
        for match in re.finditer(r'"(\w+)": \(\.\w+, \[([\d, ]*)\]\)', text):
            listed[match.group(1)] = {int(v) for v in match.group(2).split(",")}
    return listed


def main():
    newest = onnx.defs.onnx_opset_version()
    history = collections.defaultdict(set)
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx"):
            history[schema.name].add(schema.since_version)
    problems = []
    importer = open(os.path.join(ONNX_SOURCES, "ONNXImporter.swift")).read()
    supported = re.search(r"supportedOpsets = (\d+)\.\.\.(\d+)", importer)
    if not supported or int(supported.group(2)) != newest:
        problems.append(f"ONNXImporter.supportedOpsets must end at {newest}, the newest opset of onnx {onnx.__version__}")
    listed = listed_versions()
    for op, versions in sorted(listed.items()):
        if op not in history:
            problems.append(f"{op}: not an op of ONNX's default domain")
            continue
        known = sorted(history[op])
        in_force = max([v for v in known if v <= FIRST_OPSET], default=known[0])
        expected = {v for v in known if in_force <= v <= newest}
        if versions != expected:
            problems.append(f"{op}: Restore lists versions {sorted(versions)}, ONNX has {sorted(expected)}")
    for problem in problems:
        print(problem)
    print(f"op versions of {len(listed)} lowered ONNX ops checked against onnx {onnx.__version__} (opset {newest}): "
          f"{len(problems)} difference{'s' if len(problems) != 1 else ''}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

"""Shared fixtures: the converted test model, rrun, and the C example.

scripts/test-capi.sh sets RESTORE_TEST_MODEL (the dncnn fixture converted with
`convert ... --range 0,1`), RESTORE_RRUN and RESTORE_C_EXAMPLE. Without them the model
is converted here with the repository's `convert` and rrun is taken from .build.
"""

import os
import pathlib
import subprocess
import sys

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = REPOSITORY / "Tests" / "Fixtures" / "models" / "dncnn"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def _built_tool(name):
    for configuration in ("debug", "release"):
        path = REPOSITORY / ".build" / configuration / name
        if path.is_file():
            return str(path)
    return None


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    if os.environ.get("RESTORE_TEST_MODEL"):
        return os.environ["RESTORE_TEST_MODEL"]
    convert = _built_tool("convert")
    if convert is None:
        pytest.fail("no model: set RESTORE_TEST_MODEL or build `convert` (swift build --product convert)")
    path = tmp_path_factory.mktemp("model") / "dncnn.rgraph"
    subprocess.run([convert, str(FIXTURE / "model.onnx"), "-o", str(path), "--range", "0,1"], check=True)
    return str(path)


@pytest.fixture(scope="session")
def rrun():
    path = os.environ.get("RESTORE_RRUN") or _built_tool("rrun")
    if path is None:
        pytest.fail("rrun not found: set RESTORE_RRUN or build it (swift build --product rrun)")
    return path

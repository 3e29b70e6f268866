"""Shared fixtures: the converted test model, rrun, and the C example.

scripts/test-capi.sh sets RESTORE_TEST_MODEL (the dncnn fixture converted with
`convert ... --range 0,1`), RESTORE_CONVERT, RESTORE_RRUN and RESTORE_C_EXAMPLE. Without
them the tools are taken from .build and the model is converted here.
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


def _tool(name, variable):
    """The path of command-line tool `name`: $variable, else a built one, else the test fails."""
    path = os.environ.get(variable) or _built_tool(name)
    if path is None:
        pytest.fail(f"{name} not found: set {variable} or build it (swift build --product {name})")
    return path


@pytest.fixture(scope="session")
def convert():
    return _tool("convert", "RESTORE_CONVERT")


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, request):
    if os.environ.get("RESTORE_TEST_MODEL"):
        return os.environ["RESTORE_TEST_MODEL"]
    path = tmp_path_factory.mktemp("model") / "dncnn.rgraph"
    tool = request.getfixturevalue("convert")
    subprocess.run([tool, str(FIXTURE / "model.onnx"), "-o", str(path), "--range", "0,1"], check=True)
    return str(path)


@pytest.fixture(scope="session")
def rrun():
    return _tool("rrun", "RESTORE_RRUN")


@pytest.fixture(scope="session")
def generator_path(tmp_path_factory, request):
    """The biggan-deep checkpoint fixture converted at truncation 0.4 ($RESTORE_TEST_GENERATOR if set)."""
    if os.environ.get("RESTORE_TEST_GENERATOR"):
        return os.environ["RESTORE_TEST_GENERATOR"]
    path = tmp_path_factory.mktemp("generator") / "biggan-deep.rgraph"
    tool = request.getfixturevalue("convert")
    subprocess.run([tool, str(REPOSITORY / "Tests" / "Fixtures" / "checkpoints" / "biggan-deep"), "-o", str(path),
                    "--truncation", "0.4"], check=True)
    return str(path)

"""Tags the wheel for the platform when restore/ carries native libraries.

pyproject.toml holds the metadata. A plain `pip install ./python` makes a pure-Python wheel
(the package finds libRestore through $RESTORE_LIBRARY or a repository build); the wheel
scripts/build-wheel.sh makes has libRestore and its Swift runtime inside restore/, which
only run on the platform they were built for, so that wheel is tagged py3-none-<platform>
(any Python 3: the package loads them with ctypes and has no extension module).
"""

import pathlib

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel

CARRIES_LIBRARIES = any((pathlib.Path(__file__).resolve().parent / "restore").glob("libRestore*.so"))


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = not CARRIES_LIBRARIES

    def get_tag(self):
        python, abi, platform = super().get_tag()
        return ("py3", "none", platform) if CARRIES_LIBRARIES else (python, abi, platform)


setup(cmdclass={"bdist_wheel": PlatformWheel})

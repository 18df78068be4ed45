"""Build script: the package plus an OPTIONAL compiled kernel (inngest_do/_core.pyx).

Metadata lives in pyproject.toml. This file only exists to declare the Cython extension and
to make its build optional: when Cython or a C compiler is missing, or compilation fails,
the install still succeeds (with a warning) and `inngest_do.kernel` falls back to the
pure-Python twin `inngest_do._core_py`.

Set INNGEST_DO_NO_COMPILE=1 to skip the extension on purpose.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

_FALLBACK_NOTE = "inngest_do will use its pure-Python kernel (slower, same behaviour)."


def _warn(reason: str) -> None:
    bar = "*" * 78
    sys.stderr.write(
        f"\n{bar}\nWARNING: the compiled kernel inngest_do._core was not built: {reason}\n"
        f"{_FALLBACK_NOTE}\n{bar}\n\n"
    )


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _extensions() -> list[Extension]:
    if _truthy("INNGEST_DO_NO_COMPILE"):
        _warn("INNGEST_DO_NO_COMPILE is set")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        _warn("Cython>=3 is not installed")
        return []
    ext = Extension(
        "inngest_do._core",
        ["inngest_do/_core.pyx"],
        extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
    )
    try:
        return cythonize(
            [ext],
            language_level=3,
            compiler_directives={
                "boundscheck": False,
                "wraparound": False,
                "initializedcheck": False,
                "cdivision": True,
                "auto_pickle": False,
                "embedsignature": True,
            },
        )
    except Exception as exc:  # noqa: BLE001 - a Cython error must not break the install
        _warn(f"cythonize failed: {exc}")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that turns any compile/link failure into a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler, broken toolchain, ...
            _warn(f"{type(exc).__name__}: {exc}")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - same: degrade to the pure-Python kernel
            _warn(f"{type(exc).__name__}: {exc}")


def _packages() -> list[str]:
    found = set(find_packages(include=["inngest_do", "inngest_do.*"]))
    found.add("inngest_do")  # the top package must be listed even before its __init__.py exists
    return sorted(found)


setup(
    packages=_packages(),
    # PEP 561: the package's type hints are part of its interface.
    package_data={"inngest_do": ["py.typed"]},
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)

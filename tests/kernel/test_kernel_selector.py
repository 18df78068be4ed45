"""inngest_do.kernel: which implementation it picks, and how it says so.

The selection happens at import time, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from inngest_do import kernel

from ._impls import COMPILED, PURE

NAMES = [
    "VirtualClock",
    "RealClock",
    "TimerHeap",
    "MemoTable",
    "ReadyQueue",
    "GCRA",
    "KeyedCounter",
    "SeededRandom",
    "ms_to_datetime",
    "datetime_to_ms",
]


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "INNGEST_DO_PURE_PYTHON"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-W", "always::RuntimeWarning", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


REPORT = """
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from inngest_do import kernel
    print(kernel.IMPLEMENTATION, kernel.TimerHeap.__module__)
    print(len([w for w in caught if issubclass(w.category, RuntimeWarning)]))
    for w in caught:
        print(w.message)
"""


def test_both_modules_export_the_same_names():
    for name in NAMES:
        assert hasattr(PURE, name), name
        if COMPILED is not None:
            assert hasattr(COMPILED, name), name
        assert getattr(kernel, name) is getattr(kernel.load(kernel.IMPLEMENTATION == "pure"), name)
    assert kernel.IMPLEMENTATION in ("compiled", "pure")
    assert kernel.load(pure=True) is PURE


def test_every_class_docstring_states_its_complexity():
    for module in [PURE] + ([COMPILED] if COMPILED is not None else []):
        for name in NAMES:
            obj = getattr(module, name)
            if isinstance(obj, type):
                assert obj.__doc__ and "O(" in obj.__doc__, f"{module.__name__}.{name}"


@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE", " Yes "])
def test_env_forces_the_pure_kernel(value):
    out = _run(REPORT, INNGEST_DO_PURE_PYTHON=value)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "pure inngest_do._core_py"
    assert lines[1] == "0"  # forcing the twin on purpose is not worth a warning


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_compiled_kernel_is_the_default(value):
    if COMPILED is None:
        pytest.skip("compiled kernel inngest_do._core is not built")
    out = _run(REPORT, INNGEST_DO_PURE_PYTHON=value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["compiled inngest_do._core", "0"]


def test_falls_back_with_one_warning_when_the_extension_cannot_load():
    code = "\n".join(
        [
            "import sys",
            'sys.modules["inngest_do._core"] = None  # makes `import inngest_do._core` fail',
            textwrap.dedent(REPORT),
            "import importlib",
            "importlib.reload(kernel)  # selecting again must not be an error either",
            "print(kernel.IMPLEMENTATION)",
        ]
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "pure inngest_do._core_py"
    assert lines[1] == "1"
    assert lines[2] == "inngest_do: compiled core unavailable, using the pure-Python kernel"
    assert lines[-1] == "pure"


def test_load_compiled_raises_import_error_when_missing():
    out = _run(
        """
        import sys
        sys.modules["inngest_do._core"] = None
        import warnings
        warnings.simplefilter("ignore")
        from inngest_do import kernel
        try:
            kernel.load(pure=False)
        except ImportError:
            print("ImportError")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ImportError"

"""Shared fixtures: a real IPython shell with tfmagic loaded as a user loads it."""

import builtins
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _onednn_by_default() -> bool:
    """Whether TensorFlow turns oneDNN on here (on x86, where the CPU has AVX-512): its CPU allocator keeps the
    statistics --memory reads; TensorFlow's default one keeps none."""
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512" in f.read()
    except OSError:
        return True


if not _onednn_by_default():  # --memory's own advice, taken before TensorFlow is imported
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def ip():
    """The InteractiveShell singleton (display() and capture_output() only see it), extension loaded."""
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell

    HistoryAccessor.enabled = False
    # Python's own displayhook, which doctests run under, leaves builtins._ behind; IPython then never binds the
    # notebook's _ (displayhook.py: "Don't overwrite '_' ... if '_' is in __builtin__"), as no real kernel has it
    builtins.__dict__.pop("_", None)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "tfmagic")
    shell.run_cell("import numpy as np\nimport tensorflow as tf")
    yield shell
    shell.run_line_magic("unload_ext", "tfmagic")
    InteractiveShell.clear_instance()


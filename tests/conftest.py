"""Shared fixtures: a real IPython shell with tfmagic loaded as a user loads it."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def ip():
    """The InteractiveShell singleton (display() and capture_output() only see it), extension loaded."""
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell

    HistoryAccessor.enabled = False
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "tfmagic")
    shell.run_cell("import numpy as np\nimport tensorflow as tf")
    yield shell
    shell.run_line_magic("unload_ext", "tfmagic")
    InteractiveShell.clear_instance()


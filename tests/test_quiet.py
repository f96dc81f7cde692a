"""A quiet start-up (quiet.py): when tfmagic imports TensorFlow, TensorFlow's C++ start-up lines are left out,
and TFMAGIC_STARTUP_LOG=1 keeps them. Each case runs in a fresh process."""

import os
import subprocess
import sys

import pytest


LOAD = ("from tfmagic.quiet import import_tensorflow\nimport_tensorflow()\nimport tensorflow as tf\n"
        "tf.config.list_physical_devices()\nimport sys\nprint('imported', file=sys.stderr)")


@pytest.mark.parametrize("keep", [False, True], ids=["default", "TFMAGIC_STARTUP_LOG=1"])
def test_loading_before_tensorflow_leaves_out_its_startup_lines(tmp_path, keep):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFMAGIC_STARTUP_LOG")}
    plain = subprocess.run([sys.executable, "-c", "import tensorflow as tf\ntf.config.list_physical_devices()"],
                           capture_output=True, text=True, env=env, timeout=300)
    if keep:
        env["TFMAGIC_STARTUP_LOG"] = "1"
    quiet = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and "imported" in quiet.stderr
    from tfmagic.quiet import is_tensorflow_startup_line

    startup = [line for line in plain.stderr.splitlines() if is_tensorflow_startup_line(line)]
    shown = [line for line in quiet.stderr.splitlines() if is_tensorflow_startup_line(line)]
    assert (len(shown) > 0) == (keep and len(startup) > 0)


def test_a_notebooks_first_cell_shows_no_startup_lines(tmp_path, monkeypatch):
    """On a real kernel that does not set TF_CPP_MIN_LOG_LEVEL, as a user's does not: ``%load_ext tfmagic``
    (which imports TensorFlow) shows none of TensorFlow's start-up lines, in absl's format (2.20+) or in
    TensorFlow's own (2.15-2.19: ``2026-12-07 18:09:29.287043: I tensorflow/core/util/port.cc:113] ...``)."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("TFMAGIC_STARTUP_LOG", raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%load_ext tfmagic"),
                                         nbformat.v4.new_code_cell("import tensorflow as tf\nprint(tf.__version__)")])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    first = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert first == "", first[:2000]
    assert nb.cells[1].outputs[0]["text"].strip() == __import__("tensorflow").__version__

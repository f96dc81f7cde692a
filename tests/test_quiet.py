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

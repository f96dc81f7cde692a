"""How tfmagic explains TensorFlow's errors at the cell's line: dtype mismatches (in a %%tfgraph cell and in a
plain cell), NumPy's float64, a tf.function that creates a variable on a later call; other errors keep their
usual traceback. In a real shell."""

import re

import tensorflow as tf

from .shellutil import run


def test_graph_mode_dtype_mismatch_is_explained_at_the_line(ip):
    run(ip, "fa = tf.constant([1.0, 2.0])")
    result, captured = run(ip, "%%tfgraph\nfb = fa * 2.0\nfc = fb + tf.constant([1, 2])\n")
    assert isinstance(result.error_in_exec, TypeError)
    out = captured.stdout
    assert "----> 2 fc = fb + tf.constant([1, 2])" in out
    assert "AddV2 got float32 and int32" in out and "tf.cast(..., tf.float32)" in out
    assert "Traceback" in out and "site-packages" not in out and "fc" not in ip.user_ns


def test_eager_dtype_mismatch_in_a_plain_cell(ip):
    result, captured = run(ip, "tf.constant(2.) + tf.constant(40)")
    assert type(result.error_in_exec).__name__ == "InvalidArgumentError"  # the cell still fails
    out = captured.stdout
    assert "----> 1 tf.constant(2.) + tf.constant(40)" in out
    assert "AddV2 got float32 and int32" in out
    assert "tf.cast(..., tf.float32)" in out and "40 -> 40.0" in out
    assert "[Op:AddV2]" not in out


def test_numpy_float64_is_named(ip):
    run(ip, "arr = tf.constant(np.array([2.0, 4.0]))\nf32 = tf.constant([1.0, 1.0])")
    result, captured = run(ip, "f32 + arr")
    assert isinstance(result.error_in_exec, tf.errors.InvalidArgumentError)  # the cell still fails, as TensorFlow's
    assert "arr is float64: NumPy makes float64 by default, TensorFlow float32" in captured.stdout
    assert "dtype=tf.float32" in captured.stdout


def test_users_function_creating_a_variable_on_a_later_call_is_explained(ip):
    result, captured = run(ip, "@tf.function\ndef counter(x):\n    c = tf.Variable(0.0)\n    return c + x\n"
                               "counter(tf.constant(1.0))")
    assert isinstance(result.error_in_exec, ValueError)
    out = captured.stdout
    assert "----> 3 c = tf.Variable(0.0)" in out and "create the variable once outside" in out


def test_other_errors_keep_their_usual_traceback(ip):
    result, captured = run(ip, "def boom():\n    raise ValueError('plain value error')\nboom()")
    assert isinstance(result.error_in_exec, ValueError)
    out = re.sub(r"\x1b\[[0-9;]*m", "", captured.stdout)
    assert "plain value error" in out and "boom()" in out

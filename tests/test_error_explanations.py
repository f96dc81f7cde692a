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


def test_a_format_spec_on_a_tensor_says_why_and_what_to_write(ip):
    run(ip, "floss = tf.constant(0.25)")
    for cell in ("print(f'loss {floss:.3f}')", "text = '{:.2%}'.format(floss)"):
        result, captured = run(ip, "%%tfgraph --show none\n" + cell)
        assert isinstance(result.error_in_exec, TypeError)
        out = captured.stdout
        assert f"----> 1 {cell}" in out and "a format spec (f'{t:.3f}', '{:.2%}'.format(t)) needs a tensor's value" in out
        assert "fix: tf.print('loss', t) prints the value on every run" in out
    # the fixes, pasted
    result, captured = run(ip, "%%tfgraph --show none\ntf.print('loss', floss)\ntext = tf.strings.format('{}', floss)")
    assert result.success and ip.user_ns["text"].numpy() == b"0.25"


def test_enumerate_or_zip_of_a_tensor_in_a_for_names_that_cause(ip):
    run(ip, "ft = tf.constant([1., 2., 3.])")
    for cell, name in (("for i, v in enumerate(ft):\n    s = v * i", "enumerate"),
                       ("for a, b in zip(ft, ft):\n    s = a * b", "zip")):
        result, captured = run(ip, "%%tfgraph --show none\n" + cell)
        assert type(result.error_in_exec).__name__ == "OperatorNotAllowedInGraphError"
        assert f"{name}(...) of a tensor in a for: AutoGraph makes a graph loop of a for over a tensor or dataset, " \
               f"but Python's {name} iterates the tensor itself" in captured.stdout
        assert "fix: for i in tf.range(tf.shape(" in captured.stdout
    # the fix, pasted: a graph loop, the plain loop's total
    run(ip, "total = tf.constant(0.)\nfor i, v in enumerate(ft):\n    total += v * i")
    plain = float(ip.user_ns["total"])
    result, _ = run(ip, "%%tfgraph --show none\ntotal = tf.constant(0.)\nfor i in tf.range(tf.shape(ft)[0]):\n"
                        "    total += ft[i] * tf.cast(i, tf.float32)")
    assert result.success and float(ip.user_ns["total"]) == plain == 8.0

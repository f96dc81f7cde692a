"""When a %%tfgraph cell retraces, and how it says so: the argument that changed (shape, dtype, Python value,
dict keys, a new captured object) and the fix; --reduce-retracing, --max-traces; cells that do not retrace.
In a real shell. (%tfretrace and --watch: test_tfretrace.py, test_retrace_watch.py.)"""

import tensorflow as tf

from .shellutil import output_text, run


def _retrace(ip, setup_before, setup_after, body, options=""):
    """Run a cell, change its inputs, run it again: the second run's notices."""
    run(ip, setup_before)
    first, c1 = run(ip, f"%%tfgraph --show none {options}\n{body}")
    assert first.success, first.error_in_exec
    assert "retraced" not in output_text(c1)
    run(ip, setup_after)
    second, c2 = run(ip, f"%%tfgraph --show none {options}\n{body}")
    assert second.success, second.error_in_exec
    return output_text(c2)


def test_shape_change_names_the_argument_and_the_fix(ip):
    text = _retrace(ip, "xs = tf.constant([1.0, 2.0])", "xs = tf.constant([1.0, 2.0, 3.0])", "ys = xs * 2.0")
    assert "retraced: trace 2" in text
    assert "xs: float32[2] -> float32[3]" in text
    assert "input_signature=[tf.TensorSpec([None], tf.float32)]" in text and "reduce_retracing=True" in text
    assert "graph:" in text and "shapes changed" in text


def test_dtype_change(ip):
    text = _retrace(ip, "s = tf.constant(1.0)", "s = tf.constant(1)", "t2 = s * 2")
    assert "s: float32 -> int32" in text
    assert "tf.cast(s, tf.float32)" in text


def test_python_value_change(ip):
    text = _retrace(ip, "xs = tf.constant([1.0, 2.0])\nk = 10", "k = 20", "ys = xs * k")
    assert "k: Python int 10 -> 20" in text
    assert "tf.constant(k, tf.float32)" in text and "every new Python value traces a new graph" in text


def test_dict_keys_change(ip):
    text = _retrace(ip, "cfg = {'a': 1.0}", "cfg = {'a': 1.0, 'b': 2.0}", "z = tf.constant(cfg['a']) * 2.0")
    assert "cfg: dict keys changed (+b)" in text


def test_new_captured_object(ip):
    text = _retrace(ip, "xs = tf.constant([1.0, 2.0])\nscale = tf.Variable(2.0, name='scale')",
                    "scale = tf.Variable(3.0, name='scale')", "ys = xs * scale")
    assert "scale: a new object is captured" in text
    assert ip.user_ns["ys"].numpy().tolist() == [3.0, 6.0]


def test_reduce_retracing_says_so(ip):
    text = _retrace(ip, "xs = tf.constant([1.0, 2.0])", "xs = tf.constant([1.0, 2.0, 3.0])", "ys = xs + 1.0",
                    options="--reduce-retracing")
    assert "xs: float32[2] -> float32[?]" in text


def test_max_traces_fails_with_the_reason_and_changes_nothing(ip):
    run(ip, "xs = tf.constant([1.0, 2.0])")
    body = "%%tfgraph --show none --max-traces 1\nys = xs * 5.0\n"
    assert run(ip, body)[0].success
    before = ip.user_ns["ys"]
    run(ip, "xs = tf.constant([1.0, 2.0, 3.0])")
    result, captured = run(ip, body)
    assert type(result.error_in_exec).__name__ == "RetraceLimitError"
    assert "--max-traces 1: this run would trace the cell a 2nd time (xs: float32[2] -> float32[3])" in \
        str(result.error_in_exec)
    assert "fix:" in captured.stdout
    assert ip.user_ns["ys"] is before
    run(ip, "xs = tf.constant([7.0, 8.0])")
    result, _ = run(ip, body)  # the first signature still runs
    assert result.success and ip.user_ns["ys"].numpy().tolist() == [35.0, 40.0]


def test_variable_created_in_the_cell_works_and_a_rerun_says_it_traces_again(ip):
    result, _ = run(ip, "%%tfgraph --show none\nvv = tf.Variable(1.0)\nww = vv * 2.0\n")
    assert result.success, result.error_in_exec
    first = ip.user_ns["vv"]
    assert isinstance(first, tf.Variable) and float(ip.user_ns["ww"]) == 2.0
    result, captured = run(ip, "%%tfgraph --show none\nvv = tf.Variable(1.0)\nww = vv * 2.0\n")
    assert result.success and ip.user_ns["vv"] is not first  # a new variable, as a plain re-run makes
    assert "it creates variables, and each run makes new ones" in output_text(captured)


def test_a_captured_layer_built_on_the_first_run_does_not_make_the_cell_retrace(ip):
    run(ip, "lazy = tf.keras.layers.Dense(3, name='lazy')\nlx = tf.ones((2, 4))")
    run(ip, "%%tfgraph --show none\nly = lazy(lx)")
    kernel = ip.user_ns["lazy"].kernel
    result, captured = run(ip, "%%tfgraph --show none\nly = lazy(lx)")
    assert result.success and "retraced" not in output_text(captured)  # the plain re-run makes no new weights either
    assert ip.user_ns["lazy"].kernel is kernel


def test_tensorflows_frequent_retracing_warning_never_names_tfmagics_function(ip):
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        for k in range(7):  # TensorFlow warns from the 5th retrace in a row
            run(ip, f"xr = tf.zeros([{k + 1}])")
            _, captured = run(ip, "%%tfgraph --show none\nyr = xr * 2")
        assert "the cell's function has 7 traces" in output_text(captured)  # tfmagic says it, with the reason
        run(ip, "@tf.function\ndef own(t):\n    return t * 2\nfor k in range(7):\n    own(tf.zeros([k + 1]))")
    finally:
        tf.get_logger().removeHandler(handler)
    warned = [r.getMessage() for r in records if "triggered tf.function retracing" in r.getMessage()]
    assert warned and all("calls to <function own" in w for w in warned)  # the user's own function still warns

"""Why a function retraced, dtype mismatches and trace-time pitfalls, in a real shell."""

import re

import numpy as np
import pytest
import tensorflow as tf

from tfmagic.retracing import trace_history

from .shellutil import mimetypes, run


def _notices(captured):
    return "\n".join(o.data.get("text/plain", "") for o in captured.outputs)


def _retrace(ip, setup_before, setup_after, body, options=""):
    """Run a cell, change its inputs, run it again: the second run's notices."""
    run(ip, setup_before)
    first, c1 = run(ip, f"%%tfgraph --show none {options}\n{body}")
    assert first.success, first.error_in_exec
    assert "retraced" not in _notices(c1)
    run(ip, setup_after)
    second, c2 = run(ip, f"%%tfgraph --show none {options}\n{body}")
    assert second.success, second.error_in_exec
    return _notices(c2)


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


def test_tf_cube_history():
    """The seed's example: two int32 scalars share a graph; [10, 20], 10 and 20 each trace."""
    @tf.function
    def tf_cube(x):
        return x ** 3

    tf_cube(tf.constant(10))
    tf_cube(tf.constant(20))
    tf_cube(tf.constant([10, 20]))
    tf_cube(10)
    tf_cube(20)
    history = trace_history(tf_cube)
    assert [t.signature_text() for t in history.traces] == [
        "x: int32", "x: int32[2]", "x: Python int 10", "x: Python int 20"]
    assert [t.reason for t in history.traces] == [
        "first call", "x: int32 -> int32[2]", "x: int32[2] tensor -> Python int 10", "x: Python int 10 -> 20"]
    assert any("tf.constant(x)" in f for f in history.traces[3].fixes)


def test_tfretrace_table_lists_functions_cells_and_models(ip):
    run(ip, """
@tf.function
def tf_cube(x):
    return x ** 3
for v in (tf.constant(10), tf.constant(20), tf.constant([10, 20]), 10, 20):
    tf_cube(v)

class Doubler(tf.keras.Model):
    @tf.function
    def double(self, x):
        return 2 * x
doubler = Doubler()
doubler.double(tf.constant([1.0]))
doubler.double(tf.constant([1.0, 2.0]))
""")
    run(ip, "%%tfgraph -n cellfn --show none\nout = tf.constant(1.0) * 2.0")
    result, _ = run(ip, "%tfretrace")
    assert result.success
    bundle = result.result._repr_mimebundle_()  # the magic returns the table
    text, html = bundle["text/plain"], bundle["text/html"]
    line = next(ln for ln in text.splitlines() if ln.startswith("tf_cube"))
    assert " 4 " in line and "x: Python int 10 -> 20" in line
    assert "doubler.double" in text and "x: float32[1] -> float32[2]" in text
    assert "%%tfgraph -n cellfn" in text
    assert "<table" in html and "tf_cube" in html


def test_watch_reports_a_retrace_after_the_cell_and_off_stops(ip):
    run(ip, "@tf.function\ndef area(w, h):\n    return w * h\narea(tf.constant(2.0), tf.constant(3.0))")
    _, captured = run(ip, "%tfretrace --watch")
    assert "watching" in captured.stdout
    _, quiet = run(ip, "area(tf.constant(4.0), tf.constant(5.0))")  # same signature: nothing to say
    assert "retraced" not in _notices(quiet)
    _, loud = run(ip, "area(tf.constant([4.0]), tf.constant(5.0))")
    text = _notices(loud)
    assert "tfretrace area: retraced: trace 2" in text and "w: float32 -> float32[1]" in text
    run(ip, "%tfretrace --off")
    _, after = run(ip, "area(tf.constant([4.0, 1.0]), tf.constant(5.0))")
    assert "retraced" not in _notices(after)


def test_watch_reports_pitfalls_of_a_users_function(ip):
    run(ip, "%tfretrace --watch")
    _, captured = run(ip, "@tf.function\ndef noisy(x):\n    print('tracing', x)\n    return x + 1\n"
                          "noisy(tf.constant(1.0))")
    run(ip, "%tfretrace --off")
    assert "tfretrace noisy: line 3: print('tracing', x)" in _notices(captured)  # line 3 of the cell


def test_tfgraph_draws_an_existing_function_with_a_trace_chooser(ip):
    run(ip, "@tf.function\ndef sq(x):\n    return tf.square(x) + 1.0\nsq(tf.constant(1.0)); sq(tf.constant([1.0, 2.0]))")
    result, captured = run(ip, "%tfgraph sq")
    assert result.success, result.error_in_exec
    graph, menu = captured.outputs[-2].data, captured.outputs[-1].data
    assert "application/vnd.jupyter.widget-view+json" in menu  # the menu that draws another trace
    assert "image/svg+xml" in graph and "Square" in graph["image/svg+xml"]
    assert "trace 2: x: float32[2]" in graph["text/plain"]
    assert "sq has 2 traces: 1: x: float32; 2: x: float32[2]" in captured.stdout
    result, captured = run(ip, "%tfgraph sq --trace 1")
    assert "trace 1: x: float32:" in captured.outputs[-2].data["text/plain"]
    result, _ = run(ip, "%tfgraph sq --trace 3")
    assert "has traces 1 to 2" in str(result.error_in_exec)


def test_tfgraph_draws_a_concrete_function_and_a_keras_model(ip):
    run(ip, "model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, name='d1')])\n"
            "@tf.function\ndef g(x):\n    return x * 2.0\ncf = g.get_concrete_function(tf.TensorSpec([None], tf.float32))")
    _, captured = run(ip, "%tfgraph cf")
    assert "image/svg+xml" in mimetypes(captured)
    _, captured = run(ip, "%tfgraph model")
    svg = captured.outputs[-1].data["image/svg+xml"]
    assert "MatMul" in svg and "d1" in svg


@pytest.mark.parametrize("line,message", [("%tfgraph", "needs FUNC"), ("%tfgraph nothing_here", "cannot evaluate"),
                                          ("%tfgraph 42", "not a tf.function")])
def test_tfgraph_line_form_errors(ip, line, message):
    result, _ = run(ip, line)
    assert type(result.error_in_exec).__name__ == "UsageError" and message in str(result.error_in_exec)


# -- dtype mismatches ----------------------------------------------------------

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
    assert result.error_in_exec is not None
    assert "arr is float64: NumPy makes float64 by default, TensorFlow float32" in captured.stdout
    assert "dtype=tf.float32" in captured.stdout


def test_other_errors_keep_their_usual_traceback(ip):
    result, captured = run(ip, "def boom():\n    raise ValueError('plain value error')\nboom()")
    assert isinstance(result.error_in_exec, ValueError)
    out = re.sub(r"\x1b\[[0-9;]*m", "", captured.stdout)
    assert "plain value error" in out and "boom()" in out


# -- trace-time pitfalls -------------------------------------------------------

PITFALLS = {
    "print": ("print(xs)", "print() runs only while TensorFlow traces", "tf.print"),
    "append": ("seen.append(xs)", "appends to a Python list while tracing only", "tf.TensorArray"),
    "np_random": ("noise = np.random.rand()", "draws its random number once, while tracing", "tf.random"),
    "random": ("import random\nr = random.random()", "random.random() draws its random number once", "tf.random"),
    "time": ("import time\nstamp = time.time()", "read once, while tracing", "tf.timestamp"),
    "np_sum": ("total = np.sum([1.0, 2.0])", "np.sum() runs in NumPy while tracing", "tf.reduce_sum"),
    "sorted": ("order = sorted([3, 1, 2])", "sorted() runs in Python while tracing", "tf.sort"),
}


@pytest.mark.parametrize("kind", sorted(PITFALLS))
def test_pitfall_is_flagged_with_its_line(ip, kind):
    code, message, fix = PITFALLS[kind]
    run(ip, "xs = tf.constant([1.0, 2.0])\nseen = []")
    result, captured = run(ip, f"%%tfgraph --show none\nys = xs * 2.0\n{code}\n")
    assert result.success, result.error_in_exec
    text = _notices(captured)
    assert message in text and fix in text
    line = code.splitlines()[-1]
    assert f"line {1 + len(code.splitlines())}: {line}" in text


def test_unrolled_range_loop_says_how_many_copies(ip):
    run(ip, "xs = tf.constant([1.0, 2.0])")
    _, captured = run(ip, "%%tfgraph --show none\nacc = xs\nfor i in range(5):\n    acc = acc * 2.0 + 1.0\n")
    text = _notices(captured)
    assert "line 2: for i in range(5):" in text and "5 copies of its body" in text and "tf.range" in text
    np.testing.assert_allclose(ip.user_ns["acc"].numpy(), [63.0, 95.0])


def test_variable_created_in_the_cell_works_and_a_rerun_says_it_traces_again(ip):
    result, _ = run(ip, "%%tfgraph --show none\nvv = tf.Variable(1.0)\nww = vv * 2.0\n")
    assert result.success, result.error_in_exec
    first = ip.user_ns["vv"]
    assert isinstance(first, tf.Variable) and float(ip.user_ns["ww"]) == 2.0
    result, captured = run(ip, "%%tfgraph --show none\nvv = tf.Variable(1.0)\nww = vv * 2.0\n")
    assert result.success and ip.user_ns["vv"] is not first  # a new variable, as a plain re-run makes
    assert "it creates variables, and each run makes new ones" in _notices(captured)


def test_a_captured_layer_built_on_the_first_run_does_not_make_the_cell_retrace(ip):
    run(ip, "lazy = tf.keras.layers.Dense(3, name='lazy')\nlx = tf.ones((2, 4))")
    run(ip, "%%tfgraph --show none\nly = lazy(lx)")
    kernel = ip.user_ns["lazy"].kernel
    result, captured = run(ip, "%%tfgraph --show none\nly = lazy(lx)")
    assert result.success and "retraced" not in _notices(captured)  # the plain re-run makes no new weights either
    assert ip.user_ns["lazy"].kernel is kernel


def test_users_function_creating_a_variable_on_a_later_call_is_explained(ip):
    result, captured = run(ip, "@tf.function\ndef counter(x):\n    c = tf.Variable(0.0)\n    return c + x\n"
                               "counter(tf.constant(1.0))")
    assert isinstance(result.error_in_exec, ValueError)
    out = captured.stdout
    assert "----> 3 c = tf.Variable(0.0)" in out and "create the variable once outside" in out


@pytest.mark.parametrize("body", [
    "ys = tf.nn.relu(xs * 2.0 - 1.0)\nzs = tf.reduce_sum(ys)",
    "out = net(tf.reshape(xs, (1, 2)))",
    "total = tf.constant(0.0)\nfor i in tf.range(3):\n    total += tf.cast(i, tf.float32)",
    "if tf.reduce_sum(xs) > 0:\n    ys = xs\nelse:\n    ys = -xs",
])
def test_no_false_alarms(ip, body):
    run(ip, "xs = tf.constant([1.0, 2.0])\nnet = tf.keras.Sequential([tf.keras.layers.Dense(3), "
            "tf.keras.layers.Dense(1)])")
    run(ip, "%tfretrace --watch")
    result, captured = run(ip, f"%%tfgraph --show none\n{body}")
    result2, captured2 = run(ip, f"%%tfgraph --show none\n{body}")
    run(ip, "%tfretrace --off")
    assert result.success and result2.success
    notices = _notices(captured)
    if "tf.range" in body:  # the one true difference from a plain cell: the loop's own names stay in the graph
        assert notices.count("%%tfgraph:") == 1 and "i is not written back: bound inside a graph loop" in notices
    else:
        assert notices == ""
    assert _notices(captured2) == ""

"""``%tfgraph FUNC``: the traces of an existing tf.function, concrete function or Keras model, drawn in a real
shell: the trace chooser, --trace N, the trace it draws, and its errors."""

import re

import pytest
from IPython.core.error import UsageError

from .shellutil import drawing_data, drawing_svg, mimetypes, run


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
    assert type(result.error_in_exec) is UsageError and str(result.error_in_exec) == "--trace 3: sq has traces 1 to 2"



def test_tfgraph_draws_a_concrete_function_and_a_keras_model(ip):
    run(ip, "model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, name='d1')])\n"
            "@tf.function\ndef g(x):\n    return x * 2.0\ncf = g.get_concrete_function(tf.TensorSpec([None], tf.float32))")
    _, captured = run(ip, "%tfgraph cf")
    assert "image/svg+xml" in mimetypes(captured)
    _, captured = run(ip, "%tfgraph model")
    svg = captured.outputs[-1].data["image/svg+xml"]
    assert "MatMul" in svg and "d1" in svg



def test_a_variable_creating_first_trace_is_not_the_one_drawn(ip):
    run(ip, "lazy = tf.keras.layers.Dense(2, name='lazy')\nlx = tf.ones((1, 3))")
    _, captured = run(ip, "%%tfgraph -n lazyfn\nly = lazy(lx)")
    cell_text = drawing_data(captured)["text/plain"]
    _, captured = run(ip, "%tfgraph lazyfn")
    drawn = drawing_data(captured)["text/plain"]
    count = re.compile(r"(\d+) ops")
    assert count.search(drawn).group(1) == count.search(cell_text).group(1)
    assert "Initializer" not in drawing_svg(captured)



@pytest.mark.parametrize("line,message", [("%tfgraph", "needs FUNC"), ("%tfgraph nothing_here", "cannot evaluate"),
                                          ("%tfgraph 42", "not a tf.function")])
def test_tfgraph_line_form_errors(ip, line, message):
    result, _ = run(ip, line)
    assert type(result.error_in_exec).__name__ == "UsageError" and message in str(result.error_in_exec)

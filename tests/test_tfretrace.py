"""%tfretrace: the table of every tf.function with its traces and why each retraced, one function in full,
--watch and --off, and the one vocabulary every retrace message uses; in a real shell.

The retraces research code hits, under --watch, are in test_retrace_watch.py.
"""

import tensorflow as tf

from tfmagic.retracing import trace_history

from .shellutil import output_text, output_texts, run


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



def test_tfretrace_never_traces_a_function_nobody_called(ip):
    run(ip, "ran = []\n@tf.function\ndef mk():\n    ran.append(1)\n    nv = tf.Variable(1.0)\n    return nv * 2")
    result, _ = run(ip, "%tfretrace")
    assert result.success, result.error_in_exec
    assert ip.user_ns["ran"] == []
    line = next(ln for ln in str(result.result).splitlines() if ln.startswith("mk"))
    assert "not traced yet" in line



def test_watch_reports_a_retrace_after_the_cell_and_off_stops(ip):
    run(ip, "@tf.function\ndef area(w, h):\n    return w * h\narea(tf.constant(2.0), tf.constant(3.0))")
    _, captured = run(ip, "%tfretrace --watch")
    assert "watching" in captured.stdout
    _, quiet = run(ip, "area(tf.constant(4.0), tf.constant(5.0))")  # same signature: nothing to say
    assert "retraced" not in output_text(quiet)
    _, loud = run(ip, "area(tf.constant([4.0]), tf.constant(5.0))")
    text = output_text(loud)
    assert "tfretrace area: retraced: trace 2" in text and "w: float32 -> float32[1]" in text
    run(ip, "%tfretrace --off")
    _, after = run(ip, "area(tf.constant([4.0, 1.0]), tf.constant(5.0))")
    assert "retraced" not in output_text(after)



def test_watch_reports_pitfalls_of_a_users_function(ip):
    run(ip, "%tfretrace --watch")
    _, captured = run(ip, "@tf.function\ndef noisy(x):\n    print('tracing', x)\n    return x + 1\n"
                          "noisy(tf.constant(1.0))")
    run(ip, "%tfretrace --off")
    assert "tfretrace noisy: line 3: print('tracing', x)" in output_text(captured)  # line 3 of the cell



def test_every_retrace_message_says_retrace(ip):
    run(ip, "va = tf.constant([1., 2.])")
    run(ip, "%%tfgraph --show none\nvb = va * 3")
    run(ip, "va = tf.constant([1., 2., 3.])")
    _, cell = run(ip, "%%tfgraph --show none\nvb = va * 3")
    run(ip, "@tf.function\ndef vf(x):\n    return x + 1\nvf(tf.constant(1.))")
    run(ip, "%tfretrace --watch")
    _, watch = run(ip, "vf(tf.constant([1., 2.]))")
    run(ip, "%tfretrace --off")
    table = ip.run_line_magic("tfretrace", "")
    texts = output_texts(cell) + output_texts(watch) + [repr(table)]
    assert any("%%tfgraph: retraced: trace 2" in t and "the cell's function has 2 traces" in t for t in texts)
    assert any("tfretrace vf: retraced: trace 2" in t for t in texts)
    assert "why it last retraced" in repr(table)
    assert not any("traced again" in t or "has traced" in t for t in texts)

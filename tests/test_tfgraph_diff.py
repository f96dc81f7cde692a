"""Drawn trace diffs: ``%%tfgraph --show diff`` and ``%tfgraph FUNC --diff A B`` draw what a retrace changed
(ops added and removed, edges whose dtype or shape changed), with the words above the drawing, in a real shell.

The diff itself, on hand-made graph models, is in units/test_tracediff.py.
"""

import re

import pygraphviz
from IPython.core.error import UsageError

from tfmagic.dot import EDGE_STYLES, MARKS

from .shellutil import drawing_svg, output_texts, run


def test_a_retrace_on_a_new_shape_draws_the_changed_edges(ip):
    run(ip, "xs = tf.constant([1., 2.])")
    run(ip, "%%tfgraph --show diff\nys = xs * 2\nys")
    run(ip, "xs = tf.constant([[1., 2.]])")
    result, captured = run(ip, "%%tfgraph --show diff\nys = xs * 2\nys")
    assert result.success
    svg = drawing_svg(captured)
    changed = re.search(r'color="(#[0-9a-f]{6})"', EDGE_STYLES["changed"]).group(1)  # the drawing's own table
    assert "float32[2] &#45;&gt; float32[1,2]" in svg and changed in svg
    assert "trace 2 (against trace 1): xs: float32[2] -> float32[1,2]" in " ".join(output_texts(captured))  # words above
    assert "orange arrow: dtype or shape changed" in svg


def test_a_retrace_that_adds_a_branch_draws_the_added_ops(ip, tmp_path):
    run(ip, "@tf.function\ndef fb(x, flag):\n    y = x + 1\n    if flag:\n        y = tf.sqrt(y)\n    return y\n"
            "fb(tf.constant(1.), False); fb(tf.constant(2.), True)")
    path = tmp_path / "d.dot"
    result, captured = run(ip, f"%tfgraph fb --diff 1 2 -o {path}")
    assert result.success, result.error_in_exec
    text = " ".join(output_texts(captured))
    assert "1 op added" in text
    graph = pygraphviz.AGraph(string=path.read_text())
    sqrt = next(n for n in graph.nodes() if graph.get_node(n).attr["label"].startswith("Sqrt"))
    assert graph.get_node(sqrt).attr["color"] == MARKS["added"][0]
    result, captured = run(ip, "%tfgraph fb --diff 2 1")
    assert "1 op removed" in " ".join(output_texts(captured))
    result, _ = run(ip, "%tfgraph fb --diff 1 3")
    assert type(result.error_in_exec) is UsageError and str(result.error_in_exec) == "--diff 1 3: fb has traces 1 to 2"


def test_show_diff_without_a_retrace_draws_the_graph(ip):
    run(ip, "a = tf.random.normal((768, 768), seed=1)")
    result, captured = run(ip, "%%tfgraph --show diff\nnd = a[0] * 2")
    assert result.success
    assert any("did not retrace" in t for t in output_texts(captured))
    assert any("image/svg+xml" in o.data for o in captured.outputs)

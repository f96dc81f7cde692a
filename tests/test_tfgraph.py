"""%%tfgraph in a real IPython shell: values, drawing, reuse, errors, options, load/unload."""

import os
import xml.etree.ElementTree as ET

import numpy as np
import tensorflow as tf
import pytest
from IPython.core.error import UsageError

from .shellutil import drawing_data, drawing_svg, mimetypes, output_text, output_texts, run, user_names

SETUP = """
x = tf.constant([[1.0, -2.0, 3.0]])
n = tf.constant(5)
v = tf.Variable(10.0)
layer = tf.keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros", name="dense")
"""

BODIES = {
    "arithmetic": "y = x * 2.0 + 1.0\nz = tf.reduce_sum(y) / 3.0\n",
    "tensor_if": "if tf.reduce_sum(x) > 0:\n    s = x * 10.0\nelse:\n    s = -x\n",
    "range_loop": "total = tf.constant(0)\nfor i in tf.range(n):\n    total += i * i\n",
    "while_loop": "w = x\nwhile tf.reduce_max(w) < 100.0:\n    w = w * 2.0\n",
    "keras_layer": "out = layer(x)\nact = tf.nn.relu(out)\n",
    "variable_update": "v.assign_add(5.0)\nvv = v * 2.0\n",
}


def _values(ip, names):
    out = {}
    for name in names:
        value = ip.user_ns[name]
        out[name] = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    return out


@pytest.mark.parametrize("case", sorted(BODIES))
def test_values_equal_the_plain_cell(ip, case):
    body = BODIES[case]
    names = [ln.split("=")[0].strip().split()[0] for ln in body.splitlines() if "=" in ln and not ln.startswith(" ")]
    names = [n.rstrip("+") for n in names] + ["v"]
    run(ip, SETUP)
    result, _ = run(ip, "%%tfgraph --show none\n" + body)
    assert result.success, result.error_in_exec
    traced = _values(ip, names)
    run(ip, SETUP)
    result, _ = run(ip, body)
    assert result.success
    plain = _values(ip, names)
    for name in names:
        # Grappler may rewrite x / 3.0 as x * (1 / 3.0) in any tf.function: allow that one rounding step.
        np.testing.assert_allclose(traced[name], plain[name], rtol=1e-6, err_msg=name)
        assert traced[name].dtype == plain[name].dtype and traced[name].shape == plain[name].shape


def test_graph_is_drawn_inline_as_svg_below_the_result(ip):
    run(ip, SETUP)
    result, captured = run(ip, "%%tfgraph\ny = layer(x) * 2.0\ntf.reduce_sum(y)")
    assert result.success
    assert "image/svg+xml" in mimetypes(captured)
    assert "Out[" in captured.stdout and "numpy=" in captured.stdout  # the result came first
    svg = captured.outputs[-1].data["image/svg+xml"]
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "MatMul" in texts and "variable" in texts and "float32[1,2]" in texts
    assert "dense" in texts  # the Keras layer's name scope
    assert float(ip.user_ns["_"].numpy()) == pytest.approx(float(ip.user_ns["y"].numpy().sum()))


def test_control_flow_subgraphs_are_drawn(ip):
    run(ip, SETUP)
    _, captured = run(ip, "%%tfgraph\ntotal = tf.constant(0)\nfor i in tf.range(n):\n    total += i\n"
                          "if total > 3:\n    total = total * 2\n")
    text = captured.outputs[-1].data["text/plain"]
    assert "control-flow ops" in text and "more in function bodies" in text
    svg = captured.outputs[-1].data["image/svg+xml"]
    assert "While body" in svg and "If then" in svg


def test_rerun_reuses_the_trace_and_a_new_shape_retraces(ip):
    run(ip, "a = tf.constant([1.0, 2.0])")
    body = "%%tfgraph --show none\nb = a * 3.0\n"
    _, first = run(ip, body)
    _, second = run(ip, body)
    assert "retraced" not in str(first.outputs) + first.stdout
    assert "retraced" not in str(second.outputs) + second.stdout
    run(ip, "a = tf.constant([1.0, 2.0, 3.0])")
    _, third = run(ip, body)
    notices = output_texts(third)
    assert any("retraced: trace 2" in t and "a: float32[2] -> float32[3]" in t for t in notices), notices
    assert ip.user_ns["b"].numpy().tolist() == [3.0, 6.0, 9.0]


def test_failing_cell_leaves_the_namespace_and_names_the_line(ip):
    run(ip, "p = tf.constant(1.0)\nq = 'before'")
    before = user_names(ip)
    result, captured = run(ip, "%%tfgraph\np = p + 1.0\nq = p * 2.0\nr = q + tf.constant(1)\n")
    assert isinstance(result.error_in_exec, TypeError)
    assert user_names(ip) == before
    assert "----> 3 r = q + tf.constant(1)" in captured.stdout
    assert "site-packages" not in captured.stdout and "autograph" not in captured.stdout.lower()


def test_runtime_failure_leaves_the_namespace_and_names_the_line(ip):
    before = user_names(ip)
    result, captured = run(ip, "%%tfgraph\nm = tf.constant([1.0, -1.0])\ntf.debugging.assert_positive(m)\n")
    assert isinstance(result.error_in_exec, tf.errors.InvalidArgumentError)
    assert "----> 2 tf.debugging.assert_positive(m)" in captured.stdout
    assert "Detected at node" not in captured.stdout
    assert user_names(ip) == before


def test_syntax_error_shows_the_cell_line(ip):
    result, captured = run(ip, "%%tfgraph\ny = 1\nz = (2 +\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert result.error_in_exec.lineno == 2  # lines of the cell's body, as IPython's %%time counts them


def test_syntax_errors_are_short(ip):
    for magic in ("%%tfgraph", "%%tape"):
        result, captured = run(ip, f"{magic}\nok = 1\nr = (ok * 2\n")
        assert isinstance(result.error_in_exec, SyntaxError)
        out = captured.stdout
        assert f"{magic} cell, line 2" in out and "r = (ok * 2" in out and "SyntaxError: '(' was never closed" in out
        assert "tfmagic/magics" not in out and "ast.parse" not in out  # no frame of the magics
    result, captured = run(ip, "%%tfgraph\nreturn 5\n")
    assert "%%tfgraph cell, line 1" in captured.stdout and "return 5" in captured.stdout


def test_named_cell_keeps_its_function(ip):
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, _ = run(ip, "%%tfgraph -n triple --show none\nb = a * 3.0\n")
    assert result.success
    fn = ip.user_ns["triple"]
    assert fn.experimental_get_tracing_count() >= 1
    outputs, _ = fn(ip.user_ns["a"])
    assert outputs["b"].numpy().tolist() == [3.0, 6.0]
    count = fn.experimental_get_tracing_count()
    run(ip, "%%tfgraph -n triple --show none\nb = a * 3.0\n")
    assert ip.user_ns["triple"] is fn and fn.experimental_get_tracing_count() == count


@pytest.mark.parametrize("flag,attribute,value", [("--jit", "_jit_compile", True),
                                                  ("--reduce-retracing", "_reduce_retracing", True),
                                                  ("--no-autograph", "_autograph", False)])
def test_function_options(ip, flag, attribute, value):
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, _ = run(ip, f"%%tfgraph {flag} -n opt_fn --show none\nb = a * 3.0 + 1.0\n")
    assert result.success, result.error_in_exec
    assert getattr(ip.user_ns["opt_fn"], attribute) is value
    assert ip.user_ns["b"].numpy().tolist() == [4.0, 7.0]


def test_no_autograph_leaves_python_control_flow_unconverted(ip):
    run(ip, "a = tf.constant([1.0, 2.0])")
    before = user_names(ip)
    result, captured = run(ip, "%%tfgraph --no-autograph --show none\nif tf.reduce_sum(a) > 0:\n    b = a\n")
    # a tensor as a Python bool: what tf.function does without AutoGraph, at the cell's line
    assert isinstance(result.error_in_exec, tf.errors.OperatorNotAllowedInGraphError)
    assert "Using a symbolic `tf.Tensor` as a Python `bool` is not allowed" in str(result.error_in_exec)
    assert "----> 1 if tf.reduce_sum(a) > 0:" in captured.stdout and user_names(ip) == before
    assert "AutoGraph is off (--no-autograph)" in captured.stdout and "drop --no-autograph" in captured.stdout
    assert "converts if, while and for statements of the cell" not in captured.stdout  # AutoGraph's case, not this


def test_show_none_draws_nothing(ip):
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, captured = run(ip, "%%tfgraph --show none\nb = a + 1.0\n")
    assert "image/svg+xml" not in mimetypes(captured)
    assert result.success and captured.outputs == [] and captured.stdout == ""  # no text view or note instead
    assert ip.user_ns["b"].numpy().tolist() == [2.0, 3.0]  # the cell ran and wrote back
    result, captured = run(ip, "%%tfgraph --show none\nb = a + 1.0\nb")
    assert captured.outputs == []  # what a plain cell shows, and only that: its result
    assert captured.stdout.startswith("Out[") and "numpy=array([2., 3.], dtype=float32)>" in captured.stdout


@pytest.mark.parametrize("ext,magic", [("svg", b"<svg"), ("png", b"\x89PNG"), ("pdf", b"%PDF"), ("dot", b"digraph")])
def test_output_file(ip, tmp_path, ext, magic):
    path = tmp_path / f"graph.{ext}"
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, captured = run(ip, f"%%tfgraph --show none -o {path}\nb = a + 1.0\n")
    assert result.success
    data = path.read_bytes()
    assert magic in data[:400]
    if ext in ("svg", "dot"):  # the cell's drawing, in the readable view
        assert b"AddV2" in data and b"+ 1.0" in data
    assert "image/svg+xml" not in mimetypes(captured)
    assert captured.outputs == [] and captured.stdout == ""  # --show none: the file only


@pytest.mark.parametrize("line,message", [
    ("--bogus", "unrecognized arguments: --bogus"),
    ("--show pictures", "invalid choice: 'pictures'"),
    ("-o graph.gif", "extension must be one of .svg, .png, .pdf, .dot"),
    ("-o /no/such/folder/g.svg", "does not exist"),
    ("-n 2bad", "NAME must be a Python identifier"),
])
def test_bad_options_are_one_line_usage_errors(ip, line, message):
    run(ip, "a = tf.constant([1.0])")
    before = set(ip.user_ns)
    result, captured = run(ip, f"%%tfgraph {line}\nb = a + 1.0\n")
    assert type(result.error_in_exec) is UsageError
    assert message in str(result.error_in_exec)
    assert "\n" not in str(result.error_in_exec).strip()
    assert set(ip.user_ns) == before


def test_empty_cell_is_a_usage_error(ip):
    result, _ = run(ip, "%%tfgraph\n# nothing here\n")
    assert type(result.error_in_exec) is UsageError
    assert str(result.error_in_exec) == ("%%tfgraph: the cell is empty: write the code to run as a tf.function below "
                                         "the magic's line")


def test_help_lists_every_option(ip):
    from IPython.core.oinspect import Inspector  # noqa: F401  (the help comes from the docstring)

    doc = ip.find_cell_magic("tfgraph").__doc__
    for option in ("-n NAME", "--jit", "--reduce-retracing", "--no-autograph", "--show", "-o FILE", "Example"):
        assert option in doc, option


def test_load_twice_unload_and_reload(ip):
    _, captured = run(ip, "%load_ext tfmagic")
    assert "already loaded" in captured.stdout
    from tfmagic import load_ipython_extension

    load_ipython_extension(ip)  # a direct second call is harmless too
    assert list(ip.magics_manager.registry).count("TFMagics") == 1
    ip.run_line_magic("unload_ext", "tfmagic")
    for line in ("%%tfgraph\ny = 1\n", "%tfgraph f", "%%tape\ny = 1\n", "%tfretrace"):
        result, captured = run(ip, line)
        name = line.split()[0].split("\n")[0]
        assert type(result.error_in_exec) is UsageError
        assert str(result.error_in_exec) == (f"{name}: tfmagic is unloaded (%unload_ext tfmagic); %load_ext tfmagic "
                                             "loads it again")
        assert "Traceback" not in captured.stdout + captured.stderr
    ip.run_line_magic("load_ext", "tfmagic")
    run(ip, "a = tf.constant([1.0])")
    result, _ = run(ip, "%%tfgraph --show none\nb = a + 1.0\n")
    assert result.success and ip.user_ns["b"].numpy().tolist() == [2.0]


def test_core_works_without_ipython():
    """The core runs, traces and draws in a process where IPython cannot be imported at all."""
    import subprocess
    import sys

    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "IPython" or name.startswith("IPython."):
            raise ImportError("IPython is blocked in this test")
sys.meta_path.insert(0, Block())
import tensorflow as tf
from tfmagic.tracing import trace_cell
from tfmagic.render import draw_model
from tfmagic.traceview import TraceView
run = trace_cell("y = x * 2\\ny + 1", {"tf": tf, "x": tf.constant([1.0])})
report, _ = draw_model(TraceView(run.trace.graph, run.function, cell=True).model(), "t")
print(run.result.numpy().tolist(), report.svg.startswith("<svg"), "IPython" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[3.0] True False"


def test_show_optimized_draws_grappler_beside_the_traced_graph_and_says_what_changed(ip):
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, captured = run(ip, "%%tfgraph --show optimized\na * 100.0  # never used\n"
                               "b = a * (tf.constant(1.0) + tf.constant(2.0))\nb")
    assert result.success and ip.user_ns["b"].numpy().tolist() == [3.0, 6.0]
    out = next(o.data for o in captured.outputs if "text/html" in o.data and "Grappler" in o.data["text/plain"])
    assert "add (AddV2) folded into a constant (from Const, Const_1)" in out["text/plain"]
    assert "mul/y, mul pruned: their results are never used" in out["text/plain"]
    assert "9 ops -> 5" in out["text/plain"]
    html = out["text/html"]
    assert html.count("<svg") == 2 and "after Grappler" in html and "traced" in html
    assert "AddV2" not in out["image/svg+xml"]  # the static SVG is the optimised graph


def test_show_code_shows_autographs_code(ip):
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, captured = run(ip, "%%tfgraph --show code\nif tf.reduce_sum(a) > 0:\n    b = a\nelse:\n    b = -a\n")
    assert result.success
    out = captured.outputs[-1].data
    assert "ag__.if_stmt" in out["text/plain"] and "def tf___tfgraph_cell(a):" in out["text/plain"]
    assert "<span" in out["text/html"]  # highlighted
    _, captured = run(ip, "%%tfgraph --show code --no-autograph\nb = a + 1.0\n")
    assert "AutoGraph is off" in captured.outputs[-1].data["text/plain"]
    result, captured = run(ip, "%%tfgraph --show code --profile 1\nb = a * 3.0\n")  # each view asked for shows
    texts = output_texts(captured)
    assert result.success and ip.user_ns["b"].numpy().tolist() == [3.0, 6.0]
    assert any(t.startswith("%%tfgraph --profile") for t in texts) and "def tf___tfgraph_cell(a):" in texts[-1], texts


def _node_titles(svg):
    root = ET.fromstring(svg)
    return {t.text for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"
            for t in g.iter("{http://www.w3.org/2000/svg}title")}


def test_large_graphs_start_collapsed_and_expand_opens_a_scope(ip):
    import re

    run(ip, "net = tf.keras.Sequential([tf.keras.Input((4,))] + [tf.keras.layers.Dense(4, name=f'd{i}') "
            "for i in range(30)], name='net')\nnx = tf.ones((2, 4))")
    layer = re.compile(r"^net(_\d+)?/d(\d+)(_\d+)?$")  # Keras makes scope names unique: net_1/d3_1

    def titles(cell):
        _, captured = run(ip, cell)
        data = drawing_data(captured)
        return data["text/plain"], _node_titles(data["image/svg+xml"])

    text, nodes = titles("%%tfgraph\nny = net(nx)")
    assert "183 ops drawn as 32 nodes: net as its 30 layers; --expand NAME opens a layer, model or call" in text
    assert sorted(int(layer.match(t).group(2)) for t in nodes if layer.match(t)) == list(range(30))
    assert not any("MatMul" in t for t in nodes)
    _, nodes = titles("%%tfgraph --expand */d3*\nny = net(nx)")
    assert any(re.match(r"^net(_\d+)?/d3(_\d+)?/MatMul$", t) for t in nodes)  # d3 opened into its ops
    assert not any(layer.match(t) and layer.match(t).group(2) == "3" for t in nodes)
    assert any(layer.match(t) and layer.match(t).group(2) == "4" for t in nodes)  # d4 still one node
    _, nodes = titles("%%tfgraph --depth 1\nny = net(nx)")
    assert any(re.match(r"^net(_\d+)?$", t) for t in nodes) and not any(layer.match(t) for t in nodes)


def test_tensorboard_logdir_gets_the_graph(ip, tmp_path):
    run(ip, "a = tf.constant([1.0, 2.0])")
    result, captured = run(ip, f"%%tfgraph --show none --tensorboard {tmp_path}\nb = tf.square(a) + 1.0")
    assert result.success
    assert f"tensorboard --logdir {tmp_path}" in output_text(captured)
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert events
    graphs = [e.graph_def for e in tf.compat.v1.train.summary_iterator(str(events[0])) if e.graph_def]
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef.FromString(graphs[0])
    assert "Square" in {n.op for n in graph.node}


def test_expand_opens_a_control_flow_body_in_a_collapsed_drawing(ip):
    run(ip, "steps = tf.constant(3)\nacc0 = tf.ones((4,))")
    body = "acc = acc0\nfor i in tf.range(steps):\n    acc = tf.tanh(acc * 2.0) + 1.0\nacc"
    _, captured = run(ip, f"%%tfgraph --depth 1\n{body}")
    svg = drawing_svg(captured)
    assert "While body" not in svg  # collapsed: the loop is one node
    _, captured = run(ip, f"%%tfgraph --depth 1 --expand while\n{body}")
    svg = drawing_svg(captured)
    assert "While body" in svg and "Tanh" in svg

"""The graph explorer's widgets, driven as a user would drive them (no frontend needed to run them)."""

import html
import re

import pytest
import tensorflow as tf

from tfmagic.dot import MARKS
from tfmagic.explorer import Explorer
from tfmagic.traceview import TraceView


@pytest.fixture(scope="module")
def explorer():
    net = tf.keras.Sequential([tf.keras.Input((4,))] + [tf.keras.layers.Dense(4, name=f"e{i}") for i in range(30)],
                              name="enet")
    fn = tf.function(lambda x: tf.reduce_sum(net(x)) + (tf.constant(1.0) + tf.constant(2.0)))
    graphs = [("x: float32[2,4]", fn.get_concrete_function(tf.TensorSpec([2, 4])).graph),
              ("x: float32[3,4]", fn.get_concrete_function(tf.TensorSpec([3, 4])).graph)]
    explorer = Explorer([TraceView(g, reason=label) for label, g in graphs], 1, "explore")
    explorer.keep_alive = (net, fn)  # a FuncGraph holds its variables weakly: Grappler's view needs them
    return explorer


def test_starts_on_the_chosen_trace_and_draws_when_asked(explorer):
    assert explorer.trace.value == 1
    assert explorer.drawing.value == ""  # the cell's static drawing is below it
    assert "The cell's drawing is below" in explorer.details.value
    explorer.collapse_button.click()
    assert "trace 2: x: float32[3,4]" in explorer.drawing.value
    assert "enet as its 30 layers" in explorer.drawing.value  # the model as its layers, one node each
    assert any(s.endswith("e3") or "/e3" in s for s in explorer.scopes.options)


def test_expand_a_scope_from_the_list_and_collapse_all(explorer):
    layer = next(s for s in explorer.scopes.options if s.rsplit("/", 1)[-1].startswith("e3") and s.count("/") == 1)
    explorer.scopes.value = (layer,)
    explorer.expand_button.click()
    assert f"{layer}/MatMul" in explorer.drawing.value
    explorer.collapse_button.click()
    assert f"{layer}/MatMul" not in explorer.drawing.value


def test_search_by_regex_and_op_details(explorer):
    found = explorer.find(r"e7(_\d+)?/MatMul$")
    assert len(found) == 1 and explorer.matches.options == tuple(found)
    explorer.matches.value = found[0]
    details = explorer.details.value
    assert "MatMul" in details and "float32[3,4]" in details and "transpose_a" in details
    assert len(explorer.find("MatMul$")) == 30  # (Keras 2 names a weight's read e0/MatMul/ReadVariableOp)
    explorer.find("([")
    assert "not a regular expression" in explorer.details.value


def test_switch_trace_and_view_after_grappler(explorer):
    explorer.trace.value = 0
    assert "trace 1: x: float32[2,4]" in explorer.drawing.value
    traced_ops = len(explorer.model.ops)
    explorer.view.value = "after Grappler"
    assert "(after Grappler)" in explorer.drawing.value
    assert len(explorer.model.ops) < traced_ops  # 1. + 2. folded, identities gone
    explorer.view.value = "traced"


def test_the_diff_view_draws_a_trace_against_the_one_it_was_compared_with():
    @tf.function
    def g(x, flag):
        y = x * 2.0
        return tf.sqrt(y) if flag else y

    traces = [("flag: False", g.get_concrete_function(tf.TensorSpec([2]), False).graph),
              ("flag: True", g.get_concrete_function(tf.TensorSpec([2]), True).graph)]
    explorer = Explorer([TraceView(t, reason=label) for label, t in traces], 1, "g", compared=[None, 0])
    explorer.view.value = "diff"
    assert "(against trace 1)" in explorer.drawing.value and MARKS["added"][0] in explorer.drawing.value  # Sqrt added
    assert "thick green border: op added by this trace" in explorer.drawing.value
    explorer.trace.value = 0
    assert "nothing to compare" in explorer.drawing.value


def test_the_xla_view_boxes_xlas_kernels_around_the_ops():
    from tfmagic.xla import groups_for_graph

    @tf.function(jit_compile=True)
    def xg(x):
        return tf.tanh(x * 2.0 + 1.0)

    graph = xg.get_concrete_function(tf.TensorSpec([3])).graph
    explorer = Explorer([TraceView(graph, reason="x: float32[3]")], 0, "xg", xla=lambda i: groups_for_graph(xg, graph))
    assert "XLA" in explorer.view.options
    explorer.view.value = "XLA"
    assert "XLA loop fusion" in explorer.drawing.value and "solid orange box: one XLA kernel" in explorer.drawing.value
    assert xg.experimental_get_tracing_count() == 1


def test_the_memory_view_fills_the_measured_trace_by_bytes_and_says_an_ops_bytes():
    from tfmagic.memory import measure_memory

    @tf.function
    def mg(x):
        y = tf.matmul(x, x)
        return tf.reduce_sum(tf.nn.relu(y) * 3.0)

    x = tf.ones((500, 500))
    traces = [("x: float32[4,4]", mg.get_concrete_function(tf.TensorSpec([4, 4])).graph),
              ("x: float32[500,500]", mg.get_concrete_function(x).graph)]
    measured = measure_memory(lambda: mg(x))
    explorer = Explorer([TraceView(t, reason=label) for label, t in traces], 1, "mg", compared=[None, 0],
                        memory=(1, measured))
    assert "memory" in explorer.view.options
    explorer.view.value = "memory"
    drawing = html.unescape(explorer.drawing.value)
    assert "(filled by the bytes each op allocated (--memory))" in drawing
    assert "fill: share of the bytes the step's ops allocated" in drawing and "· the peak" in drawing
    top = max(measured.by_op().items(), key=lambda item: item[1])[0]
    explorer.matches.options = [top]
    explorer.matches.value = top
    assert "<b>memory</b>" in explorer.details.value
    assert re.search(r"[\d.]+ (KiB|MiB) in 1 buffer, [\d.]+ (KiB|MiB) of it live at the peak", explorer.details.value)
    explorer.trace.value = 0  # --memory measured the other trace
    assert "--memory measured trace 2, not this one" in html.unescape(explorer.drawing.value)

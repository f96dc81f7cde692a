"""--show xla: what XLA made of a jit_compile cell or function, in a real shell (issue 21, first part).

The drawing's fusion boxes are read from its DOT (Graphviz's own parser), the memory plan is checked
against the HloProto TensorFlow gives, and the cell's values against the same cell run plain.
"""

import numpy as np
import pygraphviz
import tensorflow as tf

from .shellutil import output_text, output_texts, run

SETUP = "xw = tf.Variable(tf.random.normal([4, 3]), name='xw')\nxb = tf.Variable(tf.ones([3]), name='xb')\n" \
        "xx = tf.random.normal([2, 4])"
CELL = "xy = tf.tanh(tf.matmul(xx, xw) + xb)\nxy"


def test_a_jit_cell_draws_its_fusions_around_the_tf_ops_and_computes_the_plain_value(ip, tmp_path):
    run(ip, SETUP)
    run(ip, CELL)
    plain = ip.user_ns["xy"].numpy()
    path = tmp_path / "xla.dot"
    result, captured = run(ip, f"%%tfgraph --jit --show xla -o {path}\n{CELL}")
    assert result.success, result.error_in_exec
    assert np.allclose(ip.user_ns["xy"].numpy(), plain)
    graph = pygraphviz.AGraph(string=path.read_text())
    boxes = [sub for sub in graph.subgraphs() if sub.graph_attr.get("label", "").startswith("XLA loop fusion")]
    assert boxes, [sub.graph_attr.get("label") for sub in graph.subgraphs()]
    inside = {graph.get_node(n).attr["label"].split("\\n")[0] for box in boxes for n in box.nodes()}
    assert {"Tanh", "AddV2"} <= inside
    text = "\n".join(output_texts(captured))
    assert "what XLA runs" in text and "loop fusion" in text and "MatMul" in text
    assert "XLA's memory plan:" in text and "compile time: this run traced the cell and XLA compiled it" in text


def test_the_memory_plan_adds_up_to_xlas_allocations(ip):
    from tfmagic.xla import parameter_names, xla_report

    run(ip, SETUP)
    run(ip, "@tf.function(jit_compile=True)\ndef xstep(x):\n    return tf.nn.relu(tf.matmul(x, xw) + xb) * 2.0")
    fn, x = ip.user_ns["xstep"], ip.user_ns["xx"]
    fn(x)
    report = xla_report(fn, [x], parameter_names(fn.get_concrete_function(x).graph))
    plan = report.memory
    assert plan.total == sum(report.allocations) == plan.parameters + plan.outputs + plan.temporaries
    assert any(what.startswith("parameter: xw") for _, what in plan.largest)  # by the variable's name
    assert plan.largest[0][0] == max(report.allocations)
    result, captured = run(ip, "%tfgraph xstep --show xla")
    assert result.success and any("what XLA runs" in t for t in output_texts(captured))
    assert fn.experimental_get_tracing_count() == 1  # asking XLA traced nothing anew


def test_a_cell_or_function_xla_does_not_compile_gets_one_line_and_its_result(ip):
    run(ip, SETUP)
    result, captured = run(ip, f"%%tfgraph --show xla\n{CELL}")
    assert result.success and "xy" in ip.user_ns
    notes = [t for t in output_texts(captured) if "--show xla" in t]
    assert notes == ["%%tfgraph --show xla: XLA does not compile this cell; add --jit (%%tfgraph --jit --show xla)"]
    run(ip, "@tf.function\ndef plain_fn(x):\n    return x + 1\nplain_fn(tf.constant(1.0))")
    result, captured = run(ip, "%tfgraph plain_fn --show xla")
    assert result.success
    assert any("XLA does not compile it: it is not a jit_compile tf.function" in t for t in output_texts(captured))


def test_show_hlo_prints_xlas_text(ip):
    run(ip, SETUP)
    result, captured = run(ip, f"%%tfgraph --jit --show hlo\n{CELL}")
    assert result.success
    text = "\n".join(output_texts(captured))
    assert "HloModule" in text and "fusion(" in text and "what XLA runs" in text


def test_xla_compiles_are_counted_beside_traces(ip):
    run(ip, "%tfretrace --watch")
    try:
        result, captured = run(ip, "@tf.function(jit_compile=True, reduce_retracing=True)\ndef xshapes(x):\n"
                                   "    return x * 2\nfor n in (4, 5, 6, 7):\n    _ = xshapes(tf.ones([n]))")
    finally:
        run(ip, "%tfretrace --off")
    assert result.success
    text = "\n".join(output_texts(captured))
    assert ("xshapes: XLA compiled it 4 times (for (float32[4]), (float32[5]), (float32[6]), (float32[7])), "
            "where TensorFlow traced it 2 times") in text
    assert "pad or bucket the inputs" in text
    assert "but XLA still compiles it once for each new concrete shape" in text  # the reduce_retracing note, right
    table = repr(run(ip, "%tfretrace")[0].result)
    assert "XLA compiled it 4 times" in table


def test_an_op_without_an_xla_kernel_is_named_at_its_line(ip):
    run(ip, "xs = tf.ones([2])\nbefore_xla = 1")
    result, _ = run(ip, "%%tfgraph --jit --show none\nbefore_xla = 2\nzs = xs + 1\n"
                        "ys = tf.py_function(lambda a: a * 2, [zs], tf.float32)")
    error = result.error_in_exec
    assert isinstance(error, tf.errors.InvalidArgumentError)
    assert ip.user_ns["before_xla"] == 1  # the namespace as it was
    shown = "\n".join(error._render_traceback_())
    assert "XLA cannot compile it: EagerPyFunc has no XLA kernel" in shown
    assert "----> 3 ys = tf.py_function" in shown and "tf2xla conversion failed" not in shown
    assert len(shown.splitlines()) < 12


def test_what_xla_added_is_drawn_small_and_named(ip, tmp_path):
    run(ip, "xm = tf.random.normal([3, 4])")
    cell = "xt = tf.transpose(xm) * 2.0\nxr = tf.reduce_sum(xt, axis=0)"
    run(ip, cell)
    plain = (ip.user_ns["xt"].numpy(), ip.user_ns["xr"].numpy())
    path = tmp_path / "added.dot"
    result, captured = run(ip, f"%%tfgraph --jit --show xla -o {path}\n{cell}")
    assert result.success
    assert np.allclose(ip.user_ns["xt"].numpy(), plain[0]) and np.allclose(ip.user_ns["xr"].numpy(), plain[1])
    graph = pygraphviz.AGraph(string=path.read_text())
    added = [graph.get_node(n) for n in graph.nodes() if n.startswith("xla:")]
    assert added and all(node.attr["label"].startswith("XLA ") and node.attr["fontsize"] == "8" for node in added)
    assert any("(added by XLA: no TF op)" in t for t in output_texts(captured))


def test_a_jit_function_whose_arguments_include_a_variable_is_drawn_and_profiled(ip):
    """(issue 26) It said "has arguments that are not tensors of known shapes"; a variable argument is called with a
    variable of zeros of its shape, which the trace takes without tracing again."""
    run(ip, "wv = tf.Variable(tf.ones([3, 2]))\n@tf.function(jit_compile=True)\ndef vstep(w, x):\n"
            "    return tf.reduce_sum(tf.nn.relu(x @ w) * 2.)\nvalue = vstep(wv, tf.ones([4, 3]))")
    result, captured = run(ip, "%tfgraph vstep --show xla")
    texts = output_texts(captured)
    assert result.success and any("what XLA runs" in t for t in texts) and any("XLA's memory plan" in t for t in texts)
    assert any("image/svg+xml" in o.data and "fusion" in o.data["image/svg+xml"]  # TF 2.21 multiply_reduce_fusion
               for o in captured.outputs)
    result, captured = run(ip, "%tfgraph vstep --profile 2 --show none")
    assert result.success and "a profiled call failed" not in output_text(captured)
    assert ip.user_ns["vstep"].experimental_get_tracing_count() == 1
    assert float(ip.user_ns["value"]) == float(ip.user_ns["vstep"](ip.user_ns["wv"], tf.ones([4, 3])))

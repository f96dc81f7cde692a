"""The readable view of every drawing: the user's names, no plumbing, a notebook's width.

Each test draws a cell of the tour or of the seed's chapter in a real shell and reads what the
drawing shows: its DOT (through ``-o FILE.dot``, read back by Graphviz's own parser) and its SVG.
"""

import re

import pygraphviz
import pytest
from IPython.core.error import UsageError

from tfmagic.dot import STYLES

from .shellutil import NOTEBOOK_WIDTH, drawing_data, drawing_svg, output_with, run, svg_width

SETUP = """
t = tf.constant([[1., 2.], [3., 4.]])
x = tf.constant([[1., 2., 3.]])
layer = tf.keras.layers.Dense(2, name="hidden")
steps = tf.Variable(0)
n = tf.constant(5)
xs = tf.constant([0.5, 3.0])
w1, w2 = tf.Variable(5.), tf.Variable(3.)
"""

UV = "u = t + 10\nv = tf.square(t)\nu @ tf.transpose(v)"
DENSE = "y = layer(x)\nsteps.assign_add(1)\ntf.reduce_mean(y)"
LOOP_IF = "total = tf.constant(0)\nfor i in tf.range(n):\n    total += i * i\nif total > 10:\n    total = total // 2\ntotal"
WHILE_TANH = "while tf.reduce_sum(xs) > 1:\n    xs = tf.tanh(xs)\nxs"


@pytest.fixture(autouse=True)
def _setup(ip):
    run(ip, SETUP)


def _draw(ip, tmp_path, body, options=""):
    """Run ``body`` under %%tfgraph and return (the DOT as Graphviz reads it, the inline SVG, the text)."""
    path = tmp_path / "drawing.dot"
    result, captured = run(ip, f"%%tfgraph {options} -o {path}\n{body}")
    assert result.success, result.error_in_exec
    data = drawing_data(captured)
    return pygraphviz.AGraph(string=path.read_text()), data["image/svg+xml"], data["text/plain"]


def _labels(graph) -> list[str]:
    return [graph.get_node(n).attr["label"].replace("\\n", "\n") for n in graph.nodes()]


def _kind_of(node) -> str:
    """A drawn node's kind, told by its fill colour in the drawing's own style table."""
    fills = {STYLES[kind][0]: kind for kind in ("input", "variable", "constant")}
    return fills.get(node.attr["fillcolor"], "op")


def _boxes(graph):
    """Every name-scope box (dashed cluster), as (label, its drawn nodes, its child boxes)."""
    found = []
    for sub in graph.subgraphs():
        if "dashed" in (sub.graph_attr.get("style") or ""):
            found.append((sub.graph_attr["label"], set(sub.nodes()), sub.subgraphs()))
        found.extend(_boxes(sub))
    return found


def test_outputs_are_named_by_the_names_the_cell_binds(ip, tmp_path):
    graph, _, _ = _draw(ip, tmp_path, UV)
    labels = _labels(graph)
    assert "u\nfloat32[2,2]" in labels and "v\nfloat32[2,2]" in labels and "result\nfloat32[2,2]" in labels
    assert not any(label.startswith("Identity") for label in labels)
    assert "AddV2\n+ 10.0" in labels  # the constant is shown in the op that reads it


def test_variables_by_notebook_name_and_layer_path_and_no_plumbing(ip, tmp_path):
    graph, _, text = _draw(ip, tmp_path, DENSE)
    labels = _labels(graph)
    assert {"steps", "hidden/kernel", "hidden/bias"} <= set(labels)
    assert not any(re.match(r"(NoOp|ReadVariableOp|Identity)\b", label) for label in labels)
    assert not any(graph.get_edge(*e).attr["style"] == "dashed" for e in graph.edges())  # no control edges
    assert "AssignAddVariableOp\nvalue: 1" in labels  # an effect with no consumer stays visible
    full, _, _ = _draw(ip, tmp_path, DENSE, "--ops all")
    full_labels = _labels(full)
    assert any(label.startswith("NoOp") for label in full_labels)
    assert sum(label.startswith("ReadVariableOp") for label in full_labels) == 2


def test_the_hidden_line_counts_what_the_full_view_has_and_the_readable_one_lacks(ip, tmp_path):
    _, _, text = _draw(ip, tmp_path, DENSE)
    full, _, _ = _draw(ip, tmp_path, DENSE, "--ops all")
    labels = _labels(full)
    noops = sum(label.startswith("NoOp\n") for label in labels)
    reads = sum(label.startswith("ReadVariableOp\n") for label in labels)
    control = sum(full.get_edge(*e).attr["style"] == "dashed" for e in full.edges())
    assert (noops, reads) == (1, 2) and control >= 3
    assert f"hidden: {noops} NoOp, {control} control edges, {reads} variable reads" in text
    hidden = next(line for line in text.splitlines() if line.startswith("hidden: "))
    assert hidden.endswith("-- --ops all shows every op")


def test_no_box_around_a_single_op_nor_a_box_holding_only_another_box(ip, tmp_path):
    for body in (DENSE, UV, LOOP_IF):
        graph, _, _ = _draw(ip, tmp_path, body)
        for label, nodes, children in _boxes(graph):
            ops = [n for n in nodes if _kind_of(graph.get_node(n)) == "op"]
            assert len(ops) >= 2, f"box {label!r} around {sorted(nodes)}"
            if len(children) == 1:
                assert set(children[0].nodes()) != nodes, f"box {label!r} holds only box {children[0]}"
    graph, _, _ = _draw(ip, tmp_path, DENSE)
    assert [label for label, _, _ in _boxes(graph)] == ["hidden"]  # the layer's name, not Keras's hidden_1


@pytest.mark.parametrize("body", [LOOP_IF, WHILE_TANH], ids=["loop+if", "while/tanh"])
def test_control_flow_fits_a_notebook_and_keeps_the_users_ops(ip, tmp_path, body):
    graph, svg, text = _draw(ip, tmp_path, body)
    assert svg_width(svg) <= NOTEBOOK_WIDTH and "to fit a notebook's width" not in text  # at full scale
    labels = _labels(graph)
    assert not any("maximum_iterations" in label or "loop_counter" in label for label in labels)
    assert "loop bookkeeping ops" in text
    if body == LOOP_IF:
        assert "Mul" in labels and "FloorDiv\n// 2" in labels and "total, result\nint32[]" in labels
        assert "n\nint32[]" in labels  # the loop's bound, inside the cond too
        # the loop's and the branch's variables, named as AutoGraph names them
        assert "StatelessWhile\ni, total" in labels and "next total\nint32[]" in labels
        assert "i (from 0)\nint32[]" in labels and "total (from 0)\nint32[]" in labels  # where the loop starts
    else:
        assert "Tanh" in labels and "next xs\nfloat32[2]" in labels and "xs, result\nfloat32[2]" in labels
    full, full_svg, _ = _draw(ip, tmp_path, body, "--ops all")
    assert any("maximum_iterations" in label for label in _labels(full))  # nothing lost: --ops all has it


def test_the_legend_names_every_style_the_drawing_uses(ip, tmp_path):
    graph, _, _ = _draw(ip, tmp_path, LOOP_IF)
    legend = graph.graph_attr["label"].replace("\\n", " ")
    assert "purple box: a loop body, branch or called function" in legend
    assert "dotted purple arrow" in legend and "green: input" in legend and "blue: output" in legend
    assert "control dependency" not in legend  # none drawn
    full, _, _ = _draw(ip, tmp_path, DENSE, "--ops all")
    legend = full.graph_attr["label"].replace("\\n", " ")
    assert "dashed grey arrow: control dependency" in legend and "dashed grey box: name scope" in legend


def test_a_leftover_loop_variable_does_not_name_a_variable(ip, tmp_path):
    ip.run_cell("plain = tf.Variable(2.)", store_history=True)
    ip.run_cell("for variable in [plain] + layer.variables:\n    pass", store_history=True)
    graph, _, _ = _draw(ip, tmp_path, "q = plain * 3.0\nr = layer(x)")
    labels = _labels(graph)
    assert "plain" in labels and "hidden/kernel" in labels and "hidden/bias" in labels
    assert "variable" not in labels


def test_function_outputs_and_grappler_view_are_readable(ip, tmp_path):
    run(ip, "@tf.function\ndef losses(a):\n    return {'loss': tf.reduce_sum(a * a), 'n': tf.size(a)}\n"
            "losses(tf.constant([1., 2.]))")
    path = tmp_path / "f.dot"
    result, captured = run(ip, f"%tfgraph losses -o {path}")
    assert result.success, result.error_in_exec
    labels = _labels(pygraphviz.AGraph(string=path.read_text()))
    assert "result['loss']\nfloat32[]" in labels and "result['n']\nint32[]" in labels
    result, captured = run(ip, "%%tfgraph --show optimized\nw3 = t * (tf.constant(1.) + tf.constant(2.))\nw3")
    html = next(o.data["text/html"] for o in captured.outputs if "tfmagic-optimized" in o.data.get("text/html", ""))
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", html)  # what the drawings show
    assert "NoOp" not in texts and "Identity" not in texts and texts.count("w3, result") == 2


def test_bad_ops_option_is_a_usage_error(ip):
    result, _ = run(ip, "%%tfgraph --ops some\ny = t + 1")
    assert isinstance(result.error_in_exec, UsageError)


def test_explorer_draws_the_readable_view_and_switches_to_every_op():
    import tensorflow as tf

    from tfmagic.explorer import Explorer
    from tfmagic.traceview import TraceView

    @tf.function
    def f(a):
        return tf.reduce_sum(a * 2.0)

    graph = f.get_concrete_function(tf.constant([1.0, 2.0])).graph
    explorer = Explorer([TraceView(graph, f, reason="first run")], 0, "f")
    explorer.redraw()
    assert "hidden:" in explorer.drawing.value and ">result<" in explorer.drawing.value
    explorer.ops.value = "all"
    assert "hidden:" not in explorer.drawing.value and ">Identity<" in explorer.drawing.value


def test_a_drawing_wider_than_a_notebook_is_shown_scaled_with_a_note_and_written_full_size(ip, tmp_path):
    path = tmp_path / "wide.svg"
    result, captured = run(ip, f"%%tfgraph -o {path}\n" + "\n".join(f"o{i} = tf.square(t) + {i}.0" for i in range(14)))
    assert result.success
    data = drawing_data(captured)
    full = svg_width(path.read_text()[path.read_text().index("<svg"):])
    assert full > NOTEBOOK_WIDTH and svg_width(data["image/svg+xml"]) == NOTEBOOK_WIDTH
    assert f"drawn at {NOTEBOOK_WIDTH / full:.0%} to fit a notebook's width ({full:,.0f} pt" in data["text/plain"]


def test_expand_takes_the_layers_own_name_and_says_when_nothing_matches(ip, tmp_path):
    graph, _, text = _draw(ip, tmp_path, DENSE, "--depth 1 --expand hidden")
    labels = _labels(graph)
    assert "MatMul" in labels and "hidden, expanded" not in text and "hidden expanded" in text
    _, _, text = _draw(ip, tmp_path, DENSE, "--depth 1 --expand nothere")
    assert "no scope matches --expand nothere" in text


def test_a_cells_function_drawn_by_name_keeps_the_cells_names(ip, tmp_path):
    run(ip, f"%%tfgraph -n named_cell --show none\n{LOOP_IF}")
    path = tmp_path / "f.dot"
    result, _ = run(ip, f"%tfgraph named_cell -o {path}")
    assert result.success
    labels = _labels(pygraphviz.AGraph(string=path.read_text()))
    assert "total, result\nint32[]" in labels and "StatelessWhile\ni, total" in labels


def test_constants_read_as_written_and_tape_inputs_by_their_names(ip):
    run(ip, "lr = tf.constant(0.1)\nxin = tf.constant([1., 2.])\nwv = tf.Variable([3., 4.])")
    _, captured = run(ip, "%%tfgraph --show text\nstep = xin * 0.1 + tf.constant([0.2, 0.3])")
    text = output_with(captured, "node")
    assert "× 0.1" in text and "[0.2, 0.3]" in text and "0.10000000149011612" not in text
    _, captured = run(ip, "%%tape --show graph\nzz = tf.reduce_sum(wv * xin)\nzz")
    svg = drawing_svg(captured)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)  # what the drawing shows (ids may be TensorFlow's)
    assert "xin" in texts and not any("call_args" in t for t in texts)


def test_a_composite_output_is_named_by_its_parts(ip, tmp_path):
    run(ip, "emb = tf.Variable(tf.ones((5, 2)))\nids = tf.constant([1, 3])")
    graph, _, _ = _draw(ip, tmp_path, "with tf.GradientTape() as gt:\n    rows = tf.gather(emb, ids)\n"
                                      "    l = tf.reduce_sum(rows)\nge = gt.gradient(l, emb)")
    labels = " ".join(_labels(graph))
    assert "ge.values" in labels and "ge.indices" in labels and "ge.dense_shape" in labels

"""The graph model (graph.py) on hand-made models, no TensorFlow: tensor labels, counts, one node per name scope,
what fits a drawing and the note that says what was summarised, and the gradient path of a %%tape drawing.

What the user sees is read from the DOT the writer makes (parsed back by Graphviz's own parser).
"""

import pygraphviz

from tfmagic.dot import MARKS, STYLE_WORDS, STYLES, DotOptions, build_dot
from tfmagic.graph import Edge, Op, TensorInfo, mark_gradient_path
from tfmagic.sizing import COLLAPSE_ABOVE, collapse, fit
from tfmagic.readable import readable_view

from .models import Graph


def _two_layers():
    """x -> dense -> dense_1 -> y: a Keras layer called twice (its second scope is ``dense_1``)."""
    g = Graph()
    h = g.input("x", shape=(1, 3))
    for scope in ("dense", "dense_1"):
        kernel = g.op(f"{scope}/MatMul/ReadVariableOp", "ReadVariableOp", g.variable(f"{scope}/kernel",
                                                                                      label=f"{scope}/kernel"),
                      shape=(3, 2))
        h = g.op(f"{scope}/MatMul", "MatMul", h, kernel, shape=(1, 2))
        bias = g.op(f"{scope}/BiasAdd/ReadVariableOp", "ReadVariableOp", g.variable(f"{scope}/bias",
                                                                                     label=f"{scope}/bias"))
        h = g.op(f"{scope}/BiasAdd", "BiasAdd", h, bias, shape=(1, 2))
    return g.build(g.output("Identity", h, label="y"))


def _chain(scopes: int, ops_per_scope: int):
    g = Graph()
    last = g.input("x")
    for s in range(scopes):
        for i in range(ops_per_scope):
            last = g.op(f"block{s}/tanh{i}", "Tanh", last)
    return g.build(g.output("Identity", last, label="y"))


def _drawn(model, **options):
    """The DOT of ``model`` read back: {node name: its attributes}, the graph."""
    graph = pygraphviz.AGraph(string=build_dot(model, DotOptions(**options)))
    return {n: graph.get_node(n).attr for n in graph.nodes()}, graph


# -- tensors, ops, edges ------------------------------------------------------------


def test_a_tensor_is_labelled_by_its_dtype_and_shape():
    assert TensorInfo("float32", (2, 3)).label == "float32[2,3]"
    assert TensorInfo("float32", (None, 3)).label == "float32[?,3]"  # a dimension TensorFlow does not know
    assert TensorInfo("int32", ()).label == "int32[]"  # a scalar
    assert TensorInfo("float32", None).label == "float32[...]"  # not even the rank


def test_an_ops_scope_is_its_name_up_to_the_last_slash():
    assert Op("dense/MatMul", "MatMul", "op").scope == "dense"
    assert Op("model/dense/BiasAdd", "BiasAdd", "op").scope == "model/dense"
    assert Op("add", "AddV2", "op").scope == ""


def test_a_control_dependency_is_an_edge_without_a_tensor():
    assert Edge("a", "b", None).control and not Edge("a", "b", TensorInfo("float32", ())).control


# -- counts ------------------------------------------------------------------------


def test_ops_are_counted_by_kind_and_with_the_ops_of_function_bodies():
    model = _two_layers()
    assert model.count() == 14 and model.count("variable") == 4 and model.count("input") == 1
    assert model.total_ops() == 14
    body = _chain(1, 3)  # 5 ops: x, 3 Tanh, the output
    g = Graph()
    loop = g.op("while", "StatelessWhile", g.input("x"), kind="control_flow", subgraphs=[("body", body)])
    looped = g.build(g.output("Identity", loop))
    assert looped.count() == 3 and looped.count("control_flow") == 1 and looped.total_ops() == 3 + 5


def test_the_summary_line_counts_kinds_and_the_ops_of_function_bodies():
    from tfmagic.render import summarize

    assert summarize(_two_layers()) == "14 ops (1 input, 4 variables, 1 output)"
    g = Graph()
    loop = g.op("while", "StatelessWhile", g.input("x"), kind="control_flow", subgraphs=[("body", _chain(1, 3))])
    assert summarize(g.build(g.output("Identity", loop))) == \
        "3 ops (1 input, 1 output, 1 control-flow op), 5 more in function bodies"


# -- one node per name scope -----------------------------------------------------------


def test_collapsing_draws_one_node_per_scope_counting_its_ops():
    view = collapse(_two_layers(), 1)
    assert list(view.ops) == ["x", "dense", "dense_1", "Identity"]
    assert [(view.ops[n].kind, view.ops[n].type) for n in ("dense", "dense_1")] == [("scope", "6 ops")] * 2
    assert view.ops["x"].kind == "input" and view.ops["Identity"].label == "y"  # ops outside any scope stay
    # an edge between two scopes is kept once, with the tensor that crosses it
    assert [(e.src, e.dst, e.tensor.label) for e in view.edges] == [
        ("x", "dense", "float32[1,3]"), ("dense", "dense_1", "float32[1,2]"), ("dense_1", "Identity", "float32[1,2]")]
    nodes, _ = _drawn(view)
    assert nodes["dense"]["label"] == "dense\\n6 ops" and nodes["dense"]["shape"] == STYLES["scope"][2]


def test_collapsing_drops_control_edges_and_keeps_a_scope_of_variables_a_variable():
    g = Graph()
    w = g.variable("weights/w")
    b = g.variable("weights/b")
    first = g.op("step/read", "ReadVariableOp", w)
    second = g.op("step/add", "AddV2", first, g.op("step/read_b", "ReadVariableOp", b))
    g.control(first, second)
    view = collapse(g.build(g.output("Identity", second)), 1)
    assert view.ops["weights"].kind == "variable" and view.ops["weights"].type == "2 ops"
    assert view.ops["step"].kind == "scope"
    assert not any(e.control for e in view.edges)
    assert [(e.src, e.dst) for e in view.edges] == [("weights", "step"), ("step", "Identity")]


def test_expand_opens_the_scope_it_names_with_or_without_kerass_counter():
    opened = collapse(_two_layers(), 1, expand=("dense_1",))
    assert "dense" in opened.ops and "dense_1/MatMul" in opened.ops and "dense_1" not in opened.ops
    both = collapse(_two_layers(), 1, expand=("dense",))  # Keras's _N may be left out: both calls open
    assert {"dense/MatMul", "dense_1/MatMul"} <= set(both.ops)


# -- what fits a drawing, and the note ------------------------------------------------------


def test_a_small_graph_is_drawn_whole_without_a_note():
    model = _two_layers()
    view, note = fit(model)
    assert view is model and note == ""


def test_a_graph_of_more_than_150_ops_starts_collapsed_and_says_so():
    model = _chain(2, 80)
    assert model.total_ops() > COLLAPSE_ABOVE
    view, note = fit(model)
    assert list(view.ops) == ["x", "block0", "block1", "Identity"]
    assert note == ("162 ops drawn as 4 nodes, collapsed by name scope (depth 1); "
                    "--expand SCOPE or --depth N opens them")


def test_a_tall_chain_starts_collapsed_and_says_how_tall_it_would_be():
    view, note = fit(_chain(4, 10))  # 42 ops, but 40 ranks deep
    assert len(view.ops) == 6
    assert note == ("42 ops drawn as 6 nodes, collapsed by name scope (depth 1; expanded, it would be about "
                    "3,024 pt tall); --expand SCOPE or --depth N opens them")


def test_depth_and_expand_are_named_in_the_note_and_an_expand_that_matches_nothing_is_said():
    view, note = fit(_two_layers(), depth=1, expand=("dense_1",))
    assert note.startswith("14 ops drawn as 7 nodes, collapsed by name scope (depth 1, dense_1 expanded)")
    _, note = fit(_two_layers(), depth=1, expand=("nothere",))
    assert "(depth 1; no scope matches --expand nothere)" in note


def test_max_nodes_collapses_then_cuts_and_says_how_much_was_left_out():
    view, note = fit(_two_layers(), max_nodes=5)
    assert len(view.ops) == 4
    assert note == "14 ops, more than --max-nodes 5: collapsed to 4 nodes, one per name scope 1 level deep"
    view, note = fit(_two_layers(), max_nodes=2)
    assert list(view.ops) == ["x", "dense"]  # the first ones TensorFlow made
    assert note == ("14 ops, more than --max-nodes 2: drew the first 2 of 4 nodes (collapsed by name scope), "
                    "2 left out; raise --max-nodes to draw more")


# -- the gradient path of a %%tape drawing ------------------------------------------------


def _tape(status_w2="stopped"):
    """z = w1 ** 2 + tf.stop_gradient(w1 * w2) (or w1 ** 2 alone), with its backward op and two gradients."""
    g = Graph("tape")
    w1, w2 = g.variable("w1_handle"), g.variable("w2_handle")
    r1 = g.op("ReadVariableOp", "ReadVariableOp", w1, shape=())
    r2 = g.op("ReadVariableOp_1", "ReadVariableOp", w2, shape=())
    square = g.op("pow", "Pow", r1, g.const("pow/y", "2.0"), shape=())
    if status_w2 == "stopped":
        blocked = g.op("StopGradient", "StopGradient", g.op("mul", "Mul", r1, r2, shape=()), shape=())
        z = g.op("add", "AddV2", square, blocked, shape=())
    else:
        z = square
    backward = g.op("gradient_tape/pow/mul", "Mul", z, r1, kind="backward", shape=())
    d1 = g.output("Identity", backward)
    d2 = g.output("Identity_1", g.op("zeros_like", "ZerosLike", r2, shape=()))
    model = g.build(d1, d2)
    mark_gradient_path(model, z, {"w1": w1, "w2": w2}, {"w1": "connected", "w2": status_w2},
                       {"w1": d1, "w2": d2}, target_name="z")
    return readable_view(model)[0]


def test_the_path_runs_from_a_connected_source_to_the_target_and_stops_at_stop_gradient():
    nodes, graph = _drawn(_tape(), readable=True, gradient=True)
    path = MARKS["path"][0]
    assert nodes["w1_handle"]["label"] == "w1\\nsource: connected" and nodes["w1_handle"]["color"] == \
        MARKS["connected"][0]
    assert nodes["pow"]["color"] == path and nodes["add"]["color"] == path
    assert nodes["add"]["label"] == "AddV2\\nz\\ntarget"  # the target, named as the cell names it
    assert nodes["mul"]["color"] == nodes["StopGradient"]["color"] == STYLES["op"][1]  # behind tf.stop_gradient
    assert graph.get_edge("pow", "add").attr["color"] == path and graph.get_edge("w1_handle", "mul").attr["color"] \
        != path
    assert nodes["gradient_tape/pow/mul"]["fillcolor"] == STYLES["backward"][0]
    assert nodes["Identity"]["label"] == "d z / d w1\\nfloat32[]"
    legend = graph.graph_attr["label"]
    assert STYLE_WORDS["path"] in legend and STYLE_WORDS["stopped"] in legend


def test_a_stopped_or_disconnected_source_says_why_its_gradient_is_zeros():
    nodes, _ = _drawn(_tape("stopped"), readable=True, gradient=True)
    assert nodes["w2_handle"]["label"] == "w2\\nsource: stopped" and nodes["w2_handle"]["color"] == \
        MARKS["stopped"][0]
    assert nodes["zeros_like"]["label"] == "ZerosLike\\nzeros for w2: tf.stop_gradient blocks it"
    assert nodes["Identity_1"]["label"] == "d z / d w2\\nfloat32[]"
    nodes, graph = _drawn(_tape("disconnected"), readable=True, gradient=True)
    assert nodes["w2_handle"]["label"] == "w2\\nsource: disconnected"
    assert nodes["w2_handle"]["color"] == MARKS["disconnected"][0] and "dotted" in nodes["w2_handle"]["style"]
    assert nodes["zeros_like"]["label"] == "ZerosLike\\nzeros for w2: no path to the target"
    assert STYLE_WORDS["disconnected"] in graph.graph_attr["label"]


def test_the_model_the_view_the_dot_writer_and_the_diff_load_without_tensorflow():
    """What keeps these tests fast: the plain-data stages import neither TensorFlow nor IPython."""
    import subprocess
    import sys

    code = ("import sys\nimport tfmagic.graph, tfmagic.readable, tfmagic.dot, tfmagic.tracediff\n"
            "print(sorted(m for m in ('tensorflow', 'IPython') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"

"""The diff of two traces (tracediff.py) on hand-made models, no TensorFlow: ops paired by structure whatever
TensorFlow named them, what was added, removed and changed, in words (``diff_graphs``), in counts and in the
drawing (``diff_models``, drawn by the DOT writer and read back by Graphviz's own parser).

The same diffs of real retraces, drawn in a shell: tests/test_tfgraph_diff.py.
"""

import pygraphviz

from tfmagic.dot import MARKS, STYLE_WORDS, DotOptions, build_dot
from tfmagic.tracediff import diff_graphs, diff_models, match_ops

from .models import Graph


def _trace(shape=(2,), dtype="float32", counter="", factor="2.0", sqrt=False):
    """y = x * factor (then tf.sqrt), as one trace of it; ``counter`` is the ``_N`` TensorFlow adds to names."""
    g = Graph("trace")
    x = g.input("x", shape=shape, dtype=dtype)
    y = g.op(f"mul{counter}", "Mul", x, g.const(f"mul{counter}/y", factor, dtype=dtype), shape=shape, dtype=dtype)
    if sqrt:
        y = g.op(f"Sqrt{counter}", "Sqrt", y, shape=shape, dtype=dtype)
    return g.build(g.output("Identity", y, label="y"))


def _drawn(old, new):
    """(the counts, node attributes by name, the parsed drawing) of ``new`` drawn against ``old``."""
    model, counts = diff_models(old, new)
    graph = pygraphviz.AGraph(string=build_dot(model, DotOptions()))
    return counts, {n: graph.get_node(n).attr for n in graph.nodes()}, graph


def _loop(extra_op=False):
    """A StatelessWhile whose body is tanh (then abs)."""
    body = Graph("while_body")
    y = body.op("Tanh", "Tanh", body.input("xs"))
    if extra_op:
        y = body.op("Abs", "Abs", y)
    body = body.build(body.output("Identity", y))
    g = Graph()
    loop = g.op("while", "StatelessWhile", g.input("x"), kind="control_flow", subgraphs=[("body", body)])
    return g.build(g.output("Identity", loop))


def test_the_same_code_traced_again_is_the_same_ops_whatever_its_names():
    old, new = _trace(), _trace(counter="_1")  # mul -> mul_1: TensorFlow's counter, nothing else
    assert match_ops(old, new) == {"x": "x", "mul_1/y": "mul/y", "mul_1": "mul", "Identity": "Identity"}
    _, counts = diff_models(old, new)
    assert (counts.added, counts.removed, counts.changed) == (0, 0, 0)
    assert counts.text == "the two traces have the same ops and tensors"
    assert diff_graphs(old, new).text == "the same ops and shapes"


def test_ops_are_paired_by_what_they_compute_not_by_their_names():
    def trace(first, second):
        g = Graph()
        x = g.input("x")
        return g.build(g.output("Identity", g.op(first, "Sqrt", x)), g.output("Identity_1", g.op(second, "Exp", x)))

    pairs = match_ops(trace("sqrt", "exp"), trace("exp", "sqrt"))  # the names swapped between the traces
    assert pairs["exp"] == "sqrt" and pairs["sqrt"] == "exp"


def test_an_added_op_is_counted_said_and_drawn_with_a_thick_green_border():
    old, new = _trace(), _trace(sqrt=True)
    counts, nodes, graph = _drawn(old, new)
    assert (counts.added, counts.removed, counts.changed) == (1, 0, 0) and counts.text == "1 op added"
    assert diff_graphs(old, new).text == "+1 op (Sqrt Sqrt)"
    assert nodes["Sqrt"]["color"] == MARKS["added"][0] and nodes["Sqrt"]["penwidth"] == MARKS["added"][1]
    assert nodes["mul"]["color"] != MARKS["added"][0]  # the ops both traces have are drawn as usual
    assert STYLE_WORDS["added"] in graph.graph_attr["label"].replace("\\n", " ")


def test_a_removed_op_is_drawn_from_the_earlier_trace_with_dashed_red_border_and_arrows():
    old, new = _trace(sqrt=True), _trace()
    counts, nodes, graph = _drawn(old, new)
    assert (counts.added, counts.removed) == (0, 1) and counts.text == "1 op removed"
    assert diff_graphs(old, new).text == "-1 op (Sqrt Sqrt)"
    assert nodes["Sqrt"]["color"] == MARKS["removed"][0] and "dashed" in nodes["Sqrt"]["style"]
    gone = [(e[0], e[1]) for e in graph.edges() if e.attr.get("color") == MARKS["removed"][0]]
    assert sorted(gone) == [("Sqrt", "Identity"), ("mul", "Sqrt")] and all(
        graph.get_edge(*e).attr["style"] == "dashed" for e in gone)
    assert graph.get_edge("mul", "Identity").attr.get("color") != MARKS["removed"][0]  # this trace's own edge
    assert STYLE_WORDS["removed"] in graph.graph_attr["label"].replace("\\n", " ")


def test_a_new_shape_labels_each_changed_edge_earlier_to_now():
    old, new = _trace(), _trace(shape=(3,))
    counts, _, graph = _drawn(old, new)
    assert (counts.added, counts.removed, counts.changed) == (0, 0, 2)
    assert counts.text == "2 edges changed dtype or shape"
    assert graph.get_edge("x", "mul").attr["label"] == "float32[2] -> float32[3]"
    assert graph.get_edge("mul/y", "mul").attr["label"] == "float32[]"  # unchanged: as in any drawing
    assert STYLE_WORDS["changed"] in graph.graph_attr["label"].replace("\\n", " ")
    assert diff_graphs(old, new).text == ("the same ops, 3 shapes changed (x: float32[2] -> float32[3], "
                                          "mul: float32[2] -> float32[3], y: float32[2] -> float32[3])")


def test_a_new_dtype_is_said_as_a_dtype_change_and_long_lists_are_cut():
    text = diff_graphs(_trace(), _trace(dtype="int32")).text
    assert text == ("the same ops, 4 dtypes changed (x: float32[2] -> int32[2], mul/y: float32[] -> int32[], "
                    "mul: float32[2] -> int32[2], ... 1 more)")


def test_a_constant_whose_value_changed_is_said_with_both_values():
    old, new = _trace(factor="2.0"), _trace(factor="3.0")
    diff = diff_graphs(old, new)
    assert diff.text == "the same ops, 1 constant changed (2.0 -> 3.0)" and diff.constant_dtypes == ["float32"]
    _, counts = diff_models(old, new)
    assert (counts.added, counts.removed) == (0, 0)  # a new value, not a new op


def test_loop_bodies_are_compared_body_by_body_in_words_and_in_the_drawing():
    old, new = _loop(), _loop(extra_op=True)
    assert diff_graphs(old, new).text == "+1 op (Abs Abs)"
    _, nodes, _ = _drawn(old, new)
    assert nodes["while/body:Abs"]["color"] == MARKS["added"][0]  # marked inside the body's box
    assert nodes["while/body:Tanh"]["color"] != MARKS["added"][0]


def test_the_counts_of_a_drawn_diff_include_what_changed_in_loop_bodies():
    _, counts = diff_models(_loop(), _loop(extra_op=True))
    assert counts.added == 1 and counts.text == "1 op added"

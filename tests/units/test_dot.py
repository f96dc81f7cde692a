"""The DOT writer (dot.py) on hand-made models, no TensorFlow: each kind of op in its style, the labels of both
views, edges labelled dtype[shape], name scopes and function bodies as boxes, the legend of exactly the styles a
drawing uses, devices, profiles, and names from the user's code kept inside their strings.

The DOT is read back by Graphviz's own parser; colours and shapes are compared with dot.py's own tables.
"""

import pygraphviz
import pytest

from tfmagic.dot import (DEVICE_COLOURS, EDGE_LABEL_LIMIT, KIND_WORDS, STYLE_WORDS, STYLES, DotOptions, build_dot,
                         legend)
from tfmagic.readable import readable_view

from .models import Graph


def _read(model, **options):
    """(node attributes by name, the parsed graph) of the DOT ``build_dot`` writes for ``model``."""
    graph = pygraphviz.AGraph(string=build_dot(model, DotOptions(**options)))
    return {n: graph.get_node(n).attr for n in graph.nodes()}, graph


def _label(attrs) -> str:
    return attrs["label"].replace("\\n", "\n")


def _legend(graph) -> str:
    return graph.graph_attr["label"].replace("\\n", " ")


def _clusters(graph):
    """Every box (a cluster) of a drawing, nested ones too; not the rank constraints (``{rank=same; ...}``)."""
    for sub in graph.subgraphs():
        if (sub.name or "").startswith("cluster"):
            yield sub
        yield from _clusters(sub)


def _every_kind():
    g = Graph()
    x = g.input("x")
    w = g.variable("w_handle", label="w")
    y = g.op("mul", "Mul", x, g.const("mul/y", "2.0"))
    loop = g.op("while", "StatelessWhile", y, kind="control_flow")
    back = g.op("gradient_tape/mul", "Mul", loop, kind="backward")
    read = g.op("ReadVariableOp", "ReadVariableOp", w)
    scope = g.op("block", "4 ops", back, read, kind="scope", detail="scope block")
    return g.build(g.output("Identity", scope, label="y"))


@pytest.mark.parametrize("readable", [False, True], ids=["--ops all", "readable"])
def test_each_kind_of_op_is_drawn_in_its_style(readable):
    kinds = {"x": "input", "w_handle": "variable", "mul/y": "constant", "mul": "op", "while": "control_flow",
             "gradient_tape/mul": "backward", "block": "scope", "Identity": "output"}
    nodes, _ = _read(_every_kind(), readable=readable)
    for name, kind in kinds.items():
        fill, border, shape = STYLES[kind]
        assert (nodes[name]["fillcolor"], nodes[name]["color"], nodes[name]["shape"]) == (fill, border, shape), name


def test_every_ops_view_says_type_then_name_and_the_readable_view_the_users_names():
    nodes, _ = _read(_every_kind())
    assert _label(nodes["mul"]) == "Mul\nmul" and _label(nodes["mul/y"]) == "Const\nmul/y\n2.0"
    assert _label(nodes["w_handle"]) == "variable\nw_handle" and _label(nodes["x"]) == "x\nfloat32[2]"
    assert _label(nodes["block"]) == "block\n4 ops"
    nodes, _ = _read(_every_kind(), readable=True)
    assert _label(nodes["w_handle"]) == "w" and _label(nodes["Identity"]) == "y\nfloat32[2]"
    assert _label(nodes["mul"]) == "Mul" and _label(nodes["mul/y"]) == "2.0"
    g = Graph()
    captured = g.input("x_capture", detail="captured")
    nodes, _ = _read(g.build(g.output("Identity", g.op("Exp", "Exp", captured))))
    assert _label(nodes["x_capture"]) == "x_capture (captured)\nfloat32[2]"


def test_edges_carry_dtype_and_shape_and_control_dependencies_are_dashed():
    g = Graph()
    x = g.input("x", shape=(None, 3))
    first = g.op("relu", "Relu", x, shape=(None, 3))
    second = g.op("cast", "Cast", first, shape=(None, 3), dtype="int32")
    g.control(first, second)
    nodes, graph = _read(g.build(g.output("Identity", second)))
    assert graph.get_edge("x", "relu").attr["label"] == "float32[?,3]"
    assert graph.get_edge("cast", "Identity").attr["label"] == "int32[?,3]"
    control = [e for e in graph.edges() if e.attr.get("style") == "dashed"]
    assert [(e[0], e[1]) for e in control] == [("relu", "cast")] and not control[0].attr.get("label")
    assert STYLE_WORDS["control"] in _legend(graph)


def test_a_drawing_of_many_edges_puts_their_labels_outside():
    g = Graph()
    last = g.input("x")
    for i in range(EDGE_LABEL_LIMIT + 1):
        last = g.op(f"op{i}", "Tanh", last)
    _, graph = _read(g.build())
    edge = graph.get_edge("x", "op0")
    assert edge.attr["xlabel"] == "float32[2]" and not edge.attr.get("label")  # cheaper to lay out


def test_the_legend_names_every_style_the_drawing_uses_and_no_other():
    _, graph = _read(_every_kind(), readable=True)
    words = _legend(graph)
    for kind in ("input", "variable", "output", "control_flow", "backward", "scope"):
        assert KIND_WORDS[kind] in words, kind
    assert "white: op (type, then name)" in words and "arrows: tensors, labelled dtype[shape]" in words
    assert STYLE_WORDS["control"] not in words and STYLE_WORDS["body_box"] not in words  # none drawn
    g = Graph()
    _, graph = _read(g.build(g.output("Identity", g.input("x"))))
    assert _legend(graph) == "f " + " · ".join([KIND_WORDS["input"], KIND_WORDS["output"]])
    assert legend({"op"}) == ["white: op (type, then name) · arrows: tensors, labelled dtype[shape]"]


def test_the_title_heads_the_caption_above_the_legend():
    g = Graph()
    _, graph = _read(g.build(g.output("Identity", g.input("x"))), title="trace 2: x: float32[2]", legend=False)
    assert graph.graph_attr["label"] == "trace 2: x: float32[2]"


def test_a_name_scope_of_two_ops_is_a_dashed_box_and_a_one_op_scope_is_none():
    g = Graph()
    x = g.input("x")
    inner = g.op("block/tanh", "Tanh", g.op("block/exp", "Exp", x))
    lone = g.op("single/abs", "Abs", inner)
    _, graph = _read(g.build(g.output("Identity", lone)))
    boxes = {sub.graph_attr["label"]: set(sub.nodes()) for sub in _clusters(graph)}
    assert boxes == {"block": {"block/exp", "block/tanh"}}
    assert "dashed" in next(_clusters(graph)).graph_attr["style"]
    assert STYLE_WORDS["scope_box"] in _legend(graph)


def test_a_layer_called_twice_is_boxed_by_its_own_name_both_times():
    g = Graph()
    h = g.input("x")
    for scope in ("dense", "dense_1"):
        kernel = g.op(f"{scope}/ReadVariableOp", "ReadVariableOp", g.variable(f"{scope}/kernel",
                                                                                label=f"{scope}/kernel"))
        h = g.op(f"{scope}/BiasAdd", "BiasAdd", g.op(f"{scope}/MatMul", "MatMul", h, kernel), kernel)
    view, _ = readable_view(g.build(g.output("Identity", h, label="y")))
    _, graph = _read(view, readable=True)
    boxes = sorted((sub.graph_attr["label"], sub.graph_attr["tooltip"]) for sub in _clusters(graph))
    assert boxes == [("dense", "dense"), ("dense", "dense_1")]  # Keras's dense_1 is the user's dense, called again


def test_a_loop_body_is_a_purple_box_below_its_op_reached_by_a_dotted_arrow():
    body = Graph("while_body_7")
    body = body.build(body.output("Identity", body.op("Tanh", "Tanh", body.input("xs")), label="next xs"))
    g = Graph()
    loop = g.op("while", "StatelessWhile", g.input("x"), kind="control_flow", subgraphs=[("body", body)])
    nodes, graph = _read(g.build(g.output("Identity", loop)), readable=True)
    box = next(_clusters(graph))
    assert box.graph_attr["label"] == "StatelessWhile body" and box.graph_attr["tooltip"] == "while_body_7"
    assert {"while/body:xs", "while/body:Tanh", "while/body:Identity"} == set(box.nodes())
    assert _label(nodes["while/body:Identity"]) == "next xs\nfloat32[2]"
    link = graph.get_edge("while", "while/body:xs")
    assert link.attr["style"] == "dotted" and link.attr["lhead"] == box.name
    assert STYLE_WORDS["body_box"] in _legend(graph) and STYLE_WORDS["body_link"] in _legend(graph)
    _, graph = _read(g.build(g.output("Identity", loop)))
    assert next(_clusters(graph)).graph_attr["label"] == "StatelessWhile body: while_body_7"  # --ops all


def test_ops_on_two_devices_are_filled_by_device_and_the_legend_says_which():
    g = Graph()
    a = g.op("a", "Exp", g.input("x"), device="/device:CPU:0")
    b = g.op("b", "Exp", a, device="/device:GPU:0")
    nodes, graph = _read(g.build(g.output("Identity", b)))
    assert nodes["a"]["fillcolor"] == DEVICE_COLOURS[0] and nodes["b"]["fillcolor"] == DEVICE_COLOURS[1]
    assert nodes["x"]["fillcolor"] == STYLES["input"][0]  # inputs keep their kind's colour
    assert "ops filled by device: light blue: /device:CPU:0 · light orange: /device:GPU:0" in _legend(graph)
    g = Graph()
    one = g.op("a", "Exp", g.input("x"), device="/device:CPU:0")
    nodes, graph = _read(g.build(g.output("Identity", one, device="/device:CPU:0")))
    assert nodes["a"]["fillcolor"] == STYLES["op"][0] and "ops filled by device" not in _legend(graph)  # one device
    g = Graph()
    placed = g.op("a", "Exp", g.input("x"), device="/device:CPU:0")
    _, graph = _read(g.build(g.output("Identity", placed)))  # the output asks for no device: TensorFlow places it
    assert "ops filled by device: light blue: /device:CPU:0 · light orange: placed by TensorFlow" in _legend(graph)


def test_a_profiled_drawing_fills_each_op_by_its_share_of_the_time():
    from tfmagic.profile import share_colour

    g = Graph()
    slow = g.op("matmul", "MatMul", g.input("x"))
    fast = g.op("add", "AddV2", slow)
    nodes, graph = _read(g.build(g.output("Identity", fast)), heat={"matmul": 0.9, "add": 0.001},
                         times={"matmul": "9.0 ms", "add": "10 us"})
    assert nodes["matmul"]["fillcolor"] == share_colour(0.9) and nodes["add"]["fillcolor"] == share_colour(0.001)
    assert _label(nodes["matmul"]) == "MatMul\nmatmul\n9.0 ms" and _label(nodes["add"]) == "AddV2\nadd"  # < 1%
    assert nodes["add"]["tooltip"] == "AddV2 add: 10 us"
    assert STYLE_WORDS["heat"] in _legend(graph)


HOSTILE = ['say "hi"', "back\\slash \\n", "<b>bold</b> & {braces}", "new\nline"]


@pytest.mark.parametrize("name", HOSTILE, ids=["quotes", "backslashes", "markup", "newline"])
def test_names_from_the_users_code_stay_inside_their_strings(name):
    g = Graph()
    op = g.op(f"scope/{name}", "StringJoin", g.const("c", repr(name), dtype="string"),
              g.const("d", "'x'", dtype="string"), dtype="string")
    nodes, graph = _read(g.build(g.output("Identity", op, label=name)), readable=True)

    def as_written(text):  # Graphviz reads \" as a quote and keeps every other backslash escape as written
        return text.replace("\\", "\\\\").replace("\n", "\\n")

    assert nodes["Identity"]["label"] == as_written(name) + "\\nstring[2]"
    assert as_written(f"scope/{name}") in nodes  # the node id itself, intact
    assert len(nodes) == 4 and len(graph.edges()) == 3  # nothing broke out into nodes or edges of its own

"""``%%tape --show graph``: the forward and backward ops drawn, the path from each source to the target, each
source's status, the target named as the cell names it, a notebook's width; in a real shell."""

import pygraphviz

from tfmagic.dot import MARKS

from .shellutil import NOTEBOOK_WIDTH, drawing_data, drawing_svg, output_text, run, svg_width

STOP_GRADIENT = "z = 3 * w1 ** 2 + tf.stop_gradient(2 * w1 * w2)\nz"


def test_show_graph_draws_forward_and_backward_ops_with_the_path(ip):
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    _, captured = run(ip, "%%tape --show graph\nz = 3 * w1 ** 2 + tf.stop_gradient(2 * w1 * w2)\nz")
    svg = drawing_svg(captured)
    assert "gradient_tape/" in svg  # backward ops
    assert ">w1<" in svg and ">source: connected<" in svg and ">w2<" in svg and ">source: stopped<" in svg
    assert MARKS["path"][0] in svg  # the path's colour
    assert "light brown: backward (gradient) op" in svg


def test_tape_graph_is_narrow_names_its_halves_and_says_why_zeros(ip):
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    _, captured = run(ip, f"%%tape --show graph\n{STOP_GRADIENT}")
    data = drawing_data(captured)
    svg = data["image/svg+xml"]
    assert svg_width(svg) <= NOTEBOOK_WIDTH and "to fit a notebook's width" not in data["text/plain"]
    assert ">zeros for w2: tf.stop_gradient blocks it<" in svg
    assert ">d z / d w1<" in svg and ">d z / d w2<" in svg
    assert ">StopGradient<" in svg and ">target<" in svg  # the forward half is drawn
    assert "light brown: backward (gradient) op" in svg and "dashed orange border: stopped source" in svg
    assert "hidden: " in data["text/plain"]


def test_a_tape_drawing_and_its_hessians_name_the_target_as_the_cell_does(ip, tmp_path):
    run(ip, "tw = tf.Variable(2.0)\ntx = tf.constant(3.0)")
    path = tmp_path / "tape.dot"
    result, captured = run(ip, f"%%tape --show graph -o {path}\nloss = (tw * tx - 1.0) ** 2\nloss")
    assert result.success
    graph = pygraphviz.AGraph(string=path.read_text())
    target = next(graph.get_node(n).attr["label"] for n in graph.nodes()
                  if graph.get_node(n).attr["label"].endswith("\\ntarget"))
    assert "\\nloss\\n" in target and "gradient of loss" in graph.graph_attr["label"]
    result, captured = run(ip, "%%tape --hessian\nz = tw ** 3\nz")
    text = output_text(captured)
    assert "hessian d2(z)/d(tw) d(tw): shape [] = 12.0" in text and "last expression" not in text

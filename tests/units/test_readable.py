"""The readable view (readable.py) on hand-made models, no TensorFlow: what it folds away, what it keeps, how it
names what is left, and the line under the drawing that counts what was hidden.

The labels are read from the DOT the writer makes of the view (parsed back by Graphviz's own parser), as a
drawing shows them. The same view of real traced cells, in a shell: tests/test_readable.py.
"""

import pygraphviz

from tfmagic.dot import DotOptions, build_dot
from tfmagic.graph import Edge, Op
from tfmagic.readable import Hidden, readable_view

from .models import Graph, tensor


def _view(model):
    """(the labels of the readable drawing by node name, its edges as (src, dst, label), the hidden line)."""
    view, hidden = readable_view(model)
    graph = pygraphviz.AGraph(string=build_dot(view, DotOptions(readable=True)))
    labels = {n: graph.get_node(n).attr["label"].replace("\\n", "\n") for n in graph.nodes()}
    edges = [(e[0], e[1], e.attr["label"]) for e in graph.edges() if e.attr.get("style") != "invis"]
    return labels, edges, hidden.line()


def _dense_step():
    """y = x * 2.0 + w, then steps.assign_add(1): with the reads, NoOp and control edges a tf.function has."""
    g = Graph()
    x = g.input("x")
    w = g.variable("w_handle", label="w")
    steps = g.variable("steps_handle", label="steps")
    doubled = g.op("mul", "Mul", x, g.const("mul/y", "2.0"))
    total = g.op("add", "AddV2", doubled, g.op("ReadVariableOp", "ReadVariableOp", w))
    assign = g.op("AssignAddVariableOp", "AssignAddVariableOp", steps,
                  g.const("AssignAddVariableOp/value", "1", dtype="int32"), outputs=0, stateful=True,
                  arg_names=("resource", "value"))
    noop = g.op("NoOp", "NoOp", outputs=0, stateful=True)
    g.control(assign, noop)
    y = g.output("Identity", g.op("Identity_pass", "Identity", total), label="y")
    g.control(noop, y)
    return g.build(y)


def test_variable_reads_fold_into_the_edge_from_the_variable():
    labels, edges, hidden = _view(_dense_step())
    assert labels["w_handle"] == "w" and "ReadVariableOp" not in labels
    assert ("w_handle", "add", "float32[2]") in edges  # the read's tensor, straight from the variable
    assert "1 variable read" in hidden


def test_noop_and_control_edges_are_hidden_and_a_stateful_op_nothing_reads_stays():
    labels, edges, hidden = _view(_dense_step())
    assert "NoOp" not in labels
    assert labels["AssignAddVariableOp"] == "AssignAddVariableOp\nvalue: 1"  # the only thing that shows the effect
    assert ("steps_handle", "AssignAddVariableOp", "resource[]") in edges
    assert hidden.startswith("hidden: 1 NoOp, 2 control edges, 1 variable read, 1 pass-through Identity, ")


def test_a_pass_through_identity_folds_into_the_edge_it_forwards():
    labels, edges, hidden = _view(_dense_step())
    assert "Identity_pass" not in labels and ("add", "Identity", "float32[2]") in edges
    assert labels["Identity"] == "y\nfloat32[2]"
    assert "1 pass-through Identity" in hidden


def test_small_constants_are_shown_in_the_ops_that_read_them():
    g = Graph()
    t = g.input("t", shape=(2, 2))
    scaled = g.op("mul", "Mul", t, g.const("mul/y", "2.0"), shape=(2, 2))
    flipped = g.op("transpose", "Transpose", scaled, g.const("transpose/perm", "[1, 0]", shape=(2,), dtype="int32"),
                   shape=(2, 2), arg_names=("x", "perm"))
    both = g.op("sub", "Sub", g.const("Const", "2.0"), g.const("Const_1", "1.0"), shape=())
    labels, _, hidden = _view(g.build(g.output("Identity", flipped, label="u"), g.output("Identity_1", both,
                                                                                           label="d")))
    assert labels["mul"] == "Mul\n× 2.0"  # as the code reads: x * 2.0
    assert labels["sub"] == "Sub\n2.0 - 1.0"
    assert labels["transpose"] == "Transpose\nperm: [1, 0]"  # no symbol: by the input's name
    assert not any(name.startswith(("Const", "mul/y", "transpose/perm")) for name in labels)
    assert hidden == "hidden: 4 constants shown in the ops that read them -- --ops all shows every op"


def test_an_op_nothing_uses_is_hidden_as_one_that_never_runs():
    g = Graph()
    x = g.input("x")
    g.op("Square", "Square", x)  # unused: TensorFlow prunes it
    labels, _, hidden = _view(g.build(g.output("Identity", g.op("Tanh", "Tanh", x), label="y")))
    assert "Square" not in labels and labels["Tanh"] == "Tanh"
    assert hidden == "hidden: 1 unused op (never runs) -- --ops all shows every op"


def test_outputs_returning_one_tensor_are_one_node_carrying_every_name():
    g = Graph()
    u = g.op("add", "AddV2", g.input("t"), g.const("add/y", "10.0"))
    labels, _, _ = _view(g.build(g.output("Identity", u, label="u"), g.output("Identity_1", u, label="result")))
    outputs = [label for label in labels.values() if label.endswith("float32[2]") and label != "t\nfloat32[2]"]
    assert outputs == ["u, result\nfloat32[2]"]


def test_nothing_to_hide_gives_no_line_and_the_model_itself_is_left_as_it_is():
    g = Graph()
    plain = g.build(g.output("Identity", g.op("Tanh", "Tanh", g.input("x")), label="y"))
    assert _view(plain)[2] == ""
    model = _dense_step()
    before = (list(model.ops), len(model.edges))
    readable_view(model)
    assert (list(model.ops), len(model.edges)) == before  # the view is a new model: --ops all still has every op


def test_the_hidden_line_says_one_or_many_in_the_order_of_its_categories():
    hidden = Hidden()
    hidden.add("read", 2)
    hidden.add("noop")
    hidden.add("unused", 0)  # nothing: not said
    assert hidden.line() == "hidden: 1 NoOp, 2 variable reads -- --ops all shows every op" and hidden.total == 3


def _while_tanh():
    """while tf.reduce_sum(xs) > 1: xs = tf.tanh(xs), as TensorFlow traces it: a StatelessWhile with its counter
    and maximum_iterations, a cond and a body."""
    def body_or_cond(name, cond):
        g = Graph(name)
        counter = g.input("loop_counter", shape=(), dtype="int32")
        limit = g.input("maximum_iterations", shape=(), dtype="int32")
        xs = g.input("xs")
        if cond:
            over = g.op("Greater", "Greater", g.op("Sum", "Sum", xs, shape=()), g.const("Greater/y", "1.0"),
                        shape=(), dtype="bool")
            return g.build(g.output("Identity", over))
        step = g.op("add", "AddV2", counter, g.const("add/y", "1", dtype="int32"), shape=(), dtype="int32")
        return g.build(g.output("Identity", step), g.output("Identity_1", limit),
                       g.output("Identity_2", g.op("Tanh", "Tanh", xs)))

    g = Graph()
    xs = g.input("xs")
    loop = g.op("while", "StatelessWhile", g.const("while/loop_counter", "0", dtype="int32"),
                g.const("while/maximum_iterations", "-1", dtype="int32"), xs, kind="control_flow", label="xs",
                tensors=[tensor((), "int32"), tensor((), "int32"), tensor()],
                subgraphs=[("cond", body_or_cond("while_cond", True)), ("body", body_or_cond("while_body", False))])
    g.ops["Identity"] = Op("Identity", "Identity", "output", [tensor()], label="xs, result")
    g.edges.append(Edge(loop, "Identity", tensor(), src_index=2))
    return g.build("Identity")


def test_a_loop_loses_its_bookkeeping_and_its_variables_go_by_the_codes_names():
    labels, _, hidden = _view(_while_tanh())
    assert labels["while"] == "StatelessWhile\nxs"  # the loop, with the variable it carries
    assert labels["while/body:Identity_2"] == "next xs\nfloat32[2]" and labels["while/body:xs"] == "xs\nfloat32[2]"
    assert labels["while/cond:Identity"] == "go on?\nbool[]" and labels["while/cond:Greater"] == "Greater\n> 1.0"
    assert labels["Identity"] == "xs, result\nfloat32[2]"
    assert not any("loop_counter" in name or "maximum_iterations" in name for name in labels)
    assert hidden == ("hidden: 7 loop bookkeeping ops, 4 constants shown in the ops that read them -- --ops all "
                      "shows every op")
    every_op = build_dot(_while_tanh())  # --ops all: nothing lost
    assert "maximum_iterations" in every_op and "loop_counter" in every_op


def test_a_tf_print_says_what_it_prints():
    g = Graph()
    i = g.input("i", shape=(), dtype="int32")
    g.op("PrintV2", "PrintV2", g.op("StringFormat", "StringFormat", i, shape=(), dtype="string", detail="{}"),
         outputs=0, stateful=True)
    g.op("PrintV2_1", "PrintV2", g.op("StringFormat_1", "StringFormat", shape=(), dtype="string", detail="Fizz"),
         outputs=0, stateful=True)
    labels, edges, hidden = _view(g.build())
    assert labels["PrintV2"] == "print i" and labels["PrintV2_1"] == "print 'Fizz'"
    assert ("i", "PrintV2", "int32[]") in edges  # what the format read feeds the print
    assert hidden == "hidden: 2 tf.print formats shown in their prints -- --ops all shows every op"


def test_a_tape_gradient_call_is_one_node_named_as_the_line_writes_it():
    g = Graph()
    x = g.input("x")
    loss = g.op("Sum", "Sum", g.op("mul", "Mul", x, g.op("ReadVariableOp", "ReadVariableOp", g.variable(
        "w_handle", label="w"))), shape=())
    call = "gradient(loss, w)"
    grad = g.op("gradient_tape/Sum/Reshape", "Reshape", loss, kind="backward", made_by=call)
    grad = g.op("gradient_tape/mul/Mul", "Mul", grad, x, kind="backward", made_by=call)
    grad = g.op("gradient_tape/mul/Sum", "Sum", grad, kind="backward", made_by=call)
    labels, edges, hidden = _view(g.build(g.output("Identity", grad, label="dw"), g.output("Identity_1", loss,
                                                                                             label="loss")))
    assert labels[call] == "gradient(loss, w)\n1 gradient · 3 ops"
    assert not any(name.startswith("gradient_tape/") for name in labels)
    assert {("Sum", call, "float32[]"), (call, "Identity", "float32[2]")} <= set(edges)
    # what the backward pass reuses of the forward pass (x, upstream of the loss) is counted, not drawn across
    assert ("x", call, "float32[2]") not in edges and "1 forward tensor a gradient call reuses (its edge)" in hidden
    assert "2 ops of tape gradient calls drawn as their calls" in hidden


def test_a_lists_parts_are_one_output_and_repeated_calls_one_call_marked_with_their_number():
    g = Graph()
    x = g.input("x")
    body = Graph("__inference_step_7")
    body = body.build(body.output("Identity", body.op("Tanh", "Tanh", body.input("x")), label="result"))
    calls = [g.op(name, "StatefulPartitionedCall", x, kind="control_flow", callee="step", stateful=True,
                  subgraphs=[("function", body)]) for name in ("call", "call_1", "call_2")]
    split = g.op("split", "Split", calls[-1], outputs=3)
    parts = []
    for i in range(3):  # the parts of one op's list
        parts.append(g.output(f"Identity_{i}", split, label=f"grads[{i}]"))
        g.edges[-1].src_index = i
    apart = [g.output(f"Identity_r{i}", g.op(f"part_{i}", "Square", x), label=f"result[{i}]") for i in range(3)]
    labels, edges, hidden = _view(g.build(*parts, *apart))
    assert labels["call"].startswith("call step ×3") and "call_1" not in labels
    assert labels["Identity_0"] == "grads: list of 3" and "Identity_1" not in labels
    assert ("split", "Identity_0", "3 tensors") in edges
    assert labels["Identity_r1"].startswith("result[1]")  # a tuple of three results from three ops stays apart
    assert "2 repeated calls drawn as one (xN)" in hidden and "2 list parts drawn in their lists' nodes" in hidden


def test_calls_with_an_op_between_them_stay_apart():
    g = Graph()
    x = g.input("x")
    body = Graph("__inference_step_7")
    body = body.build(body.output("Identity", body.op("Tanh", "Tanh", body.input("x")), label="result"))
    first = g.op("call", "StatefulPartitionedCall", x, kind="control_flow", callee="step", stateful=True,
                 subgraphs=[("function", body)])
    between = g.op("double", "Mul", first)
    second = g.op("call_1", "StatefulPartitionedCall", between, kind="control_flow", callee="step", stateful=True,
                  subgraphs=[("function", body)])
    labels, _, _ = _view(g.build(g.output("Identity", second, label="y")))
    assert labels["call"] == labels["call_1"] == "call step"  # not one node x2: the Mul between keeps the order

"""The program's level (levels.py) on hand-made models, no TensorFlow: which scopes are models, layers and an
optimizer's update; a model drawn as its layers with their weights; what joins an update's node; what a
folded drawing says it folded.  The same on real training code, in a shell: tests/test_drawing_training.py.
"""

from tfmagic.dot import folded_lines
from tfmagic.levels import classify, needs_folding, program_view
from tfmagic.naming import KerasNames

from .models import Graph, tensor


def _step():
    """A two-layer model's training step as the readable view leaves it: reads folded into the variables' edges,
    the tape's gradient one node, the optimizer's scope updating both weights, its step count outside it."""
    g = Graph()
    x = g.input("x", shape=(4, 3))
    kernels = {}
    h = x
    for layer, shape in (("d1_1", (3, 5)), ("d2_1", (5, 2))):
        kernel = g.variable(f"net_1/{layer}/MatMul/ReadVariableOp/resource", label=f"net/{layer[:-2]}/kernel")
        kernels[layer] = kernel
        h = g.op(f"net_1/{layer}/MatMul", "MatMul", h, kernel, shape=(4, shape[1]))
        g.edges[-1].tensor = tensor(shape)  # the read folded into the variable's edge gives its value
        h = g.op(f"net_1/{layer}/Relu", "Relu", h, shape=(4, shape[1]))
    loss = g.op("mse/Mean", "Mean", h, shape=())
    grads = g.op("gradient(loss, net.trainable_variables)", "2 ops", loss, kind="scope", outputs=2,
                 tensors=[tensor((3, 5)), tensor((5, 2))], made_by="gradient(loss, net.trainable_variables)")
    iterations = g.variable("sgd/ReadVariableOp/resource", label="sgd/iteration")
    for index, kernel in enumerate(kernels.values()):
        step = g.op(f"sgd/mul_{index}", "Mul", grads, shape=(3, 5))
        g.op(f"sgd/AssignSubVariableOp_{index}", "AssignSubVariableOp", kernel, step, outputs=0, stateful=True)
    one = g.op("add", "AddV2", iterations, g.const("add/y", "1", dtype="int64"), dtype="int64", shape=())
    g.op("AssignVariableOp", "AssignVariableOp", iterations, one, outputs=0, stateful=True)
    return g.build(g.output("Identity", loss, label="loss"))


def test_a_model_an_update_and_the_layers_inside_are_told_apart():
    roles = classify(_step()).roles
    assert roles["net_1"] == "model" and roles["sgd"] == "update"
    assert roles["net_1/d1_1"] == roles["net_1/d2_1"] == roles["mse"] == "scope"
    keras = KerasNames(layers=frozenset({"net"}))  # where the notebook says net is a layer, it is one node
    assert classify(_step(), keras).roles["net_1"] == "scope" and needs_folding(_step())


def test_a_model_is_its_layers_with_their_weights_and_the_update_holds_its_step_count():
    view, words, opened = program_view(_step())
    assert opened == 1 and words[0] == "net as its 2 layers"
    d1 = view.ops["net_1/d1_1"].folded
    assert (d1.role, d1.name, d1.types) == ("layer", "d1", ("MatMul", "Relu"))
    assert d1.weights == (("kernel", "float32[3,5]"),)  # the weight in its layer's node, by its own name
    sgd = view.ops["sgd"].folded
    assert sgd.role == "update" and sgd.updates == ("net/d1/kernel", "net/d2/kernel")
    assert {"add", "AssignVariableOp", "sgd/ReadVariableOp/resource"} <= set(sgd.members)  # the step count too
    assert folded_lines(sgd) == ["sgd", "updates 2 variables", "iteration"]
    assert not any(op.kind == "variable" for op in view.ops.values())  # no row of variable nodes
    edges = {(e.src, e.dst) for e in view.edges}
    assert ("net_1/d1_1", "net_1/d2_1") in edges and ("gradient(loss, net.trainable_variables)", "sgd") in edges
    assert not any(dst == "sgd" and src.startswith("net_1") for src, dst in edges)  # a weight's write is no flow


def test_a_model_too_tall_or_too_many_nodes_open_stays_one_node_and_says_why():
    view, words, opened = program_view(_step(), height_limit=100)
    assert opened == 0 and view.ops["net_1"].folded.role == "model" and view.ops["net_1"].folded.layers == 2
    assert words[0].startswith("net (2 layers: about ") and words[0].endswith(" pt tall open)")
    _, words, _ = program_view(_step(), max_nodes=4)
    assert words[0] == "net (2 layers: more than --max-nodes 4 open)"
    view, words, opened = program_view(_step(), expand=("d1",))  # a layer by its own name: its model opens too
    assert "net_1/d1_1/MatMul" in view.ops and "net_1/d2_1" in view.ops


def test_a_stretch_of_unscoped_ops_between_parts_is_one_node_but_a_graphs_own_chain_is_not():
    g = Graph()
    x = g.input("x")
    a = g.op("loss/Mean", "Mean", x)
    h = a
    for i in range(9):
        h = g.op(f"Reshape_{i}", "Reshape" if i % 2 else "CollectiveReduceV2", h)
    g.op("sgd/AssignSubVariableOp", "AssignSubVariableOp", g.variable("w", label="net/w"), h, outputs=0,
         stateful=True)
    view, _, _ = program_view(g.build())
    stretch = next(op for op in view.ops.values() if op.folded and op.folded.role == "stretch")
    assert stretch.folded.ops == 9 and folded_lines(stretch.folded) == ["CollectiveReduceV2",
                                                                       "9 ops outside any name scope"]
    chain = Graph()
    h = chain.input("x")
    for i in range(9):
        h = chain.op(f"mul_{i}", "Mul", h)
    view, _, _ = program_view(chain.build(chain.output("Identity", h)))
    assert "mul_4" in view.ops  # the user's own unscoped code, with nothing folded beside it, stays as written

"""%%tfgraph over the notebook's state, as other people's notebooks use it: tapes recorded in earlier cells,
variables the cell creates, names it deletes, functions and classes it defines, and the notes it gives.

Each value check is differential: the same cell runs as a plain cell and under ``%%tfgraph`` in a real
IPython shell, from the same state, and the values it leaves are equal.
"""

import numpy as np
import pytest
import tensorflow as tf

from .shellutil import comparable, differential, output_text, output_texts, run, same_values


# ---------------------------------------------------------------------------
# A tape recorded in an earlier cell (issue 18, item 1: these gave None or zeros, silently)

TAPE_SETUP = """\
w = tf.Variable([[1., 2.], [3., 4.], [5., 6.]], name='w')
b = tf.Variable([0.5, -0.5], name='b')
xb = tf.constant([[1., 2., 3.], [4., 5., 6.]])
layer = tf.keras.layers.Dense(2, kernel_initializer='ones', name='tl')
with tf.GradientTape(persistent=True) as tape:
    tape.watch(xb)
    y = xb @ w + b
    loss = tf.reduce_mean(y ** 2)
    yl = layer(xb) ** 2
"""


def test_gradient_of_an_earlier_tape_as_a_list(ip):
    differential(ip, TAPE_SETUP, "[dl_dw, dl_db] = tape.gradient(loss, [w, b])", ("dl_dw", "dl_db"), times=2)


def test_gradient_of_an_earlier_tape_as_a_dict(ip):
    differential(ip, TAPE_SETUP, "grad = tape.gradient(loss, {'w': w, 'b': b})\nscaled = grad['w'] * 2",
                 ("grad", "scaled"))


def test_jacobian_of_an_earlier_tape_by_a_layer_kernel(ip):
    differential(ip, TAPE_SETUP, "j = tape.jacobian(yl, layer.kernel)\ntotal = tf.reduce_sum(j)", ("j", "total"))
    assert float(tf.reduce_sum(tf.abs(ip.user_ns["j"]))) > 0  # not a jacobian of zeros


def test_batch_jacobian_of_an_earlier_persistent_tape(ip):
    differential(ip, TAPE_SETUP, "bj = tape.batch_jacobian(y, xb)", ("bj",), times=2)
    assert float(tf.reduce_sum(tf.abs(ip.user_ns["bj"]))) > 0


def test_a_new_recording_is_a_new_graph_never_a_stale_gradient(ip):
    run(ip, TAPE_SETUP)
    run(ip, "%%tfgraph --show none\ng = tape.gradient(loss, b)")
    first = ip.user_ns["g"].numpy()
    run(ip, "b.assign([10., 10.])\nwith tf.GradientTape(persistent=True) as tape:\n    loss = tf.reduce_mean((xb @ w + b) ** 2)")
    result, _ = run(ip, "%%tfgraph --show none\ng = tape.gradient(loss, b)")
    assert result.success
    expected = ip.user_ns["tape"].gradient(ip.user_ns["loss"], ip.user_ns["b"]).numpy()
    np.testing.assert_allclose(ip.user_ns["g"].numpy(), expected)
    assert not np.allclose(first, expected)


# ---------------------------------------------------------------------------
# tf.config.run_functions_eagerly(True) (item 2: an IndexError from tfmagic's own code)


@pytest.fixture
def functions_run_eagerly():
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


EAGER_CELL = "y = x * 2\nfor k in tf.range(3):\n    last = k\nprint('sum', float(tf.reduce_sum(y)))\ny + 1"


def test_functions_run_eagerly_runs_the_cell_eagerly_and_says_so_in_one_line(ip, functions_run_eagerly):
    captured = differential(ip, "x = tf.constant([1., 2.])", EAGER_CELL, ("y", "last", "k"), options="", times=2)
    notes = [text for text in output_texts(captured) if "%%tfgraph:" in text]
    assert notes == ["%%tfgraph: tf.config.run_functions_eagerly(True) is on: the cell ran eagerly, as every "
                     "tf.function now runs, so there is no graph to draw; tf.config.run_functions_eagerly(False) "
                     "turns graphs back on"]
    assert "sum 6.0" in captured.stdout  # print runs on every run, as eager code does
    assert not any("image/svg+xml" in o.data for o in captured.outputs)


def test_functions_run_eagerly_a_failing_cell_leaves_the_namespace(ip, functions_run_eagerly):
    run(ip, "x = tf.constant([1., 2.])")
    before = dict(ip.user_ns)
    result, _ = run(ip, "%%tfgraph\nx = x * 2\nq = 1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert ip.user_ns["x"] is before["x"] and "q" not in ip.user_ns


def test_a_cell_traced_before_runs_eagerly_too_and_graphs_come_back(ip):
    run(ip, "x = tf.constant([1., 2.])")
    run(ip, "%%tfgraph --show none\nlabel = 'len%d' % x.shape[0]\ny = x * 3")
    tf.config.run_functions_eagerly(True)
    try:
        run(ip, "x = tf.constant([1., 2., 3.])")
        result, captured = run(ip, "%%tfgraph --show none\nlabel = 'len%d' % x.shape[0]\ny = x * 3")
    finally:
        tf.config.run_functions_eagerly(False)
    assert result.success and ip.user_ns["label"] == "len3" and ip.user_ns["y"].numpy().tolist() == [3., 6., 9.]
    assert "run_functions_eagerly(True) is on" in output_text(captured, printed=True)
    result, captured = run(ip, "%%tfgraph --show none\nlabel = 'len%d' % x.shape[0]\ny = x * 3")
    assert result.success and "run_functions_eagerly" not in output_text(captured, printed=True) and ip.user_ns["label"] == "len3"


# ---------------------------------------------------------------------------
# del of the notebook's names (item 3: a TypeError about an Undefined return value)

DEL_SETUP = "x = tf.constant([1., 2.])\nv0 = tf.Variable(1.)\nn = 3\nlst = [1]\nlayer = tf.keras.layers.Dense(2)"


@pytest.mark.parametrize("cell", ["del v0", "del layer", "y = v0 * 2\ndel v0", "del x, v0, n", "del lst",
                                  "y = x + layer.units\ndel layer, x"])
def test_del_of_a_notebook_name_does_what_the_plain_cell_does(ip, cell):
    names = ("x", "v0", "n", "lst", "layer", "y")
    left = []
    for prefix in ("", "%%tfgraph --show none\n"):
        run(ip, DEL_SETUP + "\ny = None")
        result, captured = run(ip, prefix + cell)
        assert result.success, (prefix, result.error_in_exec)
        left.append({k: comparable(ip.user_ns[k]) if k != "layer" else "layer" for k in names if k in ip.user_ns})
    assert left[0].keys() == left[1].keys()
    assert all(same_values(left[0][k], left[1][k]) if k != "layer" else True for k in left[0])


def test_a_failing_cell_that_deletes_a_name_leaves_it(ip):
    run(ip, DEL_SETUP)
    before = ip.user_ns["v0"]
    result, _ = run(ip, "%%tfgraph --show none\ndel v0\ny = 1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError) and ip.user_ns["v0"] is before


# ---------------------------------------------------------------------------
# Cells that create variables (item 6: "a tf.Variable is created inside the function on a call other than the first")

VAR_SETUP = "x = tf.constant([1., 2., 3.])"

CREATING_CELLS = {
    "directly": ("vv = tf.Variable(1.0, name='vv')\nvv.assign_add(2.)\ny = vv * x", ("vv", "y")),
    "from a graph value": ("w2 = tf.Variable(x * 2, name='w2')\ny = w2 + 1", ("w2", "y")),
    "a Keras layer": ("dense = tf.keras.layers.Dense(2, kernel_initializer='ones', bias_initializer='ones')\n"
                      "y = dense(x[None])\nkernel = dense.kernel", ("y", "kernel")),
    "an optimizer": ("opt = tf.keras.optimizers.Adam(0.1)\nv1 = tf.Variable([1., 2.])\n"
                     "with tf.GradientTape() as tp:\n    loss = tf.reduce_sum(v1 ** 2)\n"
                     "opt.apply_gradients([(tp.gradient(loss, v1), v1)])\nsteps = opt.iterations + 0", ("v1", "steps")),
    "a Keras metric": ("acc = tf.keras.metrics.Mean()\nacc.update_state(x)\nr = acc.result()", ("r",)),
    "a tf.Module": ("m = tf.Module()\nm.v = tf.Variable(3.)\nz = m.v * x", ("z",)),
    "a random generator": ("g = tf.random.Generator.from_seed(1)\nr = g.normal([2])", ("r",)),
}


@pytest.mark.parametrize("kind", list(CREATING_CELLS))
def test_a_cell_that_creates_variables_computes_what_the_plain_cell_does(ip, kind):
    cell, names = CREATING_CELLS[kind]
    differential(ip, VAR_SETUP, cell, names, times=2)


def test_created_variables_are_written_back_as_the_variables_and_drawn_as_variables(ip):
    run(ip, VAR_SETUP)
    result, captured = run(ip, "%%tfgraph --show text\nvv = tf.Variable(2.0, name='vv')\ny = vv * x")
    assert result.success
    assert isinstance(ip.user_ns["vv"], tf.Variable) and not tf.is_symbolic_tensor(ip.user_ns["vv"].handle)
    assert "vv    variable  resource[]" in output_text(captured, printed=True)
    ip.user_ns["vv"].assign(5.)  # a live variable: a plain cell can use it
    assert run(ip, "vv * 2")[0].result.numpy() == 10.


def test_a_rerun_makes_fresh_variables_and_says_the_cell_traces_on_each_run(ip):
    run(ip, VAR_SETUP)
    source = "%%tfgraph --show none\nvv = tf.Variable(1.0)\nvv.assign_add(2.)\ny = vv * x"
    run(ip, source)
    first = ip.user_ns["vv"]
    result, captured = run(ip, source)
    assert result.success and ip.user_ns["vv"] is not first
    assert float(ip.user_ns["vv"].numpy()) == 3.0 and float(first.numpy()) == 3.0  # not 5.0: a new variable
    text = output_text(captured, printed=True)
    assert "it creates variables, and each run makes new ones (as a plain cell's run does), so it traces on each " \
           "run" in text
    assert "create the variables (layers, optimizers, modules) in a plain cell" in text


def test_a_variable_created_in_a_graph_branch_says_what_to_write_instead(ip):
    run(ip, VAR_SETUP)
    before = dict(ip.user_ns)
    result, _ = run(ip, "%%tfgraph --show none\nif tf.reduce_sum(x) > 0:\n    vq = tf.Variable(1.)\nelse:\n"
                        "    vq = tf.Variable(2.)")
    error = result.error_in_exec
    assert isinstance(error, ValueError)
    rendered = "\n".join(error._render_traceback_())
    assert "----> 2     vq = tf.Variable(1.)" in rendered
    assert "create it before the `if` or loop (v = tf.Variable(...)) and assign it inside (v.assign(...))" in rendered
    assert "vq" not in ip.user_ns and ip.user_ns["x"] is before["x"]


COUNTER = """\
class Counter(tf.Module):
    def __init__(self):
        self.v = tf.Variable(0)
    def __call__(self, t):
        with tf.init_scope():
            self.v.assign_add(1)
        return t * 2
x = tf.constant(1.)
"""


def test_a_module_counting_its_calls_under_init_scope_made_in_the_cell(ip):
    differential(ip, COUNTER, "c = Counter()\ny = c(x)\ny = c(y)\ncount = c.v + 0", ("y", "count"), times=2)
    assert int(ip.user_ns["count"]) == 2


def test_init_scope_updates_of_a_module_made_earlier_are_explained_at_the_line(ip):
    run(ip, COUNTER + "c2 = Counter()")
    result, captured = run(ip, "%%tfgraph --show none\ny = x + 1\ny = c2(y)")
    assert result.success and int(ip.user_ns["c2"].v.numpy()) == 1
    text = output_text(captured, printed=True)
    assert "line 2: y = c2(y)" in text
    assert "a variable update (AssignAddVariableOp) ran eagerly while TensorFlow traced (under tf.init_scope): it " \
           "ran once, now, and does not run when a later run reuses the graph" in text
    result, captured = run(ip, "%%tfgraph --show none\ny = x + 1\ny = c2(y)")  # reuses the graph: as said
    assert int(ip.user_ns["c2"].v.numpy()) == 1 and "init_scope" not in output_text(captured, printed=True)


# ---------------------------------------------------------------------------
# What the cell defines is the user's own (item 4: AutoGraph's converted copies were written back)


def test_a_tf_function_the_cell_defines_is_the_users_own(ip):
    cell = "@tf.function\ndef double(t):\n    if tf.reduce_sum(t) > 0:\n        return t * 2\n    return -t\nz = double(x)"
    differential(ip, VAR_SETUP, cell, ("z",), times=2)
    result, captured = run(ip, "code = tf.autograph.to_code(double.python_function)\nw = double(x * -1)")
    assert result.success, result.error_in_exec
    assert "def tf__double(t):" in ip.user_ns["code"]
    assert ip.user_ns["w"].numpy().tolist() == [1., 2., 3.]
    assert "_tfgraph_cell" not in ip.user_ns["double"].python_function.__qualname__


def test_a_decorated_function_reads_the_notebooks_names(ip):
    cell = ("import functools\ndef deco(fn):\n    @functools.wraps(fn)\n    def wrapped(t):\n        return fn(t) * 10\n"
            "    return wrapped\nk = x + 1\n@deco\ndef plus(t):\n    return t + k\ny = plus(x)")
    differential(ip, VAR_SETUP, cell, ("y",))
    run(ip, "k = tf.constant(100.)")
    assert run(ip, "plus(tf.constant(1.))")[0].result.numpy() == 1010.  # reads the notebook's k now


COUNTER_CLASS = """\
class Counter(tf.Module):
    total = 0
    def __init__(self):
        self.v = tf.Variable(0)
    def __call__(self, t):
        Counter.total += 1
        self.v.assign_add(1)
        return t * 2
c = Counter()
y = c(x)
"""


def test_a_class_the_cell_defines_is_the_users_own_and_its_instances_are_of_it(ip):
    captured = differential(ip, VAR_SETUP, COUNTER_CLASS, ("y",))
    assert "could not transform" not in output_text(captured, printed=True) and "Please report" not in output_text(captured, printed=True)
    result, captured = run(ip, "import inspect\nsame = type(c) is Counter\nsrc = inspect.getsource(Counter.__call__)\n"
                               "code = tf.autograph.to_code(Counter.__call__)\ntotal = Counter.total\nc(x)\n"
                               "count = int(c.v.numpy())")
    assert result.success, result.error_in_exec
    ns = ip.user_ns
    assert ns["same"] and ns["total"] == 1 and ns["count"] == 2
    assert "Counter.total += 1" in ns["src"] and "def tf____call__" in ns["code"]
    assert "_tfgraph_cell" not in Counter_qualname(ns)


def Counter_qualname(ns):
    return ns["Counter"].__qualname__ + ns["Counter"].__call__.__qualname__


def test_a_keras_model_class_the_cell_defines_trains_in_a_later_plain_cell(ip):
    cell = ("class Net(tf.keras.Model):\n    def __init__(self):\n        super().__init__()\n"
            "        self.d = tf.keras.layers.Dense(1, kernel_initializer='ones')\n    def call(self, t):\n"
            "        return self.d(t) * 2\nnet = Net()\nout = net(x[None])")
    captured = differential(ip, VAR_SETUP, cell, ("out",))
    result, captured = run(ip, "net.compile(optimizer='sgd', loss='mse')\n"
                               "h = net.fit(x[None], tf.constant([[1.]]), epochs=1, verbose=0)\nisnet = isinstance(net, Net)")
    assert result.success, result.error_in_exec
    assert ip.user_ns["isnet"]
    assert "could not transform" not in output_text(captured, printed=True) and "Please report" not in output_text(captured, printed=True)


# ---------------------------------------------------------------------------
# Python loops that tfmagic cannot tell from graph loops before tracing (item 5)

LOOP_SETUP = ("x = tf.constant([1., 2.])\n@tf.function\ndef ff(t):\n    return t * 2 + 1\n"
              "g = ff.get_concrete_function(x).graph\nitems = [1, 2, 3]")


def test_a_loop_over_a_protobuf_list_writes_its_variable_back(ip):
    cell = "kinds = []\nfor node in g.as_graph_def().node:\n    kinds.append(node.op)\nname = node.name"
    captured = differential(ip, LOOP_SETUP, cell, ("kinds", "name"))
    assert ip.user_ns["node"].name == ip.user_ns["name"]
    assert "not written back" not in output_text(captured, printed=True) and "graph loop" not in output_text(captured, printed=True)


def test_a_loop_over_a_generator_unpacks_its_targets(ip):
    cell = "for i, (a, b) in enumerate(zip(iter(items), iter(items))):\n    pass\ntotal = i + a + b"
    differential(ip, LOOP_SETUP, cell, ("i", "a", "b", "total"))


def test_a_python_loops_body_name_is_written_back_and_a_graph_loop_stays_a_graph_loop(ip):
    run(ip, LOOP_SETUP)
    result, captured = run(ip, "%%tfgraph --show none\nfor node in g.as_graph_def().node:\n    last = node.name\n"
                               "for j in tf.range(3):\n    pass")
    assert result.success and "node" in ip.user_ns
    assert ip.user_ns["last"] == ip.user_ns["g"].as_graph_def().node[-1].name  # as the plain loop leaves it
    text = output_text(captured, printed=True)
    assert "last" not in text
    assert "line 3: for j in tf.range(3):\n  j is not written back: bound inside a graph loop" in text

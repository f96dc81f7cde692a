"""What a %%tfgraph cell leaves behind is what the plain cell leaves, or a note says why (issue 26).

Two invariants hold after every cell: (a) every name the plain cell would bind, on the path its conditions
pick, is written back or named in a note; (b) nothing written back holds what only the trace's graph can use:
where the plain value cannot be given, the name is bound to a stand-in whose every use raises a one-line
``NotWrittenBackError`` naming the cell, the line and what to do (an earlier value left in place would be
silently wrong).  Value checks are differential: the same cell plain and under ``%%tfgraph``, same state.
"""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from .shellutil import comparable, differential, output_text, run, same_values

RECORD = "with tf.GradientTape(persistent=True) as tape:\n    y = x @ w\n    loss = tf.reduce_sum(y ** 2)\n"
SETUP = "x = tf.constant([[1., 2.], [3., 4.]])\nw = tf.Variable([[1.], [2.]])"


def _error(result) -> str:
    """The one line a NotWrittenBackError shows (and that it is one)."""
    error = result.error_in_exec
    assert type(error).__name__ == "NotWrittenBackError", repr(error)
    assert error._render_traceback_() == [f"NotWrittenBackError: {error}"] and "\n" not in str(error)
    return str(error)


# ---------------------------------------------------------------------------
# A tape that recorded while tracing (item 1: its gradients were None or zeros in every later cell)


def test_a_tape_recorded_in_a_graph_cell_is_a_stand_in_that_says_so_in_a_plain_cell(ip):
    text = output_text(differential(ip, SETUP, RECORD, ("y", "loss")))  # what it computed is written back
    assert "line 1: tape is not written back: a GradientTape that recorded while tracing" in text
    for use in ("g = tape.gradient(loss, w)", "j = tape.jacobian(y, w)", "bj = tape.batch_jacobian(y, x)"):
        result, _ = run(ip, use)
        message = _error(result)
        assert message.startswith(f"line 1 ({use}): tape was not written back by the %%tfgraph cell")
        assert "call tape.gradient(...) in this cell" in message and "g" not in ip.user_ns


def test_the_stand_in_tape_says_so_in_graph_and_tape_cells_at_the_line_that_reads_it(ip):
    run(ip, SETUP)
    run(ip, "%%tfgraph --show none\n" + RECORD)
    result, _ = run(ip, "%%tfgraph --show none\nscale = 2.\ng = tape.gradient(loss, w) * scale")
    assert _error(result).startswith("line 2 (g = tape.gradient(loss, w) * scale): tape was not written back")
    result, captured = run(ip, "%%tape\nscale = 2.\ng = tape.gradient(loss, w) * scale\ntf.reduce_sum(g)")
    assert type(result.error_in_exec).__name__ == "NotWrittenBackError"
    assert "%%tape cell, line 2" in captured.stdout and "tape was not written back" in captured.stdout
    assert "g" not in ip.user_ns and "scale" not in ip.user_ns  # a failing cell leaves the namespace


def test_a_tape_recorded_in_a_branch_of_a_graph_cell_is_a_stand_in_too(ip):
    run(ip, SETUP + "\nrecord = True")
    cell = "if record:\n" + "".join("    " + line + "\n" for line in RECORD.splitlines())
    result, captured = run(ip, "%%tfgraph --show none\n" + cell)
    assert result.success and "tape is not written back: a GradientTape that recorded" in output_text(captured)
    assert float(ip.user_ns["loss"]) == 146.0  # (1*1+2*2)^2 + (3*1+4*2)^2, as the plain cell binds it
    result, _ = run(ip, "tape.gradient(loss, w)")
    assert _error(result).startswith("line 1 (tape.gradient(loss, w)): tape was not written back")


def test_a_tape_bound_earlier_is_not_left_in_place_of_one_the_cell_recorded(ip):
    run(ip, SETUP + "\nwith tf.GradientTape() as tape:\n    loss = tf.reduce_sum(x @ w)")
    run(ip, "%%tfgraph --show none\n" + RECORD)
    assert "not written back" in repr(ip.user_ns["tape"])  # the plain cell's earlier tape would give old gradients


def test_gradients_taken_in_the_recording_cell_are_the_plain_ones(ip):
    cell = RECORD + "g = tape.gradient(loss, w)\nj = tape.jacobian(y, w)"
    differential(ip, SETUP, cell, ("g", "j", "loss"))
    # a used non-persistent tape refuses a second gradient, plain or not: it is written back as it is
    cell = "with tf.GradientTape() as t1:\n    l1 = tf.reduce_sum(x @ w)\ng1 = t1.gradient(l1, w)"
    differential(ip, SETUP, cell, ("g1",))
    result, _ = run(ip, "t1.gradient(l1, w)")
    assert isinstance(result.error_in_exec, RuntimeError) and "only be used to compute one set" in str(
        result.error_in_exec)


def test_a_tape_passed_in_from_a_plain_cell_is_still_the_plain_tape(ip):
    run(ip, SETUP + "\n" + RECORD)
    differential(ip, SETUP + "\n" + RECORD, "same = tape\ng = same.gradient(loss, w)", ("g",))
    assert ip.user_ns["same"] is ip.user_ns["tape"]


# ---------------------------------------------------------------------------
# Names bound in branches on plain values (item 2: AutoGraph kept them inside the branch, silently)

BRANCHES = {
    "if": ("flag = True\nif flag:\n    b = 1", ("b",)),
    "if, not taken": ("flag = False\nif flag:\n    b = 1", ("b",)),
    "if/else": ("if mode == 'none':\n    d = 'batch_norm'\nelse:\n    d = 'layer_norm'", ("d",)),
    "if/elif": ("if mode == 'none':\n    d = 'a'\nelif mode == 'layer':\n    d = 'layer_norm'\nelse:\n    d = 'c'",
                ("d",)),
    "if, two names": ("if name in ['mnist', 'cifar10']:\n    dataset, shape = name.upper(), (28, 28, 1)",
                      ("dataset", "shape")),
    "nested": ("if mode:\n    e = x * 2\n    if e.shape[0] == 2:\n        f = e + 1", ("e", "f")),
    "a tensor, by a shape": ("if x.shape[0] == 2:\n    t = x * 3", ("t",)),
    "match": ("match mode:\n    case 'none':\n        m = 0\n    case _:\n        m = x + 1", ("m",)),
    "try/except/else": ("try:\n    v = {'a': 1}['b']\nexcept KeyError as err:\n    v = x * 2\nelse:\n    v = x",
                        ("v",)),
    "with": ("import contextlib\nwith contextlib.nullcontext():\n    wv = x - 1", ("wv",)),
    "if in a Python loop": ("for i in range(3):\n    if i == 1:\n        li = x * i", ("li", "i")),
}


@pytest.mark.parametrize("case", list(BRANCHES))
def test_names_bound_on_the_path_a_plain_condition_picks_are_written_back(ip, case):
    cell, names = BRANCHES[case]
    setup = "b = 0\nmode = 'layer'\nname = 'mnist'\nx = tf.constant([1., 2.])"
    captured = differential(ip, setup, cell, names)
    assert "not written back" not in output_text(captured, printed=True)


def test_an_except_clauses_name_is_unbound_after_it_as_in_python(ip):
    run(ip, "x = tf.constant([1., 2.])")
    run(ip, "%%tfgraph --show none\ntry:\n    v = {'a': 1}['b']\nexcept KeyError as err:\n    v = x * 2")
    assert "err" not in ip.user_ns and ip.user_ns["v"].numpy().tolist() == [2.0, 4.0]


def test_a_name_bound_in_one_branch_of_a_tensor_condition_is_noted_and_a_stand_in(ip):
    run(ip, "tv = 'earlier'\nx = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show none\nif tf.reduce_sum(x) > 0:\n    tv = x * 2\nout = x + 1")
    assert result.success and ip.user_ns["out"].numpy().tolist() == [2.0, 3.0]
    text = output_text(captured, printed=True)
    assert "line 1: if tf.reduce_sum(x) > 0:\n  tv is not written back: bound only inside a branch or loop on a " \
           "tensor" in text
    assert "fix: bind tv before the if or loop too" in text
    result, _ = run(ip, "tv.numpy()")  # not the earlier 'earlier'
    assert _error(result).startswith("line 1 (tv.numpy()): tv was not written back by the %%tfgraph cell")
    # the fix, pasted: bound before the if too, every path binds it
    differential(ip, "x = tf.constant([1., 2.])", "tv = tf.zeros_like(x)\nif tf.reduce_sum(x) > 0:\n    tv = x * 2\n"
                 "out = tv + 1", ("tv", "out"))


COND = """\
with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    if x > 0.0:
        result = v0
    else:
        result = v1 ** 2
dv0, dv1 = tape.gradient(result, [v0, v1])
"""


def test_gradients_through_an_if_on_a_tensor_say_zeros_not_none_and_a_variable_comes_back_as_its_value(ip):
    """(found by the differential run of the autodiff guide) A tf.cond records both branches: the source only the
    branch not taken reads gets zeros where a plain cell gets None; the variable a branch bound is a tensor."""
    setup = "x = tf.constant(1.0)\nv0 = tf.Variable(2.0)\nv1 = tf.Variable(2.0)"
    run(ip, setup)
    run(ip, COND)
    plain = ip.user_ns["dv1"], ip.user_ns["result"]
    assert plain[0] is None and isinstance(plain[1], tf.Variable)
    run(ip, setup)
    result, captured = run(ip, "%%tfgraph --show none\n" + COND)
    text = output_text(captured, printed=True)
    assert result.success and float(ip.user_ns["dv0"]) == 1.0 and float(ip.user_ns["dv1"]) == 0.0
    assert "line 3: if x > 0.0:\n  an if on a tensor is a tf.cond in a graph, which records both branches: a " \
           "gradient for a source only the branch that did not run reads is zeros here, where a plain cell's is " \
           "None\n  fix: test for zeros (tf.reduce_all(g == 0)), not for None" in text
    assert "line 4: result = v0\n  result is a tensor, the value of the variable it is bound to here, in an if " \
           "or loop on a tensor" in text
    assert float(ip.user_ns["result"]) == 2.0 and not isinstance(ip.user_ns["result"], tf.Variable)
    # the fix, pasted after each run: a test for zeros says the same of both runs' gradient
    for prefix in ("", "%%tfgraph --show none\n"):
        run(ip, setup)
        run(ip, prefix + COND)
        result, _ = run(ip, "unused = dv1 is None or bool(tf.reduce_all(dv1 == 0))")
        assert result.success and ip.user_ns["unused"] is True


def test_a_match_statement_says_that_autograph_leaves_the_cell_as_written(ip):
    run(ip, "mode = 'layer'\nx = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show none\nmatch mode:\n    case 'none':\n        mm = 0\n    case _:\n"
                               "        mm = x + 1\nfor i in tf.range(3):\n    x += 1")
    assert isinstance(result.error_in_exec, tf.errors.OperatorNotAllowedInGraphError) and "mm" not in ip.user_ns
    assert "note: line 1: match mode:\n  AutoGraph does not convert a match statement" in captured.stdout
    assert "fix: write the match as if/elif" in captured.stdout
    # the fix, pasted
    differential(ip, "mode = 'layer'\nx = tf.constant([1., 2.])", "if mode == 'none':\n    mm = 0\nelse:\n"
                 "    mm = x + 1\nfor i in tf.range(3):\n    x += 1", ("mm", "x"))


# ---------------------------------------------------------------------------
# Distributed datasets (items 3 and 4: written back unusable; a loop over one ran in Python and never ended)

STRATEGY = """\
strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
ds = tf.data.Dataset.range(8).batch(2)
@tf.function
def distributed_step(batch):
    per_replica = strategy.run(lambda t: tf.reduce_sum(t * 2), args=(batch,))
    return strategy.reduce('SUM', per_replica, axis=None)
"""


def test_a_distributed_dataset_made_in_the_cell_is_rebuilt_as_the_plain_cells(ip):
    cell = "dist = strategy.experimental_distribute_dataset(ds)"
    captured = differential(ip, STRATEGY, cell, ())
    assert output_text(captured, printed=True).strip() == ""  # no tf.data options warning from the trace
    use = "total = tf.constant(0, tf.int64)\nfor batch in dist:\n    total += distributed_step(batch)\nfirst = " \
          "next(iter(dist))"
    left = []
    for made, used in (("", ""), ("%%tfgraph --show none\n", ""), ("%%tfgraph --show none\n", "%%tfgraph\n")):
        run(ip, STRATEGY)
        assert run(ip, made + cell)[0].success and run(ip, used + use)[0].success
        left.append([comparable(ip.user_ns[name]) for name in ("total", "first")])
    assert left[0][0] == 56 and all(same_values(left[0], other) for other in left[1:])


@pytest.mark.parametrize("loop", ["dist", "iter(dist)"])
def test_a_loop_over_a_distributed_dataset_is_a_graph_loop(ip, loop):
    setup = STRATEGY + "dist = strategy.experimental_distribute_dataset(ds)"
    cell = f"total = tf.constant(0, tf.int64)\nfor batch in {loop}:\n    total += distributed_step(batch)"
    captured = differential(ip, setup, cell, ("total",))
    assert "batch is not written back: bound inside a graph loop" in output_text(captured)


def test_a_distributed_dataset_made_in_a_branch_is_rebuilt_too(ip):
    cell = "if distribute:\n    dist = strategy.experimental_distribute_dataset(ds)\nelse:\n    dist = ds"
    differential(ip, STRATEGY + "distribute = True", cell, ())
    assert type(ip.user_ns["dist"]).__name__ == "DistributedDataset"
    differential(ip, STRATEGY + "distribute = True\n" + cell, "first = next(iter(dist))", ("first",))


def test_an_iterator_made_in_the_cell_is_a_stand_in_that_says_why(ip):
    run(ip, STRATEGY)
    for made, kind in (("iter(ds)", "OwnedIterator"), ("iter(strategy.experimental_distribute_dataset(ds))",
                                                        "DistributedIterator")):
        result, captured = run(ip, f"%%tfgraph --show none\nit = {made}\nfirst = next(it)")
        assert result.success, result.error_in_exec
        assert f"line 1: it is not written back: a {kind} made while tracing" in output_text(captured)
        result, _ = run(ip, "next(it)")
        assert _error(result).startswith("line 1 (next(it)): it was not written back by the %%tfgraph cell")


def test_a_python_loop_that_would_unroll_without_end_stops_with_the_reason(ip, monkeypatch):
    import tfmagic.collect

    monkeypatch.setattr(tfmagic.collect, "MAX_UNROLLED_OPS", 2000)  # (50,000 by default: seconds, not minutes)
    run(ip, "import itertools\nacc = 'before'")
    for cell, line in (("acc = tf.constant(0.)\nfor i in itertools.count():\n    acc = acc + tf.cast(i, tf.float32)", 2),
                       ("acc = tf.constant(0.)\nk = 0\nwhile k >= 0:\n    acc = acc + 1.\n    k += 1", 3)):
        result, captured = run(ip, "%%tfgraph --show none\n" + cell)
        assert type(result.error_in_exec).__name__ == "UnrolledLoopError" and ip.user_ns["acc"] == "before"
        assert f"UnrolledLoopError: line {line}: this loop runs in Python while tracing" in captured.stdout
        assert "more than 2,000 ops" in captured.stdout and "fix: loop over a tf.data.Dataset" in captured.stdout


FIRST_CELL = """\
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "tfmagic")
ip.run_cell("import tensorflow as tf")
for _ in range(2):
    with capture_output() as captured:
        result = ip.run_cell("%%tfgraph --show none\\nw = tf.Variable(tf.random.uniform((3, 2)))")
    print(result.success, repr(result.error_in_exec), ip.user_ns.get("w", None) is not None)
"""


def test_a_random_initializer_in_a_sessions_first_graph_cell_makes_its_variable():
    """(found by the differential run of the autodiff guide) The first %%tfgraph cell of a session creating a
    variable from a random op failed with "a bytes-like object is required", then with "Creating variables on a
    non-first call" on every re-run: an eager op's type came to tfmagic's op callback as bytes."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", FIRST_CELL], capture_output=True, text=True, timeout=600, env=env)
    assert done.stdout.splitlines()[-2:] == ["True None True"] * 2, done.stdout + done.stderr[-2000:]


def test_a_failing_graph_cell_that_used_up_a_tape_says_so(ip):
    """(found by the differential run of the autodiff guide) The failed cell had asked the notebook's
    non-persistent tape for its gradients, which TensorFlow cannot undo: the fix it suggested, a plain cell,
    then got "can only be used to compute one set of gradients", unexplained."""
    setup = "x = tf.Variable(3.0)\nwith tf.GradientTape() as tape:\n    y = x ** 2"
    run(ip, setup)
    result, captured = run(ip, "%%tfgraph --show none\ndy_dx = tape.gradient(y, x)\nshown = dy_dx.numpy()")
    assert isinstance(result.error_in_exec, (AttributeError, NotImplementedError))
    assert "note: the cell asked tape for gradients before it failed, and a tape that is not persistent gives " \
           "them once" in captured.stdout
    # what it says to do, done: record again, then the plain cell the first message suggested
    run(ip, setup)
    result, _ = run(ip, "dy_dx = tape.gradient(y, x)\nshown = dy_dx.numpy()")
    assert result.success and float(ip.user_ns["shown"]) == 6.0
    run(ip, setup.replace("GradientTape()", "GradientTape(persistent=True)"))
    result, captured = run(ip, "%%tfgraph --show none\ndy_dx = tape.gradient(y, x)\nshown = dy_dx.numpy()")
    assert not result.success and "asked tape for gradients" not in captured.stdout  # a persistent tape is intact


def test_a_dataset_shuffled_without_a_seed_says_so_and_its_fix_gives_the_plain_order(ip):
    """(found by the differential run of the custom training walkthrough) Under tf.random.set_seed a graph's
    shuffle gives another order than the plain cell's, silently."""
    setup = "tf.random.set_seed(1)\nds0 = tf.data.Dataset.range(10)"
    run(ip, setup)
    result, captured = run(ip, "%%tfgraph --show none\nds = ds0.shuffle(10).batch(10)\n"
                               "chained = tf.data.Dataset.range(4).shuffle(4).batch(2)")
    text = output_text(captured, printed=True)
    assert result.success and "line 1: ds = ds0.shuffle(10).batch(10)\n  ds0.shuffle() has no seed: in a graph its " \
        "order comes from the graph's own random streams" in text
    assert "line 2: chained = tf.data.Dataset.range(4).shuffle(4).batch(2)\n  Dataset.shuffle() has no seed" in text
    # the fix, pasted: the same order, each pass (reshuffled each iteration) as in the plain cell
    cell = "ds = ds0.shuffle(10, seed=42).batch(10)\nfirst = next(iter(ds))"
    captured = differential(ip, setup, cell, ("first",))
    assert "has no seed" not in output_text(captured, printed=True)
    passes = []
    for prefix in ("", "%%tfgraph --show none\n"):
        run(ip, setup)
        run(ip, prefix + cell)
        passes.append([next(ip.user_ns["ds"].as_numpy_iterator()).tolist() for _ in range(2)])
    assert passes[0] == passes[1] and passes[0][0] != passes[0][1]


@pytest.mark.parametrize("call", ["fit_history = model.fit(x, y, epochs=1, verbose=0)",
                                  "predicted = model.predict(x, verbose=0)"])
def test_keras_fit_or_predict_in_a_graph_cell_says_to_call_it_in_a_plain_cell(ip, call):
    """(found by the differential run of the quickstart) fit() in a %%tfgraph cell failed with "a tensor is used
    as a Python bool", which points at nothing the user wrote."""
    run(ip, "import numpy as np\nx = np.ones((8, 3), 'float32')\ny = np.ones((8, 1), 'float32')\n"
            "model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])\nmodel.compile('sgd', 'mse')")
    name, method = call.split(" = ")[0], call.split("model.")[1].split("(")[0]
    ip.user_ns.pop(name, None)
    result, captured = run(ip, "%%tfgraph --show none\n" + call)
    assert not result.success and name not in ip.user_ns
    assert f"model.{method}() runs Keras's own Python loop over the data" in captured.stdout
    assert f"fix: call model.{method}(...) in a plain cell" in captured.stdout and "Python bool" not in captured.stdout
    result, _ = run(ip, call)  # the fix, pasted
    assert result.success


STEP = """\
model = tf.keras.Sequential([tf.keras.layers.Dense(4, kernel_initializer="ones"),
                             tf.keras.layers.Dense(1, kernel_initializer="ones")])
opt = tf.keras.optimizers.Adam()
xb = tf.ones((2, 3))

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss
"""


def test_a_failing_graph_cell_says_which_objects_its_trace_built(ip):
    """(found by the differential run of the quickstart) The epoch cell failed at its f-string after tracing had
    built the model and the optimizer's slots: a failing cell said nothing of that."""
    run(ip, STEP + "\nloss = 'before'")
    assert not ip.user_ns["model"].built
    result, captured = run(ip, "%%tfgraph --show none\nloss = step(xb)\nprint(f'{loss:.2f}')")
    assert not result.success and ip.user_ns["loss"] == "before" and ip.user_ns["model"].built
    assert "note: tracing built model and opt before the cell failed: the variables it made (at their initial " \
           "values) stay" in captured.stdout
    # the fix the error gives, pasted: the step runs, as in a plain cell
    captured = differential(ip, STEP, "loss = step(xb)\ntf.print('loss', loss)", ("loss",))
    assert "tracing built" not in captured.stdout


def test_a_graph_op_is_the_plain_cells_none_and_never_leaks_in_a_container(ip):
    """Inside a graph an assign with read_value=False, tf.group and Keras 2's update_state return a tf.Operation,
    where eager code gets None (or, from update_state, the variable it assigned): the op left the cell as it was,
    shown as ``<tf.Operation ...>``, alone or in a list."""
    cells = ("ra = w.assign_add(1., read_value=False)", "grouped = tf.group(w.assign_add(1.))",
             "if flag:\n    rb = w.assign_add(1., read_value=False)")
    for cell in cells:
        name = cell.split(" = ")[0].split()[-1]
        seen = []
        for prefix in ("", "%%tfgraph --show none\n"):
            run(ip, "w = tf.Variable(1.)\nflag = True")
            result, captured = run(ip, prefix + cell)
            assert result.success and "Operation" not in output_text(captured, printed=True)
            seen.append((ip.user_ns[name], float(ip.user_ns["w"])))
        assert seen[0] == seen[1] == (None, 2.0), (cell, seen)
    run(ip, "w = tf.Variable(1.)")
    result, captured = run(ip, "%%tfgraph --show none\nops = [w.assign_add(1., read_value=False)]")
    assert result.success and "line 1: ops is not written back: a container holding graph objects that cannot " \
        "leave the graph (a TensorArray, a generator, an assign's result, a graph op)" in output_text(captured, True)
    result, _ = run(ip, "ops[0]")
    assert _error(result).startswith("line 1 (ops[0]): ops was not written back by the %%tfgraph cell")

"""Issue 12's reproductions, from a published chapter notebook's cells: each equal to the plain cell or explained."""

import numpy as np
import tensorflow as tf
from IPython.core.error import UsageError

from .shellutil import run


def _notices(captured) -> str:
    return "\n".join(o.data.get("text/plain", "") for o in captured.outputs if "image/svg+xml" not in o.data)


# -- 1. comprehensions and generator expressions ---------------------------------


def test_comprehensions_and_generator_expressions_run_as_in_a_plain_cell(ip):
    run(ip, "i = 'the notebook i'")
    result, captured = run(ip, "%%tfgraph --show none\nn = [i * 2 for i in range(3)]\nsq = {i: i * i for i in range(3)}\n"
                               "st = {i % 2 for i in range(4)}\ntotal = sum(i for i in range(4))")
    assert result.success, captured.stdout
    assert ip.user_ns["n"] == [0, 2, 4] and ip.user_ns["sq"] == {0: 0, 1: 1, 2: 4}
    assert ip.user_ns["st"] == {0, 1} and ip.user_ns["total"] == 6
    assert ip.user_ns["i"] == "the notebook i"  # a comprehension's variable is its own, as in Python 3


# -- 2. graph-only objects come back usable, or not at all with a note ----------------


def test_a_tensor_array_comes_back_rebuilt_eagerly(ip):
    result, _ = run(ip, "%%tfgraph --show none\nta = tf.TensorArray(tf.float32, size=1).write(0, 1.)")
    assert result.success
    result, _ = run(ip, "ta.stack()")
    assert result.success and result.result.numpy().tolist() == [1.0]


def test_what_cannot_leave_the_graph_is_not_written_back_and_the_note_names_it(ip):
    run(ip, "xg = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show none\nkept = xg * 2\ngen = (xg * k for k in range(3))")
    assert result.success
    assert "gen" not in ip.user_ns and ip.user_ns["kept"].numpy().tolist() == [2.0, 4.0]
    notes = _notices(captured)
    assert "%%tfgraph: line 2: gen is not written back: a generator made while tracing" in notes
    assert len([ln for ln in notes.splitlines() if "gen" in ln]) == 1  # one line


def test_functions_the_cell_defines_read_the_notebooks_names_afterwards(ip):
    run(ip, "xf = tf.constant([1., 2.])")
    result, _ = run(ip, "%%tfgraph --show none\nk = xf * 3\ndef f(a):\n    return a * k\ng = lambda b: b + k")
    assert result.success
    result, _ = run(ip, "f(2.), g(1.)")
    assert result.success and result.result[0].numpy().tolist() == [6.0, 12.0]
    run(ip, "k = 10.")
    assert run(ip, "f(2.)")[0].result == 20.0  # as a plain cell's function: the name is read when called


# -- 3. names bound to what is not a tensor ---------------------------------------


def test_indexed_slices_of_lists_and_scatter_update(ip):
    result, captured = run(ip, "%%tfgraph --show none\nd = tf.IndexedSlices(values=[[1.]], indices=[0])")
    assert result.success, captured.stdout
    assert captured.stderr == "" and ip.user_ns["d"].values == [[1.0]]
    run(ip, "vs = tf.Variable(tf.zeros((2, 3)))")
    result, captured = run(ip, "%%tfgraph --show none\n"
                               "vs.scatter_update(tf.IndexedSlices(values=[[1., 2., 3.], [4., 5., 6.]], indices=[1, 0]))")
    assert result.success, captured.stdout
    np.testing.assert_array_equal(ip.user_ns["vs"].numpy(), [[4., 5., 6.], [1., 2., 3.]])


# -- 4. silent changes are named, at their line ----------------------------------------


def test_a_seed_set_in_the_cell_is_named(ip):
    result, captured = run(ip, "%%tfgraph --show none\ntf.keras.utils.set_random_seed(42)\nr = tf.random.uniform([2])")
    assert result.success
    notes = _notices(captured)
    assert "line 1: tf.keras.utils.set_random_seed(42)" in notes and "does not reseed" in notes
    assert "set the seed in a plain cell" in notes


def test_try_except_of_graph_errors_is_named_and_an_except_print_is_not_said_to_have_printed(ip):
    run(ip, "xt = tf.constant([1., 2.])")
    body = ("try:\n    y = xt + 1\nexcept tf.errors.InvalidArgumentError as ex:\n    print(ex)\n    y = xt")
    result, captured = run(ip, "%%tfgraph --show none\n" + body)
    assert result.success and captured.stdout == ""
    notes = _notices(captured)
    assert "line 1: try:" in notes and "is not caught here" in notes
    assert "line 4: print(ex)" in notes and "runs only if the try block raised" in notes
    assert "printed now" not in notes
    result, captured = run(ip, "%%tfgraph --show none\ntry:\n    y = tf.gather(xt, 10)\n"
                               "except tf.errors.InvalidArgumentError:\n    y = xt")
    assert isinstance(result.error_in_exec, tf.errors.InvalidArgumentError)
    assert "----> 2     y = tf.gather(xt, 10)" in captured.stdout and "note: line 1: try:" in captured.stdout


def test_an_unused_op_is_pruned_and_said_so(ip):
    run(ip, "xp = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show none\nyp = xp * 2\ntf.gather(xp, 10)\nzp = yp + 1")
    assert result.success  # a plain cell fails here: the graph never runs the gather
    assert not run(ip, "tf.gather(xp, 10)")[0].success
    notes = _notices(captured)
    assert "line 2: tf.gather(xp, 10)" in notes and "prunes its ops (GatherV2)" in notes


# -- 5. retraces compared with the right trace; Keras's own retraces ---------------------


def test_a_retrace_is_compared_with_the_trace_of_its_kind(ip):
    run(ip, "@tf.function\ndef fr(x):\n    return x * 2")
    run(ip, "%tfretrace --watch")
    try:
        _, captured = run(ip, "fr(tf.constant(2.)); fr(2); fr(tf.constant([[1., 2.]]))")
    finally:
        run(ip, "%tfretrace --off")
    text = _notices(captured)
    assert "tfretrace fr: 2 retraces in this cell (3 traces now):" in text  # one summary for the cell
    third = next(line for line in text.splitlines() if line.strip().startswith("trace 3"))
    assert third.strip() == "trace 3 (against trace 1): x: float32 -> float32[1,2]"


def test_keras_predict_retracing_is_said_to_be_keras_once(ip):
    run(ip, "km = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])")
    run(ip, "%tfretrace --watch")
    try:
        texts = [_notices(run(ip, f"pk = km.predict(np.ones(({b}, 3)), verbose=0)")[1]) for b in (4, 7, 9, 11)]
    finally:
        run(ip, "%tfretrace --off")
    joined = "\n".join(texts)
    assert joined.count("Keras's own predict step") == 1 and "nothing to change in your code" in joined
    assert "retraced: trace" not in joined


# -- 6. %%tape ----------------------------------------------------------------------------


def test_tape_takes_a_list_target(ip):
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    result, _ = run(ip, "%%tape [z1, z2, z3]\nz1 = w1 * 2\nz2 = w1 * w2\nz3 = w2 ** 2")
    assert result.success
    with tf.GradientTape() as tape:
        z1, z2, z3 = ip.user_ns["w1"] * 2, ip.user_ns["w1"] * ip.user_ns["w2"], ip.user_ns["w2"] ** 2
    hand = tape.gradient([z1, z2, z3], [ip.user_ns["w1"], ip.user_ns["w2"]])
    assert {k: float(v) for k, v in ip.user_ns["grads"].items()} == {"w1": float(hand[0]), "w2": float(hand[1])}


def test_a_refused_tape_target_is_a_usage_error_and_changes_nothing(ip):
    run(ip, "w1 = tf.Variable(5.)\nrt = 'before'")
    result, captured = run(ip, "%%tape [z1, 'a']\nz1 = w1 * 2\nrt = 'after'")
    assert isinstance(result.error_in_exec, UsageError) and not result.success
    assert "holds a str, not a tensor" in str(result.error_in_exec)
    assert "[z1, 'a']" in str(result.error_in_exec)  # the target as typed
    assert ip.user_ns["rt"] == "before"


def test_hessian_none_where_nested_tapes_give_none(ip):
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    result, captured = run(ip, "%%tape --hessian\nz = 3 * w1 ** 2 + 2 * w1 * w2\nz")
    assert result.success
    assert "d(w2) d(w2): None" in _notices(captured)


def test_a_keras_bias_is_keyed_by_its_layer_path_not_a_leftover_loop_variable(ip):
    run(ip, "kn = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, name='hid')], name='kn')")
    run(ip, "for variable in kn.variables:\n    pass")
    result, _ = run(ip, "%%tape\nloss = tf.reduce_sum(kn(tf.ones((1, 3))) ** 2)\nloss")
    assert result.success
    assert sorted(ip.user_ns["grads"]) == ["kn/hid/bias", "kn/hid/kernel"]

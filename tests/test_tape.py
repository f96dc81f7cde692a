"""%%tape in a real IPython shell: gradients equal hand-written GradientTape code, each None/NaN explained, what
it stores and names, its options and errors. (The drawing, --show graph: test_tape_graph.py.)"""

import numpy as np
import pytest
import tensorflow as tf
from IPython.core.error import UsageError

from .shellutil import TAPE_TABLE, output_text, output_texts, run, tape_table, user_names


def _grads(ip, name="grads"):
    return {k: (None if v is None else v.numpy()) for k, v in ip.user_ns[name].items()}


def test_variables_give_the_hand_written_gradients(ip):
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    result, captured = run(ip, "%%tape\nz = 3 * w1 ** 2 + 2 * w1 * w2\nz")
    assert result.success, result.error_in_exec
    w1, w2 = tf.Variable(5.), tf.Variable(3.)
    with tf.GradientTape() as tape:
        z = 3 * w1 ** 2 + 2 * w1 * w2
    expected = tape.gradient(z, [w1, w2])
    assert _grads(ip) == {"w1": expected[0].numpy(), "w2": expected[1].numpy()} == {"w1": 36.0, "w2": 10.0}
    assert float(ip.user_ns["z"].numpy()) == 105.0  # the cell's own assignment stands
    table = tape_table(captured)
    assert "w1      scalar     float32  36" in table and "w2      scalar     float32  10" in table


def test_unwatched_constants_are_none_with_the_watch_hint_and_watched_ones_are_not(ip):
    run(ip, "c1, c2 = tf.constant(5.), tf.constant(3.)")
    _, captured = run(ip, "%%tape --wrt c1,c2\nz = 3 * c1 ** 2 + 2 * c1 * c2\nz")
    assert _grads(ip) == {"c1": None, "c2": None}
    table = tape_table(captured)
    assert "c1 is a tensor made before this cell, not a tf.Variable" in table and "only when watched" in table
    assert "add --watch c1" in table
    run(ip, "%%tape --watch c1,c2\nz = 3 * c1 ** 2 + 2 * c1 * c2\nz")
    assert _grads(ip) == {"c1": 36.0, "c2": 10.0}


def test_watch_a_constant_the_cell_creates(ip):
    run(ip, "%%tape --watch x\nx = tf.constant(3.0)\ny = x ** 2\ny")
    assert _grads(ip) == {"x": 6.0}


def test_stop_gradient_is_none_and_names_its_line(ip):
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    _, captured = run(ip, "%%tape\na = 3 * w1 ** 2\nz = a + tf.stop_gradient(2 * w1 * w2)\nz")
    assert _grads(ip) == {"w1": 30.0, "w2": None}
    assert "tf.stop_gradient at line 2 (z = a + tf.stop_gradient(2 * w1 * w2)) blocks" in tape_table(captured)


def test_keras_dense_kernel_and_bias(ip):
    run(ip, "dense = tf.keras.layers.Dense(2, kernel_initializer='ones', bias_initializer='zeros', name='dense')\n"
            "xin = tf.constant([[1., 2., 3.]])\n_ = dense(xin)")
    result, captured = run(ip, "%%tape\nloss = tf.reduce_sum(dense(xin) ** 2)\nloss")
    assert result.success
    dense, xin = ip.user_ns["dense"], ip.user_ns["xin"]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(dense(xin) ** 2)
    kernel, bias = tape.gradient(loss, [dense.kernel, dense.bias])
    grads = _grads(ip)
    np.testing.assert_allclose(grads["dense/kernel"], kernel.numpy())
    np.testing.assert_allclose(grads["dense/bias"], bias.numpy())
    assert "dense/kernel  [3, 2]" in tape_table(captured)


def test_jacobian_and_hessian(ip):
    run(ip, "v = tf.Variable([1., 2., 3.])")
    _, captured = run(ip, "%%tape --jacobian\ny = v ** 2\ny")
    jac = ip.user_ns["grads"]
    assert jac["v"].numpy().tolist() == [2., 4., 6.]  # the gradient of the sum
    v = tf.Variable([1., 2., 3.])
    with tf.GradientTape() as tape:
        y = v ** 2
    expected = tape.jacobian(y, v).numpy()
    table = tape_table(captured)
    assert "jacobian d(y)/d(v): shape [3, 3]" in table
    run(ip, "w1, w2 = tf.Variable(5.), tf.Variable(3.)")
    result, captured = run(ip, "%%tape --hessian\nz = w1 ** 3 * w2\nz")
    assert result.success
    assert "hessian d2(z)/d(w1) d(w2): shape []" in tape_table(captured)  # named as the cell names it
    # hand-written nested tapes
    w1, w2 = tf.Variable(5.), tf.Variable(3.)
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            z = w1 ** 3 * w2
        g = inner.gradient(z, [w1, w2])
    hand = [[outer.gradient(gi, wj) for wj in (w1, w2)] for gi in g]
    assert float(hand[0][0]) == 90.0 and float(hand[0][1]) == 75.0
    assert np.allclose(expected, np.diag([2., 4., 6.]))


def test_hessian_values_are_returned(ip):
    from tfmagic.requests import TapeOptions
    from tfmagic.tape import run_tape

    ns = {"tf": tf, "w1": tf.Variable(5.), "w2": tf.Variable(3.)}
    result = run_tape("z = w1 ** 3 * w2\nz", ns, TapeOptions(hessian=True))
    # None where nested plain tapes give None: dz/dw2 = w1 ** 3 does not depend on w2
    assert {k: None if v is None else float(v) for k, v in result.hessians.items()} == {
        ("w1", "w1"): 90.0, ("w1", "w2"): 75.0, ("w2", "w1"): 75.0, ("w2", "w2"): None}
    w1, w2 = ns["w1"], ns["w2"]
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            z = w1 ** 3 * w2
        g = inner.gradient(z, [w1, w2])
    assert outer.gradient(g[1], w2) is None


def test_softplus_nan_at_100_names_exp_and_custom_gradient_fixes_it(ip):
    run(ip, "def my_softplus(z):\n    return tf.math.log(tf.exp(z) + 1.0)\nx100 = tf.Variable(100.0)")
    result, captured = run(ip, "%%tape\ny = my_softplus(x100)\ny")
    assert result.success
    assert np.isnan(_grads(ip)["x100"])
    table = tape_table(captured)
    assert "NaN/Inf: Exp made the first inf of the forward pass at line 1: y = my_softplus(x100)" in table
    assert "in my_softplus, line 2: return tf.math.log(tf.exp(z) + 1.0)" in table
    assert "tf.custom_gradient" in table and "tf.nn.softplus" in table
    run(ip, "@tf.custom_gradient\ndef my_better_softplus(z):\n"
            "    exp = tf.exp(z)\n"
            "    def my_softplus_gradients(grad):\n"
            "        return grad / (1 + 1 / exp)\n"
            "    return tf.math.log(exp + 1), my_softplus_gradients")
    result, captured = run(ip, "%%tape\ny = my_better_softplus(x100)\ny")
    assert _grads(ip)["x100"] == 1.0
    assert "NaN/Inf" not in tape_table(captured)


@pytest.mark.parametrize("setup,body,wrt,cause", [
    ("iv = tf.constant(3)", "z = tf.cast(iv, tf.float32) * 2.0\nz", "--wrt iv --watch iv",
     "iv is int32: gradients flow only to floating-point tensors"),
    ("w1 = tf.Variable(5.)", "u = tf.constant(np.square(w1.numpy()))\nz = u * 2.0\nz", "--wrt w1",
     "the value goes through NumPy (line 1)"),
    ("w1, w2 = tf.Variable(5.), tf.Variable(3.)", "w2.assign(w1 * 2)\nz = w2 * 3.0\nz", "--wrt w1",
     "w1 reaches the target only through an assignment (line 1: w2.assign(w1 * 2))"),
    ("w1, w2 = tf.Variable(5.), tf.Variable(3.)", "k = tf.cast(tf.argmax([w1, w2]), tf.float32)\nz = k * w2\nz",
     "--wrt w1", "ArgMax at line 1"),
    ("w1, w2 = tf.Variable(5.), tf.Variable(3.)", "z = w2 * 2.0\nz", "--wrt w1,w2",
     "no path: the target does not depend on w1"),
    ("vv = tf.Variable(2.0)", "z = vv * 2.0\nvv = vv + 1\nz", "--wrt vv",
     "vv was a tf.Variable, and line 2 rebound it to a tensor"),
])
def test_each_none_cause_is_named(ip, setup, body, wrt, cause):
    run(ip, setup)
    result, captured = run(ip, f"%%tape {wrt}\n{body}")
    assert result.success, result.error_in_exec
    assert cause in tape_table(captured)


def test_output_name_and_show_none(ip):
    run(ip, "w1 = tf.Variable(5.)")
    _, captured = run(ip, "%%tape --store g1 --show none\nz = w1 * 4.0\nz")
    assert _grads(ip, "g1") == {"w1": 4.0}
    assert not any(TAPE_TABLE in text for text in output_texts(captured))


def test_explicit_target_expression(ip):
    run(ip, "w1 = tf.Variable(5.)")
    run(ip, "%%tape a * 2.0\na = w1 ** 2")
    assert _grads(ip) == {"w1": 20.0}


@pytest.mark.parametrize("line,body,message", [
    ("", "label = 'not a tensor'\nlabel", "the target ('label') is a str, not a tensor"),
    ("--wrt w9", "z = w1 * 2.0\nz", "--wrt w9: no such name in the namespace"),
    ("missing_name", "z = w1 * 2.0", "target 'missing_name': NameError"),
    ("", "z = w1 * 2.0", "no target: end the cell with the expression to differentiate"),
    ("--store 3x", "z = w1 * 2.0\nz", "NAME must be a Python identifier"),
    ("-o g1", "z = w1 * 2.0\nz", "-o writes the gradient drawing to a file (.svg, .png, .pdf or .dot), as in every "
                                 "magic; the gradients' dict is named with --store g1"),
    ("-o drawing.gif", "z = w1 * 2.0\nz", "the file's extension must be one of .svg, .png, .pdf, .dot"),
    ("--show pictures", "z = w1\nz", "invalid choice: 'pictures'"),
])
def test_bad_targets_and_options_are_one_line_errors_and_change_nothing(ip, line, body, message):
    run(ip, "w1 = tf.Variable(5.)\nz = 'before'")
    before = user_names(ip)
    result, _ = run(ip, f"%%tape {line}\n{body}")
    assert type(result.error_in_exec) is UsageError
    assert message in str(result.error_in_exec) and "\n" not in str(result.error_in_exec)
    assert user_names(ip) == before


def test_failing_cell_restores_the_namespace_and_names_the_line(ip):
    run(ip, "w1 = tf.Variable(5.)\nz = 'before'")
    before = user_names(ip)
    result, captured = run(ip, "%%tape\nz = w1 * 2.0\nnew_name = 1\n1 / 0\n")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert user_names(ip) == before and "_tfmagic_tape" not in ip.user_ns
    assert "%%tape cell, line 3 (while running the cell)" in captured.stdout and "----> 3 1 / 0" in captured.stdout


def test_a_users_own_tape_used_twice_is_explained(ip):
    run(ip, "w1 = tf.Variable(5.)")
    result, captured = run(ip, "%%tape\nwith tf.GradientTape() as t:\n    y = w1 * 2.0\n"
                               "a = t.gradient(y, w1)\nb = t.gradient(y, w1)\ny")
    assert isinstance(result.error_in_exec, RuntimeError)
    assert "----> 4 b = t.gradient(y, w1)" in captured.stdout
    assert "persistent=True" in captured.stdout


def test_an_infinite_gradient_is_counted_and_its_way_out_fits_the_op(ip):
    run(ip, "ws = tf.Variable([0., 4.])")
    _, captured = run(ip, "%%tape\nr = tf.sqrt(ws)\nloss = tf.reduce_sum(r * 2)\nloss")
    text = tape_table(captured)
    assert "[inf, 0.5] 1 inf; finite values: norm 0.5, min 0.5, max 0.5" in text
    assert "gradient op SqrtGrad" in text and "the derivative of tf.sqrt is infinite at 0" in text


# ---------------------------------------------------------------------------
# What tape.gradient accepts and refuses, said as the plain tape would have it


def _plain_gradients(ip, source, sources, **gradient_options):
    """The cell's code under a hand-written tape in a copy of the namespace: the gradients a plain cell gets."""
    ns = dict(ip.user_ns)
    body = "\n".join("    " + line for line in source.splitlines()[:-1])
    exec(f"with tf.GradientTape(persistent=True) as _t:\n{body}\n    _target = {source.splitlines()[-1]}", ns)
    return [None if g is None else g.numpy() for g in ns["_t"].gradient(
        ns["_target"], [eval(s, ns) for s in sources], **gradient_options)]


def test_an_op_without_a_gradient_is_one_line_naming_the_op_its_line_and_the_way_out(ip):
    run(ip, "img = tf.random.uniform((1, 4, 4, 3)); hue_v = tf.Variable(tf.ones((1, 4, 4, 3)))")
    run(ip, "marker = 'before'")
    result, captured = run(ip, "%%tape\nmarker = 'after'\ny = tf.image.adjust_hue(img * hue_v, 0.2)\ntf.reduce_sum(y)")
    error = result.error_in_exec
    assert type(error).__name__ == "NoGradientError" and isinstance(error, LookupError)
    text = str(error)
    assert "AdjustHue at line 2 (y = tf.image.adjust_hue(img * hue_v, 0.2)) has no gradient" in text
    assert "tf.stop_gradient" in text and "\n" not in text
    assert "Traceback" not in captured.stdout and "registry.py" not in captured.stdout
    assert ip.user_ns["marker"] == "before"  # the failing cell left the namespace as it was
    # the way out works when applied: the image op's input stopped, the rest of the cell differentiates
    result, _ = run(ip, "%%tape --wrt hue_v\ny = tf.image.adjust_hue(tf.stop_gradient(img * hue_v), 0.2)\n"
                        "tf.reduce_sum(y) + tf.reduce_sum(hue_v)")
    assert result.success and _grads(ip)["hue_v"].sum() == 48.0


def test_a_trainable_false_variable_is_not_watched_and_watching_it_gives_the_plain_gradient(ip):
    run(ip, "frozen = tf.Variable(2.0, trainable=False); w_t = tf.Variable(3.0)")
    _, captured = run(ip, "%%tape --wrt frozen,w_t\nz = frozen * w_t\nz")
    assert _grads(ip) == {"frozen": None, "w_t": 2.0}
    assert _plain_gradients(ip, "z = frozen * w_t\nz", ["frozen", "w_t"]) == [None, 2.0]
    table = tape_table(captured)
    assert "frozen is not watched: it is a tf.Variable with trainable=False" in table
    assert "add --watch frozen" in table and "does not depend on" not in table
    run(ip, "%%tape --wrt frozen,w_t --watch frozen\nz = frozen * w_t\nz")  # the fix, applied
    assert _grads(ip) == {"frozen": 3.0, "w_t": 2.0}


def test_a_tensor_computed_from_a_variable_is_not_called_a_constant(ip):
    run(ip, "w_c = tf.Variable(3.0); u_before = w_c + 1.0")
    _, captured = run(ip, "%%tape --wrt u_before\nz = u_before * 2\nz")
    table = tape_table(captured)
    assert "constant" not in table and "u_before is a tensor made before this cell" in table
    _, captured = run(ip, "%%tape --wrt u_in\nu_in = w_c + 1.0\nz = w_c * 2\nz")
    table = tape_table(captured)
    assert "constant" not in table and "no path: the target does not depend on u_in" in table
    _, captured = run(ip, "%%tape --wrt k_in\nk_in = tf.constant(3.0) * 2\nz = k_in * w_c\nz")
    assert "k_in (line 1) is computed from constants only" in tape_table(captured)


def test_a_dict_target_is_differentiated_as_tape_gradient_sums_it(ip):
    run(ip, "w_d = tf.Variable(3.0)")
    cell = "d = {'a': w_d * 2, 'b': {'c': w_d ** 2}}\nd"
    result, captured = run(ip, "%%tape --wrt w_d\n" + cell)
    assert result.success, result.error_in_exec
    assert [_grads(ip)["w_d"]] == _plain_gradients(ip, cell, ["w_d"]) == [8.0]


def test_a_variable_created_in_the_cell_then_assigned_gets_the_assignments_reason(ip):
    run(ip, "w_a = tf.Variable(3.0)")
    _, captured = run(ip, "%%tape\nq = tf.Variable(1.0)\nq.assign_add(w_a * 2)\nq * 1.0")
    assert _grads(ip)["w_a"] is None and _grads(ip)["q"] == 1.0
    table = tape_table(captured)
    assert "w_a reaches the target only through an assignment (line 2: q.assign_add(w_a * 2))" in table


def test_watch_accessed_variables_false_watches_only_what_watch_names(ip):
    run(ip, "w_n, b_n = tf.Variable(3.0), tf.Variable(2.0)")
    run(ip, "%%tape --no-watch-accessed --watch w_n\nz = w_n * b_n\nz")
    assert _grads(ip) == {"w_n": 2.0}  # as tf.GradientTape(watch_accessed_variables=False) with tape.watch(w_n)
    _, captured = run(ip, "%%tape --no-watch-accessed --watch w_n --wrt w_n,b_n\nz = w_n * b_n\nz")
    assert _grads(ip) == {"w_n": 2.0, "b_n": None}
    assert "b_n is not watched: with --no-watch-accessed" in tape_table(captured)


def test_unconnected_zero_gives_the_plain_zeros_and_still_says_why(ip):
    run(ip, "w_z, b_z = tf.Variable([3.0, 1.0]), tf.Variable(1.0)")
    cell = "z = tf.reduce_sum(w_z * w_z)\nz"
    _, captured = run(ip, "%%tape --wrt w_z,b_z --unconnected zero --jacobian --hessian\n" + cell)
    plain = _plain_gradients(ip, cell, ["w_z", "b_z"], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    got = _grads(ip)
    assert got["w_z"].tolist() == plain[0].tolist() == [6.0, 2.0] and got["b_z"] == plain[1] == 0.0
    assert ip.user_ns["jacobians"]["b_z"].numpy() == 0.0
    assert ip.user_ns["hessians"][("b_z", "w_z")].numpy().tolist() == [0.0, 0.0]
    assert "zeros for a disconnected source (--unconnected zero): no path" in tape_table(captured)


def test_jacobians_and_hessians_can_be_named_and_a_replaced_name_is_said(ip):
    run(ip, "w_j = tf.Variable(3.0); jacobians = 'my notes'")
    _, captured = run(ip, "%%tape --jacobian\nz = w_j * 2\nz")
    assert "stored: grads, jacobians (replaced the str it held)" in tape_table(captured)
    _, captured = run(ip, "%%tape --jacobian\nz = w_j * 2\nz")  # its own dict again: nothing to say
    assert "stored: grads, jacobians\n" in tape_table(captured) + "\n"
    run(ip, "%%tape --jacobian --hessian --store g2 --store-jacobians J2 --store-hessians H2\nz = w_j ** 2\nz")
    assert ip.user_ns["g2"]["w_j"].numpy() == 6.0 and ip.user_ns["J2"]["w_j"].numpy() == 6.0
    assert ip.user_ns["H2"][("w_j", "w_j")].numpy() == 2.0
    with pytest.raises(UsageError, match="--store-jacobians and --store-hessians both name 'J'"):
        ip.run_cell_magic("tape", "--jacobian --hessian --store-jacobians J --store-hessians J", "z = w_j * 2\nz")
    with pytest.raises(UsageError, match="--store-jacobians '1x': NAME must be a Python identifier"):
        ip.run_cell_magic("tape", "--jacobian --store-jacobians 1x", "z = w_j * 2\nz")


# ---------------------------------------------------------------------------
# What %%tape stores and under which names: jacobians, hessians, -o and --store, list targets, keys


def test_jacobians_are_stored_and_equal_a_plain_tapes(ip):
    run(ip, "xj = tf.Variable([1., 2., 3.])")
    result, captured = run(ip, "%%tape --jacobian\nyj = xj ** 2 + tf.reduce_sum(xj)\nyj")
    assert result.success, result.error_in_exec
    xj = ip.user_ns["xj"]
    with tf.GradientTape() as tape:
        yj = xj ** 2 + tf.reduce_sum(xj)
    plain = tape.jacobian(yj, xj)
    stored = ip.user_ns["jacobians"]["xj"]
    assert stored.shape == (3, 3) == plain.shape
    np.testing.assert_allclose(stored.numpy(), plain.numpy())
    assert ip.user_ns["grads"]["xj"].shape == (3,)  # the gradients stay gradients
    assert any("stored: grads, jacobians" in t for t in output_texts(captured))


def test_hessians_are_stored_and_equal_nested_plain_tapes_none_included(ip):
    run(ip, "h1, h2 = tf.Variable(2.), tf.Variable(3.)")
    for body in ("z = h1 ** 3 * h2\nz", "z = h1 ** 2 + 4.0 * h2\nz"):
        result, captured = run(ip, f"%%tape --hessian\n{body}")
        assert result.success, result.error_in_exec
        h1, h2 = ip.user_ns["h1"], ip.user_ns["h2"]
        with tf.GradientTape(persistent=True) as outer:
            with tf.GradientTape() as inner:
                z = eval(body.splitlines()[0].split("=", 1)[1], {"h1": h1, "h2": h2})
            first = inner.gradient(z, [h1, h2])
        stored = ip.user_ns["hessians"]
        for i, a in enumerate(("h1", "h2")):
            for j, b in enumerate(("h1", "h2")):
                plain = None if first[i] is None else outer.gradient(first[i], [h1, h2][j])
                if plain is None:
                    assert stored[(a, b)] is None, (body, a, b)
                else:
                    np.testing.assert_allclose(stored[(a, b)].numpy(), plain.numpy(), err_msg=f"{body} {a} {b}")
        text = "\n".join(output_texts(captured))
        if "4.0 * h2" in body:
            assert "hessian d2(z)/d(h2) d(h2): None" in text


def test_o_is_a_drawing_file_in_every_magic_and_store_names_the_gradients(ip, tmp_path):
    run(ip, "wo = tf.Variable(2.)")
    drawing = tmp_path / "tape.svg"
    result, captured = run(ip, f"%%tape --store go -o {drawing}\nzo = wo * 3.0\nzo")
    assert result.success, result.error_in_exec
    assert drawing.read_bytes().lstrip().startswith(b"<?xml") and b"d zo / d wo" in drawing.read_bytes()
    assert float(ip.user_ns["go"]["wo"]) == 3.0
    assert not any("image/svg+xml" in o.data for o in captured.outputs)  # --show table: the file only
    result, _ = run(ip, "%%tape -o go\nzo = wo * 3.0\nzo")  # the old spelling
    assert type(result.error_in_exec) is UsageError and "--store go" in str(result.error_in_exec)
    graph_file = tmp_path / "cell.dot"
    result, _ = run(ip, f"%%tfgraph --show none -o {graph_file}\nzz = wo * 2.0")
    assert result.success and graph_file.read_text().startswith("digraph")


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
    assert "d(w2) d(w2): None" in output_text(captured, drawings=False)


def test_a_keras_bias_is_keyed_by_its_layer_path_not_a_leftover_loop_variable(ip):
    run(ip, "kn = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, name='hid')], name='kn')")
    run(ip, "for variable in kn.variables:\n    pass")
    result, _ = run(ip, "%%tape\nloss = tf.reduce_sum(kn(tf.ones((1, 3))) ** 2)\nloss")
    assert result.success
    names = sorted(getattr(v, "path", None) or v.name.split(":")[0] for v in ip.user_ns["kn"].trainable_variables)
    assert sorted(ip.user_ns["grads"]) == names  # Keras 3: kn/hid/bias, kn/hid/kernel; Keras 2: hid/bias, hid/kernel


def test_tape_keeps_the_names_of_variables_the_cell_rebinds(ip):
    run(ip, "ra = tf.Variable(2.0)\nrb = tf.Variable(3.0)")
    result, _ = run(ip, "%%tape\nra = ra * 1.0\nrb = rb * 1.0\nz = ra * rb\nz")
    assert result.success
    grads = {k: float(v) for k, v in ip.user_ns["grads"].items()}
    assert grads == {"ra": 3.0, "rb": 2.0}


def test_the_shells_ast_transformers_apply_to_a_tape_cell_as_to_a_plain_cell(ip):
    import ast

    class DoubleFloats(ast.NodeTransformer):  # a transformer a shell may have: every float literal doubled
        def visit_Constant(self, node):
            return ast.copy_location(ast.Constant(node.value * 2), node) if isinstance(node.value, float) else node

    run(ip, "w_ast = tf.Variable(1.0)")
    transformer = DoubleFloats()
    ip.ast_transformers.append(transformer)
    try:
        plain, _ = run(ip, "z_plain = w_ast * 3.0\nz_plain")
        result, _ = run(ip, "%%tape --show none\nz_ast = w_ast * 3.0\nz_ast")
    finally:
        ip.ast_transformers.remove(transformer)
    assert result.success, result.error_in_exec
    assert float(ip.user_ns["z_ast"]) == float(plain.result) == 6.0  # the transformer ran on the tape cell too
    assert float(ip.user_ns["grads"]["w_ast"]) == 6.0



KERAS_MODELS = """\
keras = tf.keras
class PathNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = keras.layers.Dense(3)
        self.d2 = keras.layers.Dense(1)
    def call(self, t):
        return self.d2(self.d1(t))
xk = tf.ones((4, 2))
inputs = keras.Input((2,))
functional = keras.Model(inputs, keras.layers.Dense(1, name='head')(keras.layers.Dense(4)(inputs)))
def weight_names(*models):
    return [getattr(v, 'path', None) or v.name.split(':')[0] for m in models for v in m.trainable_variables]
"""


@pytest.mark.parametrize("made", ["plain", "%%tfgraph --show none"])
def test_gradients_are_keyed_by_the_weights_paths_as_model_summary_names_them(ip, made):
    """Keras 3's inner tf.Variables of a subclassed model's two kernels are both named ``path_net/kernel``: the
    keys and rows are the Keras variables' paths (``v.path``; on Keras 2, the name without ``:0``)."""
    run(ip, KERAS_MODELS)
    prefix = "" if made == "plain" else made + "\n"
    result, _ = run(ip, prefix + "net = PathNet()\nseq = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(1)])"
                    "\nfirst = net(xk) + seq(xk) + functional(xk)")
    assert result.success, result.error_in_exec
    for models in (("net",), ("seq",), ("functional",), ("net", "seq")):
        loss = " + ".join(f"tf.reduce_sum({m}(xk) ** 2)" for m in models)
        result, captured = run(ip, f"%%tape\n{loss}")
        assert result.success, result.error_in_exec
        expected = ip.user_ns["weight_names"](*(ip.user_ns[m] for m in models))
        assert sorted(ip.user_ns["grads"]) == sorted(expected) and len(set(expected)) == len(expected)
        rows = [line.split()[0] for line in tape_table(captured).splitlines()[2:] if line.strip()]
        assert rows[:len(expected)] == expected, rows
        # grads[v.path], as the user writes it, gives the hand-written tape's gradient
        with tf.GradientTape() as tape:
            value = eval(loss, ip.user_ns)
        variables = [v for m in models for v in ip.user_ns[m].trainable_variables]
        for name, gradient in zip(expected, tape.gradient(value, variables)):
            np.testing.assert_allclose(ip.user_ns["grads"][name].numpy(), gradient.numpy(), rtol=1e-6)

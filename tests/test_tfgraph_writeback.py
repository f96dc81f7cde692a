"""What a %%tfgraph cell writes back to the notebook: tensors as eager tensors (a TensorArray rebuilt, composite
tensors whole), Python values as the trace computed them (inside containers too), comprehension variables left
their own, functions it defines over the notebook's names; and a one-line note for what cannot leave the graph.

A real IPython shell; many cells come from a published chapter notebook (issue 12). Write-back over the
notebook's state across cells (tapes, variables the cell creates, del) is in test_tfgraph_state.py.
"""

import numpy as np

from .shellutil import output_text, output_texts, run


def test_comprehensions_and_generator_expressions_run_as_in_a_plain_cell(ip):
    run(ip, "i = 'the notebook i'")
    result, captured = run(ip, "%%tfgraph --show none\nn = [i * 2 for i in range(3)]\nsq = {i: i * i for i in range(3)}\n"
                               "st = {i % 2 for i in range(4)}\ntotal = sum(i for i in range(4))")
    assert result.success, captured.stdout
    assert ip.user_ns["n"] == [0, 2, 4] and ip.user_ns["sq"] == {0: 0, 1: 1, 2: 4}
    assert ip.user_ns["st"] == {0, 1} and ip.user_ns["total"] == 6
    assert ip.user_ns["i"] == "the notebook i"  # a comprehension's variable is its own, as in Python 3


def test_a_tensor_array_comes_back_rebuilt_eagerly(ip):
    result, _ = run(ip, "%%tfgraph --show none\nta = tf.TensorArray(tf.float32, size=1).write(0, 1.)")
    assert result.success
    result, _ = run(ip, "ta.stack()")
    assert result.success and result.result.numpy().tolist() == [1.0]


def test_what_cannot_leave_the_graph_is_not_written_back_and_the_note_names_it(ip):
    run(ip, "xg = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show none\nkept = xg * 2\ngen = (xg * k for k in range(3))")
    assert result.success
    assert ip.user_ns["kept"].numpy().tolist() == [2.0, 4.0]
    notes = output_text(captured, drawings=False)
    assert "%%tfgraph: line 2: gen is not written back: a generator made while tracing" in notes
    assert len([ln for ln in notes.splitlines() if "gen" in ln]) == 1  # one line
    result, captured = run(ip, "list(gen)")  # not an earlier gen: one that says why it is not there
    assert not result.success and type(result.error_in_exec).__name__ == "NotWrittenBackError"
    assert str(result.error_in_exec).startswith("line 1 (list(gen)): gen was not written back by the %%tfgraph cell")
    assert "line 2: a generator made while tracing" in str(result.error_in_exec)


def test_a_graph_loop_variable_is_named_when_it_cannot_come_back(ip):
    run(ip, "nl = tf.constant(4)\nip_before = 1")
    ip.user_ns.pop("i", None)
    result, captured = run(ip, "%%tfgraph --show none\ntotal = tf.constant(0)\nfor i in tf.range(nl):\n"
                               "    total += i * i\ntotal")
    assert result.success and int(ip.user_ns["total"]) == 14
    result, _ = run(ip, "i + 1")
    assert not result.success and "i was not written back by the %%tfgraph cell" in str(result.error_in_exec)
    note = next(t for t in output_texts(captured) if "i is not written back" in t)
    assert "line 2" in note and "graph loop" in note


def test_functions_the_cell_defines_read_the_notebooks_names_afterwards(ip):
    run(ip, "xf = tf.constant([1., 2.])")
    result, _ = run(ip, "%%tfgraph --show none\nk = xf * 3\ndef f(a):\n    return a * k\ng = lambda b: b + k")
    assert result.success
    result, _ = run(ip, "f(2.), g(1.)")
    assert result.success and result.result[0].numpy().tolist() == [6.0, 12.0]
    run(ip, "k = 10.")
    assert run(ip, "f(2.)")[0].result == 20.0  # as a plain cell's function: the name is read when called


def test_indexed_slices_of_lists_and_scatter_update(ip):
    result, captured = run(ip, "%%tfgraph --show none\nd = tf.IndexedSlices(values=[[1.]], indices=[0])")
    assert result.success, captured.stdout
    assert captured.stderr == "" and ip.user_ns["d"].values == [[1.0]]
    run(ip, "vs = tf.Variable(tf.zeros((2, 3)))")
    result, captured = run(ip, "%%tfgraph --show none\n"
                               "vs.scatter_update(tf.IndexedSlices(values=[[1., 2., 3.], [4., 5., 6.]], indices=[1, 0]))")
    assert result.success, captured.stdout
    np.testing.assert_array_equal(ip.user_ns["vs"].numpy(), [[4., 5., 6.], [1., 2., 3.]])


def test_python_values_inside_containers_stay_python(ip):
    run(ip, "mx = tf.constant([1.0, 2.0])")
    result, _ = run(ip, "%%tfgraph --show none\nt = (mx * 2, 1, 'a', 2.5)\nd = {'k': mx + 1, 'n': 3}\n[mx, 'tail']")
    assert result.success, result.error_in_exec
    t, d, out = ip.user_ns["t"], ip.user_ns["d"], ip.user_ns["_"]
    assert t[1:] == (1, "a", 2.5) and type(t[1]) is int and t[0].numpy().tolist() == [2.0, 4.0]
    assert d["n"] == 3 and type(d["n"]) is int and d["k"].numpy().tolist() == [2.0, 3.0]
    assert out[1] == "tail" and out[0].numpy().tolist() == [1.0, 2.0]
    result, _ = run(ip, "%%tfgraph --show none\nt = (mx * 2, 1, 'a', 2.5)\nd = {'k': mx + 1, 'n': 3}\n[mx, 'tail']")
    assert ip.user_ns["t"][1:] == (1, "a", 2.5)  # the re-run, which does not trace, too

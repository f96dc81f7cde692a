"""Problems an independent review found, each pinned by a test."""

import re


from .shellutil import run


def test_tfretrace_never_traces_a_function_nobody_called(ip):
    run(ip, "ran = []\n@tf.function\ndef mk():\n    ran.append(1)\n    nv = tf.Variable(1.0)\n    return nv * 2")
    result, _ = run(ip, "%tfretrace")
    assert result.success, result.error_in_exec
    assert ip.user_ns["ran"] == []
    line = next(ln for ln in str(result.result).splitlines() if ln.startswith("mk"))
    assert "not traced yet" in line


def test_a_variable_creating_first_trace_is_not_the_one_drawn(ip):
    run(ip, "lazy = tf.keras.layers.Dense(2, name='lazy')\nlx = tf.ones((1, 3))")
    _, captured = run(ip, "%%tfgraph -n lazyfn\nly = lazy(lx)")
    cell_text = next(o.data["text/plain"] for o in captured.outputs if "image/svg+xml" in o.data)
    _, captured = run(ip, "%tfgraph lazyfn")
    drawn = next(o.data["text/plain"] for o in captured.outputs if "image/svg+xml" in o.data)
    count = re.compile(r"(\d+) ops")
    assert count.search(drawn).group(1) == count.search(cell_text).group(1)
    assert "Initializer" not in next(o.data["image/svg+xml"] for o in captured.outputs if "image/svg+xml" in o.data)


def test_tape_keeps_the_names_of_variables_the_cell_rebinds(ip):
    run(ip, "ra = tf.Variable(2.0)\nrb = tf.Variable(3.0)")
    result, _ = run(ip, "%%tape\nra = ra * 1.0\nrb = rb * 1.0\nz = ra * rb\nz")
    assert result.success
    grads = {k: float(v) for k, v in ip.user_ns["grads"].items()}
    assert grads == {"ra": 3.0, "rb": 2.0}


def test_syntax_errors_are_short(ip):
    for magic in ("%%tfgraph", "%%tape"):
        result, captured = run(ip, f"{magic}\nok = 1\nr = (ok * 2\n")
        assert isinstance(result.error_in_exec, SyntaxError)
        out = captured.stdout
        assert f"{magic} cell, line 2" in out and "r = (ok * 2" in out and "SyntaxError: '(' was never closed" in out
        assert "tfmagic/magics" not in out and "ast.parse" not in out  # no frame of the magics
    result, captured = run(ip, "%%tfgraph\nreturn 5\n")
    assert "%%tfgraph cell, line 1" in captured.stdout and "return 5" in captured.stdout


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

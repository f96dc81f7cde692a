"""What a newcomer meets: values stored as shown, one vocabulary, one meaning per option, a terminal's
text view, a quiet start-up."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from IPython.core.error import UsageError

from .shellutil import run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _texts(captured):
    return [o.data.get("text/plain", "") for o in captured.outputs]


# -- values, not only displays ----------------------------------------------------

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
    assert any("stored: grads, jacobians" in t for t in _texts(captured))


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
        text = "\n".join(_texts(captured))
        if "4.0 * h2" in body:
            assert "hessian d2(z)/d(h2) d(h2): None" in text


def test_a_graph_loop_variable_is_named_when_it_cannot_come_back(ip):
    run(ip, "nl = tf.constant(4)\nip_before = 1")
    ip.user_ns.pop("i", None)
    result, captured = run(ip, "%%tfgraph --show none\ntotal = tf.constant(0)\nfor i in tf.range(nl):\n"
                               "    total += i * i\ntotal")
    assert result.success and int(ip.user_ns["total"]) == 14
    assert "i" not in ip.user_ns
    note = next(t for t in _texts(captured) if "i is not written back" in t)
    assert "line 2" in note and "graph loop" in note


# -- one vocabulary ---------------------------------------------------------------

def test_every_retrace_message_says_retrace(ip):
    run(ip, "va = tf.constant([1., 2.])")
    run(ip, "%%tfgraph --show none\nvb = va * 3")
    run(ip, "va = tf.constant([1., 2., 3.])")
    _, cell = run(ip, "%%tfgraph --show none\nvb = va * 3")
    run(ip, "@tf.function\ndef vf(x):\n    return x + 1\nvf(tf.constant(1.))")
    run(ip, "%tfretrace --watch")
    _, watch = run(ip, "vf(tf.constant([1., 2.]))")
    run(ip, "%tfretrace --off")
    table = ip.run_line_magic("tfretrace", "")
    texts = _texts(cell) + _texts(watch) + [repr(table)]
    assert any("%%tfgraph: retraced: trace 2" in t and "the cell's function has 2 traces" in t for t in texts)
    assert any("tfretrace vf: retraced: trace 2" in t for t in texts)
    assert "why it last retraced" in repr(table)
    assert not any("traced again" in t or "has traced" in t for t in texts)


# -- one meaning per option ---------------------------------------------------------

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


# -- terminals --------------------------------------------------------------------

TERMINAL = """
import sys
from IPython.terminal.interactiveshell import TerminalInteractiveShell
shell = TerminalInteractiveShell.instance(colors="NoColor")
shell.run_line_magic("load_ext", "tfmagic")
for cell in sys.argv[1:]:
    shell.run_cell(cell)
"""


def _terminal(tmp_path, *cells) -> str:
    """What a real terminal IPython prints for ``cells`` (run in a fresh process)."""
    done = subprocess.run([sys.executable, "-c", TERMINAL, *cells], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_terminal_shows_the_graph_as_text_and_how_to_get_the_drawing(tmp_path):
    out = _terminal(tmp_path, "import tensorflow as tf\nt = tf.constant([[1., 2.], [3., 4.]])",
                    "%%tfgraph\nu = t + 10\nv = tf.square(t)\nu @ tf.transpose(v)")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "node type output reads" in lines
    assert "AddV2 + 10.0 AddV2 float32[2,2] t" in lines
    assert "MatMul MatMul float32[2,2] AddV2 + 10.0, Transpose perm: [1, 0]" in lines
    assert "u output float32[2,2] AddV2 + 10.0" in lines and "result output float32[2,2] MatMul" in lines
    assert "-o FILE.svg" in out and "<svg" not in out


def test_show_text_in_a_notebook(ip):
    run(ip, "tt = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show text\nts = tf.reduce_sum(tt * 2.0)")
    assert result.success
    report = next(o.data for o in captured.outputs if "tfmagic-text" in o.data.get("text/html", ""))
    assert "Mul × 2.0" in report["text/plain"] and "ts" in report["text/plain"]
    assert not any("image/svg+xml" in o.data for o in captured.outputs)


# -- a quiet start-up ---------------------------------------------------------------

LOAD = ("from tfmagic.quiet import import_tensorflow\nimport_tensorflow()\nimport tensorflow as tf\n"
        "tf.config.list_physical_devices()\nimport sys\nprint('imported', file=sys.stderr)")


@pytest.mark.parametrize("keep", [False, True], ids=["default", "TFMAGIC_STARTUP_LOG=1"])
def test_loading_before_tensorflow_leaves_out_its_startup_lines(tmp_path, keep):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFMAGIC_STARTUP_LOG")}
    plain = subprocess.run([sys.executable, "-c", "import tensorflow as tf\ntf.config.list_physical_devices()"],
                           capture_output=True, text=True, env=env, timeout=300)
    if keep:
        env["TFMAGIC_STARTUP_LOG"] = "1"
    quiet = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and "imported" in quiet.stderr
    from tfmagic.quiet import is_tensorflow_startup_line

    startup = [line for line in plain.stderr.splitlines() if is_tensorflow_startup_line(line)]
    shown = [line for line in quiet.stderr.splitlines() if is_tensorflow_startup_line(line)]
    assert (len(shown) > 0) == (keep and len(startup) > 0)


def test_a_terminal_gets_no_widget_text_for_a_function_with_several_traces(tmp_path):
    out = _terminal(tmp_path, "import tensorflow as tf\n@tf.function\ndef sq(x):\n    return x * x\n"
                              "sq(tf.ones(2)); sq(tf.ones(3))", "%tfgraph sq")
    assert "sq has 2 traces" in out and "VBox(" not in out and "Dropdown" not in out

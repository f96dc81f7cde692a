"""The graph as text: what a terminal IPython shows for %%tfgraph and %tfgraph (no SVG, no widget text, the
hint to -o FILE.svg), and ``--show text`` in a notebook.

The terminal tests run a real TerminalInteractiveShell in a fresh process.
"""

import os
import subprocess
import sys

from .shellutil import run


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


def test_a_terminal_gets_no_widget_text_for_a_function_with_several_traces(tmp_path):
    out = _terminal(tmp_path, "import tensorflow as tf\n@tf.function\ndef sq(x):\n    return x * x\n"
                              "sq(tf.ones(2)); sq(tf.ones(3))", "%tfgraph sq")
    assert "sq has 2 traces" in out and "VBox(" not in out and "Dropdown" not in out


def test_show_text_in_a_notebook(ip):
    run(ip, "tt = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show text\nts = tf.reduce_sum(tt * 2.0)")
    assert result.success
    report = next(o.data for o in captured.outputs if "tfmagic-text" in o.data.get("text/html", ""))
    assert "Mul × 2.0" in report["text/plain"] and "ts" in report["text/plain"]
    assert not any("image/svg+xml" in o.data for o in captured.outputs)

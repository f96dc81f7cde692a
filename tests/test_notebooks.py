"""Every notebook in notebooks/ runs on a real Jupyter kernel without unexpected errors."""

import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

from .shellutil import keras2

NOTEBOOKS = sorted(pathlib.Path(__file__).resolve().parent.parent.joinpath("notebooks").glob("*.ipynb"))


def _execute(path, workdir):
    nb = nbformat.read(path, as_version=4)
    # Cells tagged "raises-exception" may fail; an error anywhere else fails the run.
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = _execute(path, tmp_path)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors or "raises-exception" in tags, (cell.source, errors)


@pytest.mark.notebook
def test_tour_shows_graphs_retrace_and_a_cell_line(tmp_path):
    nb = _execute(NOTEBOOKS[[p.name for p in NOTEBOOKS].index("tour.ipynb")], tmp_path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    svgs = [o.data["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert len(svgs) >= 3 and all(s.lstrip().startswith("<svg") for s in svgs)
    assert any("MatMul" in s for s in svgs)
    texts = [o.get("data", {}).get("text/plain", "") for o in outputs]
    assert any("retraced: trace 2" in t and "a: float32[2] -> float32[3]" in t for t in texts)
    assert any("tfretrace tf_cube: 2 retraces in this cell (4 traces now):" in t and
               "trace 4 (against trace 3): x: Python int 10 -> 20" in t for t in texts)  # one summary per cell
    assert any("this Python for loop over range() was unrolled" in t for t in texts)
    assert any("what XLA runs" in t and "loop fusion" in t for t in texts)  # --jit --show xla
    assert any("XLA's memory plan:" in t for t in texts)
    assert any("squash: XLA compiled it 4 times" in t and "TensorFlow traced it 2 times" in t for t in texts)
    assert any("w1      scalar     float32  36" in t and "w2      scalar     float32  10" in t for t in texts)
    assert any("c1 is a tensor made before this cell" in t and "add --watch c1" in t for t in texts)
    assert any("tf.stop_gradient at line 1" in t for t in texts)
    assert any("dense/kernel  [3, 2]" in t for t in texts)
    assert any("hessian d2(z)/d(w1) d(w2): shape [] = 75.0" in t for t in texts)
    assert any("NaN/Inf: Exp made the first inf of the forward pass" in t for t in texts)
    assert any("x       scalar     float32  1\n" in t + "\n" and "NaN" not in t for t in texts)
    assert any("gradient_tape/" in s for s in svgs)
    assert any("pinned to /CPU:0: the cell's results: on_cpu on" in t for t in texts)
    assert any("with --soft, TensorFlow places the ops on a device that is there" in t for t in texts)
    assert any("tfdevice: where the cell's ops ran" in t and "__inference_scale" in t for t in texts)
    assert any("folded into a constant (from Const, Const_1)" in t and "never used" in t for t in texts)
    assert any("ag__.if_stmt" in t for t in texts)
    assert any("float32[2] &#45;&gt; float32[3]" in s for s in svgs)  # the retrace drawn as a diff
    assert any("by layer / name scope" in t and "net/wide (backward)" in t for t in texts)
    memory = next(t for t in texts if t.startswith("%%tfgraph --memory: peak"))  # the peak, who holds it, the lines
    assert re.search(r"reached at \S+ \(float32 \[[\d,]+\], line \d: ", memory) and "inputs " in memory, memory
    assert "fc2/kernel 4.0 MiB" in memory and "adam" in memory.splitlines()[0].lower(), memory  # in the update
    for source, words in (("%%tfgraph\nlogits = cnn(images)", ["cnn as its 5 layers", "kernel float32[3,3,1,16]"]),
                          ("%tfgraph train_step", ["6 gradients", "updates 6 variables"]  # Adam's slots:
                           + (["m ×6", "v ×6"] if keras2() else ["momentum", "velocity"])),
                          ("%%tfgraph\nloss = tf.constant(0.)\nfor xb, yb in ds:", ["for xb, yb in ds",
                                                                                 "call train_step"])):
        cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source))
        drawing = next(o.data for o in cell.outputs if "image/svg+xml" in o.get("data", {}))
        width = float(re.search(r'<svg width="([\d.]+)pt"', drawing["image/svg+xml"]).group(1))
        assert width <= 1000 and "to fit a notebook's width" not in drawing["text/plain"], source  # full size
        assert all(w in drawing["text/plain"] + drawing["image/svg+xml"] for w in words), (source, words)
    first_graph_cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%tfgraph\n"))
    kinds = [set(o.get("data", {})) for o in first_graph_cell.outputs]
    widget = next(i for i, k in enumerate(kinds) if "application/vnd.jupyter.widget-view+json" in k)
    static = next(i for i, k in enumerate(kinds) if "image/svg+xml" in k)
    assert widget < static  # the explorer sits above the static SVG that stays in the saved notebook
    errors = [o for o in outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["RetraceLimitError", "TypeError", "InvalidArgumentError",
                                         "InvalidArgumentError"]
    assert "from_numpy is float64" in "\n".join(errors[3].traceback)
    traceback = "\n".join(errors[1].traceback)
    assert "----> 2 d = c + tf.constant(1)" in traceback
    assert "AddV2 got float32 and int32" in traceback and "tf.cast(..., tf.float32)" in traceback
    assert (tmp_path / "tour_graph.svg").read_bytes().lstrip().startswith(b"<?xml")
    # TensorFlow's C++ start-up lines (absl's "I0000 ... cudart_stub.cc:31] ...", or TensorFlow 2.15-2.19's
    # "2026-12-07 18:09:29.29: I .../cudart_stub.cc:31] ...", printed whatever TF_CPP_MIN_LOG_LEVEL says) are
    # left out when %load_ext tfmagic imports TensorFlow
    streams = "\n".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert not re.search(r"(?m)^([IWE]\d{4} \d\d:\d\d:|\d{4}-\d\d-\d\d [\d:.]+: [IWE] )", streams), streams[:2000]
    assert "absl::InitializeLog" not in streams and "cuda" not in streams.lower()


@pytest.mark.notebook
def test_nbconvert_html_has_the_graphs_inline(tmp_path):
    """`jupyter nbconvert --to html --execute notebooks/tour.ipynb`: graphs as inline SVG, not images."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(NOTEBOOKS[0].parent / "tour.ipynb"),
         "--output-dir", str(tmp_path), "--ExecutePreprocessor.kernel_name=python3"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "tour.html").read_text()
    assert page.count('<div class="tfmagic-graph"') >= 5  # every drawing of the tour
    assert page.count("<svg") >= 5 and 'class="node"' in page
    assert '<img src="data:image/svg+xml' not in page  # (the template's CSS has SVG icons as data URIs)


@pytest.mark.notebook
def test_ipythons_display_in_a_graph_cell_runs_while_tracing_and_says_so(tmp_path):
    """On a kernel, AutoGraph converted IPython's clear_output down to the kernel's socket: "FunctionScope is not
    JSON serializable", with no line. It is called as it is, and the note says it runs only while tracing."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext tfmagic\nimport tensorflow as tf\nfrom IPython import display\nloss = tf.constant(0.25)",
        "%%tfgraph --show none\ndef show(v):\n    display.clear_output(wait=True)\n    return v * 2\ny = show(loss)",
        "float(y)")]
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = ["".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in nb.cells[1].outputs]
    assert not any(o.output_type == "error" for c in nb.cells for o in c.outputs)
    assert any("line 2: display.clear_output(wait=True)\n  display.clear_output() runs only while TensorFlow traces"
               in t for t in texts), texts
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "0.5"

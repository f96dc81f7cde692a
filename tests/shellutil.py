"""Helpers for tests that drive a real IPython shell: run a cell, and read what it showed.

A cell's output is what ``capture_output`` caught: ``captured.stdout`` / ``captured.stderr`` (what it
printed, tracebacks included) and ``captured.outputs`` (each rich output a cell displayed, a MIME bundle:
its ``text/plain`` is what a terminal shows; a drawing has ``image/svg+xml`` beside it).  Every test reads
them through these helpers, so a change in how tfmagic shows things is fixed in one place.
"""

import re

#: A notebook's output area shows about this many points at full scale.
NOTEBOOK_WIDTH = 1000

#: The heading of %%tape's gradient table.
TAPE_TABLE = "%%tape: gradients"


def keras2() -> bool:
    """Whether this process's Keras is Keras 2 (TensorFlow 2.15's, or tf-keras under TF_USE_LEGACY_KERAS=1),
    which names and draws some things otherwise than Keras 3 (issue 27): a test says what each shows."""
    import tensorflow as tf

    return not hasattr(tf.keras, "ops")  # keras.ops is Keras 3's


def run(shell, source):
    """Run a cell in the shell, capturing its outputs; return (result, captured)."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = shell.run_cell(source)
    return result, captured


def mimetypes(captured):
    """The MIME types of every rich output a cell displayed."""
    return [key for output in captured.outputs for key in output.data]


def output_texts(captured, drawings: bool = True) -> list[str]:
    """The plain text of each rich output a cell displayed, in order; ``drawings=False`` leaves out the text
    of drawings (outputs with an SVG), keeping tables and notes."""
    return [o.data.get("text/plain", "") for o in captured.outputs if drawings or "image/svg+xml" not in o.data]


def output_text(captured, drawings: bool = True, printed: bool = False) -> str:
    """:func:`output_texts` as one string, one output a line; ``printed=True`` puts what the cell printed
    (stdout, then stderr) first."""
    parts = [captured.stdout, captured.stderr] if printed else []
    return "\n".join(parts + output_texts(captured, drawings))


def output_with(captured, containing: str) -> str:
    """The plain text of the first rich output whose text holds ``containing`` (a table by its heading)."""
    for text in output_texts(captured):
        if containing in text:
            return text
    raise AssertionError(f"no output holds {containing!r}; the outputs: {output_texts(captured)}")


def tape_table(captured) -> str:
    """%%tape's gradient table, as its text shows it."""
    return output_with(captured, TAPE_TABLE)


def magic_notes(captured, magic: str = "%%tfgraph") -> list[str]:
    """The notes a magic gave: outputs whose text starts with ``%%tfgraph:`` (or ``magic``'s name)."""
    return [text for text in output_texts(captured) if text.startswith(f"{magic}:")]


def drawing_data(captured) -> dict:
    """The MIME bundle of the first drawing a cell displayed (``image/svg+xml``, ``text/plain``, ...)."""
    for output in captured.outputs:
        if "image/svg+xml" in output.data:
            return output.data
    raise AssertionError(f"no drawing shown; the outputs: {output_texts(captured)}")


def drawing_svg(captured) -> str:
    """The SVG of the first drawing a cell displayed."""
    return drawing_data(captured)["image/svg+xml"]


def svg_width(svg: str) -> float:
    """An SVG's width in points, as it is shown."""
    return float(re.search(r'<svg width="([\d.]+)pt"', svg).group(1))


def user_names(ip) -> dict:
    """Every user-visible name and the identity of its value (IPython's own In/Out/_ names aside)."""
    return {k: id(v) for k, v in ip.user_ns.items() if not k.startswith("_") and k not in ("In", "Out")}


# ---------------------------------------------------------------------------
# Differential runs: the same cell plain and under a magic


def comparable(value):
    """A comparable form of what a cell left: tensors and variables as arrays, containers item by item."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    if value is None:
        return None
    import numpy as np

    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def same_values(a, b) -> bool:
    """Whether two :func:`comparable` forms hold the same values (floats to float32's precision)."""
    import numpy as np

    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    if a.dtype.kind not in "fciub" or b.dtype.kind not in "fciub":
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))


def differential(ip, setup: str, cell: str, names: tuple, options: str = "--show none", times: int = 1):
    """Run ``cell`` plain and under %%tfgraph (each after ``setup``); assert equal ``names``; the magic's output."""
    values = []
    for prefix in ("", f"%%tfgraph {options}\n"):
        result, captured = run(ip, setup)
        assert result.success, result.error_in_exec
        for _ in range(times):
            result, captured = run(ip, prefix + cell)
            assert result.success, (prefix, result.error_in_exec, captured.stdout)
        values.append({name: comparable(ip.user_ns[name]) for name in names})
    plain, graph = values
    for name in names:
        assert same_values(plain[name], graph[name]), f"{name}: plain {plain[name]}, %%tfgraph {graph[name]}"
        assert plain[name] is not None and not (isinstance(plain[name], list) and None in plain[name])
    return captured

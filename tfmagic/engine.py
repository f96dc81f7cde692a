"""The Graphviz engine: DOT -> SVG/PNG/PDF in this process, within a time budget.

The engine runs inside this process through the ``pygraphviz`` wheel, which bundles it: no system
``dot`` is needed.  A graph is laid out once and rendered to every format asked for; a large layout
runs in a child process and falls back when it takes longer than :data:`LAYOUT_BUDGET`.  The engine's
own chatter on file descriptor 2 (fontconfig warnings about the system's configuration files) is kept
out of the user's cell; anything else it says is passed on.  ``-o FILE``'s formats are checked here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

from tfmagic.errors import GraphvizMissingError, OptionError, RenderError

#: The formats ``-o FILE`` writes, by file extension.
FILE_FORMATS = ("svg", "png", "pdf", "dot")

_NOISE = ("Fontconfig warning", "Fontconfig error", "layout may take a long time")


def _engine_stderr():
    """What the C engine writes to fd 2, less known noise (fontconfig's warnings about the system's files)."""
    from tfmagic.quiet import filtered_fd2

    return filtered_fd2(lambda line: any(n in line for n in _NOISE))


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector paused while a drawing's model is built.

    Building a model allocates one object per op and edge; each allocation burst sets off collections
    that walk every object TensorFlow keeps (millions): for ResNet-50's training step they took most of
    the time (0.55 s of model and view against 0.17 s with the collector paused). Nothing built here
    is cyclic garbage, and the collector runs again as soon as the model is done.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def render_dot(dot_source: str, formats: tuple[str, ...] = ("svg",), prog: str = "dot") -> dict[str, bytes]:
    """Lay ``dot_source`` out once and render it to each of ``formats``; the same drawing is not laid out twice.

    The last few drawings are remembered by their DOT source (the graph and the view), so re-running a
    cell that traced nothing new, or drawing the same trace again, costs no layout.

    Args:
        dot_source: a DOT graph.
        formats: Graphviz output formats (``svg``, ``png``, ``pdf``, ...); ``dot`` returns the source.
        prog: the layout engine.

    Returns:
        The rendered bytes by format.

    Raises:
        GraphvizMissingError: the ``pygraphviz`` wheel is not installed.
        RenderError: the engine refused the graph.
    """
    return dict(_render_dot_cached(dot_source, tuple(formats), prog))


#: Drawings with more edges than this are laid out in a child process, within :data:`LAYOUT_BUDGET`.
LARGE_LAYOUT_EDGES = 1500

#: Seconds a large layout may take before the drawing falls back to a coarser view.
LAYOUT_BUDGET = 30.0

_CHILD_LAYOUT = """
import pickle, sys
from tfmagic.engine import _render_dot
dot, formats, prog = pickle.load(sys.stdin.buffer)
sys.stdout.buffer.write(pickle.dumps(_render_dot(dot, formats, prog)))
"""


class LayoutTimeout(RenderError):
    """Graphviz did not lay a drawing out within its time budget."""


def render_dot_within(dot_source: str, formats: tuple[str, ...], budget: float = LAYOUT_BUDGET,
                      prog: str = "dot") -> dict[str, bytes]:
    """:func:`render_dot`, but a large layout runs in a child process that is stopped after ``budget`` s.

    Graphviz's layout cannot be interrupted inside the kernel; in a child process it can, so a drawing
    that would take minutes never hangs the kernel.

    Raises:
        LayoutTimeout: the layout did not finish in time.
    """
    if dot_source.count("->") <= LARGE_LAYOUT_EDGES:
        return render_dot(dot_source, formats, prog)
    import pickle
    import subprocess

    try:
        done = subprocess.run([sys.executable, "-c", _CHILD_LAYOUT], input=pickle.dumps((dot_source, formats, prog)),
                              capture_output=True, timeout=budget, check=True)
    except subprocess.TimeoutExpired as e:
        raise LayoutTimeout(f"the layout took more than {budget:g} s") from e
    except subprocess.CalledProcessError as e:
        raise RenderError(f"Graphviz failed: {e.stderr.decode('utf-8', 'replace').strip()[-300:]}") from e
    return pickle.loads(done.stdout)


@functools.lru_cache(maxsize=16)
def _render_dot_cached(dot_source: str, formats: tuple[str, ...], prog: str) -> tuple[tuple[str, bytes], ...]:
    return tuple(_render_dot(dot_source, formats, prog).items())


def _render_dot(dot_source: str, formats: tuple[str, ...], prog: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if "dot" in formats:
        out["dot"] = dot_source.encode("utf-8")
    engine_formats = [f for f in formats if f != "dot"]
    if not engine_formats:
        return out
    try:
        import pygraphviz
        from pygraphviz import graphviz as gv
    except ImportError as e:
        raise GraphvizMissingError(
            "drawing needs the Graphviz engine from the pygraphviz wheel: pip install pygraphviz"
        ) from e
    with _engine_stderr():
        try:
            graph = pygraphviz.AGraph(string=dot_source)
        except Exception as e:  # a malformed DOT source: tfmagic's bug, reported as such
            raise RenderError(f"Graphviz could not read the drawing: {e}") from e
        gvc = gv.gvContextWithBuiltins()
        try:
            if gv.gvLayout(gvc, graph.handle, prog.encode()):
                raise RenderError(f"Graphviz could not lay the graph out with {prog!r}")
            try:
                for fmt in engine_formats:
                    err, data = gv.gvRenderData(gvc, graph.handle, fmt.encode())
                    if err:
                        raise RenderError(f"Graphviz could not render format {fmt!r}")
                    out[fmt] = data
            finally:
                gv.gvFreeLayout(gvc, graph.handle)
        finally:
            gv.gvFreeContext(gvc)
    return out


def file_format(path: str) -> str:
    """The format ``-o FILE`` writes, from its extension.

    >>> file_format("graph.PNG")
    'png'
    >>> file_format("graph.gif")
    Traceback (most recent call last):
    ...
    tfmagic.errors.OptionError: cannot write 'graph.gif': the file's extension must be one of .svg, .png, .pdf, .dot
    """
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FILE_FORMATS:
        raise OptionError(
            f"cannot write {path!r}: the file's extension must be one of " + ", ".join("." + f for f in FILE_FORMATS)
        )
    return ext


def check_writable(path: str) -> str:
    """Check before running a cell that ``-o FILE`` can be written; return its format."""
    fmt = file_format(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OptionError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise OptionError(f"cannot write {path!r}: it is a folder")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OptionError(f"cannot write {path!r}: permission denied")
    return fmt

"""DOT -> SVG/PNG/PDF in-process, and the display objects the magics show.

The Graphviz engine runs inside this process through the ``pygraphviz`` wheel,
which bundles it: no system ``dot`` is needed.  A graph is laid out once and
rendered to every format asked for.  The engine's own chatter on file
descriptor 2 (fontconfig warnings about the system's configuration files) is
kept out of the user's cell; anything else it says is passed on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from tfmagic.errors import GraphvizMissingError, OptionError, RenderError

#: Notebook frontends right-align table cells; tfmagic's tables read left to right.
STYLE_LEFT = " style='text-align:left'"

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
from tfmagic.render import _render_dot
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


def _bundle(formats: dict, include=None, exclude=None) -> dict:
    """A mimebundle from ``{mimetype: function making it}``: only the types asked for are made."""
    wanted = set(include) if include is not None else set(formats)
    wanted -= set(exclude or [])
    return {mime: make() for mime, make in formats.items() if mime in wanted}


@dataclass
class GraphReport:
    """A drawn graph, shown inline: SVG for notebooks, a text summary for terminals.

    Attributes:
        title: what was drawn (``%%tfgraph cell, trace 2``).
        summary: one line of counts (ops by kind).
        svg: the SVG drawing (a static image that survives nbconvert and GitHub).
        dot: the DOT source it was laid out from.
        notes: lines shown above the drawing in text form.
    """

    title: str
    summary: str
    svg: str
    dot: str
    notes: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # the drawing as text (text_view): what a terminal shows
    hint: str = ""  # the text's last line: where the drawing is (DRAWING_HINT unless a file was written)

    def _repr_mimebundle_(self, include=None, exclude=None):
        # Frontends show HTML before SVG: the drawing sits inline (JupyterLab would show an SVG
        # output as an <img>), so its nodes are part of the page, with their tooltips.
        return _bundle({"image/svg+xml": lambda: self.svg,
                        "text/html": lambda: f'<div class="tfmagic-graph" style="overflow:auto">{self.svg}</div>',
                        "text/plain": self._text}, include, exclude)

    def _text(self) -> str:
        hint = [self.hint or DRAWING_HINT] if self.text else []
        return "\n".join([f"{self.title}: {self.summary}", *self.notes, *self.text, *hint])

    def __repr__(self) -> str:
        return f"<GraphReport {self._text()!r}>"


#: The text view's last line: where the drawing is, for a terminal.
DRAWING_HINT = "the drawing: -o FILE.svg (or .png, .pdf) writes it to a file; a notebook shows it inline"

#: How many lines the text view of a graph holds.
TEXT_VIEW_LINES = 80


def text_view(model, limit: int = TEXT_VIEW_LINES) -> list[str]:
    """A graph model as text, one line per node in the order TensorFlow made them, as Keras' ``summary()``:
    its name (as the drawing labels it), its type, its output's dtype and shape, and what it reads.
    The bodies of loops, branches and calls follow their op, indented."""
    rows: list[list[str]] = []

    def walk(graph, indent: str) -> None:
        from tfmagic.dot import _readable_label

        names = {}
        for name, op in graph.ops.items():
            label = _readable_label(op).split("\n")
            shape = op.outputs[0].label if op.outputs else ""
            label = [part for part in label if part != shape] or [name]
            names[name] = label[0] if op.kind in ("input", "output", "variable") else " ".join(label)
        reads: dict[str, list[tuple[int, str]]] = {}
        for edge in graph.edges:
            if not edge.control and edge.src in names:
                reads.setdefault(edge.dst, []).append((edge.dst_index, names[edge.src]))
        for name, op in graph.ops.items():
            kind = op.type if op.kind in ("op", "control_flow", "backward", "scope") else op.kind
            inputs = ", ".join(dict.fromkeys(n for _, n in sorted(reads.get(name, []))))
            rows.append([indent + names[name], kind, op.outputs[0].label if op.outputs else "", inputs])
            for label, sub in op.subgraphs:
                rows.append([f"{indent}  {op.type} {label}:", "", "", ""])
                walk(sub, indent + "    ")

    walk(model, "")
    shown, left = rows[:limit], len(rows) - limit
    headers = ["node", "type", "output", "reads"]
    widths = [min(40, max([len(h)] + [len(r[i]) for r in shown])) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in shown]
    if left > 0:
        lines.append(f"... {left} more nodes (the drawing has them all)")
    return lines


@dataclass
class TextReport:
    """Text shown as text in a terminal and as preformatted text in a notebook (``--show text``)."""

    title: str
    lines: list[str]

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = "\n".join([self.title, *self.lines])
        return _bundle({"text/plain": lambda: text,
                        "text/html": lambda: f"<pre class='tfmagic-text'>{html.escape(text)}</pre>"}, include, exclude)

    def __repr__(self) -> str:
        return "\n".join([self.title, *self.lines])


@dataclass
class Notice:
    """A short message shown in the cell's output (a retrace, a note): plain text and HTML."""

    text: str
    level: str = "info"  # "info" or "warning"

    def _repr_mimebundle_(self, include=None, exclude=None):
        colour = "#8a5a00" if self.level == "warning" else "#1f5fbf"
        return _bundle({"text/plain": lambda: self.text,
                        "text/html": lambda: (f'<div style="font-family:monospace;white-space:pre-wrap;color:{colour};'
                                              f'border-left:3px solid {colour};padding-left:6px">'
                                              f'{html.escape(self.text)}</div>')}, include, exclude)

    def __str__(self) -> str:
        return self.text


def _svg_element(svg_bytes: bytes) -> str:
    """The ``<svg>`` element alone (no XML prolog), ready to sit inline in HTML."""
    text = svg_bytes.decode("utf-8")
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def summarize(model) -> str:
    """One line of counts for a graph model: ``12 ops (2 inputs, 1 variable, ...)``."""
    parts = []
    for kind, word in (("input", "input"), ("variable", "variable"), ("constant", "constant"),
                       ("output", "output"), ("control_flow", "control-flow op")):
        n = model.count(kind)
        if n:
            parts.append(f"{n} {word}{'s' if n != 1 else ''}")
    text = f"{len(model.ops)} ops"
    if parts:
        text += " (" + ", ".join(parts) + ")"
    inner = model.total_ops() - len(model.ops)
    if inner:
        text += f", {inner} more in function bodies"
    return text


@dataclass(frozen=True)
class DrawOptions:
    """How every magic and the explorer draw a graph: the view, how much of it, and the file ``-o`` writes.

    Attributes:
        ops: ``readable`` (the user's program: see ``readable.py``) or ``all`` (every op).
        max_nodes: the most nodes to draw (larger graphs are collapsed by scope, then cut, with a note).
        depth: draw collapsed by name scope, this many levels deep.
        expand: name scopes (globs) to open one level further than ``depth``.
        budget: seconds a large layout may take (:data:`LAYOUT_BUDGET` by default).
        output: ``-o FILE``: the drawing is also written there, in the format its extension names.
    """

    ops: str = "readable"
    max_nodes: int | None = None
    depth: int | None = None
    expand: tuple[str, ...] = ()
    budget: float | None = None
    output: str | None = None

    @classmethod
    def from_args(cls, args, output: bool = True) -> DrawOptions:
        """The options a magic's parsed arguments give (``--ops``, ``--max-nodes``, ``--depth``, ``--expand``,
        ``-o``; those a magic lacks keep their defaults); ``output=False`` leaves ``-o`` out."""
        return cls(ops=getattr(args, "ops", "readable"), max_nodes=getattr(args, "max_nodes", None),
                   depth=getattr(args, "depth", None), expand=tuple(getattr(args, "expand", None) or ()),
                   output=getattr(args, "output", None) if output else None)

    @property
    def formats(self) -> tuple[str, ...]:
        """What to render besides the inline SVG: the format of ``-o FILE``."""
        return (file_format(self.output),) if self.output else ()


def draw_graph(tf_graph, title: str, options: DrawOptions = DrawOptions(), *, labels: dict[str, str] | None = None,
               variable_names: dict[int, str] | None = None, profile=None,
               groups: dict[str, str] | None = None) -> tuple[GraphReport, dict[str, bytes]]:
    """Draw a traced graph: the inline report and the rendered bytes of SVG and of ``options.output``'s format
    (written to that file too).

    Args:
        tf_graph: the ``FuncGraph`` to draw.
        title: the drawing's caption.
        options: the view and how much of it (:class:`DrawOptions`).
        labels: the user's names of output ops (``naming.output_names``).
        variable_names: the user's names of variables by ``id`` of their handle (``naming.VariableNames``).
        profile: a ``profile.Profile`` of the function: nodes filled by their share of the op time.
        groups: op name -> the XLA kernel that computes it (``xla.fusion_groups``): drawn as boxes.

    Returns:
        ``(report, rendered)``.

    Raises:
        RenderError: Graphviz could not lay the drawing out.
        OSError: ``options.output`` could not be written.
    """
    from tfmagic.graph import build_graph_model

    with gc_paused():
        model = build_graph_model(tf_graph, labels=labels, variable_names=variable_names)
    return draw_model(model, title, options, profile=profile, groups=groups)


def draw_model(model, title: str, options: DrawOptions = DrawOptions(), *, gradient: bool = False, profile=None,
               groups: dict | None = None) -> tuple[GraphReport, dict[str, bytes]]:
    """Draw a graph model (see :func:`draw_graph`); ``gradient`` adds the gradient drawing's legend.

    The readable view (``ops="readable"``) is drawn from :func:`tfmagic.readable.readable_view`, with a
    line saying what it hid; large graphs are then collapsed by name scope as in every view.  A large
    layout gets ``options.budget`` seconds (:data:`LAYOUT_BUDGET` by default); past that, the drawing falls
    back to one node per top-level name scope, with a note.  With a ``profile`` (``profile.Profile``) each
    node is filled by its share of the measured op time (a collapsed scope sums its ops).
    """
    budget = LAYOUT_BUDGET if options.budget is None else options.budget
    ops, formats = options.ops, options.formats
    from tfmagic.dot import DotOptions, build_dot
    from tfmagic.graph import DEFAULT_MAX_NODES, fit

    with gc_paused():
        summary, total, model, view, notes, hidden = _view(model, options)
        caption = "\n".join([title, *notes])
        heat, times = _heat(view, profile) if profile is not None else (None, None)
        from tfmagic.dot import layer_names

        layers = layer_names(model) if ops == "readable" else None  # the collapsed view has no variables to read
        dot_options = DotOptions(title=caption, gradient=gradient, readable=ops == "readable", heat=heat,
                                 times=times, layers=layers, groups=groups)
        dot_source = build_dot(view, dot_options)
    wanted = tuple(dict.fromkeys(("svg", *formats)))
    try:
        rendered = render_dot_within(dot_source, wanted, budget)
    except LayoutTimeout as e:  # too slow to lay out: one node per top-level scope, which is quick
        view, _ = fit(model, DEFAULT_MAX_NODES, 1, ())
        note = (f"{total} ops in {len(view.ops)} nodes, one per top-level name scope: {e} for the view "
                "asked for")
        notes = [line for line in (note, hidden) if line]
        dot_source = build_dot(view, dataclasses.replace(dot_options, title="\n".join([title, *notes])))
        rendered = render_dot_within(dot_source, wanted)
    svg, scaled = fit_width(_svg_element(rendered["svg"]))
    report = GraphReport(title, summary, svg, dot_source, notes + ([scaled] if scaled else []), text_view(view))
    if options.output:
        with open(options.output, "wb") as f:
            f.write(rendered[formats[0]])
    return report, rendered


#: A notebook's output area shows about this many points at full scale.
NOTEBOOK_WIDTH = 1000


def fit_width(svg: str, width: float = NOTEBOOK_WIDTH) -> tuple[str, str]:
    """An inline SVG wider than a notebook shown smaller (its viewBox keeps the drawing), and a note saying so.

    The files ``-o`` writes keep the full size.

    >>> fit_width('<svg width="2000pt" height="100pt" viewBox="0 0 2000 100">')
    ('<svg width="1000pt" height="50pt" viewBox="0 0 2000 100">', "drawn at 50% to fit a notebook's width (2,000 pt wide at full size; -o FILE.svg keeps it; --depth N or --max-nodes N draws less)")
    """
    match = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if match is None or float(match.group(1)) <= width:
        return svg, ""
    full, height = float(match.group(1)), float(match.group(2))
    scale = width / full
    svg = svg.replace(match.group(0), f'<svg width="{width:.0f}pt" height="{height * scale:.0f}pt"', 1)
    return svg, (f"drawn at {scale:.0%} to fit a notebook's width ({full:,.0f} pt wide at full size; -o FILE.svg "
                 "keeps it; --depth N or --max-nodes N draws less)")


def _view(model, options: DrawOptions):
    """What a drawing of ``model`` shows: (summary, TensorFlow's op count, the model in the view asked for,
    that model fitted to ``options.max_nodes``, the notes under it, the hidden line)."""
    from tfmagic.graph import DEFAULT_MAX_NODES, fit

    summary = summarize(model)
    total = model.total_ops()
    hidden = ""
    if options.ops == "readable":
        from tfmagic.readable import readable_view

        model, hidden_ops = readable_view(model)
        hidden = hidden_ops.line()
    view, note = fit(model, options.max_nodes or DEFAULT_MAX_NODES, options.depth, options.expand, total)
    return summary, total, model, view, [line for line in (note, hidden) if line], hidden


def describe_graph(tf_graph, title: str, options: DrawOptions = DrawOptions(), *,
                   labels: dict[str, str] | None = None, variable_names: dict[int, str] | None = None) -> TextReport:
    """The graph :func:`draw_graph` would draw, as text (``--show text``): no layout, no Graphviz."""
    from tfmagic.graph import build_graph_model

    with gc_paused():
        model = build_graph_model(tf_graph, labels=labels, variable_names=variable_names)
        summary, _, _, view, notes, _ = _view(model, options)
    return TextReport(f"{title}: {summary}", [*notes, *text_view(view)])


def _heat(view, profile) -> tuple[dict[str, float], dict[str, str]]:
    """Each drawn node's share of the profiled op time and its label text (a collapsed scope sums its ops)."""
    micros = {op.name: op.total_us for op in profile.ops}
    whole = profile.op_us or 1.0
    heat, times = {}, {}
    for name, op in view.ops.items():
        names = [k for k in micros if k.startswith(name + "/")] if op.kind == "scope" else []
        names += [name] if name in micros else []
        if names:
            spent = sum(micros[k] for k in names)
            heat[name] = spent / whole
            times[name] = f"{spent / whole:.0%} · {format_us(spent)}"
    return heat, times


def format_us(micros: float) -> str:
    """``850 us``, ``12.3 ms``, ``1.20 s``.

    >>> format_us(850.4), format_us(12345), format_us(1.2e6)
    ('850 us', '12.3 ms', '1.20 s')
    """
    if micros >= 1e6:
        return f"{micros / 1e6:.2f} s"
    if micros >= 1e3:
        return f"{micros / 1e3:.1f} ms"
    return f"{micros:.0f} us"


class TextAndHtml:
    """The base of tfmagic's tables and reports: aligned text for a terminal (``_text``), HTML for a notebook
    (``_html``); IPython asks for the one it shows, and ``repr`` is the text."""

    def _text(self) -> str:
        raise NotImplementedError

    def _html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, include=None, exclude=None):
        return _bundle({"text/plain": self._text, "text/html": self._html}, include, exclude)

    def __repr__(self) -> str:
        return self._text()


@dataclass(repr=False)
class ProfileReport(TextAndHtml):
    """``--profile``'s tables: the ops that take the time, and the same by Keras layer or name scope.

    Attributes:
        title: what was profiled.
        profile: the ``profile.Profile``.
        shapes: op name -> its outputs' dtype and shape (from the traced graph).
        top: how many ops the table lists.
    """

    title: str
    profile: Any
    shapes: dict[str, str] = field(default_factory=dict)
    top: int = 15

    def _summary(self) -> list[str]:
        p = self.profile
        outside = p.wall_us - p.op_us
        lines = [f"{self.title}: {p.steps} calls measured (after one warm-up call); per call: wall "
                 f"{format_us(p.wall_us)}, ops {format_us(p.op_us)}"
                 + (f", outside ops (dispatch, Python, copies) {format_us(outside)} ({outside / p.wall_us:.0%})"
                    if outside > 0 and p.wall_us else "")
                 + f"; ops ran on {', '.join(p.devices()) or 'no device'}"]
        if p.op_us > p.wall_us:
            lines.append("the ops ran in parallel: their times add up to more than the wall time")
        if not p.ops:
            lines.append("no op ran in the measured calls: Grappler folded the graph to constants, or the calls "
                         "had nothing to do (a loop run zero times)")
        return lines

    def _rows(self):
        p = self.profile
        for op in p.ops[:self.top]:
            name = op.name if len(op.name) <= 40 else ".../" + "/".join(op.name.split("/")[-2:])[-36:]
            yield [name, op.type, op.group, f"{op.calls:g}", format_us(op.total_us), format_us(op.mean_us),
                   f"{p.share(op):.1%}", self.shapes.get(op.name, ""), op.device]

    _HEADERS = ["op", "type", "layer / scope", "calls", "total", "mean", "share", "output", "device"]

    def _group_rows(self):
        p = self.profile
        whole = p.op_us or 1.0
        return [[group, format_us(us), f"{us / whole:.1%}", str(count)] for group, us, count in p.groups[:self.top]]

    def _text(self) -> str:
        table = Table("slowest ops (per call)", self._HEADERS, list(self._rows()))._text()
        groups = Table("by layer / name scope", ["layer / scope", "total", "share", "ops"], self._group_rows())._text()
        more = len(self.profile.ops) - self.top
        tail = [f"... and {more} more ops"] if more > 0 else []
        return "\n".join(self._summary() + [table, *tail, groups])

    def _html(self) -> str:
        top = Table("slowest ops (per call)", self._HEADERS, list(self._rows()))._html()
        groups = Table("by layer / name scope", ["layer / scope", "total", "share", "ops"], self._group_rows())._html()
        head = "".join(f"<div>{html.escape(line)}</div>" for line in self._summary())
        return f"<div class='tfmagic-profile'>{head}{top}{groups}</div>"


@dataclass(repr=False)
class RetraceTable(TextAndHtml):
    """``%tfretrace``'s table: every tf.function, its trace count and why it last retraced.

    Attributes:
        rows: ``(name, traces, last reason, fix)`` per function.
    """

    rows: list[tuple[str, int, str, str]]

    def _text(self) -> str:
        if not self.rows:
            return "no tf.function in the namespace"
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'function':<{width}}  traces  why it last retraced"]
        for name, count, reason, fix in self.rows:
            lines.append(f"{name:<{width}}  {count:>6}  {reason}")
            if fix:
                lines.append(f"{'':<{width}}          fix: {fix}")
        return "\n".join(lines)

    def _html(self) -> str:
        if not self.rows:
            return "<p>no tf.function in the namespace</p>"
        cells = "".join(
            f"<tr><td style='text-align:left'><code>{html.escape(name)}</code></td>"
            f"<td style='text-align:right'>{count}</td><td style='text-align:left'>{html.escape(reason)}</td>"
            f"<td style='text-align:left'>{html.escape(fix)}</td></tr>"
            for name, count, reason, fix in self.rows)
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("function", "traces", "why it last retraced",
                                                                          "fix"))
        return f"<table class='tfmagic-retrace'><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"


def make_trace_menu(labels: list[str], reports: list[GraphReport]):
    """A menu that draws another trace below it (ipywidgets), or ``None`` where ipywidgets is missing.

    The trace drawn first stays a plain static output (nbconvert, GitHub and VS Code show it without a
    kernel); the menu's drawings go into an ``Output`` widget, which a widget frontend updates live.
    """
    try:
        import ipywidgets
    except ImportError:
        return None
    menu = ipywidgets.Dropdown(options=[("another trace...", -1)] + [(label, i) for i, label in enumerate(labels)],
                               value=-1, description="draw", layout=ipywidgets.Layout(width="max-content"))
    view = ipywidgets.Output()

    def show(change):
        view.clear_output(wait=True)
        if change["new"] >= 0:
            with view:
                from IPython.display import display

                display(reports[change["new"]])

    menu.observe(show, names="value")
    return ipywidgets.VBox([menu, view])


def _small_values(tensor, limit: int = 9) -> str:
    """`` = [[2, 0], [0, 4]]`` for a tensor of at most ``limit`` values, else nothing."""
    values = tensor.numpy() if hasattr(tensor, "numpy") else tensor
    if getattr(values, "size", limit + 1) > limit:
        return ""
    return " = " + str(values.round(6).tolist() if hasattr(values, "round") else values)


@dataclass(repr=False)
class TapeReport(TextAndHtml):
    """``%%tape``'s table: one row per source with its gradient, and why a gradient is None or not finite."""

    run: Any
    stored: tuple[str, ...] = ("grads",)  # the names the magic stored the values under

    def _rows(self):
        for source in self.run.sources:
            yield source.name, source.shape, source.dtype, source.summary(), source.cause, source.fix

    def _extras(self) -> list[str]:
        run = self.run
        lines = []
        if run.nonfinite is not None:
            lines.append(f"NaN/Inf: {run.nonfinite.text}")
            lines.append(f"  fix: {run.nonfinite.fix}")
        elif any(not s.finite for s in run.sources):
            lines.append("NaN/Inf: a gradient is not finite")
        for name, jac in run.jacobians.items():
            lines.append(f"jacobian d({run.target_name})/d({name}): shape {list(jac.shape)}{_small_values(jac)}")
        for (a, b), h in run.hessians.items():
            if h is None:  # as nested plain tapes give it
                lines.append(f"hessian d2({run.target_name})/d({a}) d({b}): None")
            else:
                lines.append(f"hessian d2({run.target_name})/d({a}) d({b}): shape {list(h.shape)}{_small_values(h)}")
        if self.stored:
            lines.append("stored: " + ", ".join(self.stored))
        return lines

    def _text(self) -> str:
        rows = list(self._rows())
        width = max([len(r[0]) for r in rows] + [6])
        lines = [f"%%tape: gradients of {self.run.target_name}",
                 f"{'source':<{width}}  {'shape':<10} {'dtype':<8} gradient"]
        for name, shape, dtype, summary, cause, fix in rows:
            lines.append(f"{name:<{width}}  {shape:<10} {dtype:<8} {summary}")
            if cause:
                lines.append(f"{'':<{width}}  why: {cause}")
            if fix:
                lines.append(f"{'':<{width}}  fix: {fix}")
        return "\n".join(lines + self._extras())

    def _html(self) -> str:
        body = []
        for name, shape, dtype, summary, cause, fix in self._rows():
            note = ""
            if cause:
                note = f"<br><b>why</b>: {html.escape(cause)}" + (f"<br><b>fix</b>: {html.escape(fix)}" if fix else "")
            colour = (" style='text-align:left;color:#b71c1c'"
                      if summary == "None" or "nan" in summary or "inf" in summary else "")
            body.append(f"<tr><td style='text-align:left'><code>{html.escape(name)}</code></td>"
                        f"<td style='text-align:left'>{html.escape(shape)}</td>"
                        f"<td style='text-align:left'>{html.escape(dtype)}</td>"
                        f"<td{colour or STYLE_LEFT}><code>{html.escape(summary)}</code>{note}</td></tr>")
        extras = "".join(f"<div>{html.escape(line)}</div>" for line in self._extras())
        return (f"<div class='tfmagic-tape'><div><b>%%tape</b>: gradients of "
                f"<code>{html.escape(self.run.target_name)}</code></div>"
                "<table><thead><tr>" + "".join(f"<th{STYLE_LEFT}>{h}</th>" for h in ("source", "shape", "dtype",
                                                                                     "gradient")) + "</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>{extras}</div>")


@dataclass(repr=False)
class Table(TextAndHtml):
    """A small table shown as HTML in a notebook and as aligned text in a terminal."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def _text(self) -> str:
        widths = [max([len(h)] + [len(str(r[i])) for r in self.rows]) for i, h in enumerate(self.headers)]
        lines = [self.title, "  ".join(h.ljust(w) for h, w in zip(self.headers, widths)).rstrip()]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in self.rows]
        return "\n".join(lines + self.notes)

    def _html(self) -> str:
        head = "".join(f"<th{STYLE_LEFT}>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td{STYLE_LEFT}>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in self.rows)
        notes = "".join(f"<div>{html.escape(n)}</div>" for n in self.notes)
        return (f"<div class='tfmagic-table'><div><b>{html.escape(self.title)}</b></div>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}</div>")


@dataclass
class Comparison:
    """The traced graph and Grappler's optimised graph, side by side, with what changed in words."""

    traced: GraphReport
    optimized: GraphReport | None
    summary: str

    def _repr_mimebundle_(self, include=None, exclude=None):
        formats = {"text/plain": lambda: f"{self.traced.title}\nGrappler: {self.summary}", "text/html": self._html}
        if self.optimized is not None:
            formats["image/svg+xml"] = lambda: self.optimized.svg
        return _bundle(formats, include, exclude)

    def _html(self) -> str:
        panes = [("traced", self.traced)] + ([("after Grappler", self.optimized)] if self.optimized else [])
        cells = "".join(
            f"<div style='flex:1;min-width:0'><div><b>{html.escape(label)}</b>: {html.escape(r.summary)}</div>"
            f"<div class='tfmagic-graph' style='overflow:auto'>{r.svg}</div></div>" for label, r in panes)
        return (f"<div class='tfmagic-optimized'><div><b>Grappler</b>: {html.escape(self.summary)}"
                f"</div><div style='display:flex;gap:16px;align-items:flex-start'>{cells}</div></div>")


@dataclass
class CodeReport:
    """Source code shown highlighted (HTML, through Pygments when it is there) and as plain text."""

    title: str
    code: str

    def _repr_mimebundle_(self, include=None, exclude=None):
        return _bundle({"text/plain": lambda: f"{self.title}\n{self.code}", "text/html": self._html}, include, exclude)

    def _html(self) -> str:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer

            body = highlight(self.code, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
        except ImportError:
            body = f"<pre>{html.escape(self.code)}</pre>"
        return f"<div class='tfmagic-code'><div><b>{html.escape(self.title)}</b></div>{body}</div>"

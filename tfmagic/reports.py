"""The display objects the magics show: each gives text for a terminal and HTML (or SVG) for a notebook.

:class:`GraphReport` (a drawing), :class:`TextReport`, :class:`Notice`, and the tables
(:class:`TextAndHtml` is their base: ``_text`` and ``_html``, shown by IPython through
``_repr_mimebundle_``): :class:`Table`, :class:`ProfileReport`, :class:`RetraceTable`,
:class:`TapeReport`; :class:`Comparison` (a drawing beside Grappler's) and :class:`CodeReport`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

#: Notebook frontends right-align table cells; tfmagic's tables read left to right.
STYLE_LEFT = " style='text-align:left'"


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


def format_bytes(count: float) -> str:
    """``512 B``, ``12.0 KiB``, ``3.0 MiB``, ``1.50 GiB``.

    >>> format_bytes(512), format_bytes(3 * 2**20), format_bytes(1.5 * 2**30)
    ('512 B', '3.0 MiB', '1.50 GiB')
    """
    count = float(count)
    if abs(count) >= 2**30:
        return f"{count / 2**30:.2f} GiB"
    if abs(count) >= 2**20:
        return f"{count / 2**20:.1f} MiB"
    if abs(count) >= 2**10:
        return f"{count / 2**10:.1f} KiB"
    return f"{count:.0f} B"


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
        view.outputs = ()
        if change["new"] >= 0:
            view.append_display_data(reports[change["new"]])

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


@dataclass(repr=False)
class MemoryReport(TextAndHtml):
    """``--memory``: the peak sentence, the curve of bytes in use across the step, and the tables by op, by Keras
    layer / name scope and by line.

    Attributes:
        title: what was measured (``%%tfgraph --memory``).
        profile: the ``memory.MemoryProfile``.
        rows: its allocations per op (``memory.op_rows``), with their groups and lines.
        line_of: op name -> its line (``line 6: y = model(x)``), for the ops the sentence names.
        groups: ``(group, bytes allocated, bytes live at the peak, ops)`` by Keras layer / name scope and by line
            (``memory.grouped`` of the rows), largest first.
        top: how many rows a table lists.
    """

    title: str
    profile: Any
    rows: list = field(default_factory=list)
    line_of: Any = None
    groups: dict = field(default_factory=dict)
    top: int = 12

    def sentence(self) -> list[str]:
        """The peak and who holds it, as lines (the first one is the peak)."""

        p = self.profile
        at = p.peak_allocation
        where = ""
        if at is not None:
            line = self.line_of(at.op) if self.line_of else ""
            where = f", reached at {at.op} ({' '.join(x for x in (at.dtype, at.shape) if x)}" + \
                    (f", {line})" if line else ")")
        lines = [f"{self.title}: peak {format_bytes(p.peak)} in use on {p.device} ({format_bytes(p.before)} held before the call + "
                 f"{format_bytes(p.step_peak)} the step's own){where}"]
        if p.smallest_counted:
            lines.append(f"  oneDNN's CPU allocator counts buffers of {format_bytes(p.smallest_counted)} or more: "
                         "smaller ones (small layers' weights, biases, scalars) are outside these numbers "
                         "(TF_CPU_ALLOCATOR_USE_BFC=1, set before TensorFlow is imported, counts every buffer)")
        held = p.held
        named = sum(h.bytes for h in held)
        lines.append(f"  held before the call: {format_bytes(p.before)}" + (
            "" if not p.smallest_counted or named <= p.before else " counted (the names below hold buffers of every "
                                                                   "size)"))
        if p.freed_before_peak:
            lines.append(f"    of which the call had freed {format_bytes(p.freed_before_peak)} by the peak (an earlier "
                         "call's buffers)")
        kinds = (("weights", "weights"), ("other variables", "other variables (optimizer slots, counters)"),
                 ("input", "inputs"))
        for kind, words in kinds:
            items = [h for h in held if h.kind == kind]
            if items:
                lines.append(f"    {words} {format_bytes(sum(h.bytes for h in items))}: {_listed(items, 4)}")
        if p.before - named > 0:
            lines.append(f"    the notebook's other tensors and buffers {format_bytes(p.before - named)}")
        lines.append(f"  the step's own at the peak: {format_bytes(p.step_peak)}")
        live = p.live_at_peak()
        if live:
            shown = [self._buffer(a) for a in live[:5]]
            more = live[5:]
            lines.append("    " + ", ".join(shown) + (f", {len(more)} more {format_bytes(sum(a.bytes for a in more))}"
                                                      if more else ""))
        if p.small_at_peak:
            lines.append(f"    buffers too small for the allocator to record one by one: {format_bytes(p.small_at_peak)}")
        lines.append(f"  in use when the call had returned (its results held): {format_bytes(p.after)}")
        return lines

    def _buffer(self, allocation) -> str:
        """``adam/Sub_10 4.9 MiB for 4.0 MiB asked (float32 [1024,1024], line 5)``."""

        a = allocation
        asked = f" for {format_bytes(a.requested)} asked" if a.requested and a.bytes > a.requested * 1.05 else ""
        line = self.line_of(a.op).split(":")[0] if self.line_of and self.line_of(a.op) else ""
        what = ", ".join(x for x in (" ".join(x for x in (a.dtype, a.shape) if x), line) if x)
        return f"{a.op} {format_bytes(a.bytes)}{asked}" + (f" ({what})" if what else "")

    def _tables(self) -> list[Table]:
        ops = [[r.op if len(r.op) <= 44 else ".../" + "/".join(r.op.split("/")[-2:])[-40:], r.group,
                r.line.split(":")[0], format_bytes(r.allocated), format_bytes(r.at_peak) if r.at_peak else "",
                r.shape, r.dtype, r.region]
               for r in self.rows[:self.top]]
        more = len(self.rows) - self.top
        tables = [Table("by op: bytes allocated in the step, and live at the peak",
                        ["op", "layer / scope", "line", "allocated", "at peak", "shape", "dtype", "kind"], ops,
                        [f"... and {more} more ops"] if more > 0 else [])]
        for title, groups in self.groups.items():
            rows = [[name, format_bytes(allocated), format_bytes(at_peak) if at_peak else "", str(count)]
                    for name, allocated, at_peak, count in groups[:self.top]]
            tables.append(Table(title, [title.split(" ")[1] if title == "by line" else "layer / scope",
                                        "allocated", "at peak", "ops"], rows))
        held = [[h.name, h.kind, format_bytes(h.bytes), h.shape, h.dtype] for h in self.profile.held[:self.top]]
        if held:
            tables.append(Table("held before the call", ["name", "kind", "bytes", "shape", "dtype"], held))
        return tables

    def _text(self) -> str:
        return "\n".join(self.sentence() + ["bytes in use across the step: " + sparkline(self.profile)]
                         + [t._text() for t in self._tables()])

    def _html(self) -> str:
        lines = self.sentence()
        head = f"<div><b>{html.escape(lines[0])}</b></div>" + "".join(
            f"<div style='white-space:pre-wrap;padding-left:{(len(line) - len(line.lstrip())) * 0.6:.1f}em'>"
            f"{html.escape(line.strip())}</div>" for line in lines[1:])
        tables = "".join(t._html() for t in self._tables())
        return f"<div class='tfmagic-memory'>{head}{curve_svg(self.profile)}{tables}</div>"


def _listed(items: list, count: int) -> str:
    """``a 4.0 MiB, b 3.1 MiB, 2 more 8.0 KiB``."""

    shown = ", ".join(f"{h.name} {format_bytes(h.bytes)}" for h in items[:count])
    rest = items[count:]
    return shown + (f", {len(rest)} more {format_bytes(sum(h.bytes for h in rest))}" if rest else "")


def _buckets(profile, width: int) -> list[int]:
    """The curve of bytes in use (from the bytes held before the call), at most ``width`` points, each the
    highest of the events it stands for."""
    curve = [profile.before] + list(profile.curve)
    if len(curve) <= width:
        return curve
    step = len(curve) / width
    return [max(curve[int(i * step):max(int((i + 1) * step), int(i * step) + 1)]) for i in range(width)]


def sparkline(profile, width: int = 60) -> str:
    """The curve as a line of block characters, from the bytes held before the call (lowest) to the peak (highest).

    >>> from types import SimpleNamespace
    >>> sparkline(SimpleNamespace(before=0, peak=8, after=0, curve=[2, 8, 4, 0]))
    '▁▃█▅▁ 0 B before the call -> peak 8 B -> 0 B after it'
    """

    points = _buckets(profile, width)
    low, high = min(points), max(max(points), profile.peak)
    blocks = "▁▂▃▄▅▆▇█"
    span = (high - low) or 1
    line = "".join(blocks[min(int((v - low) / span * (len(blocks) - 1) + 0.5), len(blocks) - 1)] for v in points)
    return f"{line} {format_bytes(profile.before)} before the call -> peak {format_bytes(high)} -> {format_bytes(profile.after)} after it"


def curve_svg(profile, width: int = 560, height: int = 130) -> str:
    """The curve of bytes in use across the step, as a small inline SVG, from zero: the bytes held before the call
    shaded blue under a dashed line, the step's own above it red, a dot at the peak."""

    points = _buckets(profile, width // 3)
    top = max(max(points), profile.peak) or 1
    left, bottom, plot_w, plot_h = 70, height - 20, width - 80, height - 34

    def x(i):
        return left + i / max(len(points) - 1, 1) * plot_w

    def y(v):
        return bottom - v / top * plot_h

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points))
    area = f"{left},{bottom} {line} {x(len(points) - 1):.1f},{bottom}"
    held = y(profile.before)
    peak_i = points.index(max(points))
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
            f'style="font-family:sans-serif;font-size:10px" class="tfmagic-curve">'
            f'<polygon points="{area}" fill="#fcd9d3"/>'
            f'<rect x="{left}" y="{held:.1f}" width="{plot_w}" height="{bottom - held:.1f}" fill="#d6e4f5"/>'
            f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#999"/>'
            f'<text x="{left - 4}" y="{bottom + 3}" text-anchor="end" fill="#555">0</text>'
            f'<line x1="{left}" y1="{held:.1f}" x2="{left + plot_w}" y2="{held:.1f}" stroke="#1f5fbf" '
            f'stroke-dasharray="4,3"/>'
            f'<text x="{left - 4}" y="{held + 3:.1f}" text-anchor="end" fill="#1f5fbf">'
            f'{html.escape(format_bytes(profile.before))}</text>'
            f'<polyline points="{line}" fill="none" stroke="#d7301f" stroke-width="1.5"/>'
            f'<circle cx="{x(peak_i):.1f}" cy="{y(max(points)):.1f}" r="3.5" fill="#d7301f"/>'
            f'<text x="{left - 4}" y="{y(max(points)) + 3:.1f}" text-anchor="end" fill="#d7301f">'
            f'{html.escape(format_bytes(max(points)))}</text>'
            f'<text x="{left}" y="{height - 5}" fill="#555">bytes in use across the step, event by event (blue: held '
            f'before the call; red: the step\'s own; dot: the peak)</text></svg>')

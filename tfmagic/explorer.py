"""The graph explorer: an ipywidgets view over a function's traces, for frontends that run widgets.

It sits above the static SVG that every drawing leaves in the saved notebook (so nbconvert, GitHub
and VS Code still show the graph without a kernel). From it a user picks the trace, switches between
the traced graph and the graph after Grappler, opens and closes name scopes from a list, searches ops
by name or type with a regular expression, and reads an op's details: type, device, inputs and outputs
with dtype and shape, attributes.  After ``--memory`` a "memory" view fills the measured trace by the bytes each
op allocated, and an op's details say its bytes.
"""

from __future__ import annotations

import html
import re

import ipywidgets as widgets

from tfmagic.graph import GraphModel
from tfmagic.render import draw_model
from tfmagic.requests import DrawOptions
from tfmagic.traceview import TraceView

_MAX_MATCHES = 200


class Explorer:
    """Explore the traces of one function.

    Args:
        traces: one ``traceview.TraceView`` per trace (its ``reason`` labels it; its models are the static
            drawing's, built once).
        selected: the index of the trace shown first.
        title: the drawing's caption.
        max_nodes: the most nodes a drawing holds.
        ops: the view drawn first: ``readable`` or ``all`` (every op).
        compared: for each trace, the index of the trace it was compared with when it was made (``None``
            for the first): the "diff" view draws a trace against it (``tracediff.py``).
        xla: for a ``jit_compile`` function: trace index -> its XLA kernels by TF op (``xla.groups_for_graph``),
            or ``None`` where XLA cannot say; the "XLA" view boxes the kernels around their ops.
        keras: the notebook's Keras models and layers (``naming.KerasNames``), as the static drawing reads them.
        memory: ``(trace index, memory.MemoryProfile)`` of a call measured with ``--memory``: the "memory" view.
    """

    def __init__(self, traces: list[TraceView], selected: int, title: str, max_nodes: int | None = None,
                 ops: str = "readable", compared: list[int | None] | None = None, xla=None, keras=None, memory=None):
        self.traces = traces
        self.keras = keras  # the notebook's Keras models and layers (naming.KerasNames): a model drawn as its layers
        self.title = title
        self.max_nodes = max_nodes
        self.compared = compared if compared is not None else [None] + list(range(len(traces) - 1))
        self.expanded: tuple[str, ...] = ()
        self._diffs: dict[int, GraphModel] = {}
        self.trace = widgets.Dropdown(options=[(f"{i + 1}: {t.reason}", i) for i, t in enumerate(traces)],
                                      value=selected, description="trace", layout=widgets.Layout(width="max-content"))
        self.xla = xla
        self.memory = memory
        views = ["traced", "after Grappler"] + (["diff"] if len(traces) > 1 else []) + (["XLA"] if xla else []) \
            + (["memory"] if memory else [])
        tips = {"traced": "the graph TensorFlow traced", "after Grappler": "the graph Grappler optimised",
                "diff": "this trace against the one it was compared with",
                "XLA": "XLA's kernels boxed around the ops each fusion computes",
                "memory": "filled by the bytes each op allocated in the call --memory measured"}
        self.view = widgets.ToggleButtons(options=views, value="traced", tooltips=[tips[v] for v in views])
        self.ops = widgets.ToggleButtons(options=[("readable", "readable"), ("every op", "all")], value=ops)
        self.scopes = widgets.SelectMultiple(options=[], rows=6, description="scopes",
                                             layout=widgets.Layout(width="420px"))
        self.expand_button = widgets.Button(description="expand selected")
        self.collapse_button = widgets.Button(description="collapse all")
        self.search = widgets.Text(placeholder="search ops: a regular expression on name or type",
                                   continuous_update=False, layout=widgets.Layout(width="360px"))
        self.matches = widgets.Select(options=[], rows=6, layout=widgets.Layout(width="360px"))
        self.details = widgets.HTML()
        self.drawing = widgets.HTML()
        self.trace.observe(lambda _: self._changed(), names="value")
        self.view.observe(lambda _: self._changed(), names="value")
        self.ops.observe(lambda _: self.redraw(), names="value")
        self.expand_button.on_click(lambda _: self.expand(self.scopes.value))
        self.collapse_button.on_click(lambda _: self.expand(()))
        self.search.observe(lambda change: self.find(change["new"]), names="value")
        self.matches.observe(lambda change: self.show_op(change["new"]), names="value")
        self._list_scopes()
        # The cell's own (static) drawing sits below; this pane draws only what the user asks for.
        self.details.value = ("<i>The cell's drawing is below. Pick a trace or a view, or scopes to expand, "
                              "to draw here; search to find ops.</i>")

    # -- what the user does ----------------------------------------------------

    def expand(self, scopes) -> None:
        """Open these name scopes (and close the others)."""
        self.expanded = tuple(scopes)
        self.redraw()

    def find(self, pattern: str) -> list[str]:
        """Ops whose name or type matches ``pattern``; they fill the list of matches."""
        if not pattern:
            self.matches.options = []
            return []
        try:
            regex = re.compile(pattern)
        except re.error as e:
            self.matches.options = []
            self.details.value = f"<span style='color:#b71c1c'>not a regular expression: {html.escape(str(e))}</span>"
            return []
        found = [name for name, op in self.model.ops.items() if regex.search(name) or regex.search(op.type)]
        self.matches.options = found[:_MAX_MATCHES]
        self.details.value = f"{len(found)} ops match" + (f" (first {_MAX_MATCHES} listed)" if len(found) > _MAX_MATCHES
                                                          else "")
        return found

    def show_op(self, name: str | None) -> str:
        """An op's details: type, device, inputs and outputs with dtype and shape, attributes."""
        if not name or name not in self.model.ops:
            return ""
        op = self.model.ops[name]
        inputs = [f"{e.src}:{e.src_index} ({e.tensor.label})" if e.tensor else f"^{e.src} (control)"
                  for e in self.model.edges if e.dst == name]
        outputs = [f"{name}:{i} ({t.label})" for i, t in enumerate(op.outputs)]
        rows = [("type", op.type), ("kind", op.kind), ("device", op.device or "placed by TensorFlow"),
                ("inputs", ", ".join(inputs) or "none"), ("outputs", ", ".join(outputs) or "none"),
                ("attributes", self._attributes(name))]
        measured = self._measured()
        if measured is not None:
            rows.append(("memory", _op_bytes(measured, name)))
        self.details.value = ("<table>" + "".join(
            f"<tr><td style='text-align:left'><b>{html.escape(k)}</b></td>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>" for k, v in rows) + "</table>")
        return self.details.value

    # -- state -------------------------------------------------------------------

    @property
    def model(self) -> GraphModel:
        """The model of the trace and view shown (each trace's models are built once, by its ``TraceView``)."""
        index, view = self.trace.value, self.view.value
        if view == "diff":
            if index not in self._diffs:
                from tfmagic.tracediff import diff_models

                earlier = self.compared[index]
                new = self.traces[index].model()
                self._diffs[index] = diff_models(self.traces[earlier].model(), new)[0] if earlier is not None else new
            return self._diffs[index]
        if view == "after Grappler":
            return self.traces[index].optimized()[1] or self.traces[index].model()
        return self.traces[index].model()  # traced, XLA, memory: labelled as the static drawing is

    def _attributes(self, name: str) -> str:
        trace = self.traces[self.trace.value]
        optimized = trace.optimized()[0].graph if self.view.value == "after Grappler" else None
        graph = optimized or trace.graph
        try:
            attrs = graph.get_operation_by_name(name).node_def.attr
        except (KeyError, ValueError, AttributeError):
            return ""
        shown = []
        for key in sorted(attrs):
            if key.startswith("_"):
                continue
            value = str(attrs[key]).replace("\n", " ").strip()
            shown.append(f"{key}={value[:60]}")
        return "; ".join(shown)

    def _list_scopes(self) -> None:
        scopes = sorted({op.name.rsplit("/", 1)[0] for op in self.model.ops.values() if "/" in op.name})
        self.scopes.options = [s for s in scopes if s.count("/") <= 2][:500]

    def _changed(self) -> None:
        self._list_scopes()
        self.expanded = ()
        self.redraw()

    def redraw(self) -> None:
        label = self.traces[self.trace.value].reason
        view = self.view.value
        if view == "diff":
            earlier = self.compared[self.trace.value]
            view = f"against trace {earlier + 1}" if earlier is not None else "the first trace: nothing to compare"
        groups, measured = None, None
        if view == "memory":
            measured = self._measured()
            view = ("filled by the bytes each op allocated (--memory)" if measured is not None else
                    f"--memory measured trace {self.memory[0] + 1}, not this one")
        if view == "XLA":
            groups = self.xla(self.trace.value)
            view = "XLA's kernels around the ops they compute" if groups else "XLA: its kernels could not be read"
        report, _ = draw_model(self.model, f"{self.title}, trace {self.trace.value + 1}: {label} ({view})",
                               DrawOptions(ops=self.ops.value, max_nodes=self.max_nodes, expand=self.expanded,
                                           keras=self.keras),
                               groups=groups, profile=measured)
        self.drawing.value = report._repr_mimebundle_(include=["text/html"])["text/html"]
        if self.details.value.startswith("<i>The cell's drawing is below"):
            self.details.value = ""

    def _measured(self):
        """The memory profile of the trace shown, if ``--memory`` measured it."""
        if self.memory is None or self.memory[0] != self.trace.value:
            return None
        return self.memory[1]

    def widget(self) -> widgets.Widget:
        """The explorer, ready to display."""
        top = [self.trace] if len(self.traces) > 1 else []
        return widgets.VBox([
            widgets.HBox(top + [self.view, self.ops]),
            widgets.HBox([self.scopes, widgets.VBox([self.expand_button, self.collapse_button])]),
            widgets.HBox([widgets.VBox([self.search, self.matches]), self.details]),
            self.drawing,
        ])


def _op_bytes(measured, name: str) -> str:
    """An op's allocations in the measured call: ``4.0 MiB in 1 buffer, 4.0 MiB of it live at the peak``."""
    from tfmagic.reports import format_bytes

    mine = [a for a in measured.allocations if a.op == name]
    if not mine:
        return "no buffer the allocator recorded (none, or small ones: see the report's rest)"
    live = {id(a) for a in measured.live_at_peak()}
    at_peak = sum(a.bytes for a in mine if id(a) in live)
    peak = " -- its buffer reached the step's peak" if measured.peak_allocation in mine else ""
    return (f"{format_bytes(sum(a.bytes for a in mine))} in {len(mine)} buffer{'s' if len(mine) > 1 else ''}"
            + (f", {format_bytes(at_peak)} of it live at the peak" if at_peak else "") + peak)

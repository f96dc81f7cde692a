"""The drawing pipeline: a graph model -> the view asked for -> DOT -> the engine -> a report.

:func:`draw_model` is the one way every magic and the explorer draw a model (a trace's, made once by
``traceview.TraceView``; a diff, a gradient, XLA's kernels), with one ``requests.DrawOptions`` (the view, how
much of it, ``-o FILE``); :func:`describe_model` gives the same view as text.  The layout is the engine's
(``engine.py``), the report a display object (``reports.py``).
"""

from __future__ import annotations

import dataclasses
import re

from tfmagic.engine import LAYOUT_BUDGET, LayoutTimeout, gc_paused, render_dot_within
from tfmagic.reports import GraphReport, TextReport, format_us
from tfmagic.requests import DrawOptions

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


def draw_model(model, title: str, options: DrawOptions = DrawOptions(), *, gradient: bool = False, profile=None,
               groups: dict | None = None) -> tuple[GraphReport, dict[str, bytes]]:
    """Draw a graph model: the inline report and the rendered bytes of SVG and of ``options.output``'s format
    (written to that file too); ``gradient`` adds the gradient drawing's legend, ``groups`` (op name -> the XLA
    kernel that computes it, ``xla.fusion_groups``) draws XLA's kernels as boxes.

    The readable view (``ops="readable"``) is drawn from :func:`tfmagic.readable.readable_view`, with a
    line saying what it hid; large graphs are then collapsed by name scope as in every view.  A large
    layout gets ``options.budget`` seconds (:data:`LAYOUT_BUDGET` by default); past that, the drawing falls
    back to one node per top-level name scope, with a note.  With a ``profile`` (``profile.Profile``) each
    node is filled by its share of the measured op time (a collapsed scope sums its ops); with a
    ``memory.MemoryProfile``, by its share of the bytes the step's ops allocated.
    """
    budget = LAYOUT_BUDGET if options.budget is None else options.budget
    ops, formats = options.ops, options.formats
    from tfmagic.dot import DotOptions, build_dot
    from tfmagic.sizing import DEFAULT_MAX_NODES, fit

    with gc_paused():
        summary, total, model, view, notes, hidden = _view(model, options)
        if groups:  # XLA's kernels: in a folded drawing, counted in the nodes
            from tfmagic.xla import fusions_in_nodes

            view, note = fusions_in_nodes(view, groups)
            notes += [note] if note else []
        caption = "\n".join([title, *notes])
        heat, times = _heat(view, profile) if profile is not None else (None, None)
        from tfmagic.graph import layer_names

        layers = layer_names(model) if ops == "readable" else None  # the collapsed view has no variables to read
        dot_options = DotOptions(title=caption, gradient=gradient, readable=ops == "readable", heat=heat,
                                 times=times, layers=layers, groups=groups,
                                 heat_words="heat_memory" if _is_memory(profile) else "heat")
        dot_source = build_dot(view, dot_options)
    wanted = tuple(dict.fromkeys(("svg", *formats)))
    folded = view is not model  # the first view already folds the graph: a coarser fold is the same view, less open
    try:
        rendered = render_dot_within(dot_source, wanted, budget)
    except LayoutTimeout as e:  # too slow to lay out: one node per top-level scope, which is quick
        view, _ = fit(model, DEFAULT_MAX_NODES, 1, ())
        note = (f"{total} ops in {len(view.ops)} nodes, one per top-level name scope: {e} for the view "
                "asked for")
        notes = [line for line in (note, hidden) if line]
        dot_source = build_dot(view, dataclasses.replace(dot_options, title="\n".join([title, *notes])))
        rendered = render_dot_within(dot_source, wanted)
        folded = False  # the quickest view there is: no coarser one to try
    width = _width(rendered["svg"])
    if options.depth is None and ops == "readable" and width > NOTEBOOK_WIDTH and (folded or view is model):
        from tfmagic.sizing import coarser

        # Wider than a notebook at the first level: the coarser levels, until one fits (or the last one); a level
        # too slow to lay out ends the search with the last one drawn.
        for coarse, note in coarser(model, total, options.expand, options.max_nodes or DEFAULT_MAX_NODES,
                                    options.keras, wide=0 if folded else round(width)):
            lines = [line for line in (note, hidden) if line]
            if groups:
                from tfmagic.xla import fusions_in_nodes

                coarse, added = fusions_in_nodes(coarse, groups)
                lines += [added] if added else []
            if profile is not None:
                heat, times = _heat(coarse, profile)
            source = build_dot(coarse, dataclasses.replace(dot_options, title="\n".join([title, *lines]), heat=heat,
                                                           times=times))
            try:
                rendered = render_dot_within(source, wanted, budget)
            except LayoutTimeout:
                break
            view, notes, dot_source = coarse, lines, source
            if _width(rendered["svg"]) <= NOTEBOOK_WIDTH:
                break
    svg, scaled = fit_width(_svg_element(rendered["svg"]))
    report = GraphReport(title, summary, svg, dot_source, notes + ([scaled] if scaled else []), text_view(view))
    if options.output:
        with open(options.output, "wb") as f:
            f.write(rendered[formats[0]])
    return report, rendered


#: A notebook's output area shows about this many points at full scale.
NOTEBOOK_WIDTH = 1000


def _width(svg: bytes) -> float:
    """A rendered SVG's width at full size, in points."""
    match = re.search(rb'<svg width="([\d.]+)pt"', svg)
    return float(match.group(1)) if match else 0.0


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
    from tfmagic.sizing import DEFAULT_MAX_NODES, fit

    summary = summarize(model)
    total = model.total_ops()
    hidden = ""
    if options.ops == "readable":
        from tfmagic.readable import readable_view

        model, hidden_ops = readable_view(model)
        hidden = hidden_ops.line()
    view, note = fit(model, options.max_nodes or DEFAULT_MAX_NODES, options.depth, options.expand, total,
                     program=options.ops == "readable", keras=options.keras)
    return summary, total, model, view, [line for line in (note, hidden) if line], hidden


def describe_model(model, title: str, options: DrawOptions = DrawOptions()) -> TextReport:
    """The graph model :func:`draw_model` would draw, as text (``--show text``): no layout, no Graphviz."""
    with gc_paused():
        summary, _, _, view, notes, _ = _view(model, options)
    return TextReport(f"{title}: {summary}", [*notes, *text_view(view)])


def _is_memory(profile) -> bool:
    from tfmagic.memory import MemoryProfile

    return isinstance(profile, MemoryProfile)


def _heat(view, profile) -> tuple[dict[str, float], dict[str, str]]:
    """Each drawn node's share of the profile and its label text: of the measured op time (a ``profile.Profile``) or
    of the bytes the step's ops allocated (a ``memory.MemoryProfile``, whose op at the peak is marked).  A node that
    stands for many ops (``graph.Folded``, or a collapsed scope) sums the ops it holds, by name, and the ops under its
    scope (the variable reads the readable view folded away), each op counted once, in the deepest node holding it."""
    from tfmagic.reports import format_bytes

    memory = _is_memory(profile)
    amounts = profile.by_op() if memory else {op.name: op.total_us for op in profile.ops}
    peak = profile.peak_allocation.op if memory and profile.peak_allocation is not None else None
    whole = sum(amounts.values()) or 1.0
    node_of = {member: name for name, op in view.ops.items() if op.folded is not None for member in op.folded.members}
    scopes = {name for name, op in view.ops.items() if op.folded is not None or op.kind == "scope"}
    spent: dict[str, float] = {}
    peak_node = None
    for name, amount in amounts.items():
        node = node_of.get(name) or (name if name in view.ops else None)
        parts = name.split("/")
        for depth in range(len(parts) - 1, 0, -1):  # else the deepest drawn scope around it
            if node is not None:
                break
            prefix = "/".join(parts[:depth])
            node = prefix if prefix in scopes else None
        if node is not None:
            spent[node] = spent.get(node, 0.0) + amount
            peak_node = node if name == peak else peak_node
    heat = {name: amount / whole for name, amount in spent.items()}
    text = format_bytes if memory else format_us
    times = {name: f"{amount / whole:.0%} · {text(amount)}" + (" · the peak" if name == peak_node else "")
             for name, amount in spent.items()}
    return heat, times

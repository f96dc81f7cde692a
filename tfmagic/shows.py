"""What ``%%tfgraph`` and ``%tfgraph FUNC`` show: the display objects of each ``--show``, made in the core.

The magic parses its line into a ``requests.GraphRequest``, runs the cell (``tracing.trace_cell``) and displays
what these functions give back, in order: :func:`cell_views` after a cell's run (the drawing, the text, AutoGraph's
code, the graph after Grappler, a diff, XLA's kernels, a profile, a step's memory, the TensorBoard file) and
:func:`function_views` for an existing function's traces.  Each trace shown is one ``traceview.TraceView``: its
labelled model is built once, for every view that reads it.  ``variable_names`` gives the notebook's names of its
variables (``naming.VariableNames.by_handle``; called only for what is drawn); ``namespace`` is the notebook's (its
Keras models and layers: a drawing draws a model as its layers, a profile groups by layer).  Nothing here imports
IPython: a failure of an extra (a drawing, the profiler) is a warning among the views, and the cell's result
stands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tfmagic.errors import OptionError, TfMagicError
from tfmagic.naming import keras_names
from tfmagic.render import describe_model, draw_model
from tfmagic.reports import CodeReport, Comparison, Notice
from tfmagic.requests import DrawOptions, GraphRequest
from tfmagic.traceview import TraceView


def trace_notes(run) -> list:
    """Why the run retraced, and the cell's pitfalls (one note per kind, listing its lines)."""
    from tfmagic.diagnostics import grouped
    from tfmagic.retracing import retrace_text

    notes = []
    trace = run.trace
    if run.retraced:
        notes.append(Notice(retrace_text("%%tfgraph", trace.number, trace.changes, trace.fixes, trace.diff,
                                         trace.nearest) + f"\n  the cell's function has {run.trace_count} traces",
                            level="warning"))
    notes += [Notice(f"%%tfgraph: {finding.text}", level="warning") for finding in grouped(run.findings)]
    return notes


def cell_views(run, request: GraphRequest, variable_names: Callable[[], dict], namespace: dict, elapsed: float,
               widgets: bool = False) -> list:
    """What a cell's run shows below its result, in order (see the module's docstring).

    Args:
        run: the ``tracing.CellRun`` (its ``arguments`` are what a profile, memory or XLA call the function with).
        request: the magic's request.
        variable_names: gives the notebook's names of its variables.
        namespace: the notebook's namespace.
        elapsed: seconds the run took (XLA's compile time).
        widgets: whether a frontend runs widgets: the explorer goes above the drawing.
    """
    views: list = []
    if request.tensorboard:
        views.append(tensorboard_view(run, request.tensorboard))
    if not (request.profile or request.memory or request.draws or request.show in ("text", "xla", "hlo", "diff")):
        # a re-run that shows nothing (or AutoGraph's code) reads no names and builds no model
        return views + ([code_view(run, request.function.autograph)] if request.show == "code" else [])
    trace = cell_trace(run, run.trace, variable_names(), request.draw.readable)
    keras = keras_names(namespace)
    draw = dataclasses.replace(request.draw, keras=keras)
    title = f"%%tfgraph {'-n ' + request.name + ' ' if request.name else ''}cell, trace {run.trace.number}"
    profile = None
    if request.profile:
        profile, shown = profile_views(run.call, trace, "%%tfgraph --profile", request.profile, keras)
        views += shown
    if request.memory:
        from tfmagic.cell import LINE_OFFSET
        from tfmagic.memory import cell_pattern, line_finder

        code = run.cell.code if run.cell is not None else None
        lines = line_finder(run.trace.graph, code.filename if code else None, LINE_OFFSET, code.source if code else "")
        memory, shown = memory_views(run.call, trace, "%%tfgraph --memory", keras, dict(zip(run.inputs, run.arguments)),
                                     lines, cell_pattern(code.filename) if code else "")
        views += shown
        profile = memory or profile  # the drawing is filled by bytes (the times are in --profile's table)
    if request.show == "text":
        views.append(describe_model(trace.model(draw.readable), f"%%tfgraph cell, trace {run.trace.number}",
                                    dataclasses.replace(draw, output=None)))
    elif request.show in ("xla", "hlo"):
        views += _cell_xla(run, trace, request, draw, elapsed)
    elif request.show == "diff":
        views += cell_diff_views(run, trace, title, request, draw, widgets)
    elif request.draws:
        views += trace_views(run, trace, title, request, draw, profile, widgets)
    elif request.show == "code":
        views.append(code_view(run, request.function.autograph))
    return views


def cell_trace(run, record, variable_names: dict, readable: bool = True) -> TraceView:
    """A cell's trace (a ``collect.TraceRecord``) as a :class:`TraceView`."""
    autograph = run.cell.options.autograph if run.cell is not None else True
    return TraceView(record.graph, run.function, cell=True, autograph=autograph, variable_names=variable_names,
                     number=record.number, reason=record.reason, readable=readable)


def _cell_xla(run, trace: TraceView, request: GraphRequest, draw: DrawOptions, elapsed: float) -> list:
    """``--show xla`` / ``hlo`` of a cell: what XLA made of the trace that ran, and the time it took."""
    if not run.cell.options.jit_compile:
        return [Notice(f"%%tfgraph --show {request.show}: XLA does not compile this cell; add --jit "
                       f"(%%tfgraph --jit --show {request.show})")]
    timing = (f"this run traced the cell and XLA compiled it: {elapsed * 1e3:,.0f} ms in all (run it "
              "again for a compiled run's time)" if run.traced else
              f"this run reused XLA's compiled kernels: {elapsed * 1e3:,.1f} ms")
    return xla_views(run.function, list(run.arguments), trace, f"%%tfgraph --jit cell, trace {run.trace.number}",
                     request.show, draw, timing)


def trace_views(run, trace: TraceView, title: str, request: GraphRequest, draw: DrawOptions, profile=None,
                widgets: bool = False) -> list:
    """The drawing of the trace that ran (with the explorer above it where widgets run), or beside the graph
    after Grappler (``--show optimized``); nothing shown for ``--show none -o FILE`` (the file is written)."""
    try:
        report, _ = draw_model(trace.model(draw.readable), title, draw, profile=profile)
    except (TfMagicError, OSError) as e:  # the cell's result and write-back stand
        return [Notice(f"%%tfgraph: the drawing failed: {e}", level="warning")]
    if draw.output:
        report.hint = f"the drawing: written to {draw.output}"
    if request.show == "graph":
        from tfmagic.memory import MemoryProfile

        memory = profile if isinstance(profile, MemoryProfile) else None
        return ([explorer_view(run, trace, title, draw, memory)] if widgets else []) + [report]
    if request.show == "optimized":
        return [optimized_view(trace, report, draw)]
    return []


def explorer_view(run, trace: TraceView, title: str, draw: DrawOptions, memory=None):
    """The explorer (ipywidgets) over the cell's traces; a warning if it cannot start (the drawing stands)."""
    try:
        from tfmagic.explorer import Explorer

        records = run.cell.traces if run.cell is not None else [run.trace]
        traces = [trace if r is run.trace else cell_trace(run, r, trace.variable_names) for r in records]
        selected = next((i for i, r in enumerate(records) if r is run.trace), len(records) - 1)
        numbers = [r.number for r in records]
        compared = [numbers.index(r.nearest) if r.nearest in numbers else None for r in records]
        xla = None
        if getattr(run.function, "_jit_compile", False):
            from tfmagic.xla import groups_for_graph

            xla = lambda index: groups_for_graph(run.function, traces[index].graph)  # noqa: E731
        return Explorer(traces, selected, title.rsplit(", trace ", 1)[0], draw.max_nodes, ops=draw.ops,
                        compared=compared, xla=xla, keras=draw.keras,
                        memory=(selected, memory) if memory is not None else None).widget()
    except Exception as e:  # the explorer is an extra: the static drawing below still stands
        return Notice(f"%%tfgraph: the explorer could not start: {type(e).__name__}: {e}", level="warning")


def optimized_view(trace: TraceView, traced, draw: DrawOptions) -> Comparison:
    """``--show optimized``: the traced drawing beside the graph after Grappler, and what Grappler changed."""
    result, model = trace.optimized()
    drawing = None
    if model is not None:
        drawing, _ = draw_model(model, f"after Grappler, trace {trace.number}", DrawOptions(
            ops=draw.ops, max_nodes=draw.max_nodes, keras=draw.keras))
    return Comparison(traced, drawing, result.summary)


def code_view(run, autograph: bool = True):
    """``--show code``: the code AutoGraph generated from the cell."""
    if not autograph:
        return Notice("%%tfgraph --show code: AutoGraph is off (--no-autograph): the cell is traced as written")
    import tensorflow as tf

    return CodeReport("%%tfgraph: the code AutoGraph generated from the cell",
                      tf.autograph.to_code(run.function.python_function))


def tensorboard_view(run, logdir: str) -> Notice:
    """``--tensorboard LOGDIR``: the trace written for TensorBoard, and how to open it."""
    import tensorflow as tf

    try:
        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default():
            tf.summary.graph(run.trace.graph.as_graph_def())
        writer.flush()
        writer.close()
    except (OSError, tf.errors.OpError, ValueError) as e:  # the cell's result and write-back stand
        return Notice(f"%%tfgraph: could not write the graph for TensorBoard to {logdir!r}: {e}", level="warning")
    return Notice(f"%%tfgraph: trace {run.trace.number} written for TensorBoard: tensorboard --logdir {logdir}")


def profile_views(call: Callable[[], object], trace: TraceView, title: str, steps: int, keras) -> tuple:
    """``--profile N``: ``(profile, views)``; the profile is ``None`` (with a one-line warning) when the
    profiler cannot run or a profiled call fails."""
    from tfmagic.profile import ProfilerUnavailable, VariablesKept, layer_grouper, profile_calls
    from tfmagic.reports import ProfileReport

    layer_of = layer_grouper(set(keras.models | keras.layers | keras.optimizers))
    try:
        with VariablesKept(trace.graph):  # an interrupt goes on up, once the profiler is stopped (profile_calls)
            profile = profile_calls(call, steps, layer_of)
    except ProfilerUnavailable as e:
        return None, [Notice(f"{title}: {e}; the cell's result stands", level="warning")]
    except Exception as e:  # a later call failed (an assert on a variable, say): the first run stands
        return None, [Notice(f"{title}: a profiled call failed ({_first_line(e)}); the profiler is stopped, the "
                             "variables put back, and the cell's result stands", level="warning")]
    return profile, [ProfileReport(title, profile, trace.shapes())]


def memory_views(call: Callable[[], object], trace: TraceView, title: str, keras, inputs: dict,
                 line_of: Callable[[str], str], remember_as: str = "") -> tuple:
    """``--memory``: ``(memory profile, views)``: one more call measured (``memory.measure_memory``; the variables
    it writes put back), its peak sentence, curve and tables; the profile is ``None`` (with one line saying why)
    when the allocator keeps no statistics, the profiler cannot run, or the measured call fails.  Its peak by line
    is kept for an out-of-memory error whose message matches ``remember_as`` (``memory.remember``)."""
    from tfmagic.memory import NoMemoryStats, grouped, held_by, measure_memory, op_rows, remember
    from tfmagic.profile import ProfilerUnavailable, VariablesKept, layer_grouper
    from tfmagic.reports import MemoryReport

    layer_of = layer_grouper(set(keras.models | keras.layers | keras.optimizers))
    try:
        with VariablesKept(trace.graph):  # an interrupt goes on up, once the profiler is stopped
            memory = measure_memory(call, held_by(trace.graph, trace.variable_names, inputs))
    except (NoMemoryStats, ProfilerUnavailable) as e:
        return None, [Notice(f"{title}: {e}; the cell's result stands", level="warning")]
    except Exception as e:  # a later call failed (out of memory, say): the first run stands
        return None, [Notice(f"{title}: the measured call failed ({_first_line(e)}); the profiler is stopped, the "
                             "variables put back, and the cell's result stands", level="warning")]
    rows = op_rows(memory, layer_of, line_of)
    if remember_as:
        shapes = ", ".join(f"{h.name}: {h.dtype}{h.shape}" for h in memory.held if h.kind == "input")
        remember(remember_as, title + (f" with {shapes}" if shapes else ""), rows)
    groups = {"by layer / name scope": grouped(rows, lambda r: r.group), "by line": grouped(rows, lambda r: r.line)}
    return memory, [MemoryReport(title, memory, rows, line_of, groups)]


def _first_line(error: BaseException) -> str:
    """``ValueError: the first line of its message`` (200 characters at most)."""
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"


def cell_diff_views(run, trace: TraceView, title: str, request: GraphRequest, draw: DrawOptions,
                    widgets: bool = False) -> list:
    """``--show diff``: the new trace drawn against the trace it was compared with (or the graph, with a note,
    when the run did not retrace)."""
    earlier = None
    if run.retraced and run.trace.nearest and run.cell is not None:
        earlier = next((r for r in run.cell.traces if r.number == run.trace.nearest), None)
    if earlier is None:
        note = Notice("%%tfgraph --show diff: this run did not retrace, so there is no earlier trace to draw it "
                      "against; the graph it ran is drawn")
        return [note] + trace_views(run, trace, title, dataclasses.replace(request, show="graph"), draw,
                                    widgets=widgets)
    return diff_views(cell_trace(run, earlier, trace.variable_names), trace,
                      f"%%tfgraph cell: trace {run.trace.number} against trace {earlier.number}", draw)


def diff_views(old: TraceView, new: TraceView, title: str, draw: DrawOptions) -> list:
    """Trace ``new`` drawn against trace ``old``: ops matched by structure, what was added, removed, changed."""
    from tfmagic.engine import gc_paused
    from tfmagic.tracediff import diff_models

    with gc_paused():
        merged, counts = diff_models(old.model(draw.readable), new.model(draw.readable))
    try:
        report, _ = draw_model(merged, f"{title}: {counts.text}", draw)
    except (TfMagicError, OSError) as e:
        return [Notice(f"the diff drawing failed: {e}", level="warning")]
    return [report]


def xla_views(function, call_args, trace: TraceView, title: str, show: str, draw: DrawOptions,
              timing: str = "") -> list:
    """``--show xla``: the drawing with XLA's kernels boxed around the TF ops they compute, the kernels' table,
    XLA's memory plan, the compile time; ``--show hlo``: XLA's optimized HLO text and the table."""
    from tfmagic.engine import gc_paused
    from tfmagic.xla import fusion_groups, kernel_table, memory_table, parameter_names, with_added, xla_report

    try:
        report = xla_report(function, call_args, parameter_names(trace.graph), text=show == "hlo")
    except TfMagicError as e:  # the cell's result and write-back stand
        return [Notice(f"--show {show}: {e}", level="warning")]
    table = kernel_table(report, f"{title}: what XLA runs")
    if show == "hlo":
        return [Notice(report.hlo_text), table]
    views: list = []
    try:
        with gc_paused():
            model = with_added(trace.model(draw.readable), report)
        drawing, _ = draw_model(model, f"{title}: XLA's kernels around the ops they compute", draw,
                                groups=fusion_groups(report))
        views.append(drawing)
    except (TfMagicError, OSError) as e:
        views.append(Notice(f"--show xla: the drawing failed: {e}", level="warning"))
    views += [table, memory_table(report)]
    if timing:
        views.append(Notice(f"compile time: {timing}"))
    return views


# ---------------------------------------------------------------------------
# %tfgraph FUNC


@dataclasses.dataclass
class FunctionViews:
    """What ``%tfgraph FUNC`` shows: the views in order, and (where it has several traces) the line naming them
    and the reports a menu switches between."""

    views: list
    traces_line: str = ""
    labels: list = dataclasses.field(default_factory=list)
    reports: list = dataclasses.field(default_factory=list)


def function_views(target, request: GraphRequest, variable_names: dict, namespace: dict,
                   cell: bool = False) -> FunctionViews:
    """``%tfgraph FUNC``: the chosen trace of a ``tf.function``, concrete function or Keras model drawn (the others
    too, for a menu), or two traces against each other (``--diff A B``), XLA's view, a profile, memory.

    Raises:
        OptionError: a trace number out of range, or ``target`` has no traces (``retracing.traces_of``).
    """
    from tfmagic.retracing import traces_of

    name = request.target
    try:
        traces = [TraceView(graph, target, cell=cell, variable_names=variable_names, number=i + 1, reason=label,
                            readable=request.draw.readable) for i, (label, graph) in enumerate(traces_of(target))]
    except TfMagicError as e:
        raise OptionError(f"%tfgraph {name}: {e}") from e
    chosen = len(traces) - 1 if request.trace is None else request.trace - 1
    if not 0 <= chosen < len(traces):
        raise OptionError(f"--trace {request.trace}: {name} has traces 1 to {len(traces)}")
    keras = keras_names(namespace)
    draw = dataclasses.replace(request.draw, keras=keras)
    if request.diff:
        first, second = request.diff
        for number in (first, second):
            if not 1 <= number <= len(traces):
                raise OptionError(f"--diff {first} {second}: {name} has traces 1 to {len(traces)}")
        old, new = traces[first - 1], traces[second - 1]
        return FunctionViews(diff_views(old, new, f"{name}: trace {second} ({new.reason}) against trace {first} "
                                                  f"({old.reason})", draw))
    trace = traces[chosen]
    if request.show in ("xla", "hlo"):
        return FunctionViews(_function_xla(target, trace, request, draw))
    profile, views = None, []
    if request.profile or request.memory:
        profile, views = _function_measured(target, trace, request, keras)
    others = dataclasses.replace(draw, output=None)  # -o writes the chosen trace
    reports = [draw_model(t.model(draw.readable), f"{name}, trace {t.number}: {t.reason}",
                          draw if t is trace else others, profile=profile if t is trace else None)[0]
               for t in traces]
    if request.show == "none":
        return FunctionViews(views)
    labels = [f"{t.number}: {t.reason}" for t in traces]
    line = f"{name} has {len(reports)} traces: " + "; ".join(labels) if len(reports) > 1 else ""
    return FunctionViews(views + [reports[chosen]], line, labels if line else [], reports if line else [])


def _function_xla(target, trace: TraceView, request: GraphRequest, draw: DrawOptions) -> list:
    """``%tfgraph FUNC --show xla``: what XLA made of the chosen trace (its signature's shapes)."""
    from tfmagic.profile import zeros_for
    from tfmagic.retracing import is_tf_function, trace_history

    said = f"%tfgraph {request.target} --show {request.show}"
    if not (is_tf_function(target) and getattr(target, "_jit_compile", False)):
        return [Notice(f"{said}: XLA does not compile it: it is not a jit_compile tf.function "
                       "(@tf.function(jit_compile=True), or a %%tfgraph --jit cell)")]
    concrete = trace_history(target).traces[trace.number - 1].concrete
    specs, kwargs = concrete.structured_input_signature
    zeros = [zeros_for(s, known=True) for s in specs]  # the trace's own shapes (a variable's too): no new trace
    if kwargs or any(z is None for z in zeros):
        return [Notice(f"{said}: trace {trace.number} has arguments that are not tensors or variables of known "
                       "shapes; draw it from a %%tfgraph --jit --show xla cell that calls it")]
    return xla_views(target, zeros, trace, f"{request.target}, trace {trace.number}", request.show, draw)


def _function_measured(target, trace: TraceView, request: GraphRequest, keras) -> tuple:
    """``%tfgraph FUNC --profile`` / ``--memory``: the chosen trace called with zeros of its arguments' shapes;
    ``(profile or memory profile, views)`` (the drawing is filled by bytes where both ran)."""
    from tfmagic.memory import function_pattern, line_finder
    from tfmagic.profile import zeros_call
    from tfmagic.retracing import is_tf_function, trace_history

    concrete = (trace_history(target).traces[trace.number - 1].concrete if is_tf_function(target) else
                target if hasattr(target, "function_type") else None)
    asked = [flag for flag, on in (("--profile", request.profile), ("--memory", request.memory)) if on]
    if concrete is None:
        return None, [Notice(f"%tfgraph {request.target} {flag}: a Keras model is {verb} through a %%tfgraph "
                             f"{flag + ' ' if flag == '--memory' else ''}cell that calls it (with your inputs)",
                             level="warning")
                      for flag, verb in (("--profile", "profiled"), ("--memory", "measured")) if flag in asked]
    call = zeros_call(concrete)
    said = f"(trace {trace.number}, called with zeros of its arguments' shapes)"
    profile, views = None, []
    if request.profile:
        profile, views = profile_views(call, trace, f"%tfgraph {request.target} --profile {said}", request.profile,
                                       keras)
    if request.memory:
        memory, shown = memory_views(call, trace, f"%tfgraph {request.target} --memory {said}", keras, {},
                                     line_finder(trace.graph), function_pattern(concrete))
        views += shown
        profile = memory or profile
    return profile, views

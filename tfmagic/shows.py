"""What ``%%tfgraph`` and ``%tfgraph FUNC`` show: the display objects of each ``--show``, made in the core.

The magic parses its line, runs the cell (``tracing.trace_cell``) and displays what these functions give
back, in order: :func:`cell_views` after a cell's run (the drawing, the text, AutoGraph's code, the graph
after Grappler, a diff, XLA's kernels, a profile, a step's memory, the TensorBoard file) and
:func:`function_views` for an existing function's traces.  ``options`` is the magic's parsed line (``show``,
``ops``, ``max_nodes``, ``depth``, ``expand``, ``output``, ``name``, ``profile``, ``memory``, ``autograph``,
``tensorboard``, ``trace``, ``diff``); ``variable_names`` the notebook's names of its variables
(``naming.VariableNames.by_handle``); ``keras`` its Keras models and layers (``naming.KerasNames``: a drawing draws a model as its layers).
Nothing here imports IPython: a failure of an extra (a drawing, the profiler) is a warning among the
views, and the cell's result stands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tfmagic.errors import OptionError, TfMagicError
from tfmagic.naming import keras_names
from tfmagic.render import DrawOptions, draw_graph, draw_model, draw_trace, run_labels
from tfmagic.reports import CodeReport, Comparison, Notice


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


def cell_views(run, options, variable_names: Callable[[], dict], namespace: dict, before: dict | None,
               elapsed: float, widgets: bool = False) -> list:
    """What a cell's run shows below its result, in order (see the module's docstring).

    Args:
        run: the ``tracing.CellRun``.
        options: the magic's parsed line.
        variable_names: gives the notebook's names of its variables (called only for what is drawn: reading
            them walks the namespace, which a re-run that shows nothing does not pay).
        namespace: the notebook's namespace (the Keras layers a profile groups by).
        before: the namespace as the cell found it (the inputs a profile or XLA calls with), or ``None``.
        elapsed: seconds the run took (XLA's compile time).
        widgets: whether a frontend runs widgets: the explorer goes above the drawing.
    """
    views: list = []
    if options.tensorboard:
        views.append(tensorboard_view(run, options.tensorboard))
    profile = None
    if options.profile:
        values = [before[name] for name in run.inputs]
        profile, shown = profile_views(lambda: run.function(*values), run.trace.graph, "%%tfgraph --profile",
                                       options.profile, namespace)
        views += shown
    if getattr(options, "memory", False):
        from tfmagic.cell import LINE_OFFSET
        from tfmagic.memory import cell_pattern, line_finder

        values = [before[name] for name in run.inputs]
        code = run.cell.code if run.cell is not None else None
        lines = line_finder(run.trace.graph, code.filename if code else None, LINE_OFFSET, code.source if code else "")
        memory, shown = memory_views(lambda: run.function(*values), run.trace.graph, "%%tfgraph --memory", namespace,
                                     variable_names(), dict(zip(run.inputs, values)), lines,
                                     cell_pattern(code.filename) if code else "")
        views += shown
        profile = memory or profile  # the drawing is filled by bytes (the times are in --profile's table)
    if options.show == "text":
        text_options = DrawOptions.from_args(options, output=False)
        from tfmagic.render import describe_graph

        text_options = dataclasses.replace(text_options, keras=keras_names(namespace))
        views.append(describe_graph(run.trace.graph, f"%%tfgraph cell, trace {run.trace.number}", text_options,
                                    labels=run_labels(run, text_options), variable_names=variable_names()))
    if options.show in ("xla", "hlo"):
        if not run.cell.options.jit_compile:
            views.append(Notice(f"%%tfgraph --show {options.show}: XLA does not compile this cell; add --jit "
                                f"(%%tfgraph --jit --show {options.show})"))
        else:
            timing = (f"this run traced the cell and XLA compiled it: {elapsed * 1e3:,.0f} ms in all (run it "
                      "again for a compiled run's time)" if run.traced else
                      f"this run reused XLA's compiled kernels: {elapsed * 1e3:,.1f} ms")
            views += xla_views(run.function, [before[name] for name in run.inputs], run.trace.graph,
                               f"%%tfgraph --jit cell, trace {run.trace.number}", options,
                               run_labels(run, DrawOptions.from_args(options)), variable_names(), timing,
                               keras_names(namespace))
    elif options.show == "diff":
        views += cell_diff_views(run, options, variable_names(), widgets, keras_names(namespace))
    elif options.show in ("graph", "optimized") or options.output:
        views += trace_views(run, options, variable_names(), profile, widgets, keras_names(namespace))
    elif options.show == "code":
        views.append(code_view(run, options.autograph))
    return views


def trace_views(run, options, variable_names: dict, profile=None, widgets: bool = False, keras=None) -> list:
    """The drawing of the trace that ran (with the explorer above it where widgets run), or beside the graph
    after Grappler (``--show optimized``); nothing shown for ``--show none -o FILE`` (the file is written)."""
    title = f"%%tfgraph {'-n ' + options.name + ' ' if options.name else ''}cell, trace {run.trace.number}"
    try:
        report, _ = draw_trace(run, title, DrawOptions.from_args(options, keras=keras),
                               variable_names=variable_names, profile=profile)
    except (TfMagicError, OSError) as e:  # the cell's result and write-back stand
        return [Notice(f"%%tfgraph: the drawing failed: {e}", level="warning")]
    if options.output:
        report.hint = f"the drawing: written to {options.output}"
    if options.show == "graph":
        from tfmagic.memory import MemoryProfile

        memory = profile if isinstance(profile, MemoryProfile) else None
        return ([explorer_view(run, options, variable_names, title, keras, memory)] if widgets else []) + [report]
    if options.show == "optimized":
        return [optimized_view(run, report, options, variable_names, keras)]
    return []


def explorer_view(run, options, variable_names: dict, title: str, keras=None, memory=None):
    """The explorer (ipywidgets) over the cell's traces; a warning if it cannot start (the drawing stands)."""
    try:
        from tfmagic.explorer import Explorer

        records = run.cell.traces if run.cell is not None else [run.trace]
        traces = [(r.reason, r.graph) for r in records]
        selected = next((i for i, r in enumerate(records) if r is run.trace), len(records) - 1)
        numbers = [r.number for r in records]
        compared = [numbers.index(r.nearest) if r.nearest in numbers else None for r in records]
        xla = None
        if getattr(run.function, "_jit_compile", False):
            from tfmagic.xla import groups_for_graph

            xla = lambda index: groups_for_graph(run.function, traces[index][1])  # noqa: E731
        return Explorer(traces, selected, title.rsplit(", trace ", 1)[0], options.max_nodes, ops=options.ops,
                        variable_names=variable_names, cell=True, compared=compared, xla=xla,
                        function=run.function, keras=keras,
                        memory=(selected, memory) if memory is not None else None).widget()
    except Exception as e:  # the explorer is an extra: the static drawing below still stands
        return Notice(f"%%tfgraph: the explorer could not start: {type(e).__name__}: {e}", level="warning")


def optimized_view(run, traced, options, variable_names: dict, keras=None) -> Comparison:
    """``--show optimized``: the traced drawing beside the graph after Grappler, and what Grappler changed."""
    from tfmagic.grappler import optimize
    from tfmagic.naming import output_names

    result = optimize(run.trace.graph)
    drawing = None
    if result.graph is not None:
        drawing, _ = draw_graph(result.graph, f"after Grappler, trace {run.trace.number}",
                                DrawOptions(ops=options.ops, max_nodes=options.max_nodes, keras=keras),
                                labels=output_names(run.trace.graph, cell=True),
                                variable_names=variable_names)  # Grappler keeps the outputs' names
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


def profile_views(call: Callable[[], object], graph, title: str, steps: int, namespace: dict) -> tuple:
    """``--profile N``: ``(profile, views)``; the profile is ``None`` (with a one-line warning) when the
    profiler cannot run or a profiled call fails."""
    from tfmagic.graph import build_graph_model
    from tfmagic.profile import ProfilerUnavailable, VariablesKept, layer_grouper, profile_calls
    from tfmagic.reports import ProfileReport

    keras = keras_names(namespace)
    layer_of = layer_grouper(set(keras.models | keras.layers | keras.optimizers))
    try:
        with VariablesKept(graph):  # an interrupt goes on up, once the profiler is stopped (profile_calls)
            profile = profile_calls(call, steps, layer_of)
    except ProfilerUnavailable as e:
        return None, [Notice(f"{title}: {e}; the cell's result stands", level="warning")]
    except Exception as e:  # a later call failed (an assert on a variable, say): the first run stands
        first = (str(e).strip().splitlines() or [""])[0][:200]
        return None, [Notice(f"{title}: a profiled call failed ({type(e).__name__}: {first}); the profiler is "
                             "stopped, the variables put back, and the cell's result stands", level="warning")]
    model = build_graph_model(graph)
    shapes = {name: ", ".join(t.label for t in op.outputs) for name, op in model.ops.items()}
    return profile, [ProfileReport(title, profile, shapes)]


def memory_views(call: Callable[[], object], graph, title: str, namespace: dict, variable_names: dict,
                 inputs: dict, line_of: Callable[[str], str], remember_as: str = "") -> tuple:
    """``--memory``: ``(memory profile, views)``: one more call measured (``memory.measure_memory``; the variables
    it writes put back), its peak sentence, curve and tables; the profile is ``None`` (with one line saying why)
    when the allocator keeps no statistics, the profiler cannot run, or the measured call fails.  Its peak by line
    is kept for an out-of-memory error whose message matches ``remember_as`` (``memory.remember``)."""
    from tfmagic.memory import NoMemoryStats, held_by, measure_memory, op_rows, remember
    from tfmagic.profile import ProfilerUnavailable, VariablesKept, layer_grouper
    from tfmagic.reports import MemoryReport

    keras = keras_names(namespace)
    layer_of = layer_grouper(set(keras.models | keras.layers | keras.optimizers))
    try:
        with VariablesKept(graph):  # an interrupt goes on up, once the profiler is stopped
            memory = measure_memory(call, held_by(graph, variable_names, inputs))
    except (NoMemoryStats, ProfilerUnavailable) as e:
        return None, [Notice(f"{title}: {e}; the cell's result stands", level="warning")]
    except Exception as e:  # a later call failed (out of memory, say): the first run stands
        first = (str(e).strip().splitlines() or [""])[0][:200]
        return None, [Notice(f"{title}: the measured call failed ({type(e).__name__}: {first}); the profiler is "
                             "stopped, the variables put back, and the cell's result stands", level="warning")]
    rows = op_rows(memory, layer_of, line_of)
    if remember_as:
        shapes = ", ".join(f"{name}: {held.dtype}{held.shape}" for name, held in
                           ((h.name, h) for h in memory.held if h.kind == "input"))
        remember(remember_as, title + (f" with {shapes}" if shapes else ""), rows)
    return memory, [MemoryReport(title, memory, rows, line_of)]


def cell_diff_views(run, options, variable_names: dict, widgets: bool = False, keras=None) -> list:
    """``--show diff``: the new trace drawn against the trace it was compared with (or the graph, with a note,
    when the run did not retrace)."""
    earlier = None
    if run.retraced and run.trace.nearest and run.cell is not None:
        earlier = next((r for r in run.cell.traces if r.number == run.trace.nearest), None)
    if earlier is None:
        note = Notice("%%tfgraph --show diff: this run did not retrace, so there is no earlier trace to draw it "
                      "against; the graph it ran is drawn")
        return [note] + trace_views(run, _with(options, show="graph"), variable_names, widgets=widgets, keras=keras)
    return diff_views(earlier.graph, run.trace.graph, f"%%tfgraph cell: trace {run.trace.number} against trace "
                      f"{earlier.number}", options, variable_names, cell=True, function=run.function, keras=keras)


def diff_views(old_graph, new_graph, title: str, options, variable_names: dict, cell: bool = False,
               function=None, keras=None) -> list:
    """Trace ``new_graph`` drawn against ``old_graph``: ops matched by structure, what was added, removed, changed."""
    from tfmagic.engine import gc_paused
    from tfmagic.graph import build_graph_model
    from tfmagic.tracediff import diff_models

    with gc_paused():
        old = build_graph_model(old_graph, labels=_labels(old_graph, function, cell, options),
                                variable_names=variable_names)
        new = build_graph_model(new_graph, labels=_labels(new_graph, function, cell, options),
                                variable_names=variable_names)
        merged, counts = diff_models(old, new)
    try:
        report, _ = draw_model(merged, f"{title}: {counts.text}", DrawOptions.from_args(options, keras=keras))
    except (TfMagicError, OSError) as e:
        return [Notice(f"the diff drawing failed: {e}", level="warning")]
    return [report]


def xla_views(function, call_args, graph, title: str, options, labels: dict, variable_names: dict,
              timing: str = "", keras=None) -> list:
    """``--show xla``: the drawing with XLA's kernels boxed around the TF ops they compute, the kernels' table,
    XLA's memory plan, the compile time; ``--show hlo``: XLA's optimized HLO text and the table."""
    from tfmagic.engine import gc_paused
    from tfmagic.graph import build_graph_model
    from tfmagic.xla import fusion_groups, kernel_table, memory_table, parameter_names, with_added, xla_report

    try:
        report = xla_report(function, call_args, parameter_names(graph), text=options.show == "hlo")
    except TfMagicError as e:  # the cell's result and write-back stand
        return [Notice(f"--show {options.show}: {e}", level="warning")]
    table = kernel_table(report, f"{title}: what XLA runs")
    if options.show == "hlo":
        return [Notice(report.hlo_text), table]
    views: list = []
    try:
        with gc_paused():
            model = with_added(build_graph_model(graph, labels=labels, variable_names=variable_names), report)
        drawing, _ = draw_model(model, f"{title}: XLA's kernels around the ops they compute",
                                DrawOptions.from_args(options, keras=keras), groups=fusion_groups(report))
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


def function_views(target, options, variable_names: dict, namespace: dict, cell: bool = False) -> FunctionViews:
    """``%tfgraph FUNC``: the chosen trace of a ``tf.function``, concrete function or Keras model drawn (the others
    too, for a menu), or two traces against each other (``--diff A B``), XLA's view, a profile.

    Raises:
        OptionError: a trace number out of range, or ``target`` has no traces (``retracing.traces_of``).
    """
    from tfmagic.retracing import traces_of

    keras = keras_names(namespace)
    try:
        traces = traces_of(target)
    except TfMagicError as e:
        raise OptionError(f"%tfgraph {options.function}: {e}") from e
    chosen = len(traces) - 1 if options.trace is None else options.trace - 1
    if not 0 <= chosen < len(traces):
        raise OptionError(f"--trace {options.trace}: {options.function} has traces 1 to {len(traces)}")
    if options.diff:
        first, second = options.diff
        for number in (first, second):
            if not 1 <= number <= len(traces):
                raise OptionError(f"--diff {first} {second}: {options.function} has traces 1 to {len(traces)}")
        return FunctionViews(diff_views(traces[first - 1][1], traces[second - 1][1],
                                        f"{options.function}: trace {second} ({traces[second - 1][0]}) against "
                                        f"trace {first} ({traces[first - 1][0]})", options, variable_names,
                                        cell=cell, function=target, keras=keras))
    if options.show in ("xla", "hlo"):
        return FunctionViews(_function_xla(target, chosen, traces, options, variable_names, cell, keras))
    profile, views = None, []
    if options.profile:
        profile, views = _function_profile(target, chosen, traces[chosen][1], options, namespace)
    if getattr(options, "memory", False):
        memory, shown = _function_memory(target, chosen, traces[chosen][1], options, namespace, variable_names)
        views += shown
        profile = memory or profile
    chosen_options = DrawOptions.from_args(options, keras=keras)
    others = DrawOptions.from_args(options, output=False, keras=keras)  # -o writes the chosen trace
    reports = [draw_graph(graph, f"{options.function}, trace {i + 1}: {label}", chosen_options if i == chosen
                          else others, labels=_labels(graph, target, cell, options), variable_names=variable_names,
                          profile=profile if i == chosen else None)[0]
               for i, (label, graph) in enumerate(traces)]
    if options.show == "none":
        return FunctionViews(views)
    labels = [f"{i + 1}: {label}" for i, (label, _) in enumerate(traces)]
    line = f"{options.function} has {len(reports)} traces: " + "; ".join(labels) if len(reports) > 1 else ""
    return FunctionViews(views + [reports[chosen]], line, labels if line else [], reports if line else [])


def _function_xla(target, chosen: int, traces, options, variable_names: dict, cell: bool, keras=None) -> list:
    """``%tfgraph FUNC --show xla``: what XLA made of the chosen trace (its signature's shapes)."""
    from tfmagic.profile import zeros_for
    from tfmagic.retracing import is_tf_function, trace_history

    if not (is_tf_function(target) and getattr(target, "_jit_compile", False)):
        return [Notice(f"%tfgraph {options.function} --show {options.show}: XLA does not compile it: it is not a "
                       "jit_compile tf.function (@tf.function(jit_compile=True), or a %%tfgraph --jit cell)")]
    concrete = trace_history(target).traces[chosen].concrete
    specs, kwargs = concrete.structured_input_signature
    zeros = [zeros_for(s, known=True) for s in specs]  # the trace's own shapes (a variable's too): no new trace
    if kwargs or any(z is None for z in zeros):
        return [Notice(f"%tfgraph {options.function} --show {options.show}: trace {chosen + 1} has arguments that "
                       "are not tensors or variables of known shapes; draw it from a %%tfgraph --jit --show xla cell "
                       "that calls it")]
    graph = traces[chosen][1]
    return xla_views(target, zeros, graph, f"{options.function}, trace {chosen + 1}", options,
                     _labels(graph, target, cell, options), variable_names, keras=keras)


def _function_profile(target, chosen: int, graph, options, namespace: dict) -> tuple:
    """``%tfgraph FUNC --profile``: the chosen trace called with zeros of its arguments' shapes."""
    from tfmagic.profile import zeros_call

    concrete = _concrete(target, chosen)
    if concrete is None:
        return None, [Notice(f"%tfgraph {options.function} --profile: a Keras model is profiled through a "
                             "%%tfgraph cell that calls it (with your inputs)", level="warning")]
    return profile_views(zeros_call(concrete), graph, f"%tfgraph {options.function} --profile (trace {chosen + 1}, "
                         "called with zeros of its arguments' shapes)", options.profile, namespace)


def _concrete(target, chosen: int):
    """The concrete function of trace ``chosen`` of a tf.function (or the concrete function itself); ``None`` for a
    Keras model."""
    from tfmagic.retracing import is_tf_function, trace_history

    if is_tf_function(target):
        return trace_history(target).traces[chosen].concrete
    return target if hasattr(target, "function_type") else None


def _function_memory(target, chosen: int, graph, options, namespace: dict, variable_names: dict) -> tuple:
    """``%tfgraph FUNC --memory``: the chosen trace called with zeros of its arguments' shapes."""
    from tfmagic.memory import function_pattern, line_finder
    from tfmagic.profile import zeros_call

    concrete = _concrete(target, chosen)
    if concrete is None:
        return None, [Notice(f"%tfgraph {options.function} --memory: a Keras model is measured through a "
                             "%%tfgraph --memory cell that calls it (with your inputs)", level="warning")]
    call = zeros_call(concrete)
    return memory_views(call, graph, f"%tfgraph {options.function} --memory (trace {chosen + 1}, called with zeros "
                        "of its arguments' shapes)", namespace, variable_names, {}, line_finder(graph),
                        function_pattern(concrete))


def _labels(graph, function, cell: bool, options) -> dict[str, str]:
    from tfmagic.naming import trace_labels

    return trace_labels(graph, function, cell, options.ops == "readable", getattr(options, "autograph", True))


def _with(options, **changes):
    """A copy of the parsed line with some options changed."""
    import argparse

    return argparse.Namespace(**{**vars(options), **changes})

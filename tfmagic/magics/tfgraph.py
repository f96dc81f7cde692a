"""``%%tfgraph`` and ``%tfgraph FUNC``: run a cell as a tf.function and draw what TensorFlow traced.

Options parse here; the core does the work: ``tracing.trace_cell`` runs the cell, ``render.draw_graph``
draws it (the readable view or ``--ops all``), ``grappler`` gives ``--show optimized``, ``profile``
gives ``--profile``, ``tracediff`` gives ``--show diff`` and ``--diff A B``; ``explorer`` is the widget
above the drawing where a Jupyter kernel runs widgets.
"""

from __future__ import annotations

import keyword
import time

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import CellSourceError, OptionError, TfMagicError
from tfmagic.magics.display import MAX_MEMO
from tfmagic.magics.session import SessionMagics
from tfmagic.profile import DEFAULT_STEPS


def _keras_name_scopes() -> list | None:
    """Keras 3's stack of name scopes (``keras/src/backend/common/name_scope.py`` keeps it in its global
    state), or ``None`` without Keras 3."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    return global_state.get_global_attribute("name_scope_stack", default=[], set_to_default=True)


@magics_class
class TfGraphMagics(SessionMagics):
    """``%%tfgraph`` and ``%tfgraph FUNC``."""

    def __init__(self, shell):
        super().__init__(shell)
        self._parsed_lines: dict = {}  # option line -> (args, FunctionOptions)

    @magic_arguments()
    @argument("function", nargs="?", metavar="FUNC",
              help="(line form) an existing tf.function, concrete function or Keras model to draw")
    @argument("-n", "--name", dest="name", metavar="NAME",
              help="keep the cell's tf.function in the namespace as NAME; re-runs under this name reuse it")
    @argument("--jit", dest="jit", action="store_true", help="compile with XLA (tf.function(jit_compile=True))")
    @argument("--reduce-retracing", dest="reduce_retracing", action="store_true",
              help="let TensorFlow generalise shapes instead of tracing per shape (reduce_retracing=True)")
    @argument("--no-autograph", dest="autograph", action="store_false",
              help="trace without AutoGraph: Python control flow is not converted")
    @argument("--max-traces", dest="max_traces", type=int, metavar="N",
              help="fail the cell, with the reason, instead of tracing it more than N times")
    @argument("--show", dest="show", choices=("graph", "text", "code", "optimized", "diff", "xla", "hlo", "none"),
              default="graph",
              help="what to show below the result: the traced graph (default), the same as text (ops in order "
                   "with types, shapes and inputs), the code AutoGraph generated, the graph after Grappler "
                   "beside the traced one, the new trace drawn against the one it was compared with (when the "
                   "cell retraced), what XLA made of it (with --jit or a jit_compile FUNC: its kernels boxed "
                   "around the ops they compute, a table of them, XLA's memory plan), XLA's optimized HLO text "
                   "(hlo), or nothing")
    @argument("--profile", dest="profile", nargs="?", type=int, const=DEFAULT_STEPS, metavar="N",
              help=f"run the traced function N more times (default {DEFAULT_STEPS}, after one warm-up call; the "
                   "variables it writes are put back) under TensorFlow's profiler: the ops that take the time, by op "
                   "and by layer or name scope, wall time beside op time, devices; the drawing filled by each op's "
                   "share")
    @argument("--diff", dest="diff", nargs=2, type=int, metavar=("A", "B"),
              help="(line form) draw trace B of FUNC against trace A: ops added and removed, tensors changed")
    @argument("--ops", dest="ops", choices=("readable", "all"), default="readable",
              help="readable (default): the program as written (variable reads, identities, NoOps, control "
                   "edges and loop bookkeeping folded away, with a line saying what was hidden); "
                   "all: every op as TensorFlow has it")
    @argument("--expand", dest="expand", action="append", default=[], metavar="SCOPE",
              help="open a name scope (a glob; repeat for more) in a collapsed drawing")
    @argument("--depth", dest="depth", type=int, metavar="N",
              help="draw collapsed by name scope, N levels deep")
    @argument("--max-nodes", dest="max_nodes", type=int, metavar="N",
              help="the most nodes a drawing holds (default 500): a graph that still has more after graphs of "
                   "more than 150 ops start collapsed is collapsed further, then cut, with a note")
    @argument("--trace", dest="trace", type=int, metavar="N",
              help="(line form) which trace of FUNC to draw first (default: the latest)")
    @argument("-o", "--output", dest="output", metavar="FILE",
              help="also write the drawing to FILE (.svg, .png, .pdf or .dot)")
    @argument("--tensorboard", dest="tensorboard", metavar="LOGDIR",
              help="also write the traced graph where TensorBoard reads it (tensorboard --logdir LOGDIR)")
    @no_var_expand
    @line_cell_magic
    def tfgraph(self, line, cell=None):
        """Run the cell as a tf.function and draw the graph TensorFlow traced.

        Usage::

            %%tfgraph [-n NAME] [--jit] [--reduce-retracing] [--no-autograph] [--max-traces N]
                      [--show graph|text|code|optimized|diff|none] [--ops readable|all] [--profile [N]]
                      [--expand SCOPE] [--depth N] [--max-nodes N] [-o FILE] [--tensorboard LOGDIR]
            %tfgraph FUNC [--trace N] [--diff A B] [--profile [N]] [--ops readable|all] [--expand SCOPE]
                          [--depth N] [--max-nodes N] [-o FILE]

        The cell's body becomes a tf.function (AutoGraph converts its control flow).
        Tensors, NumPy arrays and Python scalars it reads from the namespace are the
        function's arguments, so a new shape, dtype or Python value retraces it, and
        the output says which argument changed, how, and the fix; variables, layers,
        models and functions are captured.  Names the cell assigns are written back
        (tensors as eager tensors) and a last expression is the cell's result.  If the
        cell fails, the namespace is left as it was.  Running the same cell again
        reuses its tf.function.  Trace-time pitfalls (print, list appends, NumPy or
        random calls that run only while tracing, unrolled range loops) are flagged
        with their line.

        Below the result comes the traced graph, drawn with Graphviz as the cell was
        written (the readable view): green inputs, orange variables named as the
        notebook names them (a layer's weights by the layer's path), blue outputs
        named by the names the cell binds, ops with the small constants they read,
        purple control flow with the graphs of its functions below it, name scopes
        as dashed boxes, edges labelled with dtype and shape.  Variable reads,
        identities, NoOps, control edges, unused ops and loop bookkeeping are folded
        away, and a line under the drawing counts them; --ops all draws every op.
        Graphs of more than 150 ops start collapsed by name scope (one node per Keras
        layer); --expand SCOPE (globs, repeatable) and --depth N open them.
        --max-nodes N (default 500) caps the nodes a drawing holds: a graph that still
        has more is collapsed further, then cut, with a note of what it left out.

        --show text lists the graph's ops as text (type, output, what each reads): a
        terminal shows that below every drawing.  --show optimized draws the graph
        after Grappler (constant folding, pruning, arithmetic simplification) beside
        the traced one and says what changed; --show code shows the code AutoGraph
        generated from the cell; --show diff draws a retrace against the trace it was
        compared with (ops added and removed, tensors whose dtype or shape changed).
        --profile [N] runs the traced function N more times under TensorFlow's
        profiler: the ops that take the time, by op and by Keras layer, wall time
        beside op time, and the drawing filled by each op's share of the time.

        The line form draws the traces of an existing tf.function (a menu draws the
        others where widgets run), a concrete function, or a Keras model; --diff A B
        draws trace B against trace A, --profile [N] profiles the trace drawn (called
        with zeros of its arguments' shapes).

        Example::

            %%tfgraph -n step --max-traces 2
            y = tf.matmul(x, w) + b
            tf.reduce_sum(y)
        """
        args, options = self._parse_tfgraph(line)
        if cell is None:
            return self._draw_function(args)
        if args.function:
            raise UsageError(f"%%tfgraph takes no positional argument (got {args.function!r}); "
                             "the line form %tfgraph FUNC draws an existing function")
        from tfmagic.tracing import trace_cell

        source = self._transformed(cell)
        before = dict(self.shell.user_ns) if args.profile or args.show in ("xla", "hlo") else None  # the inputs
        started = time.perf_counter()
        scopes = _keras_name_scopes()
        depth = len(scopes) if scopes is not None else 0
        try:
            run = trace_cell(source, self.shell.user_ns, cache=self.cells, name=args.name, options=options,
                             max_traces=args.max_traces)
        except CellSourceError as e:
            raise UsageError(f"%%tfgraph: {e}") from e
        except BaseException:
            if scopes is not None:  # a layer call that failed inside its name scope leaves it on Keras's stack,
                del scopes[depth:]  # and every later variable's name would start with it
            raise
        self._write_back(run, args.name)
        if run.traced:
            self._show_trace_notes(run)
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if run.eager:  # tf.config.run_functions_eagerly(True): it ran eagerly, there is no graph
            from tfmagic.reports import Notice

            display(Notice(f"%%tfgraph: {run.eager}"))
            return
        if args.tensorboard:
            self._write_tensorboard(run, args.tensorboard)
        profile = None
        if args.profile:
            values = [before[name] for name in run.inputs]
            profile = self._profile(lambda: run.function(*values), run.trace.graph, "%%tfgraph --profile", args)
        elapsed = time.perf_counter() - started
        if args.show == "text":
            self._describe(run, args)
        if args.show in ("xla", "hlo"):
            if not options.jit_compile:
                from tfmagic.reports import Notice

                display(Notice(f"%%tfgraph --show {args.show}: XLA does not compile this cell; add --jit "
                               f"(%%tfgraph --jit --show {args.show})"))
            else:
                from tfmagic.render import DrawOptions, run_labels

                timing = (f"this run traced the cell and XLA compiled it: {elapsed * 1e3:,.0f} ms in all (run it "
                          "again for a compiled run's time)" if run.traced else
                          f"this run reused XLA's compiled kernels: {elapsed * 1e3:,.1f} ms")
                self._show_xla(run.function, [before[name] for name in run.inputs], run.trace.graph,
                               f"%%tfgraph --jit cell, trace {run.trace.number}", args,
                               run_labels(run, DrawOptions.from_args(args)), timing)
        elif args.show == "diff":
            self._draw_cell_diff(run, args)
        elif args.show in ("graph", "optimized") or args.output:
            self._draw(run, args, profile)
        elif args.show == "code":
            self._show_code(run, args)

    def _show_xla(self, function, call_args, graph, title: str, args, labels: dict, timing: str = "") -> None:
        """``--show xla``: the drawing with XLA's kernels boxed around the TF ops they compute, the kernels'
        table, XLA's memory plan, the compile time; ``--show hlo``: XLA's optimized HLO text and the table."""
        from tfmagic.graph import build_graph_model
        from tfmagic.engine import gc_paused
        from tfmagic.render import DrawOptions, draw_model
        from tfmagic.reports import Notice
        from tfmagic.xla import fusion_groups, kernel_table, memory_table, parameter_names, with_added, xla_report

        try:
            report = xla_report(function, call_args, parameter_names(graph), text=args.show == "hlo")
        except TfMagicError as e:  # the cell's result and write-back stand
            display(Notice(f"--show {args.show}: {e}", level="warning"))
            return
        table = kernel_table(report, f"{title}: what XLA runs")
        if args.show == "hlo":
            display(Notice(report.hlo_text))
            display(table)
            return
        try:
            with gc_paused():
                model = with_added(build_graph_model(graph, labels=labels, variable_names=self.variable_names()),
                                   report)
            drawing, _ = draw_model(model, f"{title}: XLA's kernels around the ops they compute",
                                    DrawOptions.from_args(args), groups=fusion_groups(report))
            display(drawing)
        except (TfMagicError, OSError) as e:
            display(Notice(f"--show xla: the drawing failed: {e}", level="warning"))
        display(table)
        display(memory_table(report))
        if timing:
            display(Notice(f"compile time: {timing}"))

    def _write_tensorboard(self, run, logdir: str) -> None:
        import tensorflow as tf

        from tfmagic.reports import Notice

        try:
            writer = tf.summary.create_file_writer(logdir)
            with writer.as_default():
                tf.summary.graph(run.trace.graph.as_graph_def())
            writer.flush()
            writer.close()
        except (OSError, tf.errors.OpError, ValueError) as e:  # the cell's result and write-back stand
            display(Notice(f"%%tfgraph: could not write the graph for TensorBoard to {logdir!r}: {e}",
                           level="warning"))
            return
        display(Notice(f"%%tfgraph: trace {run.trace.number} written for TensorBoard: tensorboard --logdir {logdir}"))

    def _show_code(self, run, args) -> None:
        from tfmagic.reports import CodeReport, Notice

        if not args.autograph:
            display(Notice("%%tfgraph --show code: AutoGraph is off (--no-autograph): the cell is traced as written"))
            return
        import tensorflow as tf

        code = tf.autograph.to_code(run.function.python_function)
        display(CodeReport("%%tfgraph: the code AutoGraph generated from the cell", code))

    def _parse_tfgraph(self, line):
        """Parse the options (the same line parses once; ``-o`` is checked every time)."""
        parsed = self._parsed_lines.get(line)
        try:
            if parsed is None:
                args = parse_argstring(self.tfgraph, line)
                parsed = (args, self._tfgraph_options(args))
                if len(self._parsed_lines) < MAX_MEMO:
                    self._parsed_lines[line] = parsed
            if parsed[0].output:
                from tfmagic.engine import check_writable

                check_writable(parsed[0].output)
        except OptionError as e:
            raise UsageError(str(e)) from e
        return parsed

    @staticmethod
    def _tfgraph_options(args):
        from tfmagic.tracing import FunctionOptions

        if args.name is not None and (not args.name.isidentifier() or keyword.iskeyword(args.name)):
            raise OptionError(f"-n {args.name!r}: NAME must be a Python identifier")
        if args.max_traces is not None and args.max_traces < 1:
            raise OptionError(f"--max-traces {args.max_traces}: N must be 1 or more")
        if args.max_nodes is not None and args.max_nodes < 1:
            raise OptionError(f"--max-nodes {args.max_nodes}: N must be 1 or more")
        if args.depth is not None and args.depth < 1:
            raise OptionError(f"--depth {args.depth}: N must be 1 or more")
        if args.profile is not None and args.profile < 1:
            raise OptionError(f"--profile {args.profile}: N must be 1 or more")
        return FunctionOptions(jit_compile=args.jit, reduce_retracing=args.reduce_retracing,
                               autograph=args.autograph)

    def _write_back(self, run, name) -> None:
        namespace = self.shell.user_ns
        namespace.update(run.outputs)
        run.redefine_functions(namespace)  # the cell's functions read the notebook's names, as a plain cell's do
        for deleted in run.deleted:
            if deleted not in run.outputs:
                namespace.pop(deleted, None)
        if name:
            namespace[name] = run.function

    def _show_trace_notes(self, run) -> None:
        from tfmagic.reports import Notice
        from tfmagic.retracing import retrace_text

        trace = run.trace
        if run.retraced:
            display(Notice(retrace_text("%%tfgraph", trace.number, trace.changes, trace.fixes, trace.diff,
                                        trace.nearest) + f"\n  the cell's function has {run.trace_count} traces",
                           level="warning"))
        from tfmagic.diagnostics import grouped

        for finding in grouped(run.findings):  # one note per kind, listing its lines
            display(Notice(f"%%tfgraph: {finding.text}", level="warning"))

    def _profile(self, call, graph, title: str, args):
        """Profile ``call`` and show the tables; ``None`` (with a one-line note) when the profiler cannot run."""
        from tfmagic.graph import build_graph_model
        from tfmagic.profile import (ProfilerUnavailable, VariablesKept, keras_layer_names, layer_grouper,
                                     profile_calls)
        from tfmagic.reports import Notice, ProfileReport

        layer_of = layer_grouper(keras_layer_names(self.shell.user_ns))
        try:
            with VariablesKept(graph):  # an interrupt goes on up, once the profiler is stopped (profile_calls)
                profile = profile_calls(call, args.profile, layer_of)
        except ProfilerUnavailable as e:
            display(Notice(f"{title}: {e}; the cell's result stands", level="warning"))
            return None
        except Exception as e:  # a later call failed (an assert on a variable, say): the first run stands
            first = (str(e).strip().splitlines() or [""])[0][:200]
            display(Notice(f"{title}: a profiled call failed ({type(e).__name__}: {first}); the profiler is "
                           "stopped, the variables put back, and the cell's result stands", level="warning"))
            return None
        model = build_graph_model(graph)
        shapes = {name: ", ".join(t.label for t in op.outputs) for name, op in model.ops.items()}
        display(ProfileReport(title, profile, shapes))
        return profile

    def _draw_cell_diff(self, run, args) -> None:
        """``--show diff``: the new trace drawn against the trace it was compared with."""
        from tfmagic.reports import Notice

        cell = run.cell
        earlier = None
        if run.retraced and run.trace.nearest and cell is not None:
            earlier = next((r for r in cell.traces if r.number == run.trace.nearest), None)
        if earlier is None:
            import argparse

            display(Notice("%%tfgraph --show diff: this run did not retrace, so there is no earlier trace to draw it "
                           "against; the graph it ran is drawn"))
            self._draw(run, argparse.Namespace(**{**vars(args), "show": "graph"}))
            return
        self._show_diff(earlier.graph, run.trace.graph, f"%%tfgraph cell: trace {run.trace.number} against trace "
                        f"{earlier.number}", args, cell=True, function=run.function)

    def _show_diff(self, old_graph, new_graph, title: str, args, cell: bool = False, function=None) -> None:
        from tfmagic.graph import build_graph_model
        from tfmagic.engine import gc_paused
        from tfmagic.render import DrawOptions, draw_model
        from tfmagic.reports import Notice
        from tfmagic.tracediff import diff_models

        names = self.variable_names()
        with gc_paused():
            old = build_graph_model(old_graph, labels=self._graph_labels(old_graph, function, cell, args),
                                    variable_names=names)
            new = build_graph_model(new_graph, labels=self._graph_labels(new_graph, function, cell, args),
                                    variable_names=names)
            merged, counts = diff_models(old, new)
        try:
            report, _ = draw_model(merged, f"{title}: {counts.text}", DrawOptions.from_args(args))
        except (TfMagicError, OSError) as e:
            display(Notice(f"the diff drawing failed: {e}", level="warning"))
            return
        display(report)

    @staticmethod
    def _graph_labels(graph, function, cell: bool, args) -> dict[str, str]:
        from tfmagic.naming import trace_labels

        return trace_labels(graph, function, cell, args.ops == "readable", getattr(args, "autograph", True))

    def _is_cell_function(self, function) -> bool:
        """Whether ``function`` is a %%tfgraph cell's (its outputs are the cell's names and result)."""
        return self._cells is not None and any(c.function is function for _, c in self._cells.cells())

    def _describe(self, run, args) -> None:
        """``--show text``: the graph as text, ops in order with their types, shapes and inputs."""
        from tfmagic.render import DrawOptions, describe_graph, run_labels

        options = DrawOptions.from_args(args, output=False)
        display(describe_graph(run.trace.graph, f"%%tfgraph cell, trace {run.trace.number}", options,
                               labels=run_labels(run, options), variable_names=self.variable_names()))

    def _draw(self, run, args, profile=None) -> None:
        from tfmagic.render import DrawOptions, draw_trace
        from tfmagic.reports import Notice

        title = f"%%tfgraph {'-n ' + args.name + ' ' if args.name else ''}cell, trace {run.trace.number}"
        try:
            report, _ = draw_trace(run, title, DrawOptions.from_args(args), variable_names=self.variable_names(),
                                   profile=profile)
            if args.output:
                report.hint = f"the drawing: written to {args.output}"
        except (TfMagicError, OSError) as e:  # the cell's result and write-back stand
            display(Notice(f"%%tfgraph: the drawing failed: {e}", level="warning"))
            return
        if args.show == "graph":
            self._show_explorer(run, args, title)
            display(report)
        elif args.show == "optimized":
            display(self._optimized(run, report, args))

    def _widgets_run_here(self) -> bool:
        """Whether a frontend that runs widgets may be listening (a Jupyter kernel, not a terminal)."""
        if type(self.shell).__name__ != "ZMQInteractiveShell":
            return False
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
        return True

    def _show_explorer(self, run, args, title) -> None:
        """The explorer above the static drawing, where widgets run; never at the cost of the cell."""
        if not self._widgets_run_here():
            return
        from tfmagic.reports import Notice

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
            display(Explorer(traces, selected, title.rsplit(", trace ", 1)[0], args.max_nodes, ops=args.ops,
                             variable_names=self.variable_names(), cell=True, compared=compared, xla=xla,
                             function=run.function).widget())
        except Exception as e:  # the explorer is an extra: the static drawing below still stands
            display(Notice(f"%%tfgraph: the explorer could not start: {type(e).__name__}: {e}", level="warning"))

    def _optimized(self, run, traced, args):
        from tfmagic.grappler import optimize
        from tfmagic.render import DrawOptions, draw_graph
        from tfmagic.reports import Comparison

        result = optimize(run.trace.graph)
        drawing = None
        if result.graph is not None:
            from tfmagic.naming import output_names

            drawing, _ = draw_graph(result.graph, f"after Grappler, trace {run.trace.number}",
                                    DrawOptions(ops=args.ops, max_nodes=args.max_nodes),
                                    labels=output_names(run.trace.graph, cell=True),
                                    variable_names=self.variable_names())  # Grappler keeps the outputs' names
        return Comparison(traced, drawing, result.summary)

    def _draw_function(self, args):
        """``%tfgraph FUNC``: draw the traces of an existing function or model."""
        from tfmagic.render import DrawOptions, draw_graph
        from tfmagic.reports import make_trace_menu
        from tfmagic.retracing import traces_of

        if not args.function:
            raise UsageError("%tfgraph needs FUNC (a tf.function, concrete function or Keras model), "
                             "or use the cell form %%tfgraph")
        try:
            target = self.shell.ev(args.function)
        except Exception as e:
            raise UsageError(f"%tfgraph: cannot evaluate {args.function!r}: {type(e).__name__}: {e}") from e
        try:
            traces = traces_of(target)
        except TfMagicError as e:
            raise UsageError(f"%tfgraph {args.function}: {e}") from e
        chosen = len(traces) - 1 if args.trace is None else args.trace - 1
        if not 0 <= chosen < len(traces):
            raise UsageError(f"--trace {args.trace}: {args.function} has traces 1 to {len(traces)}")
        if args.diff:
            return self._draw_function_diff(args, traces, target)
        if args.show in ("xla", "hlo"):
            return self._show_function_xla(target, chosen, traces, args)
        profile = self._profile_function(target, chosen, traces[chosen][1], args) if args.profile else None
        chosen_options = DrawOptions.from_args(args)
        others = DrawOptions.from_args(args, output=False)  # -o writes the chosen trace
        reports = []
        names = self.variable_names()
        cell = self._is_cell_function(target)
        for i, (label, graph) in enumerate(traces):
            report, _ = draw_graph(graph, f"{args.function}, trace {i + 1}: {label}",
                                   chosen_options if i == chosen else others,
                                   labels=self._graph_labels(graph, target, cell, args),
                                   variable_names=names, profile=profile if i == chosen else None)
            reports.append(report)
        if args.show == "none":
            return None
        display(reports[chosen])
        if len(reports) > 1:
            labels = [f"{i + 1}: {label}" for i, (label, _) in enumerate(traces)]
            print(f"{args.function} has {len(reports)} traces: " + "; ".join(labels))
            terminal = type(self.shell).__name__ == "TerminalInteractiveShell"  # it would print the widget's repr
            menu = None if terminal else make_trace_menu(labels, reports)
            if menu is not None:
                display(menu)
        return None

    def _show_function_xla(self, target, chosen: int, traces, args) -> None:
        """``%tfgraph FUNC --show xla``: what XLA made of the chosen trace (its signature's shapes)."""
        import tensorflow as tf

        from tfmagic.reports import Notice
        from tfmagic.retracing import is_tf_function, trace_history

        if not (is_tf_function(target) and getattr(target, "_jit_compile", False)):
            display(Notice(f"%tfgraph {args.function} --show {args.show}: XLA does not compile it: it is not a "
                           "jit_compile tf.function (@tf.function(jit_compile=True), or a %%tfgraph --jit cell)"))
            return None
        concrete = trace_history(target).traces[chosen].concrete
        specs, kwargs = concrete.structured_input_signature
        if kwargs or not all(isinstance(s, tf.TensorSpec) and s.shape.is_fully_defined() for s in specs):
            display(Notice(f"%tfgraph {args.function} --show {args.show}: trace {chosen + 1} has arguments that are "
                           "not tensors of known shapes; draw it from a %%tfgraph --jit --show xla cell that calls it"))
            return None
        zeros = [tf.zeros(s.shape, s.dtype) for s in specs]  # the trace's own shapes: no new trace
        self._show_xla(target, zeros, traces[chosen][1], f"{args.function}, trace {chosen + 1}", args,
                       self._graph_labels(traces[chosen][1], target, self._is_cell_function(target), args))
        return None

    def _draw_function_diff(self, args, traces, target) -> None:
        """``%tfgraph FUNC --diff A B``: trace B drawn against trace A."""
        first, second = args.diff
        for number in (first, second):
            if not 1 <= number <= len(traces):
                raise UsageError(f"--diff {first} {second}: {args.function} has traces 1 to {len(traces)}")
        self._show_diff(traces[first - 1][1], traces[second - 1][1],
                        f"{args.function}: trace {second} ({traces[second - 1][0]}) against trace {first} "
                        f"({traces[first - 1][0]})", args, cell=self._is_cell_function(target), function=target)

    def _profile_function(self, target, chosen: int, graph, args):
        """``%tfgraph FUNC --profile``: the chosen trace called with zeros of its arguments' shapes."""
        from tfmagic.profile import zeros_call
        from tfmagic.reports import Notice
        from tfmagic.retracing import is_tf_function, trace_history

        if is_tf_function(target):
            concrete = trace_history(target).traces[chosen].concrete
        elif hasattr(target, "function_type"):
            concrete = target
        else:
            display(Notice(f"%tfgraph {args.function} --profile: a Keras model is profiled through a %%tfgraph "
                           "cell that calls it (with your inputs)", level="warning"))
            return None
        return self._profile(zeros_call(concrete), graph, f"%tfgraph {args.function} --profile (trace {chosen + 1}, "
                             "called with zeros of its arguments' shapes)", args)

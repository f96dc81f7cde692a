"""The magics: option parsing, the namespace in and out, and display.

This is the only module that imports IPython.  Each magic parses its options,
calls the core and shows what the core returns.  The session's state (the
cells' functions, the retrace watch, the hooks) lives on :class:`TFMagics`.
"""

from __future__ import annotations

import keyword

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import CellSourceError, OptionError, TfMagicError

#: How many option lines and cell texts the magics memoise.
_MAX_MEMO = 256


@magics_class
class TFMagics(Magics):
    """``%%tfgraph``, ``%tfgraph FUNC``, ``%tfretrace``, ``%%tape`` and ``%tfdevice``; a session's state lives here."""

    def __init__(self, shell):
        super().__init__(shell)
        self._cells = None  # tracing.CellCache, made on first use (it imports TensorFlow)
        self._parsed_lines: dict = {}  # option line -> (args, FunctionOptions)
        self._sources: dict = {}  # cell text -> transformed source
        self._watch = None  # retracing.TraceCounts while %tfretrace --watch is on
        self._watched_pitfalls: set[int] = set()  # functions whose source pitfalls were reported
        self._previous_custom_exc = None
        self._pin = None  # devices.DevicePin while %tfdevice DEVICE is on
        self._strategy = None  # devices.StrategyScope while %tfdevice --strategy KIND is on
        self._log_cells = False  # %tfdevice --log: show the placement of every following cell
        self._device_hooks = False
        self._cell_state = None  # what the pre-cell hook started: (namespace ids, placement capture)
        self._transformed_source = ""  # the source of the %%tfgraph cell running now (for the explorer)
        self._history = None  # naming.HistoryTargets: how the session's cells bound each name
        self._install_error_handler()

    @property
    def cells(self):
        if self._cells is None:
            from tfmagic.tracing import CellCache

            self._cells = CellCache()
        return self._cells

    def close(self) -> None:
        """Undo what the magics added: hooks, the error handler, cached functions, the magics themselves."""
        self._stop_watch()
        self._pin = self._strategy = None
        self._log_cells = False
        self._after_pinned_cell(report=False)
        self._remove_error_handler()
        if self._cells is not None:
            self._cells.clear()
        manager = self.shell.magics_manager
        for kind, names in self.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        configurables = getattr(self.shell, "configurables", [])
        if self in configurables:  # Magics.__init__ put it there
            configurables.remove(self)

    # -- %%tfgraph and %tfgraph FUNC ------------------------------------------

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
    @argument("--show", dest="show", choices=("graph", "code", "optimized", "diff", "none"), default="graph",
              help="what to show below the result: the traced graph (default), the code AutoGraph generated, "
                   "the graph after Grappler beside the traced one, the new trace drawn against the one it was "
                   "compared with (when the cell retraced), or nothing")
    @argument("--profile", dest="profile", nargs="?", type=int, const=10, metavar="N",
              help="run the traced function N more times (default 10, after one warm-up call; the variables it "
                   "writes are put back) under TensorFlow's profiler: the ops that take the time, by op and by "
                   "layer or name scope, wall time beside op time, devices; the drawing filled by each op's share")
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
              help="draw at most N nodes: larger graphs are collapsed by name scope, then cut, with a note "
                   "(default 500)")
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
                      [--show graph|code|optimized|none] [--ops readable|all] [--expand SCOPE] [--depth N]
                      [--max-nodes N] [-o FILE] [--tensorboard LOGDIR]
            %tfgraph FUNC [--trace N] [--ops readable|all] [--expand SCOPE] [--depth N] [--max-nodes N] [-o FILE]

        The cell's body becomes a tf.function (AutoGraph converts its control flow).
        Tensors, NumPy arrays and Python scalars it reads from the namespace are the
        function's arguments, so a new shape, dtype or Python value traces again, and
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
        away, and a line under the drawing counts them; --ops all draws every op.  Graphs of more than 150 ops start collapsed, one node per
        name scope (a Keras layer); --expand SCOPE (globs, repeatable) and --depth N
        open them, and --max-nodes N caps the drawing with a note of what it left out.

        --show optimized draws the graph after Grappler (constant folding, pruning,
        arithmetic simplification) beside the traced one and says what changed;
        --show code shows the code AutoGraph generated from the cell.

        The line form draws the traces of an existing tf.function (a menu draws the
        others where widgets run), a concrete function, or a Keras model.

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
        self._transformed_source = source
        before = dict(self.shell.user_ns) if args.profile else None  # the inputs the profiled calls get
        try:
            run = trace_cell(source, self.shell.user_ns, cache=self.cells, name=args.name, options=options,
                             max_traces=args.max_traces)
        except CellSourceError as e:
            raise UsageError(f"%%tfgraph: {e}") from e
        self._write_back(run, args.name)
        if run.traced:
            self._show_trace_notes(run)
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if args.tensorboard:
            self._write_tensorboard(run, args.tensorboard)
        profile = None
        if args.profile:
            values = [before[name] for name in run.inputs]
            profile = self._profile(lambda: run.function(*values), run.trace.graph, "%%tfgraph --profile", args)
        if args.show == "diff":
            self._draw_cell_diff(run, args)
        elif args.show in ("graph", "optimized") or args.output:
            self._draw(run, args, profile)
        elif args.show == "code":
            self._show_code(run, args)

    def _write_tensorboard(self, run, logdir: str) -> None:
        import tensorflow as tf

        from tfmagic.render import Notice

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
        from tfmagic.render import CodeReport, Notice

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
                if len(self._parsed_lines) < _MAX_MEMO:
                    self._parsed_lines[line] = parsed
            if parsed[0].output:
                from tfmagic.render import check_writable

                check_writable(parsed[0].output)
        except OptionError as e:
            raise UsageError(str(e)) from e
        return parsed

    def _transformed(self, cell: str) -> str:
        """The cell after IPython's input transforms (``!cmd``, ``%magic``), memoised by text."""
        source = self._sources.get(cell)
        if source is None:
            source = self.shell.transform_cell(cell)
            if len(self._sources) < _MAX_MEMO:
                self._sources[cell] = source
        return source

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
        from tfmagic.render import Notice
        from tfmagic.retracing import retrace_text

        trace = run.trace
        if run.retraced:
            display(Notice(retrace_text("%%tfgraph", trace.number, trace.changes, trace.fixes, trace.diff,
                                        trace.nearest) + f"\n  the cell has traced {run.trace_count} times",
                           level="warning"))
        for finding in run.findings:
            display(Notice(f"%%tfgraph: {finding.text}", level="warning"))

    def variable_names(self) -> dict[int, str]:
        """The notebook's names of its variables, by ``id`` of their handles (for drawings)."""
        from tfmagic.naming import HistoryTargets, VariableNames

        if self._history is None:
            self._history = HistoryTargets()
        history = self.shell.user_ns.get("In", [])
        self._history.update(history if isinstance(history, list) else [])
        return VariableNames(self.shell.user_ns, self._history).by_handle()

    def _profile(self, call, graph, title: str, args):
        """Profile ``call`` and show the tables; ``None`` (with a one-line note) when the profiler cannot run."""
        from tfmagic.graph import build_graph_model
        from tfmagic.profile import (ProfilerUnavailable, VariablesKept, keras_layer_names, layer_grouper,
                                     profile_calls)
        from tfmagic.render import Notice, ProfileReport

        if args.profile < 1:
            raise UsageError(f"--profile {args.profile}: N must be 1 or more")
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
        from tfmagic.render import Notice

        key = (args.name,) if args.name else (self._transformed_source,)
        cell = self.cells.get(key)
        earlier = None
        if run.retraced and run.trace.nearest and cell is not None:
            earlier = next((r for r in cell.traces if r.number == run.trace.nearest), None)
        if earlier is None:
            display(Notice("%%tfgraph --show diff: this run did not retrace, so there is no earlier trace to draw it "
                           "against; the graph it ran is drawn"))
            self._draw(run, args)
            return
        self._show_diff(earlier.graph, run.trace.graph, f"%%tfgraph cell: trace {run.trace.number} against trace "
                        f"{earlier.number}", args, cell=True)

    def _show_diff(self, old_graph, new_graph, title: str, args, cell: bool = False) -> None:
        from tfmagic.graph import build_graph_model
        from tfmagic.naming import output_names
        from tfmagic.render import Notice, draw_model, gc_paused
        from tfmagic.tracediff import diff_models

        names = self.variable_names()
        with gc_paused():
            old = build_graph_model(old_graph, labels=output_names(old_graph, cell=cell), variable_names=names)
            new = build_graph_model(new_graph, labels=output_names(new_graph, cell=cell), variable_names=names)
            merged, counts = diff_models(old, new)
        from tfmagic.render import file_format

        formats = (file_format(args.output),) if args.output else ()
        try:
            report, rendered = draw_model(merged, f"{title}: {counts.text}", formats, max_nodes=args.max_nodes,
                                          depth=args.depth, expand=tuple(args.expand), ops=args.ops)
            if args.output:
                with open(args.output, "wb") as f:
                    f.write(rendered[formats[0]])
        except (TfMagicError, OSError) as e:
            display(Notice(f"the diff drawing failed: {e}", level="warning"))
            return
        display(report)

    def _draw(self, run, args, profile=None) -> None:
        from tfmagic.naming import control_flow_names, output_names
        from tfmagic.render import Notice, draw_graph, file_format

        title = f"%%tfgraph {'-n ' + args.name + ' ' if args.name else ''}cell, trace {run.trace.number}"
        formats = (file_format(args.output),) if args.output else ()
        graph = run.trace.graph
        labels = output_names(graph, cell=True)
        if args.ops == "readable" and args.autograph and any(op.type in ("While", "StatelessWhile", "If", "StatelessIf")
                                                             for op in graph.get_operations()):
            labels.update(control_flow_names(graph, run.function.python_function))
        try:
            report, rendered = draw_graph(graph, title, formats, args.max_nodes, args.depth, tuple(args.expand),
                                          ops=args.ops, labels=labels, variable_names=self.variable_names(),
                                          profile=profile)
            if args.output:
                with open(args.output, "wb") as f:
                    f.write(rendered[formats[0]])
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
        from tfmagic.render import Notice

        try:
            from tfmagic.explorer import Explorer

            cell = self.cells.get((args.name,) if args.name else (self._transformed_source,))
            records = cell.traces if cell is not None else [run.trace]
            traces = [(r.reason, r.graph) for r in records]
            selected = next((i for i, r in enumerate(records) if r is run.trace), len(records) - 1)
            display(Explorer(traces, selected, title.rsplit(", trace ", 1)[0], args.max_nodes, ops=args.ops,
                             variable_names=self.variable_names(), cell=True).widget())
        except Exception as e:  # the explorer is an extra: the static drawing below still stands
            display(Notice(f"%%tfgraph: the explorer could not start: {type(e).__name__}: {e}", level="warning"))

    def _optimized(self, run, traced, args):
        from tfmagic.grappler import optimize
        from tfmagic.render import Comparison, draw_graph

        result = optimize(run.trace.graph)
        drawing = None
        if result.graph is not None:
            from tfmagic.naming import output_names

            drawing, _ = draw_graph(result.graph, f"after Grappler, trace {run.trace.number}", (), args.max_nodes,
                                    ops=args.ops, labels=output_names(run.trace.graph, cell=True),
                                    variable_names=self.variable_names())  # Grappler keeps the outputs' names
        return Comparison(traced, drawing, result.summary)

    def _draw_function(self, args):
        """``%tfgraph FUNC``: draw the traces of an existing function or model."""
        from tfmagic.render import draw_graph, file_format, make_trace_menu
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
            return self._draw_function_diff(args, traces)
        profile = self._profile_function(target, chosen, traces[chosen][1], args) if args.profile else None
        from tfmagic.naming import output_names

        formats = (file_format(args.output),) if args.output else ()
        reports = []
        names = self.variable_names()
        for i, (label, graph) in enumerate(traces):
            report, rendered = draw_graph(graph, f"{args.function}, trace {i + 1}: {label}",
                                          formats if i == chosen else (), args.max_nodes, args.depth,
                                          tuple(args.expand), ops=args.ops, labels=output_names(graph),
                                          variable_names=names, profile=profile if i == chosen else None)
            reports.append(report)
            if i == chosen and args.output:
                with open(args.output, "wb") as f:
                    f.write(rendered[formats[0]])
        if args.show == "none":
            return None
        display(reports[chosen])
        if len(reports) > 1:
            labels = [f"{i + 1}: {label}" for i, (label, _) in enumerate(traces)]
            print(f"{args.function} has {len(reports)} traces: " + "; ".join(labels))
            menu = make_trace_menu(labels, reports)
            if menu is not None:
                display(menu)
        return None

    def _draw_function_diff(self, args, traces) -> None:
        """``%tfgraph FUNC --diff A B``: trace B drawn against trace A."""
        first, second = args.diff
        for number in (first, second):
            if not 1 <= number <= len(traces):
                raise UsageError(f"--diff {first} {second}: {args.function} has traces 1 to {len(traces)}")
        self._show_diff(traces[first - 1][1], traces[second - 1][1],
                        f"{args.function}: trace {second} ({traces[second - 1][0]}) against trace {first} "
                        f"({traces[first - 1][0]})", args)

    def _profile_function(self, target, chosen: int, graph, args):
        """``%tfgraph FUNC --profile``: the chosen trace called with zeros of its arguments' shapes."""
        from tfmagic.profile import zeros_call
        from tfmagic.render import Notice
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

    # -- %%tape ----------------------------------------------------------------

    @magic_arguments()
    @argument("target", nargs="*", metavar="TARGET",
              help="the name or expression to differentiate (default: the cell's last expression)")
    @argument("--wrt", dest="wrt", metavar="A,B",
              help="the sources (default: every tf.Variable the cell reads, and the watched names)")
    @argument("--watch", dest="watch", metavar="C1,C2", help="constants or tensors the tape should watch")
    @argument("--persistent", dest="persistent", action="store_true", help="make the tape persistent")
    @argument("--jacobian", dest="jacobian", action="store_true", help="also compute tape.jacobian per source")
    @argument("--hessian", dest="hessian", action="store_true", help="also compute second derivatives")
    @argument("-o", "--output", dest="output", metavar="NAME", default="grads",
              help="the name of the dict of gradients (default: grads)")
    @argument("--show", dest="show", choices=("table", "graph", "none"), default="table",
              help="show the gradient table (default), the table and the gradient graph, or nothing")
    @argument("--ops", dest="ops", choices=("readable", "all"), default="readable",
              help="the gradient graph: readable (default; plumbing folded away, with a line saying what was "
                   "hidden) or all (every op)")
    @no_var_expand
    @cell_magic
    def tape(self, line, cell):
        """Run the cell under tf.GradientTape and explain every gradient.

        Usage::

            %%tape [TARGET] [--wrt a,b] [--watch c1,c2] [--persistent] [--jacobian] [--hessian]
                   [-o NAME] [--show table|graph|none]

        The cell runs as a plain cell would (its assignments stay), recorded by a tape.
        TARGET (default: the last expression) is differentiated with respect to the
        sources: --wrt, or every tf.Variable the cell reads (Keras layers' weights
        included) and the names given to --watch.  The gradients go to the namespace
        as a dict name -> tensor (None where disconnected), under `grads` or -o NAME.

        The table shows each source's shape, dtype and gradient; a None gradient says
        why (a constant not watched, no path, tf.stop_gradient at a line, an integer
        dtype, NumPy in between, a variable rebound to a tensor, an assign, a
        non-differentiable op) and a NaN/Inf gradient names the op and line where the
        first non-finite value appeared.  --show graph also draws the gradient graph.

        Example::

            %%tape --watch x
            x = tf.constant(3.0)
            y = x ** 2
            y
        """
        from tfmagic.tape import TapeOptions, run_tape, split_target

        target, rest = split_target(line)  # the target as typed (option parsing would drop its quotes)
        args = parse_argstring(self.tape, rest)
        if not args.output.isidentifier() or keyword.iskeyword(args.output):
            raise UsageError(f"-o {args.output!r}: NAME must be a Python identifier")
        target = target or " ".join(args.target)
        options = TapeOptions(target=target or None, wrt=_names(args.wrt), watch=_names(args.watch) or (),
                              persistent=args.persistent, jacobian=args.jacobian, hessian=args.hessian)
        try:
            run = run_tape(self._transformed(cell), self.shell.user_ns, options, draw=args.show == "graph",
                           history=self.shell.user_ns.get("In", []))
        except (CellSourceError, OptionError) as e:
            raise UsageError(f"%%tape: {e}") from e
        self.shell.user_ns[args.output] = run.gradients
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if args.show != "none":
            import dataclasses

            from tfmagic.render import Notice, TapeReport

            nones = [pair for pair, h in run.hessians.items() if h is None]
            shown = dataclasses.replace(run, hessians={k: h for k, h in run.hessians.items() if h is not None})
            display(TapeReport(shown))
            if nones:  # as nested plain tapes give them
                display(Notice("\n".join(f"hessian d2({run.target_name})/d({a}) d({b}): None" for a, b in nones)))
        if args.show == "graph":
            self._draw_gradient(run, cell, args.ops)

    def _draw_gradient(self, run, cell: str = "", ops: str = "readable") -> None:
        from tfmagic.graph import build_graph_model, mark_gradient_path
        from tfmagic.render import Notice, draw_model

        if run.graph is None:
            display(Notice("%%tape: the gradient graph could not be drawn: the cell does not trace as a "
                           "tf.function (the table above stands)", level="warning"))
            return
        graph = run.graph.graph
        model = build_graph_model(graph, "gradient", variable_names=self.variable_names())
        outputs = [t.op.name for t in graph.outputs if t is not None]
        gradients = dict(zip(run.graph.order, outputs)) if len(outputs) == len(run.graph.order) else {}
        mark_gradient_path(model, run.graph.target, run.graph.sources, run.graph.status, gradients,
                           _short_target(run.target_name, cell))
        try:
            report, _ = draw_model(model, f"%%tape: gradient of {run.target_name}", gradient=True, ops=ops)
        except TfMagicError as e:
            display(Notice(f"%%tape: the drawing failed: {e}", level="warning"))
            return
        display(report)

    # -- %tfdevice ---------------------------------------------------------------

    @magic_arguments()
    @argument("device", nargs="?", metavar="DEVICE",
              help="cpu, gpu[:N], tpu[:N], a full device name, or off; nothing: show the devices")
    @argument("--soft", dest="soft", action="store_true",
              help="if the device is not there, let TensorFlow place ops elsewhere (soft placement), with a warning")
    @argument("--log", dest="log", action="store_true",
              help="show where each op ran (TensorFlow's placement log, caught from C++)")
    @argument("--strategy", dest="strategy", nargs="+", metavar="KIND",
              help="run the following cells in a tf.distribute strategy's scope: mirrored [DEVICES...], "
                   "multiworker, tpu, or off")
    @argument("--split-cpu", dest="split_cpu", type=int, metavar="N",
              help="make N logical CPU devices (before TensorFlow initialises its devices)")
    @no_var_expand
    @line_cell_magic
    def tfdevice(self, line, cell=None):
        """Pin cells to a CPU, GPU or TPU; distribute them with a tf.distribute strategy.

        Usage::

            %tfdevice                      # the pin now, and the visible devices
            %tfdevice cpu | gpu[:N] | tpu[:N] | /job:localhost/replica:0/task:0/device:CPU:0
            %tfdevice off
            %%tfdevice gpu:0               # this cell only
            %tfdevice --soft | --log | --strategy mirrored|multiworker|tpu|off | --split-cpu N

        A pin holds for every following cell (%%tfgraph and %%tape cells too) until
        `%tfdevice off`; after each pinned cell tfmagic says where its results live.
        A device that is not there is an error naming the devices that are; with
        --soft, TensorFlow places the ops elsewhere, and the report says where.  --log
        shows where each op ran, from TensorFlow's placement log (which C++ writes
        where a notebook does not see it).  --strategy mirrored [DEVICES] runs the
        following cells in MirroredStrategy's scope, so variables and models created
        there are mirrored; --split-cpu N makes N logical CPUs to try that on a laptop.

        Example::

            %tfdevice --split-cpu 2
            %tfdevice --strategy mirrored cpu:0 cpu:1
        """
        from tfmagic import devices

        args = parse_argstring(self.tfdevice, line)
        try:
            if cell is not None:
                return self._run_pinned_cell(args, cell)
            if args.split_cpu is not None:
                names = devices.split_cpu(args.split_cpu)
                print(f"tfdevice: logical devices: {', '.join(names)}")
            if args.strategy:
                self._set_strategy(args.strategy)
            if args.device == "off":
                self._pin, self._log_cells = None, False
                print("tfdevice: no pin; cells run where TensorFlow places them")
            elif args.device:
                self._pin = self._make_pin(args.device, args.soft, args.log)
                verb = "ask for" if args.soft else "run on"
                print(f"tfdevice: following cells {verb} {self._pin.device}"
                      + (" (soft placement)" if args.soft else "") + (" (placement log on)" if args.log else ""))
            elif args.log:
                self._log_cells = True
                print("tfdevice: the placement of every following cell is shown; %tfdevice off stops")
        except (OptionError, TfMagicError) as e:
            raise UsageError(f"%tfdevice: {e}") from e
        self._update_device_hooks()
        if not (args.device or args.strategy or args.split_cpu is not None or args.log):
            return self._device_table()
        return None

    def _make_pin(self, name: str, soft: bool, log: bool):
        from tfmagic import devices
        from tfmagic.render import Notice

        wanted = devices.normalize_device(name)
        if devices.find_device(wanted) is None:
            if not soft:
                devices.check_device(wanted)  # raises, naming the devices that are there
            import tensorflow as tf

            tf.config.set_soft_device_placement(True)
            display(Notice(f"tfdevice: no device {wanted} here ({', '.join(devices.logical_devices())}): with "
                           "--soft, TensorFlow places the ops on a device that is there; after each cell tfdevice "
                           "says where the results are", level="warning"))
        return devices.DevicePin(wanted, soft=soft, log=log)

    def _set_strategy(self, words) -> None:
        from tfmagic import devices

        kind, names = words[0], tuple(words[1:])
        if kind == "off":
            self._strategy = None
            print("tfdevice: no strategy")
            return
        self._strategy = devices.make_strategy(kind, names)
        print(f"tfdevice: following cells run in the scope of {self._strategy.label}")

    def _device_table(self):
        from tfmagic import devices
        from tfmagic.render import Table

        rows = [[r.kind, r.device_type, r.name, r.memory] for r in devices.device_rows()]
        notes = [f"pinned to {self._pin.device}" if self._pin else "no pin",
                 f"strategy: {self._strategy.label}" if self._strategy else "no strategy"]
        return Table("tfdevice: visible devices", ["kind", "type", "name", "memory"], rows, notes)

    def _run_pinned_cell(self, args, cell):
        """``%%tfdevice DEVICE``: the cell runs in the pin, then the pin is gone, whatever happened."""
        if not args.device or args.device == "off" or args.strategy or args.split_cpu is not None:
            raise UsageError("%%tfdevice takes a DEVICE (and --soft, --log): %%tfdevice gpu:0")
        pin = self._make_pin(args.device, args.soft, args.log)
        before = {k: id(v) for k, v in self.shell.user_ns.items()}
        capture = None
        if args.log:
            from tfmagic.devices import PlacementCapture

            capture = PlacementCapture()
            capture.start()
        pin.enter()
        try:
            result = self._exec_cell(cell)
        finally:
            pin.exit()
            log = capture.stop() if capture is not None else None
            self._report_placement(before, pin.device, log)
        return result

    def _exec_cell(self, cell):
        """Run a cell's body as a plain cell would (as %%time does), returning its last expression."""
        import ast

        source = self.shell.transform_cell(cell)
        filename = self.shell.compile.cache(source, self.shell.execution_count)  # in linecache, for AutoGraph
        tree = self.shell.transform_ast(self.shell.compile.ast_parse(source, filename))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        namespace = self.shell.user_ns
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            return eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        return None

    def _update_device_hooks(self) -> None:
        """Hook the cells while a pin, strategy or log is on; unhook once the cell that ended them is over."""
        wanted = bool(self._pin or self._strategy or self._log_cells)
        if wanted and not self._device_hooks:
            self.shell.events.register("pre_run_cell", self._before_pinned_cell)
            self.shell.events.register("post_run_cell", self._after_pinned_cell)
            self._device_hooks = True
        elif not wanted and self._device_hooks and self._cell_state is None:
            self.shell.events.unregister("pre_run_cell", self._before_pinned_cell)
            self.shell.events.unregister("post_run_cell", self._after_pinned_cell)
            self._device_hooks = False

    def _before_pinned_cell(self, info=None) -> None:
        if self._cell_state is not None:
            return
        capture = None
        if self._log_cells or (self._pin is not None and self._pin.log):
            from tfmagic.devices import PlacementCapture

            capture = PlacementCapture()
        before = {k: id(v) for k, v in self.shell.user_ns.items()}
        self._cell_state = (before, capture, self._strategy, self._pin)
        if self._strategy is not None:
            self._strategy.enter()
        if self._pin is not None:
            self._pin.enter()
        if capture is not None:
            capture.start()

    def _after_pinned_cell(self, result=None, report: bool = True) -> None:
        """Leave what the pre-cell hook entered (post_run_cell also fires without it: then nothing to do)."""
        state, self._cell_state = self._cell_state, None
        if state is None:
            return
        before, capture, strategy, pin = state
        log = capture.stop() if capture is not None else None
        if pin is not None:
            pin.exit()
        if strategy is not None:
            strategy.exit()
        if report:
            self._report_placement(before, pin.device if pin is not None else None, log)
        self._update_device_hooks()

    def _report_placement(self, before: dict, device, log) -> None:
        from tfmagic.devices import placement_of
        from tfmagic.render import Notice, Table

        if log is not None and log.other:
            print("\n".join(log.other))
        changed = {k: v for k, v in self.shell.user_ns.items()
                   if not k.startswith("_") and before.get(k) != id(v)}
        placed = placement_of(changed)
        if placed:
            where = "; ".join(f"{name} on {dev}" for name, dev in placed)
            display(Notice(f"tfdevice: {'pinned to ' + device + ': ' if device else ''}the cell's results: {where}"))
        if log is not None:
            note = [] if log.ops else ["the cell ran no TensorFlow op"]
            display(Table("tfdevice: where the cell's ops ran", ["op", "type", "device"],
                          [list(row) for row in log.ops], note))

    # -- %tfretrace ------------------------------------------------------------

    @magic_arguments()
    @argument("--watch", dest="watch", action="store_true",
              help="from now on, after every cell, report any retrace it caused in any tf.function")
    @argument("--off", dest="off", action="store_true", help="stop watching")
    @line_magic
    def tfretrace(self, line):
        """List every tf.function in the namespace with its traces and why it traced again.

        Usage::

            %tfretrace            # the table
            %tfretrace --watch    # report retraces after every cell
            %tfretrace --off      # stop reporting

        The table covers the user's own @tf.function's, the functions of Keras models
        (their compiled steps and @tf.function methods) and %%tfgraph cells.  Each row
        says how many traces the function holds and, for the last retrace, which
        argument changed and how (`x: float32[2] -> float32[3]`, `n: Python int 10 -> 20`),
        with the fix.

        Example::

            %tfretrace --watch
        """
        args = parse_argstring(self.tfretrace, line)
        if args.watch and args.off:
            raise UsageError("%tfretrace: --watch and --off exclude each other")
        if args.watch:
            self._start_watch()
            print("tfretrace: watching every tf.function; %tfretrace --off stops")
            return None
        if args.off:
            self._stop_watch()
            print("tfretrace: stopped watching")
            return None
        return self._retrace_table()

    def _retrace_table(self):
        from tfmagic.render import RetraceTable
        from tfmagic.retracing import find_functions, trace_history

        rows = []
        cell_functions = set()
        for key, cell in self.cells.cells():
            cell_functions.add(id(cell.function))
            if not cell.traces:
                continue
            last = cell.traces[-1]
            label = f"%%tfgraph -n {key[0]}" if cell.code.filename.startswith("<tfgraph-") and key[0] and \
                key[0] != cell.code.source else "%%tfgraph cell: " + _first_line(cell.code.source)
            rows.append((label, cell.trace_count, last.reason, last.fixes[0] if last.fixes else ""))
        for name, fn in find_functions(self.shell.user_ns).items():
            if id(fn) in cell_functions:
                continue
            history = trace_history(fn, name)
            if not history.traces:
                rows.append((name, 0, "not traced yet", ""))
                continue
            last = history.traces[-1]
            rows.append((name, len(history.traces), last.reason, last.fixes[0] if last.fixes else ""))
        return RetraceTable(rows)

    def _start_watch(self) -> None:
        from tfmagic.retracing import TraceCounts

        if self._watch is None:
            self._watch = TraceCounts()
            self.shell.events.register("post_run_cell", self._after_cell)
        self._watch.snapshot(self._watched())

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self.shell.events.unregister("post_run_cell", self._after_cell)
            self._watch = None

    def _watched(self) -> dict:
        from tfmagic.retracing import find_functions

        cell_functions = {id(cell.function) for _, cell in self.cells.cells()} if self._cells else set()
        found = find_functions(self.shell.user_ns, self._watch.kinds)
        return {k: v for k, v in found.items() if id(v) not in cell_functions}

    def _after_cell(self, result=None) -> None:
        """Report the retraces the cell caused; the counts seen now are the next cell's baseline."""
        if self._watch is None:
            return
        from tfmagic.render import Notice
        from tfmagic.retracing import keras_retrace_text, keras_step, retrace_text, trace_history, watched_pitfalls

        functions = self._watched()
        keras_noted = self.__dict__.setdefault("_keras_retraces", set())  # Keras's own steps: said once each
        for name, new in self._watch.update(functions).items():
            step = keras_step(name, functions[name])
            if step is not None:
                if id(functions[name]) not in keras_noted and functions[name].experimental_get_tracing_count() > 1:
                    keras_noted.add(id(functions[name]))
                    display(Notice(keras_retrace_text(name, step)))
                continue
            history = trace_history(functions[name], name)
            for trace in history.traces[-new:]:
                if trace.number > 1:
                    diff = None
                    if trace.nearest:
                        from tfmagic.retracing import graph_diff

                        diff = graph_diff(history.traces[trace.nearest - 1].concrete.graph, trace.concrete.graph)
                    display(Notice(retrace_text(f"tfretrace {name}", trace.number, trace.changes, trace.fixes, diff,
                                                trace.nearest), level="warning"))
            fn = functions[name]
            if id(fn) not in self._watched_pitfalls:
                self._watched_pitfalls.add(id(fn))
                for finding in watched_pitfalls(fn, history):
                    display(Notice(f"tfretrace {name}: {finding.text}", level="warning"))

    # -- dtype errors of plain cells -------------------------------------------

    def _install_error_handler(self) -> None:
        """Show eager dtype mismatches (``float32 + int32``) short, at the user's line; others as before."""
        import tensorflow as tf

        from tfmagic.errors import CellSyntaxError

        self._previous_custom_exc = (self.shell.custom_exceptions, self.shell.CustomTB)
        types = (tf.errors.InvalidArgumentError, TypeError, ValueError, CellSyntaxError)
        previous_types, previous_handler = self._previous_custom_exc

        def handler(shell, etype, value, tb, tb_offset=None):
            from tfmagic.tracebacks import annotate_eager_error

            if isinstance(value, CellSyntaxError):  # IPython would add the magic's frames to any SyntaxError
                shell._showtraceback(etype, value, value._render_traceback_())
                return None

            if not hasattr(value, "_render_traceback_"):
                handled = annotate_eager_error(value, shell.user_ns)
                if not handled and previous_types and isinstance(value, previous_types):
                    return previous_handler(etype, value, tb, tb_offset)
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return None

        self.shell.set_custom_exc(tuple(previous_types or ()) + types, handler)

    def _remove_error_handler(self) -> None:
        if self._previous_custom_exc is not None:
            types, handler = self._previous_custom_exc
            self.shell.custom_exceptions = types
            self.shell.CustomTB = handler
            self._previous_custom_exc = None


def _names(text: str | None) -> tuple[str, ...] | None:
    """``"a, b"`` -> ``("a", "b")``; ``None`` stays ``None``."""
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _short_target(target_name: str, cell: str) -> str:
    """How a gradient drawing names the target: TARGET as given, or the cell's last expression when short."""
    import ast

    if not target_name.startswith("the cell"):
        return target_name
    try:
        body = ast.parse(cell).body
    except SyntaxError:
        return "target"
    text = ast.unparse(body[-1].value) if body and isinstance(body[-1], ast.Expr) else ""
    return text if text and len(text) <= 24 else "target"


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 40 else line[:37] + "..."

"""``%%tfgraph`` and ``%tfgraph FUNC``: run a cell as a tf.function and draw what TensorFlow traced.

The option line parses here into a ``requests.GraphRequest`` (once per line), and the magic displays what the
core gives back: ``tracing.trace_cell`` runs the cell, ``shows.cell_views`` makes what it shows (the drawing,
``--show text``, ``code``, ``optimized``, ``diff``, ``xla``, ``--profile``, ``--memory``, the explorer above the
drawing where a Jupyter kernel runs widgets), and ``shows.function_views`` what ``%tfgraph FUNC`` shows.
"""

from __future__ import annotations

import keyword
import time

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import CellSourceError, OptionError
from tfmagic.magics.display import MAX_MEMO
from tfmagic.magics.session import SessionMagics
from tfmagic.profile import DEFAULT_STEPS
from tfmagic.requests import SHOWS


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
        self._parsed_lines: dict = {}  # option line -> its GraphRequest

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
    @argument("--show", dest="show", choices=SHOWS,
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
    @argument("--memory", dest="memory", action="store_true",
              help="run the traced function once more (after a warm-up call; the variables it writes are put back) "
                   "with the allocator's events recorded: the peak bytes in use, the op at the peak and its line, "
                   "what was held before the call by name and what the step had live at the peak; tables by op, "
                   "layer and line; the curve of bytes in use; the drawing filled by each op's bytes")
    @argument("--diff", dest="diff", nargs=2, type=int, metavar=("A", "B"),
              help="(line form) draw trace B of FUNC against trace A: ops added and removed, tensors changed")
    @argument("--ops", dest="ops", choices=("readable", "all"), default="readable",
              help="readable (default): the program as written (variable reads, identities, NoOps, control "
                   "edges and loop bookkeeping folded away, with a line saying what was hidden); "
                   "all: every op as TensorFlow has it")
    @argument("--expand", dest="expand", action="append", default=[], metavar="SCOPE",
              help="open a layer (by its own name), a model, a call or a name scope (a glob; repeat for more) "
                   "that the drawing shows as one node")
    @argument("--depth", dest="depth", type=int, metavar="N",
              help="draw collapsed by name scope, N levels deep (instead of at the program's level)")
    @argument("--max-nodes", dest="max_nodes", type=int, metavar="N",
              help="the most nodes a drawing holds (default 500): a model opens only within it, and a graph "
                   "that still has more is collapsed further, then cut, with a note")
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
                      [--show graph|text|code|optimized|diff|none] [--ops readable|all] [--profile [N]] [--memory]
                      [--expand SCOPE] [--depth N] [--max-nodes N] [-o FILE] [--tensorboard LOGDIR]
            %tfgraph FUNC [--trace N] [--diff A B] [--profile [N]] [--memory] [--ops readable|all] [--expand SCOPE]
                          [--depth N] [--max-nodes N] [-o FILE]

        The cell's body becomes a tf.function (AutoGraph converts its control flow).
        Tensors, NumPy arrays and Python scalars it reads from the namespace are the
        function's arguments, so a new shape, dtype or Python value retraces it, and
        the output says which argument changed, how, and the fix; variables, layers,
        models and functions are captured.  Names the cell assigns are written back
        (tensors as eager tensors) and a last expression is the cell's result; a name
        whose value cannot leave the graph is bound to a stand-in that says why when
        used (and a note says so).  If the cell fails, the namespace is left as it
        was.  Running the same cell again
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
        Training code is drawn at the level it was written: a Keras model as its
        layers (their weights in their nodes), one node for a loss, a tape's gradient
        call, an optimizer's update, a call of a large tf.function; other graphs of
        more than 150 ops start collapsed by name scope.  --expand NAME (globs,
        repeatable) opens a layer, model, call or scope; --depth N collapses by name
        scope instead.  --max-nodes N (default 500) caps the nodes a drawing holds: a
        graph that still has more is collapsed further, then cut, with a note of what
        it left out.

        --show text lists the graph's ops as text (type, output, what each reads): a
        terminal shows that below every drawing.  --show optimized draws the graph
        after Grappler (constant folding, pruning, arithmetic simplification) beside
        the traced one and says what changed; --show code shows the code AutoGraph
        generated from the cell; --show diff draws a retrace against the trace it was
        compared with (ops added and removed, tensors whose dtype or shape changed).
        --profile [N] runs the traced function N more times under TensorFlow's
        profiler: the ops that take the time, by op and by Keras layer, wall time
        beside op time, and the drawing filled by each op's share of the time.
        --memory runs it once more with the allocator's events recorded: the peak
        bytes in use and the op (and line) at the peak, what was held before the
        call (variables and inputs by name) and what the step had live at the peak,
        tables by op, layer and line, the curve of bytes in use, and the drawing
        filled by each op's bytes.

        The line form draws the traces of an existing tf.function (a menu draws the
        others where widgets run), a concrete function, or a Keras model; --diff A B
        draws trace B against trace A, --profile [N] profiles the trace drawn (called
        with zeros of its arguments' shapes).

        Example::

            %%tfgraph -n step --max-traces 2
            y = tf.matmul(x, w) + b
            tf.reduce_sum(y)
        """
        request = self._parse_tfgraph(line)
        if cell is None:
            return self._draw_function(request)
        if request.target:
            raise UsageError(f"%%tfgraph takes no positional argument (got {request.target!r}); "
                             "the line form %tfgraph FUNC draws an existing function")
        self._run_cell(request, cell)

    def _run_cell(self, request, cell: str) -> None:
        """``%%tfgraph``: run the cell as a tf.function (``tracing.trace_cell``), write its names back, display
        its result, notes and views (``shows.cell_views``)."""
        from tfmagic.oom import annotate as annotate_oom
        from tfmagic.quiet import filtered_fd2, is_cell_noise
        from tfmagic.shows import cell_views, trace_notes
        from tfmagic.tracing import trace_cell

        started = time.perf_counter()
        scopes = _keras_name_scopes()
        depth = len(scopes) if scopes is not None else 0
        dump: list[str] = []
        try:
            with filtered_fd2(is_cell_noise) as dump:  # an out-of-memory dump (read, not shown), logs below level
                run = trace_cell(self._transformed(cell), self.shell.user_ns, cache=self.cells, name=request.name,
                                 options=request.function, max_traces=request.max_traces)
        except CellSourceError as e:
            raise UsageError(f"%%tfgraph: {e}") from e
        except BaseException as e:
            if scopes is not None:  # a layer call that failed inside its name scope leaves it on Keras's stack,
                del scopes[depth:]  # and every later variable's name would start with it
            annotate_oom(e, self.shell.user_ns, dump, f"%%tfgraph cell [{self.cell_number()}]")
            raise
        elapsed = time.perf_counter() - started
        self._write_back(run, request.name)
        for note in trace_notes(run) if run.traced else ():
            display(note)
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if run.eager:  # tf.config.run_functions_eagerly(True): it ran eagerly, there is no graph
            from tfmagic.reports import Notice

            display(Notice(f"%%tfgraph: {run.eager}"))
            return
        for view in cell_views(run, request, self.variable_names, self.shell.user_ns, elapsed,
                               widgets=self._widgets_run_here()):
            display(view)

    def _parse_tfgraph(self, line):
        """The line's request (the same line parses once; ``-o`` is checked every time)."""
        request = self._parsed_lines.get(line)
        try:
            if request is None:
                request = _request(parse_argstring(self.tfgraph, line))
                if len(self._parsed_lines) < MAX_MEMO:
                    self._parsed_lines[line] = request
            if request.output:
                from tfmagic.engine import check_writable

                check_writable(request.output)
        except OptionError as e:
            raise UsageError(str(e)) from e
        return request

    def _write_back(self, run, name) -> None:
        namespace = self.shell.user_ns
        namespace.update(run.outputs)
        if run.not_written:  # what a plain cell binds that could not leave the graph: an earlier value would be wrong
            from tfmagic.leaving import stand_ins

            namespace.update(stand_ins(run.not_written, f"%%tfgraph cell [{self.cell_number()}]"))
        run.redefine_functions(namespace)  # the cell's functions read the notebook's names, as a plain cell's do
        for deleted in run.deleted:
            if deleted not in run.outputs:
                namespace.pop(deleted, None)
        if name:
            namespace[name] = run.function

    def _widgets_run_here(self) -> bool:
        """Whether a frontend that runs widgets may be listening (a Jupyter kernel, not a terminal)."""
        if type(self.shell).__name__ != "ZMQInteractiveShell":
            return False
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            return False
        return True

    def _function_named(self, name: str):
        """FUNC as ``%tfretrace`` lists it (a Keras model's steps, ``model.train_function.one_step``, are
        tf.functions Keras keeps in closures: ``retracing.find_functions``), else the expression evaluated."""
        from tfmagic.retracing import find_functions, is_tf_function

        listed = find_functions(self.shell.user_ns).get(name) if "." in name else None
        if listed is not None:
            return listed
        try:
            target = self.shell.ev(name)
        except Exception as e:
            owner = name.split(".")[0] + "."
            listed = [n for n in find_functions(self.shell.user_ns) if n.startswith(owner)]  # Keras 2 has no .one_step
            also = f"; %tfretrace lists {', '.join(listed)}" if listed else ""
            raise UsageError(f"%tfgraph: cannot evaluate {name!r}: {type(e).__name__}: {e}{also}") from e
        if not is_tf_function(target) and callable(target) and not hasattr(target, "function_type"):
            from tfmagic.retracing import called_functions

            inner = called_functions(target)  # a plain function that calls tf.functions: say which to draw
            if inner:
                listed = find_functions(self.shell.user_ns).items()
                names = [next((n for n, f in listed if f is g), getattr(g, "__name__", "?")) for g in inner]
                raise UsageError(f"%tfgraph {name}: a Python function that calls the tf.function"
                                 f"{'s' if len(inner) > 1 else ''} {', '.join(names)}; draw one of them")
        return target

    def _draw_function(self, request):
        """``%tfgraph FUNC``: draw the traces of an existing function or model."""
        from tfmagic.reports import make_trace_menu
        from tfmagic.shows import function_views

        if not request.target:
            raise UsageError("%tfgraph needs FUNC (a tf.function, concrete function or Keras model), "
                             "or use the cell form %%tfgraph")
        target = self._function_named(request.target)
        cell = self._cells is not None and any(c.function is target for _, c in self._cells.cells())
        try:
            shown = function_views(target, request, self.variable_names(), self.shell.user_ns, cell=cell)
        except OptionError as e:
            raise UsageError(str(e)) from e
        for view in shown.views:
            display(view)
        if shown.traces_line:
            print(shown.traces_line)
            terminal = type(self.shell).__name__ == "TerminalInteractiveShell"  # it would print the widget's repr
            menu = None if terminal else make_trace_menu(shown.labels, shown.reports)
            if menu is not None:
                display(menu)


def _request(args):
    """The parsed line as a ``requests.GraphRequest``.

    Raises:
        OptionError: a value out of range, or ``-n NAME`` not an identifier.
    """
    from tfmagic.requests import DrawOptions, FunctionOptions, GraphRequest

    if args.name is not None and (not args.name.isidentifier() or keyword.iskeyword(args.name)):
        raise OptionError(f"-n {args.name!r}: NAME must be a Python identifier")
    for flag, value in (("--max-traces", args.max_traces), ("--max-nodes", args.max_nodes), ("--depth", args.depth),
                        ("--profile", args.profile)):
        if value is not None and value < 1:
            raise OptionError(f"{flag} {value}: N must be 1 or more")
    return GraphRequest(
        show=args.show, profile=args.profile, memory=args.memory, tensorboard=args.tensorboard, name=args.name,
        draw=DrawOptions(ops=args.ops, max_nodes=args.max_nodes, depth=args.depth, expand=tuple(args.expand),
                         output=args.output),
        function=FunctionOptions(jit_compile=args.jit, reduce_retracing=args.reduce_retracing,
                                 autograph=args.autograph),
        max_traces=args.max_traces, target=args.function or "", trace=args.trace,
        diff=tuple(args.diff) if args.diff else None)

"""``%tfretrace``: every tf.function's traces and why each retraced; ``--watch`` reports after each cell.

The ``post_run_cell`` hook of ``--watch`` is here, beside the magic that starts and stops it
(``retracing.py`` does the work).
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.magics.display import first_line
from tfmagic.magics.session import SessionMagics


@magics_class
class RetraceMagics(SessionMagics):
    """``%tfretrace`` and the hook of ``--watch``."""

    def __init__(self, shell):
        super().__init__(shell)
        from tfmagic.tracelog import TraceLog

        self._watch = None  # retracing.TraceCounts while %tfretrace --watch is on
        self._watched_pitfalls: set[int] = set()  # functions whose source pitfalls were reported
        self._keras_retraces: set[int] = set()  # Keras's own steps whose retracing was said (once each)
        self._log = TraceLog()  # every call that traced, from now on (families of functions made anew)
        self._log.install()
        self._log_mark = 0  # the log's count when the watched cell started
        self._xla_said: dict[int, int] = {}  # jit_compile functions: how many XLA compiles were said

    def close(self) -> None:
        self._stop_watch()
        self._log.uninstall()
        super().close()

    @magic_arguments()
    @argument("name", nargs="?", default=None,
              help="one function (a name or an expression: f, model.train_function, obj.step) or one family of "
                   "functions made anew (by its Python name): every trace, its signature and what it changed")
    @argument("--watch", dest="watch", action="store_true",
              help="from now on, after every cell, report any retrace it caused in any tf.function")
    @argument("--off", dest="off", action="store_true", help="stop watching")
    @line_magic
    def tfretrace(self, line):
        """List every tf.function in the namespace with its traces and why each retraced.

        Usage::

            %tfretrace            # the table
            %tfretrace NAME       # one function (or family) in full
            %tfretrace --watch    # report retraces after every cell
            %tfretrace --off      # stop reporting

        The table covers the user's own @tf.function's, the functions of Keras models
        (their compiled steps, which fit/evaluate/predict and *_on_batch run, and
        @tf.function methods), %%tfgraph cells, and functions made anew from the same
        code (a @tf.function defined in a loop, a method traced once per object).  Each
        row says how many traces the function holds and, for the last retrace, which
        argument changed and how (`x: float32[2] -> float32[3]`, `n: Python int 10 -> 20`),
        with the fix.  While --watch is on, TensorFlow's own "N out of the last N calls
        ... triggered tf.function retracing" warning is left out (tfmagic says it, with
        the argument and the fix); --off brings it back.

        Example::

            %tfretrace --watch
        """
        args = parse_argstring(self.tfretrace, line)
        if args.watch and args.off:
            raise UsageError("%tfretrace: --watch and --off exclude each other")
        if args.name and (args.watch or args.off):
            raise UsageError("%tfretrace: NAME shows one function; --watch and --off take no name")
        if args.watch:
            self._start_watch()
            print("tfretrace: watching every tf.function; %tfretrace --off stops")
            return None
        if args.off:
            self._stop_watch()
            print("tfretrace: stopped watching")
            return None
        if args.name:
            return self._one_function(args.name)
        return self._retrace_table()

    def _retrace_table(self):
        from tfmagic.reports import RetraceTable
        from tfmagic.retracing import find_functions, trace_history
        from tfmagic.watch import family_rows, xla_compiles_text

        rows = []
        cell_functions = set()
        for key, cell in self.cells.cells():
            cell_functions.add(id(cell.function))
            if not cell.traces:
                continue
            last = cell.traces[-1]
            label = f"%%tfgraph -n {key[0]}" if cell.code.filename.startswith("<tfgraph-") and key[0] and \
                key[0] != cell.code.source else "%%tfgraph cell: " + first_line(cell.code.source)
            rows.append((label, cell.trace_count, last.reason, last.fixes[0] if last.fixes else ""))
        for name, fn in find_functions(self.shell.user_ns).items():
            if id(fn) in cell_functions:
                continue
            history = trace_history(fn, name)
            if not history.traces:
                rows.append((name, 0, "not traced yet", ""))
                continue
            last = history.traces[-1]
            compiles = xla_compiles_text(fn, self._log)
            reason = f"{last.reason}; {compiles}" if compiles else last.reason
            fix = last.fixes[0] if last.fixes else ""
            if compiles and len(self._log.xla_shapes(fn)) > 1:
                fix = "XLA compiles once per shape: pad or bucket the inputs to a few shapes, or fix them"
            rows.append((name, len(history.traces), reason, fix))
        rows += family_rows(self._log)
        return RetraceTable(rows)

    def _one_function(self, name: str):
        from tfmagic.retracing import find_functions, is_tf_function
        from tfmagic.watch import family_report, function_report

        report = family_report(self._log, name)  # functions made anew: all of them, not the last alone
        if report is not None:
            return report
        found = find_functions(self.shell.user_ns)
        target = found.get(name)
        if target is None:
            try:
                target = eval(name, self.shell.user_ns)  # noqa: S307 -- the user's own expression, as %timeit does
            except Exception:
                target = None
        if target is not None and is_tf_function(target):
            return function_report(name, target, self._log)
        if target is None:
            raise UsageError(f"%tfretrace: no tf.function or family of functions named {name!r} "
                             "(%tfretrace lists them)")
        raise UsageError(f"%tfretrace: {name} is a {type(target).__name__}, not a tf.function")

    def _start_watch(self) -> None:
        from tfmagic.retracing import TraceCounts

        if self._watch is None:
            self._watch = TraceCounts()
            self.shell.events.register("pre_run_cell", self._before_cell)
            self.shell.events.register("post_run_cell", self._after_cell)
        self._watch.snapshot(self._watched())
        self._log.quiet = True
        self._log_mark = self._log.count

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self.shell.events.unregister("pre_run_cell", self._before_cell)
            self.shell.events.unregister("post_run_cell", self._after_cell)
            self._watch = None
            self._log.quiet = False

    def _watched(self) -> dict:
        from tfmagic.retracing import find_functions

        cell_functions = {id(cell.function) for _, cell in self.cells.cells()} if self._cells else set()
        found = find_functions(self.shell.user_ns, self._watch.kinds)
        return {k: v for k, v in found.items() if id(v) not in cell_functions}

    def _before_cell(self, info=None) -> None:
        self._log_mark = self._log.count

    def _after_cell(self, result=None) -> None:
        """Report what the cell traced, one summary per function; the counts seen now are the next cell's baseline."""
        if self._watch is None:
            return
        from tfmagic.reports import Notice
        from tfmagic.retracing import trace_history, watched_pitfalls
        from tfmagic.watch import cell_summaries, xla_summaries

        functions = self._watched()
        new = self._watch.update(functions)
        events = self._log.since(self._log_mark)
        self._log_mark = self._log.count
        try:
            summaries = cell_summaries(functions, new, events, self._keras_retraces) + \
                xla_summaries(functions, self._log, self._xla_said)
        except Exception as e:  # the watch is an extra: never a stack trace after the user's cell
            summaries = []
            display(Notice(f"tfretrace: could not explain this cell's traces ({type(e).__name__}: {e})",
                           level="warning"))
        for summary in summaries:
            display(Notice(summary.text, level=summary.level))
        for name in new:
            fn = functions[name]
            if id(fn) not in self._watched_pitfalls:
                self._watched_pitfalls.add(id(fn))
                findings = watched_pitfalls(fn, trace_history(fn, name))
                if len(findings) == 1:
                    display(Notice(f"tfretrace {name}: {findings[0].text}", level="warning"))
                elif findings:  # one message per function, a line each
                    lines = "\n".join("  " + f.text.replace("\n", "\n  ") for f in findings)
                    display(Notice(f"tfretrace {name}: {len(findings)} trace-time pitfalls:\n{lines}",
                                   level="warning"))

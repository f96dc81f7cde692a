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
        self._watch = None  # retracing.TraceCounts while %tfretrace --watch is on
        self._watched_pitfalls: set[int] = set()  # functions whose source pitfalls were reported
        self._keras_retraces: set[int] = set()  # Keras's own steps whose retracing was said (once each)

    def close(self) -> None:
        self._stop_watch()
        super().close()

    @magic_arguments()
    @argument("--watch", dest="watch", action="store_true",
              help="from now on, after every cell, report any retrace it caused in any tf.function")
    @argument("--off", dest="off", action="store_true", help="stop watching")
    @line_magic
    def tfretrace(self, line):
        """List every tf.function in the namespace with its traces and why each retraced.

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
        keras_noted = self._keras_retraces
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

"""What the magics share in a session: the cells' functions, memos, the user's names, and plain cells' errors.

:class:`SessionMagics` is the base of every magic's class (``tfgraph.py``, ``tape.py``, ``tfdevice.py``,
``tfretrace.py``). It holds the state they share, and installs the handler that shows a plain cell's
eager dtype mismatch (``float32 + int32``) or out-of-memory error short, at the user's line, and the
filter that keeps an allocator's out-of-memory dump out of the cell (``quiet.CellFd2Filter``). Each
magic's class adds its own state in its ``__init__`` and undoes its own side effects in its ``close``,
then calls ``super()``.
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from tfmagic.magics.display import MAX_MEMO


@magics_class
class SessionMagics(Magics):
    """The state the magics share; no magic of its own."""

    def __init__(self, shell):
        super().__init__(shell)
        self._cells = None  # tracing.CellCache, made on first use (it imports TensorFlow)
        self._sources: dict = {}  # cell text -> transformed source
        self._history = None  # naming.HistoryTargets: how the session's cells bound each name
        self._previous_custom_exc = None
        self.closed = False  # %unload_ext tfmagic closed it
        self._install_error_handler()
        from tfmagic.quiet import is_allocator_dump
        from tfmagic.quiet import CellFd2Filter

        self._fd2 = CellFd2Filter(is_allocator_dump)  # an out-of-memory dump stays out of a plain cell too
        self.shell.events.register("pre_run_cell", self._fd2.start)
        self.shell.events.register("post_run_cell", self._fd2.stop)

    @property
    def cells(self):
        """The ``%%tfgraph`` cells' functions (``tracing.CellCache``)."""
        if self._cells is None:
            from tfmagic.tracing import CellCache

            self._cells = CellCache()
        return self._cells

    def close(self) -> None:
        """Undo what the magics added: the error handler, cached functions, the magics themselves."""
        self._remove_error_handler()
        for event, hook in (("pre_run_cell", self._fd2.start), ("post_run_cell", self._fd2.stop)):
            try:
                self.shell.events.unregister(event, hook)
            except ValueError:
                pass
        self._fd2.close()
        if self._cells is not None:
            self._cells.clear()
        for kind, names in self.magics.items():  # IPython has no way to remove a magic: each says it is unloaded
            for name in names:
                self.shell.register_magic_function(_unloaded(kind, name), magic_kind=kind, magic_name=name)
        self.closed = True
        configurables = getattr(self.shell, "configurables", [])
        if self in configurables:  # Magics.__init__ put it there
            configurables.remove(self)

    def _transformed(self, cell: str) -> str:
        """The cell after IPython's input transforms (``!cmd``, ``%magic``), memoised by text."""
        source = self._sources.get(cell)
        if source is None:
            source = self.shell.transform_cell(cell)
            if len(self._sources) < MAX_MEMO:
                self._sources[cell] = source
        return source

    def variable_names(self) -> dict[int, str]:
        """The notebook's names of its variables, by ``id`` of their handles (for drawings)."""
        from tfmagic.naming import HistoryTargets, VariableNames

        if self._history is None:
            self._history = HistoryTargets()
        history = self.shell.user_ns.get("In", [])
        self._history.update(history if isinstance(history, list) else [])
        return VariableNames(self.shell.user_ns, self._history).by_handle()

    def cell_number(self) -> int:
        """The number of the cell running now (``In [N]``): IPython 9 counts the next cell on before it runs this
        one, so ``shell.execution_count`` is one ahead there; the run's own result has the number."""
        result = getattr(self.shell.displayhook, "exec_result", None)
        number = getattr(result, "execution_count", None)
        return number if isinstance(number, int) else self.shell.execution_count

    def _install_error_handler(self) -> None:
        """Show eager dtype mismatches (``float32 + int32``) and out-of-memory errors short, at the user's line;
        others as before."""
        import tensorflow as tf

        from tfmagic.errors import SHOWN_AS_SYNTAX_ERROR, CellSyntaxError

        self._previous_custom_exc = (self.shell.custom_exceptions, self.shell.CustomTB)
        types = (tf.errors.InvalidArgumentError, tf.errors.ResourceExhaustedError, TypeError, ValueError,
                 CellSyntaxError)
        previous_types, previous_handler = self._previous_custom_exc

        def handler(shell, etype, value, tb, tb_offset=None):
            from tfmagic.tracebacks import annotate_eager_error

            if isinstance(value, CellSyntaxError):  # shown by its lines: IPython shows a SyntaxError's class its own
                shell.showtraceback((SHOWN_AS_SYNTAX_ERROR, value, tb))  # way, with the magic's frames
                return None

            from tfmagic.oom import annotate as annotate_oom

            if isinstance(value, tf.errors.ResourceExhaustedError):
                self._fd2.settle()  # the allocator's dump, written just before, read off the pipe
            if annotate_oom(value, shell.user_ns, self._fd2.dropped):  # out of memory in a plain cell: the report
                shell.showtraceback((etype, value, tb))  # (by its _render_traceback_)
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


def _unloaded(kind: str, name: str):
    """What ``%name`` does once ``%unload_ext tfmagic`` has run: a one-line error saying how to load it again."""
    prefix = "%%" if kind == "cell" else "%"

    def unloaded(*_):
        raise UsageError(f"{prefix}{name}: tfmagic is unloaded (%unload_ext tfmagic); %load_ext tfmagic loads it "
                         "again")

    return unloaded

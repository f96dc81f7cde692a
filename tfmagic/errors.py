"""Errors raised by tfmagic's core.

The core raises :class:`TfMagicError` subclasses; the magics layer turns the
ones caused by the user's options into IPython ``UsageError``.  Exceptions
raised by the user's own cell code are *not* wrapped: they propagate with their
own type, carrying a short traceback of the cell's lines (see
:mod:`tfmagic.tracebacks`).
"""


class TfMagicError(Exception):
    """Base class of every error tfmagic raises itself."""


class OptionError(TfMagicError, ValueError):
    """A magic's option or argument has a bad value.

    The message names the bad value and the valid choices.
    """


class CellSourceError(TfMagicError, ValueError):
    """The cell cannot be turned into a function (empty, ``global`` at cell level, ...)."""


class RetraceLimitError(TfMagicError):
    """A cell would trace more times than ``--max-traces`` allows; the message says why it would."""

    def _render_traceback_(self):
        return [f"RetraceLimitError: {self}"]


class RenderError(TfMagicError, RuntimeError):
    """The Graphviz engine could not lay out or write a drawing."""


class GraphvizMissingError(RenderError):
    """The in-process Graphviz engine (the ``pygraphviz`` wheel) is not importable."""

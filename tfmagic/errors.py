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


class CellSyntaxError(SyntaxError):
    """A cell that does not compile: the usual SyntaxError, shown as the cell's line with a caret.

    A subclass, so that IPython shows it through ``_render_traceback_`` (a bare SyntaxError raised
    inside a magic would come with the magic's own frames).
    """

    magic = "%%tfgraph"

    def _render_traceback_(self):
        lines = [f"  {self.magic} cell, line {self.lineno}"]
        if self.text:
            text = self.text.rstrip("\n")
            lines.append(f"    {text.strip()}")
            if self.offset:
                caret = max(0, self.offset - 1 - (len(text) - len(text.lstrip())))
                lines.append("    " + " " * caret + "^")
        lines.append(f"SyntaxError: {self.msg}")
        return lines


#: The class a :class:`CellSyntaxError` is shown under: IPython shows an error by its ``_render_traceback_`` lines,
#: under its class's name, unless the class is a ``SyntaxError``'s (which it shows its own way, with the magic's
#: frames); the error itself stays a ``SyntaxError``, as a plain cell's is.
SHOWN_AS_SYNTAX_ERROR = type("SyntaxError", (Exception,), {"__module__": __name__})


def cell_syntax_error(error: SyntaxError, source: str, magic: str) -> CellSyntaxError:
    """The same error as a :class:`CellSyntaxError`, its line's text taken from the cell."""
    lines = source.splitlines()
    text = error.text or (lines[error.lineno - 1] if error.lineno and 0 < error.lineno <= len(lines) else "")
    new = CellSyntaxError(error.msg, (error.filename, error.lineno, error.offset, text,
                                      getattr(error, "end_lineno", None), getattr(error, "end_offset", None)))
    new.magic = magic
    return new


class RetraceLimitError(TfMagicError):
    """A cell would trace more times than ``--max-traces`` allows; the message says why it would."""

    def _render_traceback_(self):
        return [f"RetraceLimitError: {self}"]


class UnrolledLoopError(TfMagicError, RuntimeError):
    """A cell's Python loop, run while tracing, put too many ops into the graph; the message says which loop."""


class RenderError(TfMagicError, RuntimeError):
    """The Graphviz engine could not lay out or write a drawing."""


class GraphvizMissingError(RenderError):
    """The in-process Graphviz engine (the ``pygraphviz`` wheel) is not importable."""


class NotWrittenBackError(TfMagicError, AttributeError):
    """A name was used that a magic cell could not write back (its value could not leave the graph); the
    message names the cell and line that bound it, why, and what to do.  An ``AttributeError``, so that code
    asking ``getattr(value, "name", None)`` of every value in a namespace passes it by."""

    def _render_traceback_(self):
        return [f"NotWrittenBackError: {self}"]

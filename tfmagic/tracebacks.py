"""Short tracebacks that point at the user's cell, not at tfmagic or TensorFlow.

An exception from a cell run as a ``tf.function`` comes back wrapped: AutoGraph
re-raises errors of tracing as ``StagingError`` or as "in user code:" copies,
and the runtime reports an op's failure as a multi-screen ``OpError`` whose
stack is inside its message.  :func:`for_cell` finds the user's own exception
(its type and message unchanged) and the frames that are the user's code, and
attaches a rendering of them: IPython shows it through ``_render_traceback_``,
plain Python through the exception's notes.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

from tfmagic.cell import CellCode
from tfmagic.vocabulary import is_user_file

_CONTEXT_LINES = 2


@dataclass(frozen=True)
class CellFrame:
    """One frame of the user's code: in the cell (``filename is None``) or in another file or cell."""

    lineno: int
    code: str
    function: str
    filename: str | None = None


def _frame(code: CellCode, filename: str, lineno: int, function: str, text: str | None) -> CellFrame | None:
    if filename == code.filename:
        cell_line = code.cell_line(lineno)
        lines = code.source.splitlines()
        if not 1 <= cell_line <= len(lines):
            return None  # the generated return line: tfmagic's, not the user's
        return CellFrame(cell_line, lines[cell_line - 1],
                         "<cell>" if function in ("_tfgraph_cell", "<module>") else function)
    if is_user_file(filename):
        return CellFrame(lineno, (text or "").strip(), function, filename)
    return None


def _autograph_original(exc: BaseException) -> BaseException | None:
    """The exception the user's code raised, under AutoGraph's re-raised copies of it."""
    seen, found = set(), None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "ag_error_metadata", None) is not None:
            found = current
        current = current.__cause__ or current.__context__
    return found


_FILE_LINE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


def _op_error_parts(message: str) -> tuple[list[tuple[str, int, str]], str, str | None]:
    """Split an OpError's message into (frames, core message, node name)."""
    node = None
    m = re.search(r"Detected at node '?([^\s']+)'? defined at", message)
    if m:
        node = m.group(1)
    lines = message.splitlines()
    frames, last_frame = [], -1
    for i, line in enumerate(lines):
        fm = _FILE_LINE.match(line)
        if fm:
            frames.append((fm.group("file"), int(fm.group("line")), fm.group("func")))
            last_frame = i
    rest = lines[last_frame + 1:] if last_frame >= 0 else lines
    core = [ln for ln in rest if ln.strip() and ln.strip() != "Graph execution error:"
            and not ln.lstrip().startswith("[[{{node")]
    text = " ".join(core).strip()
    text = re.sub(r"\s*\[Op:[^\]]*\]\s*(name:\s*\S*)?$", "", text)
    text = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]", "", text)
    return frames, text, node


def _from_cell_on(frames: list[CellFrame]) -> list[CellFrame]:
    """Drop the frames that called the cell (the notebook's own machinery)."""
    for i, frame in enumerate(frames):
        if frame.filename is None:
            return frames[i:]
    return frames


def cell_frames(exc: BaseException, code: CellCode) -> tuple[BaseException, list[CellFrame], str, str]:
    """The user's exception, the user's frames, the phase and the message to show.

    Returns:
        ``(exception, frames, phase, message)`` where ``phase`` is ``"tracing"`` or
        ``"running"`` (the graph's execution).
    """
    import tensorflow as tf  # only on the error path

    if isinstance(exc, tf.errors.OpError):
        raw, message, _node = _op_error_parts(exc.message)
        frames = [f for f in (_frame(code, fn, ln, func, None) for fn, ln, func in raw) if f]
        return exc, _from_cell_on(frames), "running", message or exc.message
    original = _autograph_original(exc)
    if original is not None:
        stack = getattr(original.ag_error_metadata, "translated_stack", ()) or ()
        frames = [f for f in (_frame(code, fr.filename, fr.lineno, fr.function_name, fr.code) for fr in stack) if f]
        inner = [f for f in (_frame(code, fs.filename, fs.lineno, fs.name, fs.line)
                             for fs in traceback.extract_tb(original.__traceback__)) if f]
        for f in inner:  # frames of user functions TensorFlow did not convert
            if f not in frames:
                frames.append(f)
        return original, _from_cell_on(frames), "tracing", str(original)
    frames = [f for f in (_frame(code, fs.filename, fs.lineno, fs.name, fs.line)
                          for fs in traceback.extract_tb(exc.__traceback__)) if f]
    return exc, _from_cell_on(frames), "tracing", str(exc)


_PHASES = {"tracing": "while tracing the cell as a tf.function", "running": "while running the cell's graph",
           "eager": "while running the cell"}


def format_cell_traceback(exc_type: str, message: str, frames: list[CellFrame], code: CellCode,
                          phase: str) -> list[str]:
    """IPython-like lines: a header, each user frame with its neighbouring lines, and the error."""
    out = ["-" * 75, f"{exc_type:<42}Traceback (most recent call last)"]
    where = _PHASES.get(phase, phase)
    magic = getattr(code, "magic", "%%tfgraph")
    lines = code.source.splitlines()
    for frame in frames:
        if frame.filename is None:
            out.append(f"{magic} cell, line {frame.lineno} ({where})" +
                       (f", in {frame.function}" if frame.function != "<cell>" else ""))
            lo = max(1, frame.lineno - _CONTEXT_LINES)
            for n in range(lo, frame.lineno + 1):
                marker = "---->" if n == frame.lineno else "     "
                out.append(f"{marker} {n} {lines[n - 1]}")
        else:
            out.append(f"File {frame.filename}, line {frame.lineno}, in {frame.function}")
            out.append(f"----> {frame.lineno} {frame.code}")
        out.append("")
    if not frames:
        out.append(f"{magic} cell ({where})")
        out.append("")
    out.append(f"{exc_type}: {message}" if message else exc_type)
    return out


def explain(message: str, frames: list[CellFrame], namespace: dict, autograph: bool = True):
    """A :class:`~tfmagic.diagnostics.Finding` for a known kind of error (dtype mismatch, ...), or ``None``."""
    from tfmagic import diagnostics

    last = frames[-1] if frames else None
    line, text = (last.lineno, last.code) if last else (None, "")
    return (diagnostics.explain_keras_loop(line, text, namespace)
            or diagnostics.explain_dtype_error(message, line, text, diagnostics.line_dtypes(text, namespace))
            or diagnostics.explain_variable_creation(message, line, text)
            or diagnostics.explain_tape_reuse(message, line, text)
            or diagnostics.explain_graph_only(message, line, text, autograph))


def explain_xla(full_message: str, frames: list[CellFrame]):
    """A finding for a graph XLA refused (an op with no XLA kernel, a string argument), at the cell's line."""
    if "unsupported operations when trying to compile" not in full_message:
        return None
    from tfmagic import diagnostics
    from tfmagic.xla import unsupported_op_text

    last = frames[-1] if frames else None
    text = unsupported_op_text(RuntimeError(full_message))
    return diagnostics.Finding("xla", last.lineno if last else None, last.code if last else "",
                               text.split("; ", 1)[0], text.split("; ", 1)[1] if "; " in text else "")


def variables_note(names: list[str]) -> str:
    """The line that says which variables a failed cell had changed (or may have)."""
    listed = ", ".join(names)
    return (f"note: the cell assigned tf.Variable {listed} before it failed, or may have: TensorFlow cannot roll "
            "variables back; every other name is as it was")


def for_cell(exc: BaseException, code: CellCode, namespace: dict | None = None,
             phase: str | None = None, assigned: list[str] | None = None,
             notes: list[str] | None = None, autograph: bool = True) -> BaseException:
    """The exception to raise for a failing cell: the user's own, with a short cell traceback.

    Args:
        exc: what calling the cell's ``tf.function`` raised.
        code: the cell.
        namespace: the notebook's namespace (to name a NumPy float64 operand of a dtype mismatch).
        phase: what was happening (``tracing``, ``running``, ``eager``), when the caller knows better.
        assigned: variables the cell assigned (or may have) before it failed: TensorFlow cannot undo that.
        notes: findings that explain why the cell fails as a graph (a try/except that cannot catch this).
        autograph: whether the cell was traced with AutoGraph (``--no-autograph``: its if/for are not converted).

    Returns:
        The user's exception (same type and message), with ``_render_traceback_``
        for IPython, ``tfmagic_frames`` and a note naming the cell line.
    """
    original, frames, found_phase, message = cell_frames(exc, code)
    phase = phase or found_phase
    finding = explain_xla(str(getattr(original, "message", original)), frames) or \
        explain(message, frames, namespace or {}, autograph)
    if finding is not None:
        message = finding.message + (f"\n  fix: {finding.fix}" if finding.fix else "")
        original.tfmagic_finding = finding
    rendered = format_cell_traceback(type(original).__name__, message, frames, code, phase)
    if assigned:
        rendered.append(variables_note(assigned))
    for note in notes or ():
        rendered.append(f"note: {note}")
    try:
        original._render_traceback_ = lambda: rendered
        original.tfmagic_frames = frames
        original.tfmagic_phase = phase
        cell_lines = [f for f in frames if f.filename is None]
        if cell_lines and hasattr(original, "add_note"):
            last = cell_lines[-1]
            original.add_note(f"{getattr(code, 'magic', '%%tfgraph')} cell, line {last.lineno}: {last.code.strip()}")
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass
    original.__cause__ = None
    original.__suppress_context__ = True
    return original


def annotate_eager_error(exc: BaseException, namespace: dict) -> bool:
    """Give a plain cell's dtype mismatch (or variable created on a later call) a short traceback.

    Returns:
        Whether ``exc`` was one of those (and now renders as such).
    """
    from tfmagic import diagnostics

    message = getattr(exc, "message", None) or str(exc)
    frames = [CellFrame(fs.lineno, (fs.line or "").strip(), fs.name, fs.filename)
              for fs in traceback.extract_tb(exc.__traceback__) if is_user_file(fs.filename)]
    original = _autograph_original(exc)
    if original is not None:  # raised while tracing a tf.function: AutoGraph kept the user's frames
        message = str(original)
        for fr in getattr(original.ag_error_metadata, "translated_stack", ()) or ():
            if is_user_file(fr.filename):
                frames.append(CellFrame(fr.lineno, (fr.code or "").strip(), fr.function_name, fr.filename))
    last = frames[-1] if frames else None
    code = last.code if last else ""
    line = last.lineno if last else None
    finding = (diagnostics.explain_dtype_error(message, line, code, diagnostics.line_dtypes(code, namespace))
               or diagnostics.explain_variable_creation(message, line, code))
    if finding is None:
        return False
    name = type(exc).__name__
    out = ["-" * 75, f"{name:<42}Traceback (most recent call last)"]
    for frame in frames:
        where = "Cell" if frame.function == "<module>" else f"In {frame.function}"
        out += [f"{where}, line {frame.lineno}", f"----> {frame.lineno} {frame.code}", ""]
    out.append(f"{name}: {finding.message}")
    if finding.fix:
        out.append(f"  fix: {finding.fix}")
    return rendered_as(exc, out, tfmagic_finding=finding)


def rendered_as(exc: BaseException, lines: list[str], **marks) -> bool:
    """Give ``exc`` the lines IPython shows for it (``_render_traceback_``) and tfmagic's marks on it; ``False``
    where its type takes no attributes."""
    try:
        exc._render_traceback_ = lambda: lines
        for name, value in marks.items():
            setattr(exc, name, value)
    except (AttributeError, TypeError):
        return False
    return True

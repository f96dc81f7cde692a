"""The out-of-memory post-mortem: a ``ResourceExhaustedError`` told in a few lines instead of TensorFlow's dump.

When an op cannot get its buffer, TensorFlow raises ``ResourceExhaustedError`` with a message that names
the node, the Python lines that defined it, the shape, dtype, device and allocator -- and a hint to set
``report_tensor_allocations_upon_oom``, which TensorFlow 2 no longer has.  The BFC allocator also writes
its state to file descriptor 2 (its bins and chunks, hundreds of lines, and the bytes in use against its
limit).  :func:`oom_report` turns both into the short report a notebook shows: the op at the user's line,
the bytes it asked for with shape and dtype, what was in use against the limit, what the notebook holds by
name (variables, models, tensors), what ``--memory`` last measured of the same function by line (another
batch size, say: ``memory.remember``), and the ways out.  ``quiet.is_allocator_dump`` tells the dump's lines,
which tfmagic keeps out of the cell (``quiet.filtered_fd2`` around a magic's run, ``quiet.CellFd2Filter``
around a plain cell) and reads the limit from.

>>> asked = parse_oom("OOM when allocating tensor with shape[20,1024,1024] and type float on "
...                   "/job:localhost/replica:0/task:0/device:CPU:0 by allocator bfc_cpu_allocator_for_gpu")
>>> asked.shape, asked.dtype, asked.device, asked.bytes
('[20,1024,1024]', 'float32', 'CPU:0', 83886080)
>>> dump_numbers(["Limit:                        64.00MiB", "InUse:                         4.00MiB"])
{'Limit': 67108864, 'InUse': 4194304}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_OOM = re.compile(r"OOM when allocating tensor with shape\s*(?P<shape>\[[^\]]*\]) and type (?P<dtype>\w+) on "
                  r"(?:/job:[^/]*/replica:\d+/task:\d+/device:)?(?P<device>[\w:]+)(?: by allocator (?P<alloc>\S+))?")
_DUMP_NUMBER = re.compile(r"^\s*(Limit|InUse|MaxInUse):\s+([\d.]+)([KMGT]?i?B)\s*$")
_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
#: TensorFlow's names of dtypes in the message (``type float``) -> the dtype's name.
_DTYPES = {"float": "float32", "double": "float64", "half": "float16", "int": "int32", "long": "int64",
           "bfloat16": "bfloat16", "bool": "bool", "uint8": "uint8", "int8": "int8", "int16": "int16"}


def dump_numbers(lines: list[str]) -> dict[str, int]:
    """``Limit`` / ``InUse`` / ``MaxInUse`` bytes from the dump's summary lines."""
    found = {}
    for line in lines:
        match = _DUMP_NUMBER.match(line)
        if match:
            found[match.group(1)] = round(float(match.group(2)) * _UNITS.get(match.group(3), 1))
    return found


@dataclass
class Asked:
    """What the failing op asked for."""

    shape: str
    dtype: str
    device: str
    allocator: str
    bytes: int | None


def parse_oom(message: str) -> Asked | None:
    """What the failing op asked for, from the error's message; ``None`` if it is not an allocation that failed."""
    match = _OOM.search(message)
    if match is None:
        return None
    dtype = _DTYPES.get(match.group("dtype"), match.group("dtype"))
    dims = [int(d) for d in re.findall(r"-?\d+", match.group("shape"))]
    size = None
    try:
        import tensorflow as tf

        count = 1
        for d in dims:
            count *= d
        size = count * tf.as_dtype(dtype).size
    except (TypeError, ValueError, ImportError):
        pass
    return Asked(match.group("shape").replace(" ", ""), dtype, match.group("device"), match.group("alloc") or "", size)


def held_in(namespace: dict, top: int = 5) -> list[tuple[str, int, bool]]:
    """The notebook's names holding the most tensor memory: ``(name, bytes, a tensor or tensors)`` for tensors,
    variables, Keras models and optimizers (their variables), lists and dicts of tensors; largest first."""
    import tensorflow as tf

    from tfmagic.memory import _nbytes
    from tfmagic.naming import held_variables, holds_variables

    found = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in ("In", "Out"):
            continue
        try:
            if isinstance(value, (tf.Tensor, tf.Variable)):
                size, tensors = _nbytes(value), isinstance(value, tf.Tensor)
            elif holds_variables(value):
                size, tensors = sum(_nbytes(v) for v in held_variables(value)), False
            elif isinstance(value, (list, tuple, dict)):
                items = value.values() if isinstance(value, dict) else value
                size = sum(_nbytes(v) for v in list(items)[:10000] if isinstance(v, (tf.Tensor, tf.Variable)))
                tensors = True
            else:
                continue
        except Exception:  # a value that cannot say its size is left out
            continue
        if size:
            found.append((name, size, tensors))
    return sorted(found, key=lambda item: -item[1])[:top]


def _limit(asked: Asked, dump: dict[str, int]) -> int | None:
    if "Limit" in dump:
        return dump["Limit"]
    limit = os.environ.get("TF_CPU_BFC_MEM_LIMIT_IN_MB") if asked.device.startswith("CPU") else None
    return int(limit) * 2**20 if limit and limit.isdigit() else None


def oom_report(exc, namespace: dict, cell_line: tuple[int, str] | None = None, where: str = "",
               dump: list[str] | None = None) -> list[str] | None:
    """The short report of an out-of-memory error (see the module's docstring), or ``None`` if ``exc`` is not one.

    Args:
        exc: the ``ResourceExhaustedError``.
        namespace: the notebook's names (what they hold).
        cell_line: ``(line, text)`` of the user's line that made the op, when the caller knows it (a magic cell).
        where: how that line is named (``%%tfgraph cell``).
        dump: the allocator's lines caught from fd 2, if any.
    """
    import tensorflow as tf

    from tfmagic.reports import format_bytes as fb
    from tfmagic.memory import recalled
    from tfmagic.tracebacks import _op_error_parts
    from tfmagic.vocabulary import is_user_file

    message = getattr(exc, "message", None) or str(exc)
    asked = parse_oom(message)
    if asked is None:
        return None
    frames, _, node = _op_error_parts(message)
    if cell_line is None:
        user = [(f, n) for f, n, _ in frames if is_user_file(f)]
        if user:
            import linecache

            filename, number = user[-1]
            cell_line = (number, linecache.getline(filename, number).strip())
    at = f"{where + ', ' if where else ''}line {cell_line[0]}: {cell_line[1]}" if cell_line else "a line of yours"
    size = f"{fb(asked.bytes)} " if asked.bytes is not None else ""
    lines = [f"ResourceExhaustedError: out of memory on {asked.device}: {node or 'an op'} ({at}) asked for "
             f"{size}({asked.dtype} {asked.shape}){' from allocator ' + asked.allocator if asked.allocator else ''}"]
    numbers = dump_numbers(dump or [])
    in_use = numbers.get("InUse")
    if in_use is None:
        try:
            in_use = tf.config.experimental.get_memory_info(asked.device)["current"]
        except (ValueError, tf.errors.OpError):
            in_use = None
    limit = _limit(asked, numbers)
    if in_use is not None or limit is not None:
        lines.append("  in use when it failed: " + (fb(in_use) if in_use is not None else "unknown")
                     + (f" of a {fb(limit)} limit" if limit is not None else ""))
    held = held_in(namespace)
    if held:
        lines.append("  the notebook holds: " + ", ".join(f"{name} {fb(size)}" for name, size, _ in held))
    measured = recalled(message)
    if measured is not None and measured[1]:
        what, by_line = measured
        lines.append(f"  {what} had at its peak, by line: " + "; ".join(f"{line} {fb(size)}" for line, size in by_line))
    first = asked.shape.strip("[]").split(",")[0]
    tensor = next(((name, size) for name, size, tensors in held if tensors), None)  # not a model: its weights stay
    lines.append("  ways out: a smaller batch (this tensor's first dimension is " + (first or "?") + "); "
                 "tf.recompute_grad around the layers whose activations the backward pass keeps; mixed precision "
                 "(keras.mixed_precision.set_global_policy('mixed_float16')) halves activations; "
                 + (f"`del {tensor[0]}` frees {fb(tensor[1])} if it is no longer needed; " if tensor else "")
                 + "%%tfgraph --memory on a smaller batch shows which ops and lines hold the peak")
    return lines


def annotate(exc: BaseException, namespace: dict, dump: list[str] | None = None, where: str = "") -> bool:
    """Give an out-of-memory error the short report as its traceback (IPython shows ``_render_traceback_``).

    Args:
        exc: what the cell raised.
        namespace: the notebook's names.
        dump: the allocator's lines a magic caught from fd 2.
        where: how a magic's cell is named (``%%tfgraph cell``); its line comes from the frames ``tracebacks.for_cell``
            attached.

    Returns:
        Whether ``exc`` was an out-of-memory error (and now renders as the report).
    """
    import tensorflow as tf

    from tfmagic.tracebacks import rendered_as

    if not isinstance(exc, tf.errors.ResourceExhaustedError) or getattr(exc, "tfmagic_oom", False):
        return False
    cell = [f for f in getattr(exc, "tfmagic_frames", None) or () if f.filename is None]
    cell_line = (cell[-1].lineno, cell[-1].code.strip()) if cell else None
    lines = oom_report(exc, namespace, cell_line, where if cell_line else "", dump)
    return lines is not None and rendered_as(exc, lines, tfmagic_oom=True)

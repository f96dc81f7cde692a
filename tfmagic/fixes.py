"""The fixes tfmagic offers for a retrace, each code that works when pasted.

:func:`fixes_for` turns what changed between two traces (each an :class:`ArgChange`, which
``retracing.compare`` finds) into fixes: an ``input_signature`` over every argument in order (none where an
argument is not a tensor), ``reduce_retracing``, ``drop_remainder=True`` for a dataset's smaller last batch, a cast up to the wider
dtype (never strings <-> numbers by a cast), ``tf.constant(k)`` for a Python value; :func:`with_constant_dtype`
gives that constant the dtype it meets in the graph, :func:`static_shape_caveat` says when a generalised
shape needs ``tf.shape(x)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import tensorflow as tf


@dataclass(frozen=True)
class ArgChange:
    """How one argument differs from the nearest earlier trace.

    Attributes:
        name: the argument (``x``, ``cfg['a']``, ``pair[1]``).
        kind: ``shape``, ``rank``, ``dtype``, ``python_value``, ``type``, ``keys``, ``length``,
            ``object``, ``new`` (an argument not there before) or ``captured`` (a new captured object).
        before: the earlier trace's description.
        after: this trace's description.
    """

    name: str
    kind: str
    before: str
    after: str

    @property
    def text(self) -> str:
        if self.kind == "python_value":
            return f"{self.name}: {self.before} -> {self.after.split(' ', 2)[-1]}"
        if self.kind == "keys":
            return f"{self.name}: dict keys changed ({self.after})"
        if self.kind == "object":
            return f"{self.name}: a different object ({self.before} -> {self.after})"
        if self.kind == "captured":
            return f"{self.name}: a new object is captured ({self.before} -> {self.after})"
        if self.kind == "new":
            return f"{self.name}: {self.after} (not an argument before)"
        if self.kind in ("code", "options", "cap"):
            return f"{self.name}: {self.after}"
        if self.kind == "type" and not self.before.startswith("Python") and self.after.startswith("Python"):
            return f"{self.name}: {self.before} tensor -> {self.after}"
        if self.kind == "type" and self.before.startswith("Python") and not self.after.startswith("Python"):
            return f"{self.name}: {self.before} -> {self.after} tensor"
        return f"{self.name}: {self.before} -> {self.after}"


#: Numeric dtypes by how much they hold: a cast to the later never loses values of the earlier.
_WIDTH = ["bool", "uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "bfloat16", "float16", "float32", "float64", "complex64", "complex128"]


def fixes_for(changes: list[ArgChange], reduce_retracing: bool = False, signature: dict[str, Any] | None = None
              ) -> list[str]:
    """The fixes that apply to a retrace's changes, most useful first, without repeats.

    Each fix is code that works when pasted: an ``input_signature`` covers every argument of the function
    (``signature``, the new trace's), in order, with the dims that changed as ``None``.

    >>> spec = lambda *shape: tf.TensorSpec(shape, tf.float32)
    >>> changes = [ArgChange("x", "shape", "float32[32,8]", "float32[6,8]")]
    >>> print(fixes_for(changes, signature={"x": spec(6, 8), "lr": spec()})[0])
    let one graph take every shape: @tf.function(input_signature=[tf.TensorSpec([None,8], tf.float32), \
tf.TensorSpec([], tf.float32)]), or @tf.function(reduce_retracing=True) (%%tfgraph --reduce-retracing)
    """
    out: dict[str, None] = {}
    shapes = [c for c in changes if c.kind == "shape"]
    if shapes:
        if reduce_retracing:
            out["reduce_retracing is on: TensorFlow traced a generalised graph that the next calls of new shapes "
                "reuse"] = None
        else:
            generic = _input_signature(signature, shapes)
            one = f"@tf.function(input_signature={generic}), or " if generic else ""
            out[f"let one graph take every shape: {one}@tf.function(reduce_retracing=True) "
                "(%%tfgraph --reduce-retracing)"] = None
        if _smaller_last_batch(shapes):
            out["if these are a tf.data.Dataset's batches, its last batch is smaller: "
                "dataset.batch(BATCH_SIZE, drop_remainder=True) drops it, so every batch has one shape"] = None
    for change in changes:
        if change.kind == "rank":
            dtype = change.after.split("[", 1)[0]
            out[f"pass tensors of one rank, or input_signature=[tf.TensorSpec(None, tf.{dtype})] "
                "to accept any shape"] = None
        elif change.kind == "dtype":
            out[_dtype_fix(change)] = None
        elif change.kind == "type" and change.before.startswith("Python") and not change.after.startswith("Python"):
            out[f"{change.name} is a tensor now (it was a Python value): calls with tensors of this dtype and shape "
                "reuse this trace"] = None
        elif change.kind in ("python_value", "type") and "Python" in change.after + change.before:
            make = f"tf.constant({change.name})"
            if "Python int" in change.after:  # an int tensor does not meet a float one: say which dtype
                make += f", or tf.constant({change.name}, tf.float32) where it meets float32 tensors"
            out[f"pass {change.name} as a tensor ({make}): every new Python value "
                "traces a new graph, a tensor's value does not"] = None
        elif change.kind in ("keys", "length"):
            out[f"keep the structure of {change.name.split('[')[0]} fixed (same keys and lengths), "
                "or pass its varying part as tensors"] = None
        elif change.kind == "object":
            out[f"each call passes {change.name} a new Python object, and a new object is a new signature: reuse "
                "one object, or pass the data it holds as tensors (a class can let its objects share a graph "
                "with __tf_tracing_type__)"] = None
        elif change.kind == "captured":
            out[f"{change.name} names a new object, so the cell's graph was built again: "
                "rebind it only when you mean to"] = None
        elif change.kind == "new":
            out["the cell reads a name it did not read before"] = None
        elif change.kind in ("code", "options"):
            out["a cell's new code or options make a new tf.function"] = None
        elif change.kind == "cap":
            out["pass inputs of a few signatures (tensors instead of Python values, input_signature with None "
                "dims) so that the cell's traces are reused"] = None
    return list(out)


def _dims(text: str) -> list[str]:
    return text.split("[", 1)[1].rstrip("]").split(",") if "[" in text else []


def _input_signature(signature: dict[str, Any] | None, shapes: list[ArgChange]) -> str | None:
    """``[tf.TensorSpec(...), ...]`` for every argument, changed dims as ``None``; ``None`` when an argument is
    not a plain tensor (an input_signature takes tensors only) or the arguments are not known."""
    if signature is None:
        signature = {c.name: None for c in shapes}
    changed = {c.name: c for c in shapes}
    specs = []
    for name, spec in signature.items():
        change = changed.get(name)
        if change is not None:
            dtype = change.after.split("[", 1)[0]
            dims = [a if a == b and a != "?" else "None" for a, b in zip(_dims(change.after), _dims(change.before))]
        elif isinstance(spec, tf.TensorSpec) and spec.shape.rank is not None:
            dtype = spec.dtype.name
            dims = ["None" if d is None else str(d) for d in spec.shape.as_list()]
        else:
            return None
        specs.append(f"tf.TensorSpec([{','.join(dims)}], tf.{dtype})")
    if any("[" in c.name for c in shapes):  # a part of a nested argument: no flat signature fits
        return None
    return "[" + ", ".join(specs) + "]"


def _smaller_last_batch(shapes: list[ArgChange]) -> bool:
    """Every changed tensor got a smaller first dim, the same one, and nothing else changed (a last batch)."""
    firsts = set()
    for change in shapes:
        before, after = _dims(change.before), _dims(change.after)
        if not before or before[1:] != after[1:] or not (before[0].isdigit() and after[0].isdigit()):
            return False
        if int(after[0]) >= int(before[0]):
            return False
        firsts.add(after[0])
    return len(firsts) == 1


def _dtype_fix(change: ArgChange) -> str:
    """Pass one dtype on every call, cast at the call site to the wider one; strings are not cast."""
    before, after = change.before.split("[", 1)[0], change.after.split("[", 1)[0]
    if "string" in (before, after):
        number = after if before == "string" else before
        return (f"{change.name} was a string tensor on one call and a {number} tensor on another: tf.cast does not "
                "convert between strings and numbers; convert at the call site so every call passes one dtype "
                f"(tf.strings.to_number(s, tf.{number}) or tf.strings.as_string(n))")
    wider = max((before, after), key=lambda d: _WIDTH.index(d) if d in _WIDTH else -1)
    if before.startswith(("int", "uint")) and after.startswith(("float", "bfloat")):
        wider = after
    elif after.startswith(("int", "uint")) and before.startswith(("float", "bfloat")):
        wider = before
    return (f"pass {change.name} with one dtype on every call: cast at the call site to the wider one, "
            f"tf.cast({change.name}, tf.{wider}) (not down to the narrower dtype, which loses values)")


# ---------------------------------------------------------------------------
# Trace histories


def fix_lines(fixes: list[str]) -> list[str]:
    """The fixes as the message's lines, once each; what only explains (a function that already
    generalises shapes, an argument that became a tensor) is a note, not a fix."""
    notes = ("reduce_retracing is on", "is a tensor now")
    return [f"  {'note' if any(n in fix for n in notes) else 'fix'}: {fix}" for fix in dict.fromkeys(fixes)]


def static_shape_caveat(function, changes: list[ArgChange]) -> str | None:
    """A caveat for shape fixes where the function reads an argument's static shape (``x.shape[0]``): with
    ``None`` dims that is ``None`` in the graph, so the code must read ``tf.shape(x)[0]`` instead."""
    import inspect

    python_function = getattr(function, "python_function", None)
    while hasattr(python_function, "python_function"):
        python_function = python_function.python_function
    try:
        source = inspect.getsource(python_function)
    except (OSError, TypeError):
        return None
    for change in changes:
        if change.kind == "shape" and re.search(rf"\b{re.escape(change.name)}\.shape\b", source):
            return (f"the function reads {change.name}.shape: under input_signature with None dims or "
                    f"reduce_retracing it holds None there, so read the size as tf.shape({change.name}) "
                    f"(tf.shape({change.name})[0]) first, or keep one shape (drop_remainder=True)")
    return None


def with_constant_dtype(fixes: list[str], diff: Any) -> list[str]:
    """``tf.constant(k)`` made to give the dtype the Python value became in the graph (``tf.constant(k,
    tf.float32)`` where ``x * k`` made ``k`` a float32 constant): the fix must work when pasted, and an int32
    tensor would not meet ``x``."""
    dtypes = set(getattr(diff, "constant_dtypes", ()) or ())
    if len(dtypes) != 1:
        return fixes
    dtype = dtypes.pop()
    if dtype == "string":
        return fixes
    made = r"tf.constant(\1)" if dtype == "int32" else rf"tf.constant(\1, tf.{dtype})"
    return [re.sub(r"tf\.constant\((\w+)\)(, or tf\.constant\(\w+, tf\.float32\) where it meets float32 tensors)?",
                   made, fix) for fix in fixes]

"""Which names a ``%%tfgraph`` cell reads become its function's arguments, and which are captured.

Values are arguments (a new shape, dtype or Python value is a retrace, as for any ``tf.function``);
objects are captured (a new object builds the cell's function anew): see :func:`split_inputs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfmagic.leaving import holds_tensors

#: Python values passed to the cell's function as arguments (besides tensors and arrays).
_VALUE_TYPES = (bool, int, float, complex, str, bytes, type(None), list, tuple, dict)


def split_inputs(candidates: tuple[str, ...], namespace: dict, mutated: frozenset[str] = frozenset()
                 ) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which of the names a cell reads are arguments, and which are captured.

    Values are arguments: tensors, NumPy arrays and scalars, Python numbers,
    strings and containers, so a new shape, dtype or Python value is a retrace.
    Everything else (variables, layers, models, functions, modules, classes) is
    captured as the function's global, the way ``tf.function`` captures what a
    function reads from its module; the cell's function is rebuilt when one of
    them is a new object, so a graph never runs with a stale capture.  Containers
    the cell changes in place (``mutated``) are captured too: TensorFlow refuses
    changes to its arguments, while a captured list changes as in a plain
    ``tf.function`` (once per trace).  When the cell reads a ``tf.GradientTape``
    from the namespace, its tensors are captured too (the tape recorded those
    tensors, not arguments standing for them).  Names not
    in the namespace are left to the builtins (or fail as a plain cell would).

    >>> import math
    >>> params, captured = split_inputs(("math", "x", "print", "f"), {"math": math, "x": 1.0, "f": len})
    >>> params, sorted(captured)
    (('x',), ['f', 'math'])
    """
    params, captured = [], {}
    # A tape recorded in an earlier cell knows the notebook's own tensors: made arguments, they would be new
    # tensors it never recorded (tape.gradient gives None).  Captured, they are those tensors, as a plain
    # tf.function closing over them has them.
    taped = any(isinstance(namespace.get(name), tf.GradientTape) for name in candidates)
    for name in candidates:
        if name not in namespace:
            continue
        value = namespace[name]
        if taped and (tf.is_tensor(value) or holds_tensors(value)) and not isinstance(value, tf.Variable):
            captured[name] = value
        elif (isinstance(value, _VALUE_TYPES) and not (name in mutated and isinstance(value, MUTABLE))) \
                or _is_array_like(value):
            params.append(name)
        else:
            captured[name] = value
    return tuple(params), captured


MUTABLE = (list, dict, set, bytearray)  # what a cell can change in place


_ARRAY_TYPES = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor, np.ndarray, np.generic)


def _is_array_like(value: Any) -> bool:
    """Tensors (not variables), NumPy arrays and NumPy scalars (plain isinstance: this runs every call)."""
    return isinstance(value, _ARRAY_TYPES)

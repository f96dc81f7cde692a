"""Trace histories of ``tf.function``\\ s, and why each retrace happened.

TensorFlow keeps one concrete function per input signature.  For any
``tf.function`` (a ``%%tfgraph`` cell's or the user's own) :func:`trace_history`
reads those signatures in the order they were traced and explains each new one
against the nearest earlier trace: which argument changed and how
(``x: float32[2] -> float32[3]``, ``n: Python int 10 -> 20``,
``cfg: dict keys changed (+b)``, ``obj: a different object``), and the fix that
applies.

>>> import tensorflow as tf
>>> @tf.function
... def tf_cube(x):
...     return x ** 3
>>> _ = tf_cube(tf.constant(10)); _ = tf_cube(tf.constant(20)); _ = tf_cube(10); _ = tf_cube(20)
>>> for trace in trace_history(tf_cube).traces:
...     print(trace.number, trace.signature_text(), "|", trace.reason)
1 x: int32 | first call
2 x: Python int 10 | x: int32 tensor -> Python int 10
3 x: Python int 20 | x: Python int 10 -> 20
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from tfmagic.fixes import ArgChange, fix_lines, fixes_for, with_constant_dtype


# ---------------------------------------------------------------------------
# Describing trace types


def _spec_text(spec) -> str:
    dtype = spec.dtype.name
    if spec.shape.rank is None:
        return f"{dtype}[...]"
    if spec.shape.rank == 0:
        return dtype
    return f"{dtype}[{','.join('?' if d is None else str(d) for d in spec.shape.as_list())}]"


def describe(trace_type: Any) -> str:
    """A short text for one argument's trace type (``float32[2]``, ``Python int 10``, ``dict{a, b}``)."""
    name = type(trace_type).__name__
    if isinstance(trace_type, tf.TensorSpec):
        return _spec_text(trace_type)
    if name == "VariableSpec":
        return "variable " + _spec_text(trace_type)
    if name == "Literal":
        value = trace_type.value
        if value is None:
            return "None"
        return f"Python {type(value).__name__} {value!r}"
    if name == "Weakref":
        target = trace_type._ref()
        return f"object {_object_text(target)}"
    if name == "Dict":
        return "dict{" + ", ".join(str(k) for k in trace_type.mapping) + "}"
    if name in ("Tuple", "List"):
        parts = _components(trace_type)
        kind = "tuple" if name == "Tuple" else "list"
        return f"{kind}({', '.join(describe(p) for p in parts)})" if len(parts) <= 4 else f"{kind} of {len(parts)}"
    if hasattr(trace_type, "dtype") and hasattr(trace_type, "shape"):
        return f"{name} " + _spec_text(trace_type)
    text = str(trace_type)
    if text.startswith("<") and " object at 0x" in text:  # a class's own __tf_tracing_type__: what it holds
        return describe_argument(trace_type)
    return text


def describe_object(obj: Any) -> str:
    """A short text for a captured Python object: ``<ResourceVariable 'w:0'>``."""
    return _object_text(obj)


def describe_argument(obj: Any) -> str:
    """What a Python object passed to a ``tf.function`` holds, as a signature tells objects apart:
    ``Apple(flavor=int32[2])`` (its type, and its attributes that are tensors or plain values)."""
    parts = []
    try:
        attributes = [(k, v) for k, v in vars(obj).items() if not k.startswith("_")]
    except TypeError:
        attributes = []
    if not attributes:
        attributes = [(k, getattr(type(obj), k)) for k in vars(type(obj)) if not k.startswith("_")
                      and not callable(getattr(type(obj), k, None))][:4]
    for key, value in attributes[:4]:
        if tf.is_tensor(value) and hasattr(value, "shape"):
            parts.append(f"{key}={_spec_text(tf.TensorSpec(value.shape, value.dtype))}")
        elif isinstance(value, (int, float, bool, str)) or value is None:
            parts.append(f"{key}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def _object_text(obj: Any) -> str:
    if obj is None:
        return "(gone)"
    label = getattr(obj, "name", None)
    return f"<{type(obj).__name__} {label!r}>" if isinstance(label, str) else f"<{type(obj).__name__}>"


def _components(trace_type) -> tuple:
    if hasattr(trace_type, "components"):
        return tuple(trace_type.components)
    tup = getattr(trace_type, "components_tuple", None)
    return tuple(getattr(tup, "components", ())) if tup is not None else ()


# ---------------------------------------------------------------------------
# Differences between two traces


def compare(name: str, before: Any, after: Any) -> list[ArgChange]:
    """The changes between two trace types of the same argument (nested ones by path)."""
    if before == after:
        return []
    kb, ka = type(before).__name__, type(after).__name__
    if isinstance(before, tf.TensorSpec) and isinstance(after, tf.TensorSpec):
        if before.dtype != after.dtype:
            return [ArgChange(name, "dtype", describe(before), describe(after))]
        if before.shape.rank != after.shape.rank:
            return [ArgChange(name, "rank", describe(before), describe(after))]
        return [ArgChange(name, "shape", describe(before), describe(after))]
    if kb == ka == "Literal":
        if type(before.value) is not type(after.value):
            return [ArgChange(name, "type", describe(before), describe(after))]
        return [ArgChange(name, "python_value", describe(before), describe(after))]
    if kb == ka == "Dict":
        keys_b, keys_a = set(before.mapping), set(after.mapping)
        if keys_b != keys_a:
            added = ", ".join("+" + str(k) for k in sorted(keys_a - keys_b, key=str))
            removed = ", ".join("-" + str(k) for k in sorted(keys_b - keys_a, key=str))
            return [ArgChange(name, "keys", describe(before), ", ".join(p for p in (added, removed) if p))]
        out = []
        for key in before.mapping:
            out += compare(f"{name}[{key!r}]", before.mapping[key], after.mapping[key])
        return out
    if kb == ka and kb in ("Tuple", "List"):
        cb, ca = _components(before), _components(after)
        if len(cb) != len(ca):
            return [ArgChange(name, "length", describe(before), describe(after))]
        out = []
        for i, (b, a) in enumerate(zip(cb, ca)):
            out += compare(f"{name}[{i}]", b, a)
        return out
    if kb == ka == "Weakref":
        return [ArgChange(name, "object", describe(before), describe(after))]
    if kb == ka and hasattr(before, "shape") and hasattr(before, "dtype"):
        kind = "dtype" if before.dtype != after.dtype else "shape"
        return [ArgChange(name, kind, describe(before), describe(after))]
    return [ArgChange(name, "type", describe(before), describe(after))]


@dataclass
class Trace:
    """One trace of a ``tf.function``: the one record of a trace, which a ``%%tfgraph`` cell's trace
    (``collect.TraceRecord``) extends with what the cell's values did.

    Attributes:
        number: 1 for the first trace, 2 for the next, ...
        signature: argument name -> trace type.
        changes: how it differs from the nearest earlier trace (empty for the first).
        fixes: what would avoid this retrace.
        nearest: the number of the earlier trace it was compared with.
        concrete: the concrete function (its ``.graph`` is the traced graph), where one is kept.
    """

    number: int
    signature: dict[str, Any] = field(default_factory=dict)
    changes: list[ArgChange] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    nearest: int | None = None
    concrete: Any = None

    def signature_text(self) -> str:
        return ", ".join(f"{k}: {describe(v)}" for k, v in self.signature.items()) or "(no arguments)"

    @property
    def reason(self) -> str:
        """One line: what changed, or why the first trace happened."""
        if self.number == 1 and not self.changes:
            return "first call"
        if not self.changes:
            return "a signature TensorFlow could not reuse"
        return "; ".join(c.text for c in self.changes)


@dataclass
class TraceHistory:
    """Every trace of one ``tf.function``, in the order they were made."""

    name: str
    traces: list[Trace]


def signature_of(concrete) -> dict[str, Any]:
    """Argument name -> trace type of a concrete function."""
    function_type = getattr(concrete, "function_type", None)
    if function_type is None:
        return {}
    return {p.name: p.type_constraint for p in function_type.parameters.values()}


def explain(signature: dict[str, Any], earlier: list[dict[str, Any]], reduce_retracing: bool = False
            ) -> tuple[list[ArgChange], list[str], int | None]:
    """Compare a new signature with earlier ones: ``(changes, fixes, index of the nearest)``.

    The nearest is the one that differs least, a change of kind (a Python value against a tensor)
    counting more than a change within a kind (a shape); of two equally near, the later.

    >>> spec = lambda shape: tf.TensorSpec(shape, tf.float32)
    >>> from tensorflow.core.function.trace_type import default_types
    >>> changes, fixes, nearest = explain({"x": spec([1, 2])}, [{"x": spec([])}, {"x": default_types.Literal(2)}])
    >>> nearest, changes[0].text
    (0, 'x: float32 -> float32[1,2]')
    """
    best: tuple[int, int, list[ArgChange]] | None = None
    for index, old in enumerate(earlier):
        changes = []
        for name, new_type in signature.items():
            if name not in old:
                changes.append(ArgChange(name, "new", "", describe(new_type)))
            else:
                changes += compare(name, old[name], new_type)
        distance = sum(_DISTANCE.get(c.kind, 2) for c in changes)
        if best is None or distance <= best[0]:
            best = (distance, index, changes)
    if best is None:
        return [], [], None
    return best[2], fixes_for(best[2], reduce_retracing, signature), best[1]


#: How far apart two traces are for one change of each kind (see :func:`explain`).
_DISTANCE = {"shape": 1, "python_value": 1, "dtype": 2, "rank": 2, "keys": 2, "length": 2, "object": 2,
             "captured": 2, "new": 3, "type": 4}


def concrete_functions(function) -> list:
    """A ``tf.function``'s concrete functions in the order they were traced.

    Nothing is traced here: a function never called has none (TensorFlow's own listing would trace a
    function with an input signature, running the user's Python code). Of two traces with one
    signature, the later is kept: the first was TensorFlow's variable-creating trace, which it runs once.
    """
    try:
        if function.experimental_get_tracing_count() == 0:
            return []
        listed = function._list_all_concrete_functions()
    except AttributeError:
        return []
    out: dict[tuple, object] = {}
    for concrete in listed:
        key = tuple((k, repr(v)) for k, v in signature_of(concrete).items())
        out.pop(key, None)
        out[key] = concrete
    order = {id(c): i for i, c in enumerate(listed)}
    return sorted(out.values(), key=lambda c: order[id(c)])


def trace_history(function, name: str | None = None) -> TraceHistory:
    """The traces of a ``tf.function``, each explained against the nearest earlier one."""
    reduce_retracing = bool(getattr(function, "_reduce_retracing", False))
    traces: list[Trace] = []
    for concrete in concrete_functions(function):
        signature = signature_of(concrete)
        changes, fixes, nearest = explain(signature, [t.signature for t in traces], reduce_retracing)
        traces.append(Trace(len(traces) + 1, signature, changes, fixes,
                            None if nearest is None else nearest + 1, concrete))
    label = name or getattr(function, "__name__", None) or getattr(function, "name", "function")
    return TraceHistory(label, traces)


def call_signature(function, args: list) -> dict[str, Any] | None:
    """Argument name -> trace type of a call that has not happened yet (``None`` if TensorFlow cannot say)."""
    call_type = _call_type(function, args)
    if call_type is None:
        return None
    return {p.name: p.type_constraint for p in call_type.parameters.values()}


def would_trace(function, args: list) -> bool:
    """Whether calling ``function(*args)`` would trace: no existing trace accepts these arguments."""
    call_type = _call_type(function, args)
    if call_type is None:
        return False
    for concrete in concrete_functions(function):
        try:
            if concrete.function_type.is_supertype_of(call_type):
                return False
        except Exception:  # a trace type TensorFlow cannot compare: assume it would be reused
            return False
    return True


def _call_type(function, args: list):
    try:
        from tensorflow.core.function.polymorphism import function_type as function_type_lib

        return function_type_lib.canonicalize_to_monomorphic(
            tuple(args), {}, {}, {}, function.function_type)[0]
    except Exception:  # an older TensorFlow, or arguments it cannot type
        return None


# ---------------------------------------------------------------------------
# What changed in the graph


def graph_diff(before, after):
    """What changed between two traced graphs, in words (``tracediff.GraphDiff``: ops matched by structure,
    not by name, so a graph that only got new name counters is "the same ops")."""
    from tfmagic.graph import build_graph_model
    from tfmagic.tracediff import diff_graphs

    return diff_graphs(build_graph_model(before), build_graph_model(after))


# ---------------------------------------------------------------------------
# Finding tf.functions


def is_tf_function(value: Any) -> bool:
    """Whether ``value`` is a ``tf.function`` (a polymorphic function with traces)."""
    return hasattr(value, "experimental_get_tracing_count") and hasattr(value, "_list_all_concrete_functions")


def find_functions(namespace: dict, kinds: dict | None = None) -> dict[str, Any]:
    """Every ``tf.function`` in a namespace, by a name to show: top-level ones and those of Keras models.

    A Keras model's compiled steps (``model.train_function``, ...) and methods
    decorated with ``@tf.function`` are listed as ``model.name``.

    Args:
        namespace: where to look.
        kinds: a cache of what each type is (pass the same dict on every call: scans run after every cell).
    """
    kinds = {} if kinds is None else kinds
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        kind = kinds.get(type(value))
        if kind is None:
            kind = kinds[type(value)] = ("function" if is_tf_function(value) else
                                         "model" if _is_keras_model(value) else "")
        if kind == "function":
            if id(value) not in seen:
                seen.add(id(value))
                found[name] = value
        elif kind == "model":
            for attr, fn in _model_functions(value, kinds):
                if id(fn) not in seen:
                    seen.add(id(fn))
                    found[f"{name}.{attr}"] = fn
    return found


def _is_keras_model(value: Any) -> bool:
    from tfmagic.naming import is_keras

    return is_keras(value, ("Model", "Layer"))


#: Keras 3's step functions: the model's attribute -> the names to list its tf.functions under. Keras keeps
#: them in closures (``keras/src/backend/tensorflow/trainer.py``: ``train_function`` is a plain function whose
#: closure holds the tf.function ``multi_step_on_iterator`` that fit/evaluate run, and ``one_step_on_data``,
#: the step of one batch, which that one calls and train_on_batch/test_on_batch call directly);
#: ``predict_function`` is a tf.function itself.
_KERAS_FUNCTIONS = {
    "train_function": {"multi_step_on_iterator": "train_function", "one_step_on_data": "train_function.one_step"},
    "test_function": {"multi_step_on_iterator": "test_function", "one_step_on_data": "test_function.one_step"},
    "predict_function": {"one_step_on_data": "predict_function.one_step"},
}


def _model_functions(model, kinds: dict) -> list[tuple[str, Any]]:
    """A Keras model's tf.functions by attribute: its own steps (found in Keras's closures) and methods
    (which attributes of its class are tf.functions is found once per class, in ``kinds``)."""
    out = []
    state = vars(model)
    for attr, names in _KERAS_FUNCTIONS.items():
        value = state.get(attr)
        if value is None:
            continue
        if is_tf_function(value):
            out.append((attr, value))
            continue
        for fn in _held_functions(value, kinds):
            base = getattr(fn, "__name__", "") or getattr(getattr(fn, "python_function", None), "__name__", "")
            out.append((names.get(base, f"{attr}/{base}"), fn))
    for attr, value in list(state.items()):
        if is_tf_function(value) and attr not in _KERAS_FUNCTIONS:
            out.append((attr, value))
    methods = kinds.get(("methods", type(model)))
    if methods is None:
        methods = kinds[("methods", type(model))] = tuple(_class_functions(type(model)))
    out += [(attr, getattr(model, attr)) for attr in methods]
    return out


def _class_functions(cls) -> list[str]:
    """The attributes of a class that are ``tf.function``\\ s (decorated methods)."""
    out = []
    for attr in dir(cls):
        if attr.startswith("__"):
            continue
        try:
            class_value = getattr(cls, attr)
        except AttributeError:
            continue
        if is_tf_function(class_value):
            out.append(attr)
    return out


def _held_functions(function, kinds: dict) -> list:
    """:func:`_closure_functions` of a Keras step, found once per step function (``kinds`` keeps them by weak
    references: a recompiled model's new step is looked at anew, and no graph is kept alive)."""
    entry = kinds.get(("closure", id(function)))
    if entry is not None and entry[0]() is function:
        found = [ref() for ref in entry[1]]
        if all(fn is not None for fn in found):
            return found
    found = _closure_functions(function)
    try:  # weakly: the cache keeps no graph alive
        kinds[("closure", id(function))] = (weakref.ref(function), [weakref.ref(fn) for fn in found])
    except TypeError:  # not weak-referenceable: looked at every time
        pass
    return found


def _closure_functions(function, depth: int = 3) -> list:
    """The tf.functions a plain function holds in its closure (and their closures', ``depth`` deep)."""
    found, seen = [], set()
    todo = [(function, 0)]
    while todo:
        fn, level = todo.pop(0)
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        if is_tf_function(fn) and fn is not function:
            found.append(fn)
            continue
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None and level < depth:
            todo.append((wrapped, level + 1))
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value) and level < depth:
                todo.append((value, level + 1))
    return found


def called_functions(function) -> list:
    """The tf.functions a plain Python function calls: those its closures hold (Keras 3's ``train_function``), and
    the globals its code loads (a notebook's ``def run(x): return train_step(x)``; not ``self.train_step``)."""
    import dis

    found = _closure_functions(function)
    names = getattr(function, "__globals__", {})
    try:
        loaded = [i.argval for i in dis.get_instructions(function) if i.opname == "LOAD_GLOBAL"]
    except TypeError:  # not Python code (a builtin, a callable object)
        loaded = []
    for name in loaded:
        value = names.get(name)
        if is_tf_function(value) and all(value is not f for f in found):
            found.append(value)
    return found


class TraceCounts:
    """Remembers functions' trace counts, to tell which ones traced since (weakly: no function is kept alive)."""

    def __init__(self):
        self._counts: dict[int, tuple[weakref.ref, int]] = {}
        self.kinds: dict = {}  # type -> what it is, for find_functions

    def snapshot(self, functions: dict[str, Any]) -> None:
        """Remember the functions' trace counts now."""
        self._counts = {}
        self.update(functions)

    def update(self, functions: dict[str, Any]) -> dict[str, int]:
        """Name -> how many traces a function made since last time (new functions: all of theirs);
        the counts seen now become the baseline."""
        out = {}
        counts = {}
        for name, fn in functions.items():
            key = id(fn)
            entry = self._counts.get(key)
            count = fn.experimental_get_tracing_count()
            if entry is not None and entry[0]() is fn:
                ref, before = entry
            else:
                try:
                    ref = weakref.ref(fn)
                except TypeError:  # not weak-referenceable: not tracked
                    continue
                before = 0
            if count > before:
                out[name] = count - before
            counts[key] = (ref, count)
        self._counts = counts
        return out


def retrace_text(label: str, number: int, changes: list[ArgChange], fixes: list[str], diff: Any,
                 nearest: int | None = None) -> str:
    """The message for one retrace: what changed, the graph's changes, the fixes."""
    reason = "; ".join(c.text for c in changes) or "a signature TensorFlow could not reuse"
    against = f" (against trace {nearest})" if nearest else ""
    lines = [f"{label}: retraced: trace {number}{against}: {reason}"]
    if diff is not None:
        lines.append(f"  graph: {diff.text}")
    lines += fix_lines(with_constant_dtype(fixes, diff))
    return "\n".join(lines)


def traces_of(target) -> list[tuple[str, Any]]:
    """The traced graphs of a ``tf.function``, a concrete function or a Keras model, as ``(label, graph)``.

    Raises:
        TfMagicError: the object has no graph to draw (not traced yet, or not a function or model).
    """
    from tfmagic.errors import TfMagicError

    if is_tf_function(target):
        history = trace_history(target)
        if not history.traces:
            raise TfMagicError("it has not been traced yet: call it once, then draw it")
        return [(t.signature_text(), t.concrete.graph) for t in history.traces]
    if hasattr(target, "graph") and hasattr(target, "function_type"):
        return [(", ".join(f"{k}: {describe(v)}" for k, v in signature_of(target).items()), target.graph)]
    if _is_keras_model(target):
        inputs = getattr(target, "inputs", None)
        try:
            specs = [tf.TensorSpec(t.shape, t.dtype) for t in inputs] if inputs else None
        except (AttributeError, TypeError, ValueError):
            specs = None
        if not specs:
            raise TfMagicError("cannot tell the model's input shape: give it an Input layer, or draw a "
                               "%%tfgraph cell that calls it")
        forward = tf.function(lambda *xs: target(xs[0] if len(xs) == 1 else list(xs), training=False))
        concrete = forward.get_concrete_function(*specs)
        return [(", ".join(_spec_text(s) for s in specs), concrete.graph)]
    raise TfMagicError(f"a {type(target).__name__} is not a tf.function, concrete function or Keras model")


def watched_pitfalls(function, history: TraceHistory) -> list:
    """Trace-time pitfalls of a user's ``tf.function``: from its source, and unrolled loops in its last trace."""
    import inspect
    import textwrap

    from tfmagic import diagnostics

    python_function = getattr(function, "python_function", None)
    while hasattr(python_function, "python_function"):  # tf.function(tf.function(f))
        python_function = python_function.python_function
    if getattr(python_function, "__code__", None) is None:
        return []
    try:
        lines, first = inspect.getsourcelines(python_function)
    except (OSError, TypeError):
        return []
    source = textwrap.dedent("".join(lines))
    findings = diagnostics.find_source_pitfalls(source)
    if history.traces and history.traces[-1].concrete is not None:
        findings += diagnostics.find_unrolled_loops(diagnostics.TracedCode(
            source, history.traces[-1].concrete.graph, python_function.__code__.co_filename, first - 1))
    # Lines of the file (or notebook cell) the function is in, as the user sees them.
    return [dataclasses.replace(f, line=f.line + first - 1) if f.line else f for f in findings]


_KERAS_STEPS = {"predict_function": "predict", "train_function": "training", "test_function": "evaluation",
                "train_function.one_step": "one-batch training", "test_function.one_step": "one-batch evaluation",
                "predict_function.one_step": "one-batch predict"}


def keras_step(name: str, function) -> str | None:
    """``"predict"`` (``"training"``, ``"evaluation"``) when ``name`` is a Keras model's own step function
    that Keras built with ``reduce_retracing`` (it retraces it itself, once, for a shape it then generalises)."""
    _, dot, attr = name.partition(".")
    if not dot or attr not in _KERAS_STEPS or not getattr(function, "_reduce_retracing", False):
        return None
    return _KERAS_STEPS[attr]

"""Every call that traced, as it traced: ``tf.function``\\ s made anew from the same code, as families.

A ``tf.function`` defined in a loop, in a cell that runs again, or ``tf.function(f)`` written twice is a
new function object each time, each with no traces: TensorFlow traces every one of them once, and
nothing in the namespace shows it (the last one holds one trace).  A ``@tf.function`` method is a new
function per object.  TensorFlow itself counts the calls of every function made from one Python code
object together, for its "N out of the last N calls ... triggered tf.function retracing" warning, in
one manager (``polymorphic_function._frequent_tracing_detector_manager``).  :class:`TraceLog` takes that
manager's place while tfmagic is loaded: a subclass whose only new method is the one TensorFlow calls
when a call traced, so a call that does not trace runs exactly the code it ran before and pays nothing.
Once a ``jit_compile`` function has traced, the manager also notes the input shapes of calls that do not
trace (XLA compiles once per concrete shape, even for a generalised trace): a frame look-up per call,
which ``benchmarks/bench_retrace.py`` measures (no difference a benchmark sees).

Each traced call becomes a :class:`TraceEvent` (the function, weakly; its family; the object a method
is bound to, by type; its arguments' trace types and, while they are alive, what the objects among them
were), and each code object a :class:`Family`: how many functions it made and how many traces.
"""

from __future__ import annotations

import collections
import sys
import weakref
from dataclasses import dataclass, field
from typing import Any

from tfmagic.vocabulary import FRAMEWORK_FILE

#: How many traced calls the log keeps (the oldest go first).
MAX_EVENTS = 2000

#: How many families the log keeps (the least recently traced go first).
MAX_FAMILIES = 256

#: How many distinct input shapes the log keeps per jit_compile function (XLA's compiles are counted up to it).
MAX_SHAPES = 1000


@dataclass
class Family:
    """The ``tf.function``\\ s made from one Python code object.

    Attributes:
        name: the Python function's qualified name (``f``, ``Scaler.__call__``).
        filename, line: where its code is (a cell's ``<ipython-input-...>`` or a file).
        functions: how many distinct ``tf.function`` objects traced.
        traces: how many calls traced, over all of them.
        owners: for a method, the type names of the objects its functions were bound to.
        library: the code is TensorFlow's or Keras's own (Keras makes a train function per model).
    """

    name: str
    filename: str
    line: int
    functions: int = 0
    traces: int = 0
    owners: collections.Counter = field(default_factory=collections.Counter)
    library: bool = False
    _members: Any = field(default_factory=weakref.WeakSet, repr=False)


@dataclass
class TraceEvent:
    """One call that traced.

    Attributes:
        family: the family of the function that traced.
        function: the ``tf.function`` (a weak reference: the log keeps nothing alive).
        new_function: the first trace of this function object.
        owner: the type name of the object a method's function is bound to, or ``""``.
        signature: argument name -> trace type of the call (``None`` where TensorFlow cannot say).
        objects: argument name -> what a Python object passed there was (``Fruit(flavor=int32[2])``),
            written while the object was alive.
    """

    family: Family
    function: Any
    new_function: bool
    owner: str = ""
    signature: dict | None = None
    objects: dict = field(default_factory=dict)


class TraceLog:
    """Records every call of a ``tf.function`` that traced (see the module's docstring).

    Attributes:
        events: the traced calls, oldest first (at most :data:`MAX_EVENTS`).
        quiet: keep TensorFlow's "N out of the last N calls ... retracing" warning out (while tfmagic
            explains every retrace itself).
    """

    def __init__(self):
        self.events: collections.deque[TraceEvent] = collections.deque(maxlen=MAX_EVENTS)
        self.families: collections.OrderedDict[Any, Family] = collections.OrderedDict()
        self.quiet = False
        self.count = 0  # traced calls ever recorded (events' positions, for :meth:`since`)
        self._module = None
        self._original = None
        self._counting = None  # the manager's class that also counts shapes, once a jit_compile function traced
        self._shapes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # jit function -> {shapes: None}

    def install(self) -> None:
        """Take the place of TensorFlow's tracing-call manager (undone by :meth:`uninstall`)."""
        if self._module is not None:
            return
        from tensorflow.python.eager.polymorphic_function import polymorphic_function as module

        original = module._frequent_tracing_detector_manager
        log = self

        class _Manager(type(original)):
            __slots__ = ()

            def called_with_tracing(self, key, function_name, omit_warning):
                try:
                    log._record(key, sys._getframe(1))
                except Exception:  # never let the log break a user's call
                    pass
                super().called_with_tracing(key, function_name, omit_warning or log.quiet)

        class _CountingManager(_Manager):
            """Once a jit_compile function traced: every call's shapes, as XLA compiles once per shape."""

            __slots__ = ()

            def called_without_tracing(self, key):
                try:
                    log._record_shapes(sys._getframe(1))
                except Exception:  # never let the log break a user's call
                    pass
                super().called_without_tracing(key)

        manager = _Manager()
        self._counting = _CountingManager
        manager._detectors = original._detectors  # TensorFlow's counts go on
        module._frequent_tracing_detector_manager = manager
        self._module, self._original = module, original

    def uninstall(self) -> None:
        if self._module is None:
            return
        self._original._detectors = self._module._frequent_tracing_detector_manager._detectors
        self._module._frequent_tracing_detector_manager = self._original
        self._module = self._original = None

    def xla_shapes(self, function) -> list[tuple]:
        """The distinct input shapes a ``jit_compile`` function was called with, in order: XLA compiles it
        once for each (a generalised trace included)."""
        return list(self._shapes.get(function, {}))

    def _record_shapes(self, frame) -> None:
        function = frame.f_locals.get("self")
        if not getattr(function, "_jit_compile", False):
            return
        args = frame.f_locals.get("args", ())
        shapes = tuple((tuple(a.shape.as_list()), a.dtype.name) if hasattr(a, "shape") and hasattr(a, "dtype")
                       and a.shape.rank is not None else type(a).__name__ for a in args)
        seen = self._shapes.setdefault(function, {})
        if len(seen) < MAX_SHAPES:
            seen[shapes] = None

    def since(self, mark: int) -> list[TraceEvent]:
        """The events recorded after ``mark`` (a value of :attr:`count`)."""
        new = self.count - mark
        return list(self.events)[-new:] if new > 0 else []

    def _record(self, key, frame) -> None:
        function = frame.f_locals.get("self")
        if not hasattr(function, "experimental_get_tracing_count"):
            return
        if getattr(function, "_jit_compile", False) and self._module is not None:
            manager = self._module._frequent_tracing_detector_manager
            if type(manager) is not self._counting:  # from now on, calls that do not trace count shapes too
                manager.__class__ = self._counting
            self._record_shapes(frame)
        family = self.families.get(key)
        if family is None:
            family = self.families[key] = _family(key, function)
            while len(self.families) > MAX_FAMILIES:
                self.families.popitem(last=False)
        else:
            self.families.move_to_end(key)
        new_function = function not in family._members
        if new_function:
            family._members.add(function)
            family.functions += 1
        family.traces += 1
        owner = _owner_type(function)
        if owner and new_function:
            family.owners[owner] += 1
        args = frame.f_locals.get("args", ())
        kwargs = frame.f_locals.get("kwds") or {}
        signature = None
        objects = {}
        if not kwargs:
            from tfmagic.retracing import call_signature, describe_argument

            signature = call_signature(function, list(args))
            for (name, trace_type), value in zip((signature or {}).items(), args):
                if type(trace_type).__name__ == "Weakref":
                    objects[name] = describe_argument(value)
        self.events.append(TraceEvent(family, weakref.ref(function), new_function, owner, signature, objects))
        self.count += 1


def _family(key, function) -> Family:
    name = getattr(key, "co_qualname", None) or getattr(key, "co_name", None) or getattr(function, "__name__", "?")
    filename = getattr(key, "co_filename", "")
    library = bool(FRAMEWORK_FILE.search(filename))
    return Family(name, filename, getattr(key, "co_firstlineno", 0), library=library)


def _owner_type(function) -> str:
    """The type name of the object a method's ``tf.function`` is bound to (``""`` for a plain function)."""
    target = getattr(function, "_python_function", None)
    for _ in range(4):
        bound = getattr(target, "__self__", None)
        if bound is not None:
            owner = getattr(bound, "target", bound)  # TensorFlow's TfMethodTarget holds the object weakly
            return type(owner).__name__ if owner is not None else ""
        target = getattr(target, "__wrapped__", None)
        if target is None:
            break
    return ""

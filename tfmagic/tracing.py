"""Run a cell as a ``tf.function`` and keep what its traces were.

:func:`trace_cell` is the whole core of ``%%tfgraph`` without IPython::

    cells = CellCache()
    run = trace_cell("y = x * 2\\ny + 1", namespace, cache=cells)
    run.outputs      # {'y': <tf.Tensor ...>}  names to write back
    run.result       # the last expression's value
    run.trace        # the TraceRecord of the graph that ran (its FuncGraph)
    run.retraced     # True when this run traced a new graph for a cell seen before

What the cell reads from the namespace becomes the function's arguments:
tensors, NumPy arrays and Python scalars as values (so a new shape, dtype or
Python value is a retrace), and variables, layers, models and functions as
Python objects (so a new object is a retrace, never a stale graph).  Modules and
classes are looked up as globals.  Nothing is written to the namespace here: the
caller writes ``run.outputs`` back, so a failing cell changes nothing.
"""

from __future__ import annotations

import builtins
import collections
import types
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from tfmagic.cell import FUNCTION_NAME, RETURN_HELPER, CellCode, analyze_cell
from tfmagic import tracebacks

#: How many cells' functions a :class:`CellCache` keeps (the least recently run go first).
MAX_CACHED_CELLS = 64


@dataclass(frozen=True)
class FunctionOptions:
    """How the cell's ``tf.function`` is built (``--jit``, ``--reduce-retracing``, ``--no-autograph``)."""

    jit_compile: bool = False
    reduce_retracing: bool = False
    autograph: bool = True


@dataclass
class TraceRecord:
    """One trace of a cell: the graph TensorFlow built and the Python values it produced.

    Attributes:
        number: 1 for the cell's first trace, 2 for the next, ...
        graph: the ``FuncGraph`` of the trace.
        python_values: names the trace bound to plain Python values (not tensors);
            a ``tf.function`` computes these once, while tracing.
        python_result: the last expression's value when it is not a tensor.
    """

    number: int
    graph: Any
    python_values: dict[str, Any]
    python_result: Any
    result_is_tensor: bool


@dataclass
class CellRun:
    """The outcome of one run of a cell.

    Attributes:
        outputs: the names to write back, as eager tensors or the Python values of the trace.
        deleted: names the cell deleted (to remove from the namespace).
        result: the value of the cell's last expression (``None`` without one).
        has_result: whether the cell ends with an expression that should be displayed.
        trace: the trace whose graph ran.
        traced: whether this run traced (a first trace or a retrace).
        retraced: whether this run traced again a cell that had been traced before.
        trace_count: how many traces the cell's function holds now.
        function: the ``tf.function``.
        inputs: the names passed as arguments, in order.
    """

    outputs: dict[str, Any]
    deleted: tuple[str, ...]
    result: Any
    has_result: bool
    trace: TraceRecord
    traced: bool
    retraced: bool
    trace_count: int
    function: Any
    inputs: tuple[str, ...]


class CellFunction:
    """A cell's source turned into a ``tf.function``, reused while its inputs keep their kinds."""

    def __init__(self, code: CellCode, params: tuple[str, ...], global_values: dict[str, Any],
                 options: FunctionOptions, signature: tuple = ()):
        self.code = code
        self.signature = signature  # what must stay the same for this function to be reused
        self.params = params
        self.options = options
        self.traces: list[TraceRecord] = []
        self._by_graph: dict[int, TraceRecord] = {}
        self._pending: list[TraceRecord] = []
        namespace = dict(global_values)
        namespace["__builtins__"] = builtins
        namespace[RETURN_HELPER] = tf.autograph.experimental.do_not_convert(self._collect)
        namespace["__name__"] = "__tfmagic_cell__"
        source = code.register(params)
        exec(compile(source, code.filename, "exec", dont_inherit=True), namespace)
        python_function = namespace[FUNCTION_NAME]
        self.function = tf.function(
            python_function,
            jit_compile=options.jit_compile or None,
            reduce_retracing=options.reduce_retracing,
            autograph=options.autograph,
        )

    def _collect(self, local_values: dict, explicit: tuple, result: Any):
        """Called at the end of every trace, inside the graph: split tensors from Python values."""
        names = [n for n in self.code.definite if n not in self.params] + [
            n for n in self.params if n in self.code.assigned]
        values = dict(zip(names, explicit))
        for name in self.code.assigned:  # names bound only in a branch or loop, when AutoGraph kept them
            if name not in values and name in local_values and _is_defined(local_values[name]):
                values[name] = local_values[name]
        tensors, python = {}, {}
        for name, value in values.items():
            (tensors if _holds_tensors(value) else python)[name] = value
        result_is_tensor = _holds_tensors(result)
        record = TraceRecord(
            number=0,
            graph=tf.compat.v1.get_default_graph(),
            python_values=python,
            python_result=None if result_is_tensor else result,
            result_is_tensor=result_is_tensor,
        )
        self._pending.append(record)
        return tensors, (result if result_is_tensor else None)

    def run(self, namespace: dict) -> CellRun:
        """Call the function with the namespace's values; raise the cell's own exception on failure."""
        args = [namespace[name] for name in self.params]
        before = self.function.experimental_get_tracing_count()
        self._pending.clear()
        try:
            tensors, tensor_result = self.function(*args)
        except Exception as exc:  # the user's code failed: show it at the cell's lines
            self._pending.clear()
            raise tracebacks.for_cell(exc, self.code) from None
        traced = self.function.experimental_get_tracing_count() != before
        if traced:
            record = self._pending[-1]  # TensorFlow traces twice when a first call creates variables
            record.number = len(self.traces) + 1
            self.traces.append(record)
            self._by_graph[id(record.graph)] = record
            self._pending.clear()
        else:
            record = self._lookup(args)
        outputs = dict(record.python_values)
        outputs.update(tensors)
        result = tensor_result if record.result_is_tensor else record.python_result
        return CellRun(
            outputs=outputs,
            deleted=self.code.deleted,
            result=result,
            has_result=self.code.has_result and not self.code.quiet,
            trace=record,
            traced=traced,
            retraced=traced and record.number > 1,
            trace_count=len(self.traces),
            function=self.function,
            inputs=self.params,
        )

    def _lookup(self, args: list) -> TraceRecord:
        """The trace that a call with ``args`` ran (no tracing happens here)."""
        if len(self.traces) == 1:
            return self.traces[0]
        graph = self.function.get_concrete_function(*args).graph
        return self._by_graph.get(id(graph), self.traces[-1])

    def release(self) -> None:
        """Forget the traces and the registered source."""
        self.code.unregister()
        self.traces.clear()
        self._by_graph.clear()


class CellCache:
    """The cells' functions, keyed by source and options (or by ``-n NAME``), least recently used dropped first."""

    def __init__(self, max_cells: int = MAX_CACHED_CELLS):
        self.max_cells = max_cells
        self._cells: collections.OrderedDict[Any, CellFunction] = collections.OrderedDict()

    def get(self, key) -> CellFunction | None:
        cell = self._cells.get(key)
        if cell is not None:
            self._cells.move_to_end(key)
        return cell

    def put(self, key, cell: CellFunction) -> None:
        old = self._cells.pop(key, None)
        if old is not None and old is not cell:
            old.release()
        self._cells[key] = cell
        while len(self._cells) > self.max_cells:
            _, dropped = self._cells.popitem(last=False)
            dropped.release()

    def clear(self) -> None:
        for cell in self._cells.values():
            cell.release()
        self._cells.clear()

    def __len__(self) -> int:
        return len(self._cells)


def trace_cell(source: str, namespace: dict, *, cache: CellCache | None = None, name: str | None = None,
               options: FunctionOptions = FunctionOptions()) -> CellRun:
    """Run ``source`` as a ``tf.function`` over ``namespace`` (which is only read).

    Args:
        source: the cell's Python source.
        namespace: the notebook's namespace; the cell's inputs are read from it.
        cache: where the cell's function is kept between runs (reused when the
            source, options and the kinds of its inputs are unchanged).
        name: the cell's name (``-n NAME``): the cache key instead of the source.
        options: how to build the ``tf.function``.

    Returns:
        The :class:`CellRun`; write ``run.outputs`` back to apply the cell.

    Raises:
        SyntaxError: the cell does not compile.
        CellSourceError: the cell cannot become a function.
        Exception: whatever the cell's code raised, with a traceback of the cell's lines.
    """
    cell = prepare_cell(source, namespace, cache=cache, name=name, options=options)
    return cell.run(namespace)


def prepare_cell(source: str, namespace: dict, *, cache: CellCache | None = None, name: str | None = None,
                 options: FunctionOptions = FunctionOptions()) -> CellFunction:
    """The cell's :class:`CellFunction`: the cached one when it still fits, else a new one."""
    code = _analyze_cached(source, name or "")
    params, global_values = split_inputs(code.candidates, namespace)
    key = (name,) if name else (source,)
    signature = (source, options, params, tuple((k, id(v)) for k, v in global_values.items()))
    if cache is not None:
        cell = cache.get(key)
        if cell is not None and cell.signature == signature:
            return cell
    cell = CellFunction(code, params, global_values, options, signature)
    if cache is not None:
        cache.put(key, cell)
    return cell


_analysis_cache: collections.OrderedDict[tuple[str, str], CellCode] = collections.OrderedDict()


def _analyze_cached(source: str, tag: str) -> CellCode:
    key = (source, tag)
    code = _analysis_cache.get(key)
    if code is None:
        code = analyze_cell(source, tag)
        _analysis_cache[key] = code
        while len(_analysis_cache) > MAX_CACHED_CELLS:
            _analysis_cache.popitem(last=False)
    return code


def split_inputs(candidates: tuple[str, ...], namespace: dict) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which of the names a cell reads become arguments, and which globals.

    Modules, classes and builtin functions are globals; every other value found in
    the namespace is an argument.  Names not in the namespace are left to the
    builtins (or fail as a plain cell would, with a NameError).

    >>> import math
    >>> split_inputs(("math", "x", "print", "f"), {"math": math, "x": 1.0, "f": len})
    (('x',), {'math': <module 'math' (built-in)>, 'f': <built-in function len>})
    """
    params, global_values = [], {}
    for name in candidates:
        if name not in namespace:
            continue
        value = namespace[name]
        if isinstance(value, (types.ModuleType, type, types.BuiltinFunctionType)):
            global_values[name] = value
        else:
            params.append(name)
    return tuple(params), global_values


def _holds_tensors(value: Any) -> bool:
    """Whether a value a cell bound must leave the graph as a tensor (not a Python value)."""
    if isinstance(value, tf.Variable):
        return False  # the variable object itself is what the plain cell would bind
    if tf.is_tensor(value):
        return True
    if isinstance(value, (list, tuple, dict)):
        try:
            return any(tf.is_tensor(v) and not isinstance(v, tf.Variable) for v in tf.nest.flatten(value))
        except (TypeError, ValueError):
            return False
    return False


def _is_defined(value: Any) -> bool:
    """False for AutoGraph's placeholders of names a branch or loop did not bind."""
    return type(value).__name__ not in ("Undefined", "UndefinedReturnValue")


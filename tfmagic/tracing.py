"""Run a cell as a ``tf.function`` and keep what its traces were.

:func:`trace_cell` is the whole core of ``%%tfgraph`` without IPython::

    cells = CellCache()
    run = trace_cell("y = x * 2\\ny + 1", namespace, cache=cells)
    run.outputs      # {'y': <tf.Tensor ...>}  names to write back
    run.result       # the last expression's value
    run.trace        # the TraceRecord of the graph that ran (its FuncGraph)
    run.retraced     # True when this run traced a new graph for a cell seen before

What the cell reads from the namespace becomes the function's arguments when it
is a value (tensors, NumPy arrays, Python scalars: a new shape, dtype or Python
value is a retrace) and is captured when it is an object (variables, layers,
models, functions, modules: a new object builds the cell's function anew, so a
graph never runs with a stale capture); a cell that reads a ``tf.GradientTape`` captures the
tensors it reads (the tape recorded them).  Variables the cell creates are created once, eagerly,
on its first trace, and handed out again by creation order on later traces (a variable creator
scope); a re-run builds the function anew, so it makes new ones, as a plain re-run does.  Nothing
is written to the namespace here: the caller writes ``run.outputs`` back (and calls
``run.redefine_functions``), so a failing cell changes nothing.
"""

from __future__ import annotations

import collections
import collections.abc
import types
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import tensorflow as tf

from tfmagic import diagnostics, retracing, tracebacks
from tfmagic.cell import (BOUND_HELPER, FUNCTION_NAME, LINE_OFFSET, LOOP_HELPER, RETURN_HELPER, START_HELPER, CellCode,
                          analyze_cell)
from tfmagic.cellvars import CellVariables, EagerEffects
from tfmagic.collect import TraceCollector, TraceRecord
from tfmagic.errors import RetraceLimitError
from tfmagic.fixes import fixes_for
from tfmagic.inputs import MUTABLE, split_inputs
from tfmagic.leaving import (RESULT_KEY, check_reads, finish_keras2_models, join_mixed, not_written_back,
                             write_back_notes)
from tfmagic.naming import held_variables, holds_variables
from tfmagic.redefine import CELL_BUILTINS, CELL_MODULE, redefine
from tfmagic.requests import FunctionOptions
from tfmagic.vocabulary import VARIABLE_WRITES

#: How many cells' functions a :class:`CellCache` keeps (the least recently run go first).
MAX_CACHED_CELLS = 64

#: What a cell run under ``tf.config.run_functions_eagerly(True)`` says (one line).
EAGER_NOTE = ("tf.config.run_functions_eagerly(True) is on: the cell ran eagerly, as every tf.function now runs, "
              "so there is no graph to draw; tf.config.run_functions_eagerly(False) turns graphs back on")

#: How many traces a cell's ``tf.function`` keeps; a cell that would trace past this gets a new
#: function (its earlier traces are released, so a long session's memory stays bounded).
MAX_TRACES_PER_FUNCTION = 32

#: The notebook's own packages, which AutoGraph must call as they are: converted, IPython's
#: ``display.clear_output`` reached the kernel's socket with AutoGraph's FunctionScope ("not JSON serializable").
NOTEBOOK_PACKAGES = ("IPython", "ipykernel", "ipywidgets", "comm", "zmq", "traitlets", "jupyter_client")


def _call_notebook_code_as_is() -> None:
    """Add :data:`NOTEBOOK_PACKAGES` to AutoGraph's rules of modules it does not convert (as it leaves matplotlib,
    pandas and Keras); the rules are read on every call (``autograph/impl/conversion.py``)."""
    from tensorflow.python.autograph.core import config

    known = {getattr(rule, "_prefix", None) for rule in config.CONVERSION_RULES}
    config.CONVERSION_RULES = tuple(config.CONVERSION_RULES) + tuple(
        config.DoNotConvert(name) for name in NOTEBOOK_PACKAGES if name not in known)


_call_notebook_code_as_is()


@dataclass
class CellRun:
    """The outcome of one run of a cell.

    Attributes:
        outputs: the names to write back, as eager tensors or the Python values of the trace.
        deleted: names the cell deleted (to remove from the namespace).
        result: the value of the cell's last expression (``None`` without one).
        has_result: whether the cell ends with an expression that should be displayed.
        traced: whether this run traced (a first trace or a retrace).
        retraced: whether this run retraced a cell that had been traced before.
        trace_count: how many times the cell has traced (across rebuilds of its function).
        function: the ``tf.function``.
        inputs: the names passed as arguments, in order.
        arguments: the values passed, in order (what a profile, a memory measurement or XLA calls the function
            with again: :meth:`call`).
        function_code: the cell's analysis (``cell.CellCode``), which its functions are defined again from.
        findings: trace-time pitfalls, when this run traced.
        functions: functions the cell defined that read its names: call ``redefine(namespace)`` on each
            once ``outputs`` are written back, to have them read the notebook's names as a plain cell's do.
        eager: why the cell ran eagerly, with no graph (``tf.config.run_functions_eagerly(True)`` is on);
            empty when it ran as a graph.  An eager run has no trace: ``trace`` is ``None``.
        not_written: what a plain cell binds that this run could not write back (``leaving.not_written_back``):
            the names to bind to stand-ins (``leaving.stand_ins``).
        cell: the ``CellFunction`` that ran (its traces, for a diff or the explorer).
        record: the trace that ran, where this run traced or had to look it up (else ``None``: :attr:`trace`
            looks it up on first use, by ``find_trace``).
        find_trace: gives the trace that ran, where ``record`` is ``None``.
        redefined: the cell's functions and classes already defined again over the notebook (by name).
    """

    outputs: dict[str, Any]
    deleted: tuple[str, ...]
    result: Any
    has_result: bool
    traced: bool
    retraced: bool
    trace_count: int
    function: Any
    inputs: tuple[str, ...]
    arguments: tuple = ()
    function_code: Any = None
    findings: list = field(default_factory=list)
    functions: dict[str, Any] = field(default_factory=dict)
    eager: str = ""
    not_written: list = field(default_factory=list)
    cell: Any = None
    record: TraceRecord | None = None
    find_trace: Any = None
    redefined: dict = field(default_factory=dict)

    def call(self):
        """Call the function again with the run's arguments (a profile's, a memory measurement's call)."""
        return self.function(*self.arguments)

    def redefine_functions(self, namespace: dict) -> None:
        """Define the cell's functions and classes again over ``namespace`` (after the outputs are written back).

        What the cell defines is then the user's own code, as a plain cell's is (not AutoGraph's converted copy,
        which reads the trace's values); the cell's instances of its classes become instances of the new class.
        """
        for name, (traced, node) in self.functions.items():
            if namespace.get(name) is not traced:
                continue
            new = self.redefined.get(name)  # a re-run that reused the trace: the same definitions again
            if new is None:
                new = self.redefined[name] = redefine(traced, node, self.function_code, namespace)
            namespace[name] = new
            if isinstance(traced, type) and new is not traced:
                for key, value in self.outputs.items():
                    if type(value) is traced and namespace.get(key) is value:
                        try:
                            object.__setattr__(value, "__class__", new)
                        except TypeError:  # a layout the new class cannot take: it stays the traced class's
                            pass

    @property
    def trace(self) -> TraceRecord:
        """The trace whose graph ran (looked up on first use when the run did not trace)."""
        if self.record is None:
            self.record = self.find_trace()
        return self.record


class CellSignature(NamedTuple):
    """What must stay the same for a cached cell's function to be reused (else it is built anew, and the first trace
    of the new one says which part changed).

    Attributes:
        source: the cell's source.
        options: how the function is built.
        params: the names passed as arguments, in order.
        captured: ``(name, id)`` of each captured object (a new object is a new function: no stale capture).
        forced: names AutoGraph must treat as Python loop variables.
    """

    source: str = ""
    options: FunctionOptions = FunctionOptions()
    params: tuple[str, ...] = ()
    captured: tuple[tuple[str, int], ...] = ()
    forced: tuple[str, ...] = ()


class CellFunction:
    """A cell's source turned into a ``tf.function``, reused while its inputs keep their kinds."""

    def __init__(self, code: CellCode, params: tuple[str, ...], global_values: dict[str, Any],
                 options: FunctionOptions, signature: CellSignature = CellSignature(),
                 previous: CellFunction | None = None, forced: tuple[str, ...] = ()):
        self.code = code
        self.signature = signature
        self.params = params
        self.options = options
        self.captured = {k: retracing.describe_object(v) for k, v in global_values.items()}
        self._variables = {k: v for k, v in global_values.items() if isinstance(v, tf.Variable)}
        self.variables = CellVariables(self._variables.values(), [
            v for v in global_values.values() if holds_variables(v)])
        self._globals = global_values
        # A rebuilt cell (a new captured object, new code under -n NAME) goes on counting its traces.
        self.first_number = previous.trace_count if previous is not None else 0
        self.rebuild_changes = _rebuild_changes(previous, self) if previous is not None else []
        self._previous_graph = previous.traces[-1].graph if previous is not None and previous.traces else None
        self.traces: list[TraceRecord] = []  # the traces that ran, in order
        self._same_python_values = True  # every trace bound the same Python values
        self._code_findings: list | None = None
        # captured names the cell binds are the function's globals (it reads, changes and rebinds them)
        self.global_names = tuple(n for n in dict.fromkeys(code.assigned + code.deleted) if n in global_values)
        self.forced = forced if options.autograph else ()
        namespace = dict(global_values)
        self._namespace = namespace
        self.collector = TraceCollector(code, params, self.forced, global_values, namespace, self.variables,
                                        self.global_names)
        namespace["__builtins__"] = CELL_BUILTINS  # classes the cell defines are AutoGraph's own (see _build_class)
        namespace["__name__"] = CELL_MODULE
        for helper, method in ((START_HELPER, self.collector.start), (RETURN_HELPER, self.collector.collect),
                               (LOOP_HELPER, self.collector.loop), (BOUND_HELPER, self.collector.bound)):
            namespace[helper] = tf.autograph.experimental.do_not_convert(method)
        source = code.register(params, self.global_names, self.forced)
        exec(compile(source, code.filename, "exec", dont_inherit=True), namespace)
        self.function = tf.function(namespace[FUNCTION_NAME], jit_compile=options.jit_compile or None,
                                    reduce_retracing=options.reduce_retracing, autograph=options.autograph)
        # TensorFlow's "N out of the last N calls to <function _tfgraph_cell>" would name tfmagic's internal function;
        # the cell's own notes say why it retraced (the attribute is read in __call__, TF 2.15 to 2.21)
        self.function._omit_frequent_tracing_warning = True

    def concrete_function(self, args, function=None):
        """The cell traced for ``args`` without running it, its variables made as :meth:`run` makes them (once,
        eagerly: the graph of a cell that creates a ``tf.Variable`` can then be analysed, as ``%%tape`` does).
        ``function``: a ``tf.function`` that calls the cell's Python function (``%%tape``'s, with gradients)."""
        effects = EagerEffects(self.code)
        self.variables.restart(effects)
        self.collector.restart(effects)
        try:  # a trace installs the op callback (TraceCollector.start)
            with self.variables.scope():
                return (function or self.function).get_concrete_function(*args)
        finally:
            self.collector.stop()

    @property
    def trace_count(self) -> int:
        """How many times the cell has traced, its earlier functions' traces included."""
        return self.first_number + len(self.traces)

    def run(self, namespace: dict, max_traces: int | None = None) -> CellRun:
        """Call the function with the namespace's values; raise the cell's own exception on failure.

        Args:
            namespace: where the inputs are read.
            max_traces: fail (with the reason) instead of tracing the cell more than this many times.
        """
        args = [namespace[name] for name in self.params]
        for name in self.global_names:  # a trace reads the captured objects, not what an earlier trace rebound
            self._namespace[name] = self._globals[name]
        if max_traces is not None and self.trace_count >= max_traces:
            self._check_trace_limit(args, max_traces)
        before = self.function.experimental_get_tracing_count()
        tensors, tensor_result = self._call(args, namespace)
        traced = self.function.experimental_get_tracing_count() != before
        record, model, eager = self._which_trace(args, traced)
        _put_back_slots(model, tensors, self._globals)
        outputs, tensor_result = _outputs(model, tensors, tensor_result)
        if traced:
            finish_keras2_models([*outputs.values(), model.python_result])
        return CellRun(
            cell=self,
            outputs=outputs,
            deleted=self.code.deleted,
            result=tensor_result if model.result_is_tensor else model.python_result,
            has_result=self.code.has_result and not self.code.quiet,
            traced=traced,
            retraced=traced and record.number > 1,
            trace_count=self.trace_count,
            function=self.function,
            function_code=self.code,
            inputs=self.params,
            arguments=tuple(args),
            findings=record.findings if traced else [],
            record=record,
            find_trace=(lambda: None if eager else self.trace_for(args)) if record is None else None,
            functions={name: (outputs[name], node) for name, (_, node) in model.functions.items()},
            eager=EAGER_NOTE if eager else "",
            redefined=model.redefined,
            not_written=_not_written(model, self.code),
        )

    def _call(self, args: list, namespace: dict) -> tuple[dict, Any]:
        """Call the function (tracing it if it must): ``(tensors by name, the result's tensors)``; on failure, raise
        the cell's own error at its lines, with what tracing did that stays (``_failed``)."""
        effects = EagerEffects(self.code)
        self.variables.restart(effects)
        self.collector.restart(effects)  # a trace installs the op callback (TraceCollector.start)
        tapes = {k: v for k, v in self._globals.items() if isinstance(v, tf.GradientTape) and v._tape is not None}
        created_before = len(self.variables.created)
        try:
            with self.variables.scope():  # the traces' graphs inherit it
                return self.function(*args)
        except Exception as exc:  # the user's code failed: show it at the cell's lines
            raise self._failed(exc, args, namespace, tapes, created_before, effects.graph) from None
        finally:  # a trace that failed or was interrupted removes its op callback here (collect did, else)
            self.collector.stop()

    def _failed(self, exc: Exception, args: list, namespace: dict, tapes: dict, created_before: int, graph):
        """The cell's error at its lines (``tracebacks.for_cell``), with notes on what tracing did that stays: a
        tape asked for gradients, variables built; ``graph`` is the failed trace's, as far as it got."""
        assigned = self._assigned_variables(args) if isinstance(exc, tf.errors.OpError) else []
        self.collector.pending.clear()
        notes = [f.text for f in self.code_findings() if f.kind == "try_except"
                 or (f.kind == "match" and self.options.autograph)]
        notes += [f"the cell asked {name} for gradients before it failed, and a tape that is not persistent gives "
                  f"them once: {name} cannot give them again (TensorFlow cannot undo that); record it again (run "
                  "the cell that recorded it), with tf.GradientTape(persistent=True) to ask it more than once"
                  for name, tape in tapes.items() if tape._tape is None]
        built = _holders(namespace, self.variables.created[created_before:])
        if built:
            names = " and ".join([", ".join(built[:-1]), built[-1]] if len(built) > 1 else built)
            notes.append(f"tracing built {names} before the cell failed: the variables it made (at their initial "
                         "values) stay, as TensorFlow cannot undo that; every name is as it was")
        notes += [f.text for f in diagnostics.find_mismatched_calls(graph, self.code)] if graph is not None else []
        return tracebacks.for_cell(exc, self.code, namespace, assigned=assigned, notes=notes,
                                   autograph=self.options.autograph)

    def _which_trace(self, args: list, traced: bool) -> tuple[TraceRecord | None, TraceRecord, bool]:
        """``(the trace that ran, or None where any trace serves; the trace whose Python values the run takes;
        whether it ran eagerly)``; a new trace is explained and kept."""
        pending = self.collector.pending
        eager = not traced and bool(pending) and tf.config.functions_run_eagerly()
        if eager:  # tf.config.run_functions_eagerly(True): the Python function ran, as a plain cell runs
            model = pending[-1]
            pending.clear()
            return None, model, True
        if traced:
            record = pending[-1]  # TensorFlow traces twice when a first call creates variables
            pending.clear()
            self._explain(record, args)
            self.traces.append(record)
            self._same_python_values = (self._same_python_values and not record.mixed
                                        and _same_python(self.traces[0], record))
        elif len(self.traces) == 1 or self._same_python_values:
            record = None  # any trace gives the same Python values; which one ran is looked up if needed
        else:
            record = self.trace_for(args)
        return record, record or self.traces[-1], False

    def _assigned_variables(self, args: list) -> list[str]:
        """The captured variables the cell's graph assigns (they may have changed before a failure)."""
        graphs = [r.graph for r in self.collector.pending]
        if not graphs:
            try:
                graphs = [self.trace_for(args).graph] if self.traces else []
            except Exception:  # no trace to look at: nothing to name
                graphs = []
        return _assigned_in(graphs, {id(v.handle): name for name, v in self._variables.items()})

    def _explain(self, record: TraceRecord, args: list) -> None:
        """Fill in a new trace's number, signature, reason, graph changes and pitfalls."""
        record.number = self.trace_count + 1
        record.signature = retracing.signature_of(self.function.get_concrete_function(*args))
        earlier_graph = self._previous_graph
        if self.traces:
            changes, fixes, nearest = retracing.explain(
                record.signature, [t.signature for t in self.traces], self.options.reduce_retracing)
            record.changes, record.fixes = changes, fixes
            record.nearest = self.traces[nearest].number
            earlier_graph = self.traces[nearest].graph
        elif self.rebuild_changes:
            record.changes = self.rebuild_changes
            record.fixes = fixes_for([c for c in self.rebuild_changes if c is not _VARIABLES_CHANGE])
            if _VARIABLES_CHANGE in self.rebuild_changes:
                record.fixes.append(_VARIABLES_FIX)
            record.nearest = self.first_number or None
        if earlier_graph is not None:
            record.diff = retracing.graph_diff(earlier_graph, record.graph)
        code = self.code
        record.findings = [f for f in self.code_findings() if self.options.autograph or f.kind != "match"]
        record.findings += diagnostics.find_in_graph(diagnostics.TracedCode(code.source, record.graph, code.filename,
                                                                            LINE_OFFSET, code.tree))
        record.findings += write_back_notes(record, self.code)
        if not self.variables.created:  # a cell creating variables traces on every run: init_scope code runs each time
            record.findings += self.variables.effects.findings()
        record.findings.sort(key=lambda f: f.line or 0)

    def code_findings(self) -> list:
        """Trace-time pitfalls visible in the cell's source (computed once)."""
        if self._code_findings is None:
            self._code_findings = diagnostics.find_source_pitfalls(
                self.code.source, local_names=frozenset(self.code.assigned) - set(self.code.candidates),
                in_place=frozenset(n for n in self.global_names if isinstance(self._globals[n], MUTABLE)),
                tree=self.code.tree)
        return self._code_findings

    def _check_trace_limit(self, args: list, max_traces: int) -> None:
        """Raise :class:`RetraceLimitError` when calling with ``args`` would trace once more."""
        if self.traces:
            signature = retracing.call_signature(self.function, args)
            if signature is None or not retracing.would_trace(self.function, args):
                return
            changes, fixes, _ = retracing.explain(signature, [t.signature for t in self.traces],
                                                  self.options.reduce_retracing)
        else:
            changes, fixes = self.rebuild_changes, fixes_for(self.rebuild_changes)
        reason = "; ".join(c.text for c in changes) or "a new input signature"
        raise RetraceLimitError(
            f"--max-traces {max_traces}: this run would trace the cell a {_ordinal(self.trace_count + 1)} time "
            f"({reason})" + "".join(f"\n  fix: {f}" for f in fixes))

    def trace_for(self, args: list) -> TraceRecord:
        """The trace that a call with ``args`` runs (a look-up: nothing is traced)."""
        if len(self.traces) == 1:
            return self.traces[0]
        graph = self.function.get_concrete_function(*args).graph
        for record in self.traces:
            if record.graph is graph:
                return record
        return self.traces[-1]

    def release(self) -> None:
        """Forget the traces and the registered source."""
        self.code.unregister()
        self.traces.clear()


class CellCache:
    """The cells' functions, keyed by source and options (or by ``-n NAME``), least recently used dropped first."""

    def __init__(self, max_cells: int = MAX_CACHED_CELLS):
        self.max_cells = max_cells
        self._cells: collections.OrderedDict[Any, CellFunction] = collections.OrderedDict()
        self._codes: collections.OrderedDict[tuple[str, str], CellCode] = collections.OrderedDict()

    def analyze(self, source: str, tag: str) -> CellCode:
        """The cell's analysis, made once per source."""
        key = (source, tag)
        code = self._codes.get(key)
        if code is None:
            code = analyze_cell(source, tag)
            self._codes[key] = code
            while len(self._codes) > self.max_cells:
                self._codes.popitem(last=False)
        return code

    def cells(self) -> list[tuple[Any, CellFunction]]:
        """The cached cells, least recently run first."""
        return list(self._cells.items())

    def get(self, key) -> CellFunction | None:
        cell = self._cells.get(key)
        if cell is not None:
            self._cells.move_to_end(key)
        return cell

    def put(self, key, cell: CellFunction) -> None:
        old = self._cells.pop(key, None)
        if old is not None and old is not cell:
            old.release()
            cell.code.register(cell.params, cell.global_names, cell.forced)  # the same cell's source: keep it
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
               options: FunctionOptions = FunctionOptions(), max_traces: int | None = None) -> CellRun:
    """Run ``source`` as a ``tf.function`` over ``namespace`` (which is only read).

    Args:
        source: the cell's Python source.
        namespace: the notebook's namespace; the cell's inputs are read from it.
        cache: where the cell's function is kept between runs (reused when the
            source, options and the kinds of its inputs are unchanged).
        name: the cell's name (``-n NAME``): the cache key instead of the source.
        options: how to build the ``tf.function``.
        max_traces: fail instead of tracing the cell more than this many times.

    Returns:
        The :class:`CellRun`; write ``run.outputs`` back to apply the cell.

    Raises:
        SyntaxError: the cell does not compile.
        CellSourceError: the cell cannot become a function.
        RetraceLimitError: the run would trace more than ``max_traces`` times.
        Exception: whatever the cell's code raised, with a traceback of the cell's lines.
    """
    cell = prepare_cell(source, namespace, cache=cache, name=name, options=options)
    return cell.run(namespace, max_traces)


def prepare_cell(source: str, namespace: dict, *, cache: CellCache | None = None, name: str | None = None,
                 options: FunctionOptions = FunctionOptions()) -> CellFunction:
    """The cell's :class:`CellFunction`: the cached one when it still fits, else a new one."""
    code = cache.analyze(source, name or "") if cache is not None else analyze_cell(source, name or "")
    params, global_values = split_inputs(code.candidates, namespace, code.mutated)
    forced = code.python_loop_names({**namespace, **{n: None for n in code.assigned if n not in namespace}})
    check_reads(code, global_values)  # a name an earlier cell could not write back: said at the line reading it
    key = (name,) if name else (source,)
    signature = CellSignature(source, options, params, tuple((k, id(v)) for k, v in global_values.items()), forced)
    previous = None
    if cache is not None:
        previous = cache.get(key)
        if previous is not None and previous.signature == signature and not previous.variables.made_anew():
            if len(previous.traces) < MAX_TRACES_PER_FUNCTION or not retracing.would_trace(
                    previous.function, [namespace[p] for p in params]):
                return previous
    cell = CellFunction(code, params, global_values, options, signature, previous, forced)
    if cache is not None:
        cache.put(key, cell)
    return cell


def _rebuild_changes(old: CellFunction, new: CellFunction) -> list:
    """Why a cell's function was built anew: new captured objects, new inputs, new code or options."""
    changes = []
    old_ids, new_ids = dict(old.signature.captured), dict(new.signature.captured)
    for name, text in new.captured.items():
        if name in old_ids and old_ids[name] != new_ids.get(name):
            changes.append(retracing.ArgChange(name, "captured", old.captured[name], text))
    for name in new.params:
        if name not in old.params:
            changes.append(retracing.ArgChange(name, "new", "", "an input"))
    if old.code.source != new.code.source:
        changes.append(retracing.ArgChange("the cell", "code", "", "its code changed"))
    if old.options != new.options:
        changes.append(retracing.ArgChange("the cell", "options", "", "its options changed"))
    if old.variables.made_anew():  # a plain cell's re-run makes new variables: so does a new function
        changes.append(_VARIABLES_CHANGE)
    elif old.signature == new.signature:
        changes.append(retracing.ArgChange(
            "the cell", "cap", "", f"it held {len(old.traces)} traces, the most tfmagic keeps: its tf.function "
            "was built anew and the earlier traces released"))
    return changes


#: Why a cell that creates variables traces on each run.
_VARIABLES_CHANGE = retracing.ArgChange(
    "the cell", "code", "", "it creates variables, and each run makes new ones (as a plain cell's run does), so "
    "it traces on each run")
_VARIABLES_FIX = ("to reuse one graph, create the variables (layers, optimizers, modules) in a plain cell and use "
                  "them here")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _holders(namespace: dict, variables: list) -> list[str]:
    """The notebook's names of the layers, models, optimizers and modules that hold any of ``variables``."""
    made = {id(v) for v in variables}
    out = []
    for name, obj in list(namespace.items()) if made else ():
        if not name.startswith("_") and not isinstance(obj, types.ModuleType) \
                and any(id(v) in made for v in held_variables(obj)):
            out.append(name)
    return out


def _put_back_slots(model: TraceRecord, tensors: dict, captured: dict) -> None:
    """The eager values where the trace put tensors into captured containers and objects."""
    for label, (name, kind, key) in model.slots:
        value = tensors.get(label)
        if value is None:
            continue
        try:
            if kind == "attr":
                setattr(captured[name], key, value)
            else:
                captured[name][key] = value
        except (LookupError, TypeError, AttributeError):  # the container changed since: leave it
            pass


def _assigned_in(graphs: list, by_handle: dict[int, str]) -> list[str]:
    """The notebook's names (``by_handle``: id of a variable's handle -> name) of the variables ``graphs`` write."""
    names: dict[str, None] = {}
    for graph in graphs:
        inner = {internal.op.name: by_handle.get(id(external)) for external, internal in graph.captures}
        for op in graph.get_operations():
            if op.type.startswith(VARIABLE_WRITES) and op.inputs:
                name = inner.get(op.inputs[0].op.name)
                if name:
                    names[name] = None
    return list(names)


def _not_written(record: TraceRecord, code: CellCode) -> list:
    """What a plain cell binds that the trace does not write back (``leaving.not_written_back``), found once per
    trace."""
    if record.not_written is None:
        record.not_written = not_written_back(record, code)
    return record.not_written


def _outputs(model: TraceRecord, tensors: dict, result: Any) -> tuple[dict[str, Any], Any]:
    """The names to write back (the trace's Python values, and the tensors that left the graph, rebuilt where the
    trace says: a container of tensors and Python values, a ``tf.TensorArray``) and the result."""
    outputs = dict(model.python_values)
    outputs.update((k, v) for k, v in tensors.items() if k.isidentifier())  # not the slots' labels
    for name, template in model.mixed.items():
        if name == RESULT_KEY:
            result = join_mixed(template, result)
        else:
            outputs[name] = join_mixed(template, outputs[name])
    for name, rebuild in model.rebuild.items():
        if name == RESULT_KEY:
            result = rebuild(result)
        else:
            outputs[name] = rebuild(outputs[name])
    return outputs, result


def _same_python(a: TraceRecord, b: TraceRecord) -> bool:
    """Whether two traces bound the same Python values (so either serves a call's write-back)."""
    if a.result_is_tensor != b.result_is_tensor or a.python_values.keys() != b.python_values.keys():
        return False
    pairs = [(a.python_result, b.python_result)] + [(a.python_values[k], b.python_values[k]) for k in a.python_values]
    try:
        return all(x is y or (type(x) is type(y) and isinstance(x, (int, float, str, bool, bytes)) and x == y)
                   for x, y in pairs)
    except Exception:  # values that do not compare: assume they differ
        return False

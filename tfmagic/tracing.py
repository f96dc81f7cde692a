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

import ast
import collections
import collections.abc
import types
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from tfmagic import diagnostics, retracing, tracebacks
from tfmagic.cell import (BOUND_HELPER, FUNCTION_NAME, LINE_OFFSET, LOOP_HELPER, RETURN_HELPER, CellCode, analyze_cell,
                          assigned_names, cell_graph)
from tfmagic.cellvars import CellVariables, EagerEffects
from tfmagic.errors import RetraceLimitError, UnrolledLoopError
from tfmagic.fixes import fixes_for
from tfmagic.inputs import MUTABLE, split_inputs
from tfmagic.leaving import (RESULT_KEY, SYMBOLIC_TEXT, check_reads, finish_keras2_models, is_defined, join_mixed,
                             not_written_back, place, write_back_notes)
from tfmagic.naming import held_variables, holds_variables
from tfmagic.quiet import graph_only_deprecations
from tfmagic.redefine import CELL_BUILTINS, CELL_MODULE, redefine

#: How many cells' functions a :class:`CellCache` keeps (the least recently run go first).
MAX_CACHED_CELLS = 64

#: What a cell run under ``tf.config.run_functions_eagerly(True)`` says (one line).
EAGER_NOTE = ("tf.config.run_functions_eagerly(True) is on: the cell ran eagerly, as every tf.function now runs, "
              "so there is no graph to draw; tf.config.run_functions_eagerly(False) turns graphs back on")

#: How many traces a cell's ``tf.function`` keeps; a cell that would trace past this gets a new
#: function (its earlier traces are released, so a long session's memory stays bounded).
MAX_TRACES_PER_FUNCTION = 32

#: Ops the cell's Python loops (run while tracing) may put into its graph before the trace stops with the reason.
MAX_UNROLLED_OPS = 50_000

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


@dataclass(frozen=True)
class FunctionOptions:
    """How the cell's ``tf.function`` is built (``--jit``, ``--reduce-retracing``, ``--no-autograph``)."""

    jit_compile: bool = False
    reduce_retracing: bool = False
    autograph: bool = True


@dataclass(kw_only=True)
class TraceRecord(retracing.Trace):
    """One trace of a cell: a :class:`retracing.Trace` (number, signature, changes, fixes, nearest, reason) with
    the graph TensorFlow built and the Python values it produced.

    Attributes:
        graph: the ``FuncGraph`` of the trace.
        python_values: names the trace bound to plain Python values (not tensors);
            a ``tf.function`` computes these once, while tracing.
        python_result: the last expression's value when it is not a tensor.
        result_is_tensor: whether the last expression's value leaves the graph as a tensor.
        diff: what changed in the graph against that trace (``tracediff.GraphDiff``).
        findings: trace-time pitfalls this trace ran into (``diagnostics.Finding``).
        mixed: containers holding tensors and Python values: how to rebuild them around their tensors.
        rebuild: names (and the result) that leave the graph as tensors and are rebuilt eagerly
            (a ``tf.TensorArray`` from its contents): name -> function of the returned tensors.
        functions: functions the cell defined that read its names: name -> how to define them again
            over the notebook's namespace (inside the graph they read the trace's values).
        dropped: names (and the result) that cannot leave the graph: name -> why (not written back).
        slots: places in captured containers and objects where the cell put graph tensors
            (``seen.append(y)``, ``cfg['k'] = y``, ``obj.t = y``): they leave the graph and go back in there.
        texts: names bound to text that shows a symbolic tensor (``f"{y}"`` while tracing).
        kept_inside: names a graph loop binds that AutoGraph kept inside the graph (not written back).
        python_loop_kept: names the body of a Python loop binds that AutoGraph did not keep (not written back).
        graph_kept: names bound only inside a graph branch or loop (an ``if`` or loop on a tensor) that AutoGraph
            kept inside the graph (not written back), the top-level loops' ``kept_inside`` aside.
        branch_variables: ``(name, line)`` for each name a graph branch or loop body bound to a variable (at the
            line), written back as a tensor (a tf.cond's or while loop's output is the variable's value).
    """

    graph: Any
    python_values: dict[str, Any]
    python_result: Any
    result_is_tensor: bool
    diff: Any = None
    findings: list = field(default_factory=list)
    mixed: dict[str, Any] = field(default_factory=dict)
    rebuild: dict[Any, Any] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)
    dropped: dict[Any, str] = field(default_factory=dict)
    slots: list = field(default_factory=list)
    texts: list = field(default_factory=list)
    kept_inside: list = field(default_factory=list)
    python_loop_kept: list = field(default_factory=list)
    graph_kept: list = field(default_factory=list)
    branch_variables: list = field(default_factory=list)
    redefined: dict = field(default_factory=dict)  # name -> the user's own function or class, once defined


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
        findings: trace-time pitfalls, when this run traced.
        functions: functions the cell defined that read its names: call ``redefine(namespace)`` on each
            once ``outputs`` are written back, to have them read the notebook's names as a plain cell's do.
        eager: why the cell ran eagerly, with no graph (``tf.config.run_functions_eagerly(True)`` is on);
            empty when it ran as a graph.  An eager run has no trace: ``trace`` is ``None``.
        not_written: what a plain cell binds that this run could not write back (``leaving.not_written_back``):
            the names to bind to stand-ins (``leaving.stand_ins``).
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
    function_code: Any = None
    findings: list = field(default_factory=list)
    _trace: TraceRecord | None = None
    _find_trace: Any = None
    functions: dict[str, Any] = field(default_factory=dict)
    eager: str = ""
    _redefined: dict = field(default_factory=dict)
    not_written: list = field(default_factory=list)
    cell: Any = None  # the CellFunction that ran (its traces, for a diff or the explorer)

    def redefine_functions(self, namespace: dict) -> None:
        """Define the cell's functions and classes again over ``namespace`` (after the outputs are written back).

        What the cell defines is then the user's own code, as a plain cell's is (not AutoGraph's converted copy,
        which reads the trace's values); the cell's instances of its classes become instances of the new class.
        """
        for name, (traced, node) in self.functions.items():
            if namespace.get(name) is not traced:
                continue
            new = self._redefined.get(name)  # a re-run that reused the trace: the same definitions again
            if new is None:
                new = self._redefined[name] = redefine(traced, node, self.function_code, namespace)
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
        if self._trace is None:
            self._trace = self._find_trace()
        return self._trace


class CellFunction:
    """A cell's source turned into a ``tf.function``, reused while its inputs keep their kinds."""

    def __init__(self, code: CellCode, params: tuple[str, ...], global_values: dict[str, Any],
                 options: FunctionOptions, signature: tuple = (), previous: CellFunction | None = None,
                 forced: tuple[str, ...] = ()):
        self.code = code
        self.signature = signature  # what must stay the same for this function to be reused
        self.params = params
        self.options = options
        self.captured = {k: retracing.describe_object(v) for k, v in global_values.items()}
        self._variables = {k: v for k, v in global_values.items() if isinstance(v, tf.Variable)}
        self.variables = CellVariables(self._variables.values(), [
            v for v in global_values.values() if holds_variables(v)])
        self._globals = global_values
        self._attributes = _attribute_targets(code.tree)  # obj.t = ... on a captured object
        self._changed_globals = [n for n in global_values if n in code.mutated or n in self._attributes]
        # A rebuilt cell (a new captured object, new code under -n NAME) goes on counting its traces.
        self.first_number = previous.trace_count if previous is not None else 0
        self.rebuild_changes = _rebuild_changes(previous, self) if previous is not None else []
        self._previous_graph = previous.traces[-1].graph if previous is not None and previous.traces else None
        self.traces: list[TraceRecord] = []  # the traces that ran, in order
        self._pending: list[TraceRecord] = []  # traces made during the current call
        self._same_python_values = True  # every trace bound the same Python values
        self._code_findings: list | None = None
        namespace = dict(global_values)
        namespace["__builtins__"] = CELL_BUILTINS  # classes the cell defines are AutoGraph's own (see _build_class)
        namespace[RETURN_HELPER] = tf.autograph.experimental.do_not_convert(self._collect)
        namespace[LOOP_HELPER] = tf.autograph.experimental.do_not_convert(self._loop)
        namespace[BOUND_HELPER] = tf.autograph.experimental.do_not_convert(self._bound)
        # (an except clause's name is unbound at the clause's end, as Python does)
        self._assigned = frozenset(code.assigned) - {node.name for node in ast.walk(code.tree)
                                                      if isinstance(node, ast.ExceptHandler)}
        self._bindings: list[tuple[Any, int, dict]] = []  # (graph, line, names) branches and loop bodies bound
        self._graph_start: dict[Any, int] = {}  # each graph's version when the trace's loops first reported in it
        self._loops: dict[int, Any] = {}  # loop line -> _GRAPH_LOOP, or (its last item,) / () for a Python loop
        namespace["__name__"] = CELL_MODULE
        # captured names the cell binds are the function's globals (it reads, changes and rebinds them)
        self.global_names = tuple(n for n in dict.fromkeys(code.assigned + code.deleted) if n in global_values)
        self.forced = forced if options.autograph else ()
        self._namespace = namespace
        source = code.register(params, self.global_names, self.forced)
        exec(compile(source, code.filename, "exec", dont_inherit=True), namespace)
        python_function = namespace[FUNCTION_NAME]
        self.function = tf.function(
            python_function,
            jit_compile=options.jit_compile or None,
            reduce_retracing=options.reduce_retracing,
            autograph=options.autograph,
        )

    def _collect(self, local_values: dict | None, explicit: tuple, result: Any):
        """Called at the end of every trace, inside the graph: what leaves the graph, and how.

        Tensors (composite ones included) leave as tensors; a ``tf.TensorArray`` as its list, rebuilt
        eagerly; plain Python values stay Python; what holds graph tensors but cannot leave the graph
        (a generator, an object of the cell's own class holding tensors) is not written back, and the
        trace says why.  Returns the function's outputs: ``({name: tensors}, result tensors or None)``.
        """
        self.variables.restart()  # the next trace asks for the variables from the first again
        loops, self._loops = self._loops, {}
        values = dict(zip(self.code.returned_names(self.params, self.forced), explicit))
        values = {k: v for k, v in values.items() if is_defined(v)}  # a Python loop that did not run
        for line, target in self.code.loop_targets:  # a Python loop's variable, as the plain cell leaves it
            if loops.get(line, _GRAPH_LOOP) is not _GRAPH_LOOP and loops[line]:
                for name, value in _unpack_target(target, loops[line][0]).items():
                    values.setdefault(name, value)
        for name in self.global_names:  # rebound in a branch or loop: the function's globals have it
            if name not in values and name in self._namespace and self._namespace[name] is not self._globals[name] \
                    and name not in self.code.deleted and is_defined(self._namespace[name]):
                values[name] = self._namespace[name]  # (del NAME: AutoGraph binds it to an Undefined)
        for name in self.code.assigned if local_values else ():
            # names bound only in a branch or loop, when AutoGraph kept them
            if name not in values and name in local_values and is_defined(local_values[name]):
                values[name] = local_values[name]
        graph = tf.compat.v1.get_default_graph()
        bindings, self._bindings = self._bindings, []
        self._graph_start.clear()
        last: dict[str, Any] = {}  # what the trace's path bound last, in the branches and loops AutoGraph did not keep
        inner: dict[str, None] = {}  # names bound in a graph branch or loop's body (a tf.cond's, a while's)
        for where, _, bound in bindings:
            if where is graph:
                last.update(bound)
            elif cell_graph(where) is graph:
                inner.update(dict.fromkeys(bound))
        for name, value in last.items():
            if name not in self.code.deleted:
                values.setdefault(name, value)
        record = TraceRecord(number=0, graph=graph, python_values={}, python_result=None, result_is_tensor=False)
        tensors = {}
        captured = frozenset(map(id, self._globals.values()))
        for name, value in values.items():
            kind, payload = place(value, graph, values, name, variable_for=self.variables.variable_for, code=self.code,
                                  captured=captured)
            if kind == "tensor":
                tensors[name] = payload
            elif kind == "mixed":
                tensors[name], record.mixed[name] = payload
            elif kind == "rebuild":
                tensors[name], record.rebuild[name] = payload
            elif kind == "function":
                record.python_values[name] = value
                record.functions[name] = (value, payload)
            elif kind == "python":
                record.python_values[name] = payload
            else:
                record.dropped[name] = payload
        for name, value in record.python_values.items():
            if isinstance(value, str) and SYMBOLIC_TEXT.search(value):
                record.texts.append(name)
        for slot, tensor in self._captured_slots(graph):  # by the place's name: seen.append(y) -> seen[0]
            name, kind, key = slot
            label = f"{name}.{key}" if kind == "attr" else f"{name}[{key!r}]"
            record.slots.append((label, slot))
            tensors[label] = tensor
        kind, payload = ("python", None) if result is None else place(
            result, graph, values, variable_for=self.variables.variable_for, code=self.code, captured=captured)
        out = None
        if kind == "tensor":
            out = payload
        elif kind == "mixed":
            out, record.mixed[RESULT_KEY] = payload
        elif kind == "rebuild":
            out, record.rebuild[RESULT_KEY] = payload
        elif kind in ("python", "function"):
            record.python_result = result if kind == "function" else payload
        else:
            record.dropped[RESULT_KEY] = payload
        record.result_is_tensor = kind in ("tensor", "mixed", "rebuild")
        record.kept_inside = [n for n in self.code.loop_bound if n not in values and n not in self.code.deleted
                              and loops.get(self.code.loop_bound[n], _GRAPH_LOOP) is _GRAPH_LOOP]
        record.python_loop_kept = [n for n in self.code.loop_bound if n not in values and n not in self.code.deleted
                                   and loops.get(self.code.loop_bound[n], _GRAPH_LOOP) not in (_GRAPH_LOOP, ())]
        noted = set(record.kept_inside) | set(record.python_loop_kept) | set(record.dropped)
        record.graph_kept = [n for n in inner if n not in values and n not in self.code.deleted and n not in noted]
        to_variable = {n: line for where, line, bound in bindings if where is not graph and cell_graph(where) is graph
                       for n, v in bound.items() if isinstance(v, tf.Variable)}  # by a graph branch or loop body
        record.branch_variables = [(n, line) for n, line in to_variable.items()
                                   if isinstance(values.get(n), tf.Tensor) and _bound_only_nested(self.code.tree, n)]
        self._pending.append(record)
        return tensors, out

    def _bound(self, line: int, local_values: dict) -> None:
        """Called after each statement nested in a branch or loop, while tracing: what its block has bound."""
        graph = tf.compat.v1.get_default_graph()
        self._check_unrolling(graph, line)
        self._bindings.append((graph, line, {k: v for k, v in local_values.items() if k in self._assigned and is_defined(v)}))

    def _loop(self, line: int, iterable):
        """The iterable of the top-level ``for`` loop at ``line``, as AutoGraph gets it; notes which kind it is.

        A tensor or dataset makes a graph loop (returned as it is); anything else is a Python loop, which
        AutoGraph runs while tracing: its items pass through, and the last one is kept for the loop's variable.
        """
        if tf.is_tensor(iterable) or hasattr(iterable, "_autograph_for_loop") or isinstance(iterable, (
                tf.data.Dataset, tf.data.Iterator, tf.distribute.DistributedDataset, tf.distribute.DistributedIterator)):
            self._loops[line] = _GRAPH_LOOP
            return iterable
        self._loops[line] = ()
        loops, check = self._loops, self._check_unrolling
        graph = tf.compat.v1.get_default_graph()

        def items():
            for count, item in enumerate(iterable, 1):
                check(graph, line, count, iterable)
                loops[line] = (item,)
                yield item

        return items()

    def _check_unrolling(self, graph, line: int, count: int | None = None, iterable: Any = None) -> None:
        """Stop a trace whose Python loops (run while tracing, each pass adding ops) have put more than
        :data:`MAX_UNROLLED_OPS` ops into the cell's graph: a loop over an endless iterable would never end."""
        start = self._graph_start.setdefault(graph, graph.version)
        if graph.version - start <= MAX_UNROLLED_OPS:
            return
        loops = [node for node in ast.walk(self.code.tree) if isinstance(node, (ast.For, ast.While))
                 and node.lineno <= line <= node.end_lineno]
        line = max((node.lineno for node in loops), default=line)  # the innermost loop around the statement
        over = f" over a {type(iterable).__name__}" if iterable is not None else ""
        passes = f"{count:,} passes of it have" if count else "its passes have"
        raise UnrolledLoopError(
            f"line {line}: this loop runs in Python while tracing{over}, each pass adding ops to the graph: "
            f"{passes} put more than {MAX_UNROLLED_OPS:,} ops into it, so the trace was stopped (a loop over an "
            "endless iterable never ends)\n  fix: loop over a tf.data.Dataset or tf.range(...) (AutoGraph makes a "
            "graph loop), or over fewer items")

    def _captured_slots(self, graph):
        """``((name, kind, key), tensor)`` for each graph tensor the cell put into a captured list, dict or object."""
        for name in self._changed_globals:
            target = self._globals.get(name)
            if isinstance(target, list):
                items, kind = list(enumerate(target)), "item"
            elif isinstance(target, dict):
                items, kind = list(target.items()), "item"
            elif hasattr(target, "__dict__") and not isinstance(target, (type, types.ModuleType)):
                items, kind = [(k, v) for k, v in vars(target).items() if k in self._attributes.get(name, ())], "attr"
            else:
                continue
            for key, item in items:
                if isinstance(item, tf.Tensor) and tf.is_symbolic_tensor(item) and item.graph is graph:
                    yield (name, kind, key), item

    def concrete_function(self, args, function=None):
        """The cell traced for ``args`` without running it, its variables made as :meth:`run` makes them (once,
        eagerly: the graph of a cell that creates a ``tf.Variable`` can then be analysed, as ``%%tape`` does).
        ``function``: a ``tf.function`` that calls the cell's Python function (``%%tape``'s, with gradients)."""
        self.variables.restart(EagerEffects(self.code))
        self._bindings.clear()
        self._graph_start.clear()
        with self.variables.scope(), graph_only_deprecations():
            return (function or self.function).get_concrete_function(*args)

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
        count = self.function.experimental_get_tracing_count
        before = count()
        self._pending.clear()
        self._bindings.clear()
        self._graph_start.clear()
        effects = EagerEffects(self.code)
        self.variables.restart(effects)
        tapes = {k: v for k, v in self._globals.items() if isinstance(v, tf.GradientTape) and v._tape is not None}
        created_before = len(self.variables.created)
        try:
            with effects, self.variables.scope(), graph_only_deprecations():  # the traces' graphs inherit the scope
                tensors, tensor_result = self.function(*args)
        except Exception as exc:  # the user's code failed: show it at the cell's lines
            assigned = self._assigned_variables(args) if isinstance(exc, tf.errors.OpError) else []
            self._pending.clear()
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
            graph = effects.graph  # the failed trace's graph, as far as it got
            notes += [f.text for f in diagnostics.find_mismatched_calls(graph, self.code)] if graph is not None else []
            raise tracebacks.for_cell(exc, self.code, namespace, assigned=assigned, notes=notes,
                                      autograph=self.options.autograph) from None
        traced = count() != before
        eager = not traced and bool(self._pending) and tf.config.functions_run_eagerly()
        if eager:  # tf.config.run_functions_eagerly(True): the Python function ran, as a plain cell runs
            record = None
            model = self._pending[-1]
            self._pending.clear()
        elif traced:
            record = self._pending[-1]  # TensorFlow traces twice when a first call creates variables
            self._pending.clear()
            self._explain(record, args)
            self.traces.append(record)
            self._same_python_values = (self._same_python_values and not record.mixed
                                        and _same_python(self.traces[0], record))
        elif len(self.traces) == 1 or self._same_python_values:
            record = None  # any trace gives the same Python values; which one ran is looked up if needed
        else:
            record = self.trace_for(args)
        if not eager:
            model = record or self.traces[-1]
        for label, (name, kind, key) in model.slots:  # the eager values, where the trace put tensors
            value = tensors.get(label)
            if value is None:
                continue
            try:
                if kind == "attr":
                    setattr(self._globals[name], key, value)
                else:
                    self._globals[name][key] = value
            except (LookupError, TypeError, AttributeError):  # the container changed since: leave it
                pass
        outputs = dict(model.python_values)
        outputs.update((k, v) for k, v in tensors.items() if k.isidentifier())  # not the slots' labels
        for name, template in model.mixed.items():
            if name == RESULT_KEY:
                tensor_result = join_mixed(template, tensor_result)
            else:
                outputs[name] = join_mixed(template, outputs[name])
        for name, rebuild in model.rebuild.items():
            if name == RESULT_KEY:
                tensor_result = rebuild(tensor_result)
            else:
                outputs[name] = rebuild(outputs[name])
        functions = {name: (outputs[name], node) for name, (_, node) in model.functions.items()}
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
            findings=record.findings if traced else [],
            _trace=record,
            _find_trace=(lambda: None if eager else self.trace_for(args)) if record is None else None,
            functions=functions,
            eager=EAGER_NOTE if eager else "",
            _redefined=model.redefined,
            not_written=not_written_back(model, self.code),
        )

    def _assigned_variables(self, args: list) -> list[str]:
        """The captured variables the cell's graph assigns (they may have changed before a failure)."""
        graphs = [r.graph for r in self._pending]
        if not graphs:
            try:
                graphs = [self.trace_for(args).graph] if self.traces else []
            except Exception:  # no trace to look at: nothing to name
                graphs = []
        by_handle = {id(v.handle): name for name, v in self._variables.items()}
        names: dict[str, None] = {}
        for graph in graphs:
            inner = {internal.op.name: by_handle.get(id(external)) for external, internal in graph.captures}
            for op in graph.get_operations():
                if op.type.startswith(("Assign", "ResourceScatter", "ResourceApply")) and op.inputs:
                    name = inner.get(op.inputs[0].op.name)
                    if name:
                        names[name] = None
        return list(names)

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
        for find in (diagnostics.find_unrolled_loops, diagnostics.find_pruned_lines,
                     diagnostics.find_converted_builtins, diagnostics.find_cond_gradients):
            record.findings += find(code.source, record.graph, code.filename, LINE_OFFSET, tree=code.tree)
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
    check_reads(code, global_values)  # a name an earlier cell could not write back: said at the line reading it
    key = (name,) if name else (source,)
    forced = code.python_loop_names({**namespace, **{n: None for n in code.assigned if n not in namespace}})
    signature = (source, options, params, tuple((k, id(v)) for k, v in global_values.items()), forced)
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
    old_ids, new_ids = dict(old.signature[3]), dict(new.signature[3])
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


_GRAPH_LOOP = object()  # a top-level for loop that AutoGraph made a graph loop


def _unpack_target(target: ast.AST, item: Any) -> dict[str, Any]:
    """The names a ``for`` target binds to ``item`` (``k, (a, b)`` unpacked as Python does); ``{}`` if unsure."""
    if isinstance(target, ast.Name):
        return {target.id: item}
    if isinstance(target, (ast.Tuple, ast.List)) and not any(isinstance(e, ast.Starred) for e in target.elts):
        if tf.is_tensor(item):
            return {}
        try:
            parts = list(item)
        except TypeError:
            return {}
        if len(parts) != len(target.elts):
            return {}
        out: dict[str, Any] = {}
        for element, part in zip(target.elts, parts):
            bound = _unpack_target(element, part)
            if not bound and not isinstance(element, (ast.Name, ast.Tuple, ast.List)):
                return {}
            out.update(bound)
        return out
    return {}


def _holders(namespace: dict, variables: list) -> list[str]:
    """The notebook's names of the layers, models, optimizers and modules that hold any of ``variables``."""
    made = {id(v) for v in variables}
    out = []
    for name, obj in list(namespace.items()) if made else ():
        if not name.startswith("_") and not isinstance(obj, types.ModuleType) \
                and any(id(v) in made for v in held_variables(obj)):
            out.append(name)
    return out


def _bound_only_nested(tree: ast.Module, name: str) -> bool:
    """Whether every statement of the cell's top level that binds ``name`` binds it inside a branch or loop."""
    return all(isinstance(stmt, (ast.If, ast.For, ast.While, ast.With, ast.Try)) for stmt in tree.body
               if name in assigned_names([stmt]))


def _attribute_targets(tree: ast.Module | None) -> dict[str, set[str]]:
    """``{name: {attr}}`` for each ``name.attr = ...`` in the cell."""
    out: dict[str, set[str]] = {}
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name):
            out.setdefault(node.value.id, set()).add(node.attr)
    return out


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

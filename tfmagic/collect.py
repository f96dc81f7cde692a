"""What a cell's trace hands back: the helpers the cell's generated function calls while TensorFlow traces it.

``cell.py`` generates the cell's function with four calls into a :class:`TraceCollector`: at its start (``start``:
the op callback and the warning filter a trace runs under, installed only when the function's Python code runs, so
a call that reuses a trace pays nothing for them), after each statement nested in a
branch or loop (``bound``: what its block bound), at each top-level ``for`` loop (``loop``: a graph loop or a Python
one), and at its end (``collect``: what leaves the graph, and how -- tensors, Python values, functions, or nothing,
with the reason).  Each trace's findings go to a :class:`TraceRecord`; ``tracing.CellFunction`` turns a
call's records into the run.
"""

from __future__ import annotations

import ast
import contextlib
import types
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from tfmagic import retracing
from tfmagic.cell import CellCode, assigned_names, cell_graph
from tfmagic.errors import UnrolledLoopError
from tfmagic.leaving import RESULT_KEY, SYMBOLIC_TEXT, is_defined, place
from tfmagic.quiet import graph_only_deprecations

#: Ops the cell's Python loops (run while tracing) may put into its graph before the trace stops with the reason.
MAX_UNROLLED_OPS = 50_000



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
    not_written: list | None = None  # leaving.not_written_back of the trace (made on its first run)


class TraceCollector:
    """The helpers a cell's function calls while it is traced, and what they found (see the module's docstring).

    Args:
        code: the cell's analysis.
        params: the function's arguments.
        forced: names AutoGraph must treat as Python loop variables (``CellCode.python_loop_names``).
        global_values: the captured objects, by name.
        namespace: the function's globals (what the trace rebinds there).
        variables: the cell's variables (``cellvars.CellVariables``).
        global_names: captured names the cell binds (the function's globals).
    """

    def __init__(self, code: CellCode, params: tuple[str, ...], forced: tuple[str, ...], global_values: dict,
                 namespace: dict, variables, global_names: tuple[str, ...]):
        self.code = code
        self.params = params
        self.forced = forced
        self.globals = global_values
        self.namespace = namespace
        self.variables = variables
        self.global_names = global_names
        self.attributes = _attribute_targets(code.tree)  # obj.t = ... on a captured object
        self.changed_globals = [n for n in global_values if n in code.mutated or n in self.attributes]
        # (an except clause's name is unbound at the clause's end, as Python does)
        self.assigned = frozenset(code.assigned) - {node.name for node in ast.walk(code.tree)
                                                     if isinstance(node, ast.ExceptHandler)}
        self.bindings: list[tuple[Any, int, dict]] = []  # (graph, line, names) branches and loop bodies bound
        self.graph_start: dict[Any, int] = {}  # each graph's version when the trace's loops first reported in it
        self.loops: dict[int, Any] = {}  # loop line -> _GRAPH_LOOP, or (its last item,) / () for a Python loop
        self.pending: list[TraceRecord] = []  # traces made during the current call
        self.effects = None  # the call's cellvars.EagerEffects (see restart)
        self._contexts: contextlib.ExitStack | None = None  # what a running trace is under (see start)

    def restart(self, effects=None) -> None:
        """Before a call: no trace made yet; ``effects`` (``cellvars.EagerEffects``) watches what a trace of this
        call runs eagerly."""
        self.pending.clear()
        self.bindings.clear()
        self.graph_start.clear()
        self.effects = effects

    def start(self) -> None:
        """Called first in every trace (and in an eager run): install the op callback of what runs eagerly while
        tracing and the filter of TensorFlow's graph-only deprecation warnings, until :meth:`collect` (or
        :meth:`stop`, when the trace fails).  A call that reuses a trace runs none of the function's Python code,
        and pays for neither; a trace inside another (``%%tape``'s function calls the cell's) stays under the outer
        one's.  (The variable creator scope is entered around the call: a scope entered in a trace's graph must be
        left there, which a failing trace does not do.)"""
        if self._contexts is not None:
            return
        stack = contextlib.ExitStack()
        if self.effects is not None:
            stack.enter_context(self.effects)
        stack.enter_context(graph_only_deprecations())
        self._contexts = stack

    def stop(self) -> None:
        """Leave what :meth:`start` entered (the trace ended or failed)."""
        stack, self._contexts = self._contexts, None
        if stack is not None:
            stack.close()

    def collect(self, local_values: dict | None, explicit: tuple, result: Any):
        """Called at the end of every trace, inside the graph: what leaves the graph, and how.

        Tensors (composite ones included) leave as tensors; a ``tf.TensorArray`` as its list, rebuilt
        eagerly; plain Python values stay Python; what holds graph tensors but cannot leave the graph
        (a generator, an object of the cell's own class holding tensors) is not written back, and the
        trace says why.  Returns the function's outputs: ``({name: tensors}, result tensors or None)``.
        """
        self.variables.restart()  # the next trace asks for the variables from the first again
        loops, self.loops = self.loops, {}
        graph = tf.compat.v1.get_default_graph()
        bindings, self.bindings = self.bindings, []
        self.graph_start.clear()
        values, inner = self._values(local_values, explicit, loops, bindings, graph)
        record = TraceRecord(number=0, graph=graph, python_values={}, python_result=None, result_is_tensor=False)
        captured = frozenset(map(id, self.globals.values()))
        tensors = self._place_values(values, graph, record, captured)
        for slot, tensor in self.captured_slots(graph):  # by the place's name: seen.append(y) -> seen[0]
            name, kind, key = slot
            label = f"{name}.{key}" if kind == "attr" else f"{name}[{key!r}]"
            record.slots.append((label, slot))
            tensors[label] = tensor
        out = self._place_result(result, graph, values, record, captured)
        self._note_kept(record, values, loops, inner, bindings, graph)
        self.pending.append(record)
        self.stop()
        return tensors, out

    def _values(self, local_values: dict | None, explicit: tuple, loops: dict, bindings: list, graph
                ) -> tuple[dict[str, Any], dict[str, None]]:
        """What the trace bound, by name (as a plain cell leaves its names), and the names bound only inside a
        graph branch or loop's body (a tf.cond's, a while's)."""
        values = dict(zip(self.code.returned_names(self.params, self.forced), explicit))
        values = {k: v for k, v in values.items() if is_defined(v)}  # a Python loop that did not run
        for line, target in self.code.loop_targets:  # a Python loop's variable, as the plain cell leaves it
            if loops.get(line, _GRAPH_LOOP) is not _GRAPH_LOOP and loops[line]:
                for name, value in _unpack_target(target, loops[line][0]).items():
                    values.setdefault(name, value)
        for name in self.global_names:  # rebound in a branch or loop: the function's globals have it
            if name not in values and name in self.namespace and self.namespace[name] is not self.globals[name] \
                    and name not in self.code.deleted and is_defined(self.namespace[name]):
                values[name] = self.namespace[name]  # (del NAME: AutoGraph binds it to an Undefined)
        for name in self.code.assigned if local_values else ():
            # names bound only in a branch or loop, when AutoGraph kept them
            if name not in values and name in local_values and is_defined(local_values[name]):
                values[name] = local_values[name]
        last: dict[str, Any] = {}  # what the trace's path bound last, in the branches and loops AutoGraph did not keep
        inner: dict[str, None] = {}
        for where, _, bound in bindings:
            if where is graph:
                last.update(bound)
            elif cell_graph(where) is graph:
                inner.update(dict.fromkeys(bound))
        for name, value in last.items():
            if name not in self.code.deleted:
                values.setdefault(name, value)
        return values, inner

    def _place_values(self, values: dict, graph, record: TraceRecord, captured: frozenset) -> dict:
        """Each bound value's way out of the graph (``leaving.place``), noted on ``record``; the tensors that leave."""
        tensors = {}
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
        record.texts = [name for name, value in record.python_values.items()
                        if isinstance(value, str) and SYMBOLIC_TEXT.search(value)]
        return tensors

    def _place_result(self, result: Any, graph, values: dict, record: TraceRecord, captured: frozenset):
        """The last expression's way out of the graph, noted on ``record``; its tensors (or ``None``)."""
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
        return out

    def _note_kept(self, record: TraceRecord, values: dict, loops: dict, inner: dict, bindings: list, graph) -> None:
        """The names a plain cell binds that the trace keeps inside the graph, and names a graph branch or loop
        bound to a variable (written back as a tensor)."""
        code = self.code
        kept = [n for n in code.loop_bound if n not in values and n not in code.deleted]
        record.kept_inside = [n for n in kept if loops.get(code.loop_bound[n], _GRAPH_LOOP) is _GRAPH_LOOP]
        record.python_loop_kept = [n for n in kept if loops.get(code.loop_bound[n], _GRAPH_LOOP) not in (_GRAPH_LOOP, ())]
        noted = set(record.kept_inside) | set(record.python_loop_kept) | set(record.dropped)
        record.graph_kept = [n for n in inner if n not in values and n not in code.deleted and n not in noted]
        to_variable = {n: line for where, line, bound in bindings if where is not graph and cell_graph(where) is graph
                       for n, v in bound.items() if isinstance(v, tf.Variable)}  # by a graph branch or loop body
        record.branch_variables = [(n, line) for n, line in to_variable.items()
                                   if isinstance(values.get(n), tf.Tensor) and _bound_only_nested(code.tree, n)]

    def bound(self, line: int, local_values: dict) -> None:
        """Called after each statement nested in a branch or loop, while tracing: what its block has bound."""
        graph = tf.compat.v1.get_default_graph()
        self.check_unrolling(graph, line)
        self.bindings.append((graph, line, {k: v for k, v in local_values.items() if k in self.assigned and is_defined(v)}))

    def loop(self, line: int, iterable):
        """The iterable of the top-level ``for`` loop at ``line``, as AutoGraph gets it; notes which kind it is.

        A tensor or dataset makes a graph loop (returned as it is); anything else is a Python loop, which
        AutoGraph runs while tracing: its items pass through, and the last one is kept for the loop's variable.
        """
        if tf.is_tensor(iterable) or hasattr(iterable, "_autograph_for_loop") or isinstance(iterable, (
                tf.data.Dataset, tf.data.Iterator, tf.distribute.DistributedDataset, tf.distribute.DistributedIterator)):
            self.loops[line] = _GRAPH_LOOP
            return iterable
        self.loops[line] = ()
        loops, check = self.loops, self.check_unrolling
        graph = tf.compat.v1.get_default_graph()

        def items():
            for count, item in enumerate(iterable, 1):
                check(graph, line, count, iterable)
                loops[line] = (item,)
                yield item

        return items()

    def check_unrolling(self, graph, line: int, count: int | None = None, iterable: Any = None) -> None:
        """Stop a trace whose Python loops (run while tracing, each pass adding ops) have put more than
        :data:`MAX_UNROLLED_OPS` ops into the cell's graph: a loop over an endless iterable would never end."""
        start = self.graph_start.setdefault(graph, graph.version)
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

    def captured_slots(self, graph):
        """``((name, kind, key), tensor)`` for each graph tensor the cell put into a captured list, dict or object."""
        for name in self.changed_globals:
            target = self.globals.get(name)
            if isinstance(target, list):
                items, kind = list(enumerate(target)), "item"
            elif isinstance(target, dict):
                items, kind = list(target.items()), "item"
            elif hasattr(target, "__dict__") and not isinstance(target, (type, types.ModuleType)):
                items, kind = [(k, v) for k, v in vars(target).items() if k in self.attributes.get(name, ())], "attr"
            else:
                continue
            for key, item in items:
                if isinstance(item, tf.Tensor) and tf.is_symbolic_tensor(item) and item.graph is graph:
                    yield (name, kind, key), item


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

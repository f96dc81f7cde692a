"""Why a ``%%tape`` gradient is None, NaN or missing, in the tape's own terms.

:func:`explain_nones` gives every ``None`` its cause, from the causes TensorFlow's autodiff guide lists
(not watched -- a ``trainable=False`` variable, a tensor made before the cell --, no path, a
``tf.stop_gradient``, an integer dtype, a round trip through NumPy, a variable rebound to a tensor, state
read through an ``assign``, a non-differentiable op), found by checking the values and by tracing the
cell as a graph and walking it from the target back to the source.  :class:`NonFiniteRecorder` finds
the first op whose output was not finite, forward or backward, with the user's line, and where an op
with no registered gradient ran (:func:`no_gradient`).  :func:`trace_gradient_graph` traces the cell
with its gradients for ``--show graph``.
"""

from __future__ import annotations

import ast
import linecache
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from tfmagic import tracebacks
from tfmagic.cell import assigned_names, binding_line, binding_lines
from tfmagic.errors import TfMagicError
from tfmagic.opcallbacks import OpCallback
from tfmagic.vocabulary import ASSIGN_OPS, STOP_OPS, VARIABLE_READS, is_user_file

if TYPE_CHECKING:
    from tfmagic.requests import TapeOptions


#: Ops whose gradient is none or zero everywhere (their registered gradient returns None).
NON_DIFFERENTIABLE = frozenset({
    "ArgMax", "ArgMin", "Round", "Floor", "Ceil", "Sign", "Rint", "Equal", "NotEqual", "Less", "LessEqual",
    "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "Shape", "ShapeN", "Size", "Rank",
    "ZerosLike", "OnesLike", "IsFinite", "IsNan", "IsInf", "Unique", "TopKV2", "Bucketize",
})




@dataclass
class NonFinite:
    """Where a NaN or Inf first appeared.

    Attributes:
        op: the op's type (``Exp``).
        phase: ``forward`` (the cell's computation) or ``backward`` (the gradient's).
        value: ``inf``, ``-inf`` or ``nan``.
        line: the cell's line that ran the op (forward), if known.
        code: that line's source.
        inner: the innermost user frame, when the op ran inside the user's own function
            (``my_softplus``, line 2: ``return tf.math.log(tf.exp(z) + 1.0)``).
    """

    op: str
    phase: str
    value: str
    line: int | None = None
    code: str = ""
    inner: str = ""

    @property
    def text(self) -> str:
        where = f" at line {self.line}: {self.code.strip()}" if self.line else ""
        inside = f" (in {self.inner})" if self.inner else ""
        if self.phase == "forward":
            return f"{self.op} made the first {self.value} of the forward pass{where}{inside}"
        return f"the backward pass made the first {self.value} (gradient op {self.op}); the forward pass was finite"

    @property
    def fix(self) -> str:
        """The way out, for the op that made it (its gradient op's forward op, in the backward pass)."""
        op = self.op[:-4] if self.op.endswith("Grad") else self.op
        return _NON_FINITE_FIXES.get(op, _STABLE_FORM)


_STABLE_FORM = ("compute it in a stable form: a primitive such as tf.nn.softplus / tf.math.log1p / "
                "tf.math.reduce_logsumexp, or tf.custom_gradient with an analytic derivative")


#: The way out of an infinite or NaN value, by the op that made it.
_NON_FINITE_FIXES = {
    "Sqrt": "the derivative of tf.sqrt is infinite at 0: keep its input away from 0 (tf.sqrt(x + 1e-12)), or "
            "tf.custom_gradient with the derivative you want there",
    "Rsqrt": "tf.math.rsqrt and its derivative are infinite at 0: keep its input away from 0 (x + 1e-12)",
    "Reciprocal": "1/x is infinite at 0: keep the denominator away from 0, or use tf.math.divide_no_nan",
    "RealDiv": "a division by 0: keep the denominator away from 0, or use tf.math.divide_no_nan",
    "Div": "a division by 0: keep the denominator away from 0, or use tf.math.divide_no_nan",
    "Log": "log(0) is -inf: keep its input above 0 (tf.math.log(x + 1e-12)), or tf.math.log1p / tf.nn.softplus "
           "for log(1 + x)",
    "Pow": "a power of 0 with an exponent below 1 has an infinite derivative: keep the base away from 0",
    "Exp": _STABLE_FORM,
}


def as_numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


# ---------------------------------------------------------------------------
# Watching for the first NaN or Inf


class NonFiniteRecorder(OpCallback):
    """An op callback that notes the first eager op whose output is not finite (numpy checks only), and where
    each op type that has no registered gradient first ran (``AdjustHue``: the tape cannot go back through it)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.phase = "forward"
        self.first: NonFinite | None = None
        self.no_gradient: dict[str, NonFinite] = {}  # op type -> where it first ran
        self._with_gradient: set[str] = set()  # op types already looked up (every eager op passes here)
        self._busy = False

    def __call__(self, op_type, inputs, attrs, outputs, op_name=None, graph=None):
        if graph is not None or self._busy:
            return None
        if self.phase == "forward" and op_type not in self._with_gradient and op_type not in self.no_gradient:
            if _has_gradient(op_type):
                self._with_gradient.add(op_type)
            else:
                self.no_gradient[op_type] = self._locate(NonFinite(op_type, "forward", ""))
        if self.first is not None:
            return None
        self._busy = True
        try:
            for out in outputs or ():
                dtype = getattr(out, "dtype", None)
                if dtype is None or not (dtype.is_floating or dtype.is_complex):
                    continue
                values = out.numpy()
                if not np.all(np.isfinite(values)):
                    kind = "nan" if np.any(np.isnan(values)) else ("-inf" if np.any(values < 0) else "inf")
                    self.first = self._locate(NonFinite(op_type, self.phase, kind))
                    break
        finally:
            self._busy = False
        return None

    def _locate(self, found: NonFinite) -> NonFinite:
        if self.phase != "forward":
            return found
        frame = sys._getframe(2)
        inner = None
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename == self.filename:
                found.line = frame.f_lineno
                found.code = linecache.getline(filename, frame.f_lineno)
                break
            if inner is None and is_user_file(filename):
                text = linecache.getline(filename, frame.f_lineno).strip()
                inner = f"{frame.f_code.co_name}, line {frame.f_lineno}: {text}" if text else frame.f_code.co_name
            frame = frame.f_back
        found.inner = inner or ""
        return found


@dataclass(frozen=True)
class TapeCode:
    """A ``%%tape`` cell's source, as tracebacks see it."""

    source: str
    filename: str
    magic: str = "%%tape"

    def cell_line(self, lineno: int) -> int:
        return lineno


@dataclass
class SourceGradient:
    """One source and its gradient.

    Attributes:
        name: the source's name (``w1``, ``dense/kernel``).
        value: the source (a variable or a tensor).
        gradient: its gradient (``None`` where disconnected).
        cause: why the gradient is ``None``.
        fix: what would connect it.
        line: the line the cause is at, if any.
    """

    name: str
    value: Any
    gradient: Any
    cause: str = ""
    fix: str = ""
    line: int | None = None

    @property
    def shape(self) -> str:
        shape = getattr(self.value, "shape", None)
        return "scalar" if shape is not None and len(shape) == 0 else str(list(shape)) if shape is not None else "?"

    @property
    def dtype(self) -> str:
        dtype = getattr(self.value, "dtype", None)
        return getattr(dtype, "name", str(dtype))

    @property
    def finite(self) -> bool:
        if self.gradient is None:
            return True
        return bool(np.all(np.isfinite(as_numpy(self.gradient))))

    def summary(self) -> str:
        """``36.0`` for a scalar, a few values and the norm, min and max for a tensor."""
        if self.gradient is None:
            return "None"
        values = as_numpy(self.gradient)
        if values.size == 1:
            return f"{values.reshape(()).item():.6g}"
        flat = values.reshape(-1)
        head = ", ".join(f"{v:.4g}" for v in flat[:4]) + (", ..." if flat.size > 4 else "")
        finite = flat[np.isfinite(flat)]
        stats = (f"norm {np.linalg.norm(finite):.4g}, min {finite.min():.4g}, max {finite.max():.4g}"
                 if finite.size else "no finite value")
        if finite.size < flat.size:  # say what the statistics leave out
            counts = [f"{int(n)} {what}" for n, what in ((np.isposinf(flat).sum(), "inf"),
                                                         (np.isneginf(flat).sum(), "-inf"), (np.isnan(flat).sum(), "nan")) if n]
            stats = f"{', '.join(counts)}; " + (f"finite values: {stats}" if finite.size else stats)
        return f"[{head}] {stats}"


@dataclass
class TapeRun:
    """The outcome of a ``%%tape`` cell.

    Attributes:
        target_name: what was differentiated.
        target: its value.
        sources: one :class:`SourceGradient` per source.
        gradients: name -> gradient (``None`` where disconnected), as stored in the namespace.
        jacobians: name -> jacobian of the target with respect to that source.
        hessians: ``(name_i, name_j)`` -> second derivatives.
        nonfinite: where a NaN/Inf first appeared, when a gradient is not finite.
        result: the cell's last expression's value.
        has_result: whether to display it.
        graph: the traced gradient graph (for ``--show graph``), when asked for.
        watched: the ``id`` of each variable the tape watched.
    """

    target_name: str
    target: Any
    sources: list[SourceGradient]
    gradients: dict[str, Any]
    jacobians: dict[str, Any] = field(default_factory=dict)
    hessians: dict[tuple[str, str], Any] = field(default_factory=dict)
    nonfinite: NonFinite | None = None
    result: Any = None
    has_result: bool = False
    graph: Any = None
    watched: frozenset = frozenset()


def _has_gradient(op_type: str) -> bool:
    """Whether TensorFlow registers a gradient for the op type (``tf.no_gradient`` ones count: theirs is None)."""
    from tensorflow.python.framework import ops

    try:
        ops._gradient_registry.lookup(op_type)  # the registry tape.gradient reads (TF's gradient_registry)
    except LookupError:
        return False
    return True


class NoGradientError(TfMagicError, LookupError):
    """The target depends on an op that has no gradient: said in one line, at the cell's line that ran it."""

    def _render_traceback_(self):
        return [f"NoGradientError: {self}"]


def no_gradient(error: LookupError, recorder: NonFiniteRecorder) -> BaseException:
    """tape.gradient's ``gradient registry has no entry for: AdjustHue`` as the op, its line and the way out."""
    op_type = str(error).rsplit(":", 1)[-1].strip()
    if not op_type.isidentifier():  # another LookupError: leave it as it is
        return error
    found = recorder.no_gradient.get(op_type)
    where = f" at line {found.line} ({found.code.strip()})" if found is not None and found.line else ""
    inside = f", in {found.inner}" if found is not None and found.inner else ""
    return NoGradientError(
        f"%%tape: {op_type}{where}{inside} has no gradient (TensorFlow registers none for it), so the tape "
        f"cannot differentiate through it; wrap its input in tf.stop_gradient(...) if no gradient should flow "
        f"there, or compute it with differentiable ops")


# ---------------------------------------------------------------------------
# Running the cell


def explain_nones(run: TapeRun, code: TapeCode, before: dict, after: dict, options: TapeOptions) -> None:
    missing = [s for s in run.sources if s.gradient is None]
    if not missing:
        return
    tree = ast.parse(code.source)
    assigned = set(assigned_names(tree.body))
    analysis = None
    for source in missing:
        name = source.name
        value, earlier = source.value, before.get(name)
        variable = value if isinstance(value, tf.Variable) else getattr(value, "value", None)
        dtype = getattr(value, "dtype", None)
        if dtype is not None and not (dtype.is_floating or dtype.is_complex):
            source.cause = f"{name} is {dtype.name}: gradients flow only to floating-point tensors"
            source.fix = f"make it a float: tf.cast({name}, tf.float32), or create it with a float dtype"
            continue
        if isinstance(earlier, tf.Variable) and not isinstance(value, tf.Variable):
            line = next(iter(binding_lines(tree, name)), None)  # the first line that rebound it
            source.line = line
            source.cause = (f"{name} was a tf.Variable, and line {line} rebound it to a tensor: the tape watched "
                            f"the variable, not the new tensor")
            source.fix = f"update the variable in place: {name}.assign(...) / {name}.assign_add(...)"
            continue
        if isinstance(variable, tf.Variable) and id(variable) not in run.watched:
            source.cause, source.fix = _not_watched(name, variable, options)
            continue
        if variable is None and name not in options.watch:
            if name not in assigned:
                source.cause = (f"{name} is a tensor made before this cell, not a tf.Variable: a tape records how "
                                "a tensor depends on the sources only while it runs, and a tensor from before "
                                "only when watched")
                source.fix = (f"add --watch {name} (tape.watch({name})), or make it a tf.Variable, or compute it "
                              "in this cell from the variables it depends on")
                continue
            if analysis is None:
                analysis = _GraphAnalysis.build(code, before, options, run)
            if not analysis.recorded(name):
                line = binding_line(tree, name)
                source.line = line
                source.cause = (f"{name} (line {line}) is computed from constants only, nothing the tape watches, "
                                "so the tape records nothing that leads to it")
                source.fix = f"add --watch {name} (tape.watch({name})), or make it a tf.Variable"
                continue
        if analysis is None:
            analysis = _GraphAnalysis.build(code, before, options, run)
        source.cause, source.fix, source.line = analysis.why(name, source.value, code)


def _not_watched(name: str, variable, options: TapeOptions) -> tuple[str, str]:
    """Why a variable the tape did not watch has no gradient, and how to watch it."""
    if not options.watch_accessed_variables:
        return (f"{name} is not watched: with --no-watch-accessed the tape watches only what --watch names",
                f"add --watch {name} (tape.watch({name}))")
    if not variable.trainable:
        return (f"{name} is not watched: it is a tf.Variable with trainable=False, and a tape watches only "
                "trainable variables by itself",
                f"add --watch {name} (tape.watch({name})), or create it with trainable=True")
    return (f"no path: the target does not depend on {name} (the cell never reads it)",
            f"check that the target is computed from {name}")


def _is_variable_like(value) -> bool:
    return isinstance(getattr(value, "value", None), tf.Variable)


def _trace_cell(code: TapeCode, before: dict):
    """Trace the cell as a graph (nothing runs: Python side effects of tracing aside)."""
    from tfmagic.cell import analyze_cell
    from tfmagic.inputs import split_inputs
    from tfmagic.tracing import CellFunction, FunctionOptions

    cell_code = analyze_cell(code.source, "tape")
    params, captured = split_inputs(cell_code.candidates, before, cell_code.mutated)
    cell = CellFunction(cell_code, params, captured, FunctionOptions())
    args = [before[p] for p in params]
    return cell_code, cell, args


@dataclass
class _GraphAnalysis:
    graph: Any = None
    target: Any = None
    outputs: dict = field(default_factory=dict)
    filename: str = ""
    failure: BaseException | None = None
    cell_code: Any = None
    watched: frozenset = frozenset()  # the names --watch gave (graph inputs of those names are watched)

    @classmethod
    def build(cls, code: TapeCode, before: dict, options: TapeOptions, run: TapeRun) -> _GraphAnalysis:
        cell_code = None
        try:
            cell_code, cell, args = _trace_cell(code, before)
            concrete = cell.concrete_function(args)
        except Exception as e:  # tracing failed: what failed is itself a diagnosis (a NumPy round trip ...)
            return cls(failure=e, cell_code=cell_code)
        outputs, result = concrete.structured_outputs
        target = None
        if options.target is None:
            target = result
        elif options.target in outputs:
            target = outputs[options.target]
        inputs = {}
        for op in concrete.graph.get_operations():
            if op.type == "Placeholder":
                inputs[op.name] = op.outputs[0]
        return cls(concrete.graph, target, {**inputs, **outputs}, cell_code.filename, None, cell_code,
                   frozenset(options.watch))

    def recorded(self, name: str) -> bool:
        """Whether the cell computes ``name`` from something the tape records: a variable the cell reads (the
        tape watches those) or a watched tensor (a traced graph's input)."""
        tensor = self.outputs.get(name)
        if tensor is None:  # not traced: leave the reason to why()
            return True
        return any(op.type in VARIABLE_READS or (op.type == "Placeholder" and op.name in self.watched)
                   for op in _ancestors(tensor.op, through_stops=True))

    def _source_tensor(self, name: str, value):
        if isinstance(value, tf.Variable) or _is_variable_like(value):
            variable = value if isinstance(value, tf.Variable) else value.value
            for external, internal in self.graph.captures:
                if external is variable.handle:
                    return internal
            return None
        return self.outputs.get(name)

    def _line(self, op) -> tuple[int | None, str]:
        from tfmagic.diagnostics import op_line

        line = op_line(op, self.filename)
        if line is None:
            return None, ""
        line = self.cell_code.cell_line(line)
        lines = self.cell_code.source.splitlines()
        return line, lines[line - 1] if 0 < line <= len(lines) else ""

    def why(self, name: str, value, code: TapeCode) -> tuple[str, str, int | None]:
        if self.failure is not None:
            text = str(self.failure)
            if ("numpy" in text.lower() or "symbolic" in text.lower()) and self.cell_code is not None:
                _, frames, _, _ = tracebacks.cell_frames(self.failure, self.cell_code)
                line = next((f.lineno for f in reversed(frames) if f.filename is None), None)
                return (f"the value goes through NumPy (line {line}): the tape cannot follow it out of TensorFlow",
                        "keep the computation in TensorFlow ops (tf.square, ... instead of np.square, .numpy())",
                        line)
            return (f"the target does not depend on {name} through operations the tape recorded", "", None)
        source = self._source_tensor(name, value)
        if source is None and self.target is not None and (isinstance(value, tf.Variable) or _is_variable_like(value)):
            return (f"no path: the target does not depend on {name}",  # the traced cell never reads it
                    f"check that the target is computed from {name}", None)
        if self.target is None or source is None:
            return (f"the target does not depend on {name} through operations the tape recorded", "", None)
        source_op = source.op
        every = _ancestors(self.target.op, through_stops=True)
        if source_op not in every:
            assign = self._through_assign(source_op, every)
            if assign is not None:
                line, text = self._line(assign)
                return (f"{name} reaches the target only through an assignment (line {line}: {text.strip()}): "
                        "assigning to a variable is not differentiable",
                        "use the computed value itself in the target, not the variable it was assigned to", line)
            return (f"no path: the target does not depend on {name}",
                    f"check that the target is computed from {name}", None)
        unstopped = _ancestors(self.target.op, through_stops=False)
        if source_op not in unstopped:
            stop = next((op for op in every if op.type in STOP_OPS and source_op in _ancestors(op, True)), None)
            line, text = self._line(stop) if stop is not None else (None, "")
            return (f"tf.stop_gradient at line {line} ({text.strip()}) blocks the path from the target to {name}",
                    "remove tf.stop_gradient there if the gradient should flow", line)
        blocking = _first_blocking_op(source_op, self.target.op)
        if blocking is not None:
            line, text = self._line(blocking)
            return (f"{blocking.type} at line {line} ({text.strip()}) is not differentiable: no gradient flows "
                    "through it", "use a differentiable op (e.g. a soft version such as tf.nn.softmax)", line)
        return (f"the target does not depend on {name} through operations the tape recorded", "", None)

    def _through_assign(self, source_op, target_ancestors):
        read_handles = {op.inputs[0].op for op in target_ancestors if op.type in VARIABLE_READS and op.inputs}
        for op in self.graph.get_operations():
            if op.type in ASSIGN_OPS and len(op.inputs) > 1 and op.inputs[0].op in read_handles \
                    and source_op in _ancestors(op.inputs[1].op, True) | {op.inputs[1].op}:
                return op
        return None


def _ancestors(op, through_stops: bool) -> set:
    """``op`` and the ops it reads, and theirs (not past a ``tf.stop_gradient`` unless ``through_stops``)."""
    from tfmagic.graph import closure

    return closure([op], lambda current: () if not through_stops and current.type in STOP_OPS
                   else [tensor.op for tensor in current.inputs])


def _first_blocking_op(source_op, target_op):
    ancestors = _ancestors(target_op, True)
    stack, seen = [source_op], {source_op}
    while stack:
        op = stack.pop(0)
        if op is not source_op and (op.type in NON_DIFFERENTIABLE or any(
                not (o.dtype.is_floating or o.dtype.is_complex) for o in op.outputs if o.dtype != tf.resource)):
            return op
        for out in op.outputs:
            for consumer in out.consumers():
                if consumer in ancestors and consumer not in seen:
                    seen.add(consumer)
                    stack.append(consumer)
    return None


# ---------------------------------------------------------------------------
# The gradient graph, for drawing


def trace_gradient_graph(code: TapeCode, before: dict, options: TapeOptions, run: TapeRun):
    """Trace the cell and its gradients as one graph: forward ops, then the backward ops (``gradient_tape/``).

    Returns:
        A :class:`GradientGraph`, or ``None`` if the cell cannot be traced.
    """
    try:
        cell_code, cell, args = _trace_cell(code, before)
    except Exception:  # the drawing is optional: the table still stands
        return None
    python_function = cell.function.python_function
    names = [s.name for s in run.sources]
    variables = {s.name: (s.value if isinstance(s.value, tf.Variable) else getattr(s.value, "value", None))
                 for s in run.sources}

    found: dict = {"sources": {}, "order": []}

    def with_gradients(*call_args):
        with tf.GradientTape(persistent=True) as tape:
            for arg in call_args:
                if tf.is_tensor(arg) and arg.dtype.is_floating:
                    tape.watch(arg)
            outputs, result = python_function(*call_args)
            target = result if options.target is None else outputs.get(options.target)
        sources = []
        for name in names:
            if isinstance(variables.get(name), tf.Variable):
                sources.append(variables[name])
            elif name in outputs:
                sources.append(outputs[name])
                found["sources"][name] = outputs[name].op.name
            elif name in cell.params:
                sources.append(call_args[cell.params.index(name)])
                found["sources"][name] = call_args[cell.params.index(name)].op.name
        if target is None or not sources:
            return ()
        found["order"][:] = [name for name in names if name in found["sources"] or isinstance(
            variables.get(name), tf.Variable)]
        found["target"] = target.op.name
        return tape.gradient(target, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    try:
        concrete = cell.concrete_function(args, tf.function(with_gradients))
    except Exception:  # the drawing is optional: the table still stands
        return None
    graph = concrete.graph
    for external, internal in graph.captures:  # variables: their captured handles
        for name, variable in variables.items():
            if isinstance(variable, tf.Variable) and external is variable.handle:
                found["sources"][name] = internal.op.name
    status = {s.name: ("stopped" if "stop_gradient" in s.cause else "disconnected") if s.gradient is None
              else "connected" for s in run.sources}
    return GradientGraph(graph, found.get("target"), found["sources"], status, list(found["order"]),
                         list(cell.params))


@dataclass
class GradientGraph:
    """A traced cell with its gradient: which op is the target, which are the sources, and their status."""

    graph: Any
    target: str | None
    sources: dict[str, str]
    status: dict[str, str]
    order: list[str] = field(default_factory=list)  # the source of each gradient output, in order
    params: list[str] = field(default_factory=list)  # the notebook names passed as the graph's first inputs

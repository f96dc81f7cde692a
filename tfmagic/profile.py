"""Where the time goes: a traced function run under TensorFlow's profiler, op by op.

:func:`profile_calls` calls a function a few times (after a warm-up call that is not measured)
between ``tf.profiler.experimental.start`` and ``stop``, reads the trace the profiler writes (an
``XSpace``: one event per op run, named ``op_name:OpType``, with its duration, on the host's
threads or a device's streams) and returns a :class:`Profile`: each op's calls per step, total and
mean time, share of the measured op time, device; the same grouped by Keras layer or name scope;
and the wall time per call beside the sum of op times, so time spent outside ops (dispatch,
Python, copies) shows.

The profiler is always stopped, even when a call fails or is interrupted; when it cannot start
(another profile is running, or this TensorFlow has none) :class:`ProfilerUnavailable` says why.

>>> share_colour(0.0), share_colour(1.0)
('#ffffff', '#d7301f')
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tfmagic.errors import TfMagicError
from tfmagic.quiet import filtered_fd2, is_profiler_line
from tfmagic.vocabulary import VARIABLE_WRITES

#: How many measured calls ``--profile`` makes when no number is given.
DEFAULT_STEPS = 10

#: Event names on the profiler's threads that are not ops (``ThreadpoolListener::Record``...).
_NOT_OPS = ("::", "MemoryAllocation", "MemoryDeallocation")


class ProfilerUnavailable(TfMagicError):
    """TensorFlow's profiler could not run (already running elsewhere, or missing)."""


@dataclass
class OpTime:
    """One op's time over the profiled calls.

    Attributes:
        name: the op's name in the graph TensorFlow ran (after Grappler: usually the traced name).
        type: the kernel's type (``MatMul``, ``_MklMatMul``, ``_FusedConv2D``).
        device: where it ran (``CPU``, ``/device:GPU:0``).
        calls: how many times it ran per step.
        total_us: its time per step, in microseconds.
        group: its Keras layer (``net/wide``, ``net/wide (backward)``) or first name scope.
    """

    name: str
    type: str
    device: str
    calls: float
    total_us: float
    group: str = ""  # its Keras layer or name scope (see layer_grouper)

    @property
    def mean_us(self) -> float:
        return self.total_us / self.calls if self.calls else 0.0


@dataclass
class Profile:
    """A function's profile: op times per step, and the wall time per call beside their sum.

    Attributes:
        ops: every op that ran, the slowest first.
        steps: how many calls were measured.
        wall_us: the wall time of one call (what the caller waits), in microseconds.
        groups: ``(scope or layer, microseconds per step, ops)`` the slowest first.
    """

    ops: list[OpTime]
    steps: int
    wall_us: float
    groups: list[tuple[str, float, int]] = field(default_factory=list)

    @property
    def op_us(self) -> float:
        """The sum of the op times of one step."""
        return sum(op.total_us for op in self.ops)

    def share(self, op: OpTime) -> float:
        """The op's part of the step's op time (0 to 1)."""
        return op.total_us / self.op_us if self.op_us else 0.0

    def shares(self) -> dict[str, float]:
        """Op name -> its share of the op time (for colouring a drawing)."""
        return {op.name: self.share(op) for op in self.ops}

    def devices(self) -> list[str]:
        return sorted({op.device for op in self.ops})


def share_colour(share: float) -> str:
    """A fill colour for a share of the time: white (none) through yellow and orange to red (all).

    Shares are drawn on a square-root scale, so an op with 4% of the time is visibly tinted.
    """
    share = min(max(share, 0.0), 1.0) ** 0.5
    stops = ((0.0, (255, 255, 255)), (0.35, (254, 232, 138)), (0.7, (253, 141, 60)), (1.0, (215, 48, 31)))
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if share <= b:
            t = (share - a) / (b - a) if b > a else 0.0
            rgb = tuple(round(x + (y - x) * t) for x, y in zip(ca, cb))
            return "#%02x%02x%02x" % rgb
    return "#d7301f"


def profile_calls(call: Callable[[], object], steps: int = DEFAULT_STEPS, scope_of: Callable[[str], str] | None = None
                  ) -> Profile:
    """Profile ``steps`` calls of ``call`` (one unmeasured warm-up call first).

    Args:
        call: runs the traced function once (its inputs bound).
        steps: how many measured calls.
        scope_of: the group (Keras layer, name scope) of an op name; default: its first name scope.

    Raises:
        ProfilerUnavailable: the profiler could not start.
        Exception: whatever ``call`` raised (the profiler is stopped first).
    """
    import tensorflow as tf

    call()  # warm-up: a first call may trace, build kernels and allocate; it is not measured
    logdir = tempfile.mkdtemp(prefix="tfmagic-profile-")
    try:
        with filtered_fd2(is_profiler_line):  # the profiler's log of its session is tfmagic's, not the cell's
            try:
                tf.profiler.experimental.start(logdir)
            except (tf.errors.AlreadyExistsError, tf.errors.UnavailableError, AttributeError, RuntimeError) as e:
                raise ProfilerUnavailable("TensorFlow's profiler could not start: "
                                          f"{str(e).strip() or type(e).__name__}") from e
            try:
                start = time.perf_counter()
                for _ in range(steps):
                    result = call()
                    _wait(result)
                wall = (time.perf_counter() - start) / steps
            finally:
                tf.profiler.experimental.stop()
        ops = _read_trace(logdir, steps)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    scope_of = scope_of or (lambda name: name.split("/")[0] if "/" in name else "(top level)")
    groups: dict[str, list] = {}
    for op in ops:
        op.group = scope_of(op.name)
        entry = groups.setdefault(op.group, [0.0, 0])
        entry[0] += op.total_us
        entry[1] += 1
    ranked = sorted(((k, v[0], v[1]) for k, v in groups.items()), key=lambda g: -g[1])
    return Profile(ops, steps, wall * 1e6, ranked)


def _wait(result) -> None:
    """Wait for a call's tensors (a GPU runs ahead of Python): read one value back."""
    import tensorflow as tf

    for value in tf.nest.flatten(result, expand_composites=True):
        if hasattr(value, "numpy") and getattr(value, "dtype", None) != tf.resource:
            value.numpy()
            return


def _read_trace(logdir: str, steps: int) -> list[OpTime]:
    """The op events of the trace the profiler wrote, summed per op and divided by ``steps``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    if not files:
        raise ProfilerUnavailable("TensorFlow's profiler wrote no trace")
    totals: dict[tuple[str, str, str], list] = {}
    for path in files:
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            device = "CPU" if plane.name.startswith("/host:") else plane.name
            if not (plane.name.startswith("/host:CPU") or plane.name.startswith("/device:")):
                continue
            stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
            for line in plane.lines:
                if line.name == "python" or line.name.startswith("Trace"):
                    continue
                for event in line.events:
                    label = plane.event_metadata[event.metadata_id].name
                    if not _is_op(label):  # a device kernel names its op in a stat
                        label = next((s.str_value for s in event.stats
                                      if stat_names.get(s.metadata_id) == "tf_op" and s.str_value), "")
                        if not _is_op(label):
                            continue
                    name, _, kind = label.partition(":")
                    entry = totals.setdefault((name, kind, device), [0, 0])
                    entry[0] += 1
                    entry[1] += event.duration_ps / 1e6
    ops = [OpTime(name, kind, device, count / steps, micros / steps)
           for (name, kind, device), (count, micros) in totals.items()]
    return sorted(ops, key=lambda op: -op.total_us)


def _is_op(label: str) -> bool:
    return ":" in label and not any(mark in label for mark in _NOT_OPS) and not label.startswith(":")


#: Op types that write a variable (their first input is the variable's handle).


class VariablesKept:
    """Put back the variables a graph writes once the profiled calls are done.

    Profiling runs the function again and again: a cell's ``steps.assign_add(1)`` or an optimizer's
    update would otherwise move the notebook's variables on by every measured call.

    Args:
        graph: the traced ``FuncGraph``.
    """

    def __init__(self, graph):
        written = set()
        self._scan(graph, written)
        by_handle = {}
        for variable in getattr(graph, "variables", ()) or ():
            try:
                by_handle[id(variable.handle)] = variable
            except (AttributeError, ValueError):  # a distributed variable: not put back
                continue
        internal = {inner.op.name: outer for outer, inner in getattr(graph, "captures", ())}
        self.variables = [by_handle[id(internal[name])] for name in written
                          if name in internal and id(internal[name]) in by_handle]
        self._saved: list = []

    def _scan(self, graph, written: set) -> None:
        for op in graph.get_operations():
            if op.type.startswith(VARIABLE_WRITES) and op.inputs:
                written.add(op.inputs[0].op.name)

    def __enter__(self):
        import numpy

        # Host copies, outside TensorFlow's allocators: a measured call (--memory) sees the bytes a plain call sees.
        self._saved = [(v, numpy.array(v.numpy())) for v in self.variables]
        return self

    def __exit__(self, *exc):
        import tensorflow as tf

        for variable, value in self._saved:
            try:  # a buffer of TensorFlow's allocator, as the variable had: a tensor made from a NumPy array may
                with tf.device(variable.device):  # share the array's memory, and the optimizer's next in-place
                    value = tf.raw_ops.DeepCopy(x=value)  # update would copy it (more bytes, a higher peak)
            except (tf.errors.OpError, TypeError, ValueError):
                pass
            variable.assign(value)
        return False


def zeros_for(spec, *, known: bool = False):
    """An argument that fits ``spec``: zeros of a ``TensorSpec``'s dtype and shape (unknown dimensions: 1), a
    ``tf.Variable`` of zeros for a ``VariableSpec`` (a variable argument); ``spec`` itself for anything else.
    ``known=True``: ``None`` unless ``spec`` is one of those, of a fully known shape (XLA compiles that shape)."""
    import tensorflow as tf

    is_variable = type(spec).__name__ == "VariableSpec"
    if not (isinstance(spec, tf.TensorSpec) or is_variable):
        return None if known else spec
    if known and not spec.shape.is_fully_defined():
        return None
    shape = [1 if d is None else d for d in (spec.shape.as_list() if spec.shape.rank is not None else [])]
    value = tf.zeros(shape, spec.dtype) if spec.dtype != tf.string else tf.fill(shape, "")
    if is_variable:
        with tf.init_scope():  # an eager variable, made once
            return tf.Variable(value, trainable=getattr(spec, "trainable", True))
    return value


def zeros_call(concrete) -> Callable[[], object]:
    """A call of a concrete function with :func:`zeros_for` each argument.

    ``%tfgraph FUNC --profile`` has no arguments of the user's to call FUNC with; the op times of
    most graphs depend on shapes, not values, and the report says what the calls were given.
    """
    import tensorflow as tf

    args, kwargs = concrete.structured_input_signature
    args = tf.nest.map_structure(zeros_for, args)
    kwargs = tf.nest.map_structure(zeros_for, kwargs)
    return lambda: concrete(*args, **kwargs)


def layer_grouper(layer_names: set[str]) -> Callable[[str], str]:
    """Group op names by Keras layer: the deepest name scope that is a layer's (``sequential_1/wide_1``).

    Keras names a layer's scope after the layer, with ``_N`` added to keep it unique; ops under no
    layer go by their first name scope.  A gradient op (``gradient_tape/...``) goes with its layer,
    marked ``(backward)``.

    The group is named by the layers' own names (``sequential/wide``, as their weights are).

    >>> group = layer_grouper({"sequential", "wide"})
    >>> group("sequential_1/wide_1/MatMul"), group("gradient_tape/sequential_1/wide_1/MatMul/MatMul")
    ('sequential/wide', 'sequential/wide (backward)')
    >>> group("sgd/Mul"), group("add")
    ('sgd', '(top level)')
    """
    from tfmagic.graph import layer_scope

    def group(name: str) -> str:
        parts = name.split("/")
        backward = parts[0] == "gradient_tape" and len(parts) > 1
        parts = parts[1:] if backward else parts
        parts = layer_scope("/".join(parts), layer_names).split("/")
        last = max((i for i, part in enumerate(parts[:-1]) if part in layer_names), default=-1)
        key = "/".join(parts[:last + 1]) if last >= 0 else (parts[0] if len(parts) > 1 else "(top level)")
        return f"{key} (backward)" if backward else key

    return group

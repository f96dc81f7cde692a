"""What a step costs in memory: one call of a traced function, replayed from the allocator's own events.

:func:`measure_memory` calls the function once to warm it up, resets the allocator's statistics
(``tf.config.experimental.reset_memory_stats``), reads the bytes in use, and calls it once more under
TensorFlow's profiler with the host tracer at level 2: the allocator then records a ``MemoryAllocation``
event for each buffer it hands out (the op that asked, its shape, dtype, output or temporary, the bytes in
use after it) and a ``MemoryDeallocation`` for each it takes back (by address).  Replaying those events in
order gives the curve of bytes in use across the step, its peak and the op at the peak, and which buffers
were live there.  oneDNN's CPU allocator (the default on x86) hands buffers under 256 KiB to a plain
``malloc`` that it neither counts nor records (``mkl_cpu_allocator.h``: ``kSmallAllocationsThreshold``): its
numbers are those of the larger buffers, and the report says so; the BFC allocator
(``TF_CPU_ALLOCATOR_USE_BFC=1``) and a GPU's count every buffer.

What the peak is made of: what was held before the call (the variables the function reads -- weights,
optimizer slots -- and its inputs, by the notebook's names; the rest of the notebook's tensors) and what
the step itself had live at the peak, largest first.  Where the allocator keeps no statistics (oneDNN off,
``TF_ENABLE_ONEDNN_OPTS=0``) :class:`NoMemoryStats` says so and how to turn them on.

"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from tfmagic.errors import TfMagicError
from tfmagic.vocabulary import CALL_NAME


class NoMemoryStats(TfMagicError):
    """The allocator of the device keeps no statistics: there is nothing to measure."""


#: oneDNN's CPU allocator hands buffers under this many bytes to ``malloc``, uncounted.
ONEDNN_SMALL = 256 * 1024

#: How to turn statistics on for the CPU when oneDNN's allocator is off.
CPU_STATS_HOW = ("set TF_CPU_ALLOCATOR_USE_BFC=1 in the environment before TensorFlow is imported (restart the "
                 "kernel), or leave oneDNN on (unset TF_ENABLE_ONEDNN_OPTS=0), whose allocator keeps them")


@dataclass
class Allocation:
    """One buffer the step's ops asked for.

    Attributes:
        op: the op that asked (its name in the graph that ran).
        bytes: what the allocator handed out (its rounding included).
        shape: the tensor's shape (``[512,1024]``), when the allocator knew it.
        dtype: its dtype (``float32``).
        region: ``output`` (an op's result) or ``temp`` (scratch space inside the op).
        start: the index of its event in the replay.
        end: the index of the event that freed it; ``None``: still held when the call ended.
        requested: what the op asked for (a BFC allocator hands out a whole free chunk when the rest would be
            too small to keep: ``bytes`` can be more).
    """

    op: str
    bytes: int
    shape: str
    dtype: str
    region: str
    start: int
    end: int | None = None
    requested: int = 0

    def live_at(self, index: int) -> bool:
        return self.start <= index and (self.end is None or self.end > index)


@dataclass
class Held:
    """Something held before the call: a variable or an input, by the notebook's name."""

    name: str
    bytes: int
    kind: str  # "weights", "other variables" (optimizer slots, counters), "input"
    shape: str = ""
    dtype: str = ""


@dataclass
class MemoryProfile:
    """One call's memory on a device, replayed.

    Attributes:
        device: ``CPU:0`` or ``GPU:0``.
        allocator: the allocator's name (``mklcpu``, ``bfc_cpu_allocator_for_gpu``, ``GPU_0_bfc``).
        before: bytes in use when the call started.
        peak: the allocator's peak during the call (``get_memory_info``).
        after: bytes in use when it had returned (its results still held).
        curve: bytes in use after each event, in order.
        allocations: the buffers the step's ops asked for, in order.
        peak_index: the event at the peak (``-1``: the allocator recorded none).
        held: what was held before the call, by name, largest first.
        freed: ``(event index, bytes)`` of each buffer held before the call that the call freed (an earlier
            call's temporary, say).
        counts_small: whether the allocator counts every buffer (oneDNN's CPU allocator counts those of
            :data:`ONEDNN_SMALL` bytes or more only).
    """

    device: str
    allocator: str
    before: int
    peak: int
    after: int
    curve: list[int] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    peak_index: int = -1
    held: list[Held] = field(default_factory=list)
    freed: list[tuple[int, int]] = field(default_factory=list)
    counts_small: bool = True

    @property
    def smallest_counted(self) -> int:
        """The smallest buffer the allocator counts (``0``: every one)."""
        return 0 if self.counts_small else ONEDNN_SMALL

    @property
    def replayed_peak(self) -> int:
        """The highest bytes in use the events show (the allocator's own counter at each event)."""
        return max(self.curve, default=self.before)

    @property
    def step_peak(self) -> int:
        """What the step added to the bytes held before it, at the peak."""
        return max(self.peak - self.before, 0)

    @property
    def peak_allocation(self) -> Allocation | None:
        """The allocation that reached the peak (or the last one recorded before it)."""
        found = [a for a in self.allocations if a.start <= self.peak_index]
        return found[-1] if found else None

    def live_at_peak(self) -> list[Allocation]:
        """The step's buffers live at the peak, largest first."""
        if self.peak_index < 0:
            return []
        return sorted((a for a in self.allocations if a.live_at(self.peak_index)), key=lambda a: -a.bytes)

    @property
    def freed_before_peak(self) -> int:
        """Bytes of the buffers held before the call that the call had freed by its peak."""
        return sum(size for index, size in self.freed if index <= self.peak_index)

    @property
    def small_at_peak(self) -> int:
        """Bytes the step held at the peak in buffers the allocator did not record one by one (the peak is what was
        held before, less what the call freed of it, plus the step's buffers live there)."""
        return max(self.peak - self.before + self.freed_before_peak - sum(a.bytes for a in self.live_at_peak()), 0)

    def by_op(self) -> dict[str, int]:
        """Op name -> bytes its allocations took in all (for filling a drawing)."""
        totals: dict[str, int] = {}
        for a in self.allocations:
            totals[a.op] = totals.get(a.op, 0) + a.bytes
        return totals


@dataclass
class OpMemory:
    """One op's allocations over the call (a row of the table)."""

    op: str
    allocated: int
    at_peak: int
    count: int
    shape: str
    dtype: str
    region: str
    group: str = ""
    line: str = ""


def op_rows(profile: MemoryProfile, group_of: Callable[[str], str] | None = None,
            line_of: Callable[[str], str] | None = None) -> list[OpMemory]:
    """The step's allocations summed per op, the largest at the peak first (then the largest in all)."""
    rows: dict[str, OpMemory] = {}
    live = {id(a) for a in profile.live_at_peak()}
    for a in profile.allocations:
        row = rows.get(a.op)
        if row is None:
            row = rows[a.op] = OpMemory(a.op, 0, 0, 0, a.shape, a.dtype, a.region,
                                        group_of(inner_name(a.op)) if group_of else "",
                                        line_of(a.op) if line_of else "")
        row.allocated += a.bytes
        row.count += 1
        row.at_peak += a.bytes if id(a) in live else 0
    return sorted(rows.values(), key=lambda r: (-r.at_peak, -r.allocated))


def grouped(rows: list[OpMemory], key: Callable[[OpMemory], str]) -> list[tuple[str, int, int, int]]:
    """``(group, bytes allocated, bytes live at the peak, ops)`` for the rows grouped by ``key``, largest first."""
    groups: dict[str, list[int]] = {}
    for row in rows:
        entry = groups.setdefault(key(row) or "(no line)", [0, 0, 0])
        entry[0] += row.allocated
        entry[1] += row.at_peak
        entry[2] += 1
    return sorted(((k, *v) for k, v in groups.items()), key=lambda g: (-g[2], -g[1]))


def memory_devices() -> list[str]:
    """The devices a call may allocate on: the first GPU, if any, and the CPU."""
    import tensorflow as tf

    gpus = [d.name.split("device:")[-1] for d in tf.config.list_logical_devices("GPU")]
    return gpus[:1] + ["CPU:0"]


def check_stats(device: str) -> None:
    """Raise :class:`NoMemoryStats` (with how to turn them on) if ``device``'s allocator keeps no statistics."""
    import tensorflow as tf

    try:
        tf.config.experimental.get_memory_info(device)
    except ValueError as e:
        how = CPU_STATS_HOW if device.startswith("CPU") else "its allocator is not TensorFlow's BFC allocator " \
                                                              "(TF_GPU_ALLOCATOR is set?)"
        raise NoMemoryStats(f"the allocator of {device} keeps no statistics, so there is no memory to show: {how}"
                            ) from e


def measure_memory(call: Callable[[], object], held: Callable[[], list[Held]] | None = None) -> MemoryProfile:
    """Call ``call`` once to warm it up, then once more measured (see the module's docstring).

    Args:
        call: runs the traced function once (its inputs bound).
        held: lists what was held before the call by name (variables and inputs; see :func:`held_by`).

    Returns:
        The profile of the device where the step's peak rose most (a GPU's, where the step ran there).

    Raises:
        NoMemoryStats: no device's allocator keeps statistics.
        profile.ProfilerUnavailable: the profiler could not start.
        Exception: whatever ``call`` raised (the profiler is stopped first).
    """
    import tensorflow as tf

    from tfmagic.profile import ProfilerUnavailable, _wait
    from tfmagic.quiet import filtered_fd2, is_profiler_line

    devices = []
    for device in memory_devices():
        try:
            check_stats(device)
            devices.append(device)
        except NoMemoryStats as e:
            last = e
    if not devices:
        raise last
    _wait(call())  # warm-up: a first call may trace, build kernels and allocate caches; its results are dropped
    before = {}
    for device in devices:
        tf.config.experimental.reset_memory_stats(device)
        before[device] = tf.config.experimental.get_memory_info(device)["current"]
    logdir = tempfile.mkdtemp(prefix="tfmagic-memory-")
    try:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2, python_tracer_level=0,
                                                           device_tracer_level=0)
        with filtered_fd2(is_profiler_line):  # the profiler's log of its session is tfmagic's, not the cell's
            try:
                tf.profiler.experimental.start(logdir, options=options)
            except (tf.errors.AlreadyExistsError, tf.errors.UnavailableError, AttributeError, RuntimeError) as e:
                raise ProfilerUnavailable("TensorFlow's profiler could not start: "
                                          f"{str(e).strip() or type(e).__name__}") from e
            try:
                result = call()
                _wait(result)
            finally:
                tf.profiler.experimental.stop()
        infos = {device: tf.config.experimental.get_memory_info(device) for device in devices}
        del result
        events = _read_events(logdir)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    device = max(devices, key=lambda d: (infos[d]["peak"] - before[d], d.startswith("GPU")))
    profile = replay(events.get(device, []), device, before[device], infos[device]["peak"], infos[device]["current"])
    profile.counts_small = not _onednn_cpu(device, profile.allocator)
    if held is not None:
        profile.held = held()
    return profile


def replay(events: list[dict], device: str, before: int, peak: int, after: int) -> MemoryProfile:
    """A :class:`MemoryProfile` from a device's events in order (see :func:`_read_events`)."""
    profile = MemoryProfile(device, events[0]["allocator_name"] if events else "", before, peak, after)
    open_at: dict[int, Allocation] = {}
    for index, event in enumerate(events):
        profile.curve.append(int(event.get("bytes_allocated", 0)))
        size = int(event.get("allocation_bytes") or event.get("requested_bytes") or 0)
        if event["kind"] == "MemoryAllocation":
            allocation = Allocation(event.get("tf_op") or "(outside ops)", size, event.get("shape") or "",
                                    _dtype_name(event.get("data_type")), event.get("region_type") or "", index,
                                    requested=int(event.get("requested_bytes") or size))
            profile.allocations.append(allocation)
            open_at[event.get("addr")] = allocation
        else:
            allocation = open_at.pop(event.get("addr"), None)
            if allocation is not None:
                allocation.end = index
            else:  # a buffer held before the call: an earlier call's temporary, say
                profile.freed.append((index, size))
    if profile.curve:
        top = max(profile.curve)
        profile.peak_index = profile.curve.index(top)
    return profile


def _onednn_cpu(device: str, allocator: str) -> bool:
    """Whether ``device``'s allocator is oneDNN's (``mklcpu``), which leaves buffers under 256 KiB uncounted: its
    name in the events, or (no event recorded) oneDNN on and the BFC allocator not asked for."""
    if not device.startswith("CPU"):
        return False
    if allocator:
        return allocator == "mklcpu"
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0" and os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "") \
        not in ("1", "true", "True")


def _dtype_name(number) -> str:
    import tensorflow as tf

    try:
        return tf.as_dtype(int(number)).name if number else ""
    except (TypeError, ValueError):
        return ""


def _device_of(allocator: str) -> str | None:
    """The device whose ``get_memory_info`` counts an allocator's bytes: ``GPU_0_bfc`` -> ``GPU:0``; the host's
    pinned memory for a GPU (``gpu_host_bfc``) is none of them; every other allocator is the CPU's."""
    if allocator.startswith("GPU_"):
        return "GPU:" + allocator.split("_")[1]
    if allocator.startswith(("gpu_host", "cuda_host")):
        return None
    return "CPU:0"


def _read_events(logdir: str) -> dict[str, list[dict]]:
    """The allocators' events in the trace the profiler wrote, by device, in time order."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from tfmagic.profile import ProfilerUnavailable

    files = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    if not files:
        raise ProfilerUnavailable("TensorFlow's profiler wrote no trace")
    timed: list[tuple[int, dict]] = []
    for path in files:
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/host:"):
                continue
            kinds = {k for k, v in plane.event_metadata.items() if v.name in ("MemoryAllocation", "MemoryDeallocation")}
            if not kinds:
                continue
            names = {k: v.name for k, v in plane.stat_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    if event.metadata_id not in kinds:
                        continue
                    stats = {"kind": plane.event_metadata[event.metadata_id].name}
                    for stat in event.stats:
                        which = stat.WhichOneof("value")
                        stats[names.get(stat.metadata_id, "")] = (
                            names.get(stat.ref_value, "") if which == "ref_value" else getattr(stat, which))
                    timed.append((line.timestamp_ns * 1000 + event.offset_ps, stats))
    timed.sort(key=lambda t: t[0])
    by_device: dict[str, list[dict]] = {}
    for _, stats in timed:
        device = _device_of(str(stats.get("allocator_name", "")))
        if device is not None:
            by_device.setdefault(device, []).append(stats)
    return by_device


def held_by(graph, variable_names: dict[int, str], inputs: dict[str, object]) -> Callable[[], list[Held]]:
    """What a traced function holds before it is called: the variables it reads, by the notebook's names
    (``naming.VariableNames.by_handle``), and its inputs by name, largest first."""

    def held() -> list[Held]:
        import tensorflow as tf

        found: list[Held] = []
        seen: set[int] = set()
        for variable in getattr(graph, "variables", ()) or ():
            try:
                handle = variable.handle
            except (AttributeError, ValueError):  # a distributed variable
                continue
            if id(handle) in seen:
                continue
            seen.add(id(handle))
            name = variable_names.get(id(handle)) or getattr(variable, "path", None) or variable.name.split(":")[0]
            kind = "weights" if variable.trainable else "other variables"
            found.append(Held(name, _nbytes(variable), kind, _shape(variable.shape), variable.dtype.name))
        for name, value in inputs.items():
            if isinstance(value, (tf.Tensor, tf.Variable)) or hasattr(value, "nbytes"):
                found.append(Held(name, _nbytes(value), "input", _shape(value.shape), _dtype_of(value)))
        return sorted(found, key=lambda h: -h.bytes)

    return held


def _nbytes(value) -> int:
    import tensorflow as tf

    if hasattr(value, "nbytes") and not isinstance(value, (tf.Tensor, tf.Variable)):
        return int(value.nbytes)
    count = value.shape.num_elements()
    return int(count or 0) * (value.dtype.size if value.dtype != tf.string else 0)


def _shape(shape) -> str:
    try:
        return "[" + ",".join("?" if d is None else str(d) for d in list(shape)) + "]"
    except (TypeError, ValueError):
        return "[?]"


def _dtype_of(value) -> str:
    dtype = getattr(value, "dtype", None)
    return getattr(dtype, "name", str(dtype) if dtype is not None else "")


#: An op that calls a function: the ops the call runs are named under it (``StatefulPartitionedCall/gradient_tape/...``).


def inner_name(name: str) -> str:
    """An op's name inside the functions calls ran it in: ``StatefulPartitionedCall/mlp_1/fc1_1/MatMul`` ->
    ``mlp_1/fc1_1/MatMul`` (what a layer's name scope, and the backward pass's, are read from)."""
    parts = name.split("/")
    while len(parts) > 1 and CALL_NAME.match(parts[0]):
        parts = parts[1:]
    return "/".join(parts)


def _graphs(graph, limit: int = 200) -> list:
    """A traced graph and the graphs of the functions it runs (loop bodies, branches, called tf.functions)."""
    found, queue, seen = [], [graph], set()
    while queue and len(found) < limit:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        for function in list(getattr(current, "_functions", {}).values()):
            inner = getattr(function, "graph", None)
            if inner is not None:
                queue.append(inner)
    return found


def line_finder(graph, filename: str | None = None, line_offset: int = 0, source: str = "") -> Callable[[str], str]:
    """Op name -> the user's line that made it (``line 6: opt.apply_gradients(...)``), or ``""``.

    For a ``%%tfgraph`` cell, ``filename`` is the cell's generated source (its line ``k + line_offset`` is the
    cell's line ``k``, ``source`` its text); otherwise the line is the innermost frame of the user's own code
    (``graph._user_line``: a notebook cell or a file), read through ``linecache``.  An op a called tf.function ran
    (``StatefulPartitionedCall/...``, in an epoch's loop, say) is named by the call's line and its own line in the
    function: ``line 3: loss = train_step(xb, yb) > line 5: grads = tape.gradient(...)``.
    """
    import linecache

    from tfmagic.diagnostics import op_line
    from tfmagic.graph import _user_line

    cell_lines = source.splitlines()
    graphs = _graphs(graph)
    found: dict[str, str] = {}

    def op_named(name: str):
        for candidate in graphs:
            try:
                return candidate.get_operation_by_name(name)
            except (KeyError, ValueError):
                continue
        return None

    def cell_line(number: int | None) -> str:
        return f"line {number}: {cell_lines[number - 1].strip()}" if number and 0 < number <= len(cell_lines) else ""

    def one_line(name: str, innermost: bool = False) -> str:
        """The cell's line that made the op (else the user's innermost frame); ``innermost``: the user's innermost
        frame first (inside a called function, whose ops were traced from the cell's line)."""
        op = op_named(name)
        if op is None:
            return ""
        text = "" if innermost else cell_line(op_line(op, filename, line_offset) if filename else None)
        where = _user_line(op) if not text else None
        if where is not None and where[0] == filename:
            text = cell_line(where[1] - line_offset)
        elif where is not None:
            text = f"line {where[1]}: {linecache.getline(where[0], where[1]).strip()}".rstrip(": ")
        return text

    def line_of(name: str) -> str:
        if name not in found:
            parts = name.split("/")
            call = next((i for i, part in enumerate(parts[:-1]) if CALL_NAME.match(part)), None)
            if call is None:
                text = one_line(name)
            else:  # the call's line, then the line inside the function it called
                inner = one_line("/".join(parts[call + 1:]), innermost=True)
                text = " > ".join(t for t in (one_line("/".join(parts[:call + 1])), inner) if t)
            found[name] = text if len(text) <= 90 else text[:87] + "..."
        return found[name]

    return line_of


#: What ``--memory`` measured lately, for the out-of-memory report: (pattern of the failing function in an error's
#: message, what was measured, its bytes at the peak by line), the latest last.
_REMEMBERED: list[tuple[re.Pattern, str, list[tuple[str, int]]]] = []


def remember(pattern: str, what: str, rows: list[OpMemory]) -> None:
    """Keep what a measured call had at its peak by line (the largest three), for an out-of-memory error whose
    message matches ``pattern`` (the cell's generated file, or the function's name: another trace of it too)."""
    lines = [(line, at_peak) for line, _, at_peak, _ in grouped(rows, lambda r: r.line) if at_peak][:3]
    _REMEMBERED[:] = [entry for entry in _REMEMBERED if entry[0].pattern != pattern][-15:]
    _REMEMBERED.append((re.compile(pattern), what, lines))


def recalled(message: str) -> tuple[str, list[tuple[str, int]]] | None:
    """What ``--memory`` last measured of the function an error's message names: ``(what, [(line, bytes)])``."""
    for pattern, what, lines in reversed(_REMEMBERED):
        if pattern.search(message):
            return what, lines
    return None


def function_pattern(concrete) -> str:
    """The pattern of a concrete function's name in an op error (``[Op:__inference_step_123]``), any trace of it."""
    name = concrete.name.decode() if isinstance(concrete.name, bytes) else str(concrete.name)
    return re.escape("[Op:" + re.sub(r"_\d+$", "_", name)) + r"\d+\]"


def cell_pattern(filename: str) -> str:
    """The pattern of a ``%%tfgraph`` cell's generated file in an op error's frames (the same text, any trace)."""
    return re.escape(f'"{filename}"')

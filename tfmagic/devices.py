"""Devices: names, the table of what is visible, pins, strategies, and the placement log.

Everything here works without IPython: :class:`DevicePin` and :class:`StrategyScope`
are context managers entered and exited by the magics around cells;
:func:`capture_placement` reads TensorFlow's placement log, which C++ writes to
file descriptors 1 and 2 where a notebook never sees it (tensorflow/tensorflow#53424).

>>> normalize_device("gpu")
'/GPU:0'
>>> normalize_device("tpu:1")
'/TPU:1'
>>> normalize_device("/job:localhost/replica:0/task:0/device:CPU:0")
'/job:localhost/replica:0/task:0/device:CPU:0'
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field

import tensorflow as tf

from tfmagic.errors import OptionError, TfMagicError

_SHORT = re.compile(r"^(cpu|gpu|tpu)(?::(\d+))?$", re.IGNORECASE)


def normalize_device(name: str) -> str:
    """``cpu`` -> ``/CPU:0``, ``gpu:1`` -> ``/GPU:1``; a full device name stays as it is.

    Raises:
        OptionError: not a device name.
    """
    text = name.strip()
    m = _SHORT.match(text)
    if m:
        return f"/{m.group(1).upper()}:{m.group(2) or 0}"
    try:
        spec = tf.DeviceSpec.from_string(text)
    except (ValueError, TypeError) as e:
        raise OptionError(f"{name!r} is not a device: use cpu, gpu[:N], tpu[:N] or a full device name") from e
    if not spec.device_type:
        raise OptionError(f"{name!r} names no device type: use cpu, gpu[:N], tpu[:N] or a full device name")
    return text


def _same_device(wanted: str, available: str) -> bool:
    a, b = tf.DeviceSpec.from_string(wanted), tf.DeviceSpec.from_string(available)
    if a.device_type and a.device_type.upper() != (b.device_type or "").upper():
        return False
    if a.device_index is not None and a.device_index != b.device_index:
        return False
    for attr in ("job", "replica", "task"):
        if getattr(a, attr) is not None and getattr(a, attr) != getattr(b, attr):
            return False
    return True


def logical_devices() -> list[str]:
    """The logical devices TensorFlow can place ops on (``/device:CPU:0``, ...)."""
    return [d.name for d in tf.config.list_logical_devices()]


def find_device(name: str) -> str | None:
    """The visible logical device that ``name`` (normalised) stands for, or ``None``."""
    wanted = normalize_device(name)
    return next((d for d in logical_devices() if _same_device(wanted, d)), None)


def check_device(name: str) -> str:
    """The normalised name of a device that is there.

    Raises:
        OptionError: naming the devices that are there.
    """
    wanted = normalize_device(name)
    if find_device(wanted) is None:
        raise OptionError(f"no device {wanted} here; the devices are: {', '.join(logical_devices())}")
    return wanted


# ---------------------------------------------------------------------------
# The table of devices


@dataclass
class DeviceRow:
    """One device: ``physical`` or ``logical``, its type and name, and its memory where TensorFlow reports it."""

    kind: str
    device_type: str
    name: str
    memory: str = ""


def device_rows() -> list[DeviceRow]:
    """Every physical and logical device, with memory where TensorFlow reports it."""
    rows = []
    for device in tf.config.list_physical_devices():
        details = {}
        try:
            details = tf.config.experimental.get_device_details(device) or {}
        except (ValueError, RuntimeError):  # no details for this kind of device
            pass
        memory = ""
        if device.device_type == "GPU":
            memory = details.get("device_name", "")
        rows.append(DeviceRow("physical", device.device_type, device.name, memory))
    for device in tf.config.list_logical_devices():
        memory = ""
        if device.device_type in ("GPU", "TPU"):
            try:
                info = tf.config.experimental.get_memory_info(device.name)
                memory = f"{info['current'] / 2**20:.1f} MiB in use, peak {info['peak'] / 2**20:.1f} MiB"
            except (ValueError, RuntimeError):  # not reported for this device
                pass
        rows.append(DeviceRow("logical", device.device_type, device.name, memory))
    return rows


# ---------------------------------------------------------------------------
# Pins and strategies


class _CellScope:
    """A context entered before a cell and exited after it; exiting twice (or unentered) is harmless."""

    def __init__(self):
        self._context = None

    def _make(self):
        raise NotImplementedError

    def enter(self) -> None:
        if self._context is None:
            context = self._make()
            context.__enter__()
            self._context = context

    def exit(self) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(None, None, None)


class DevicePin(_CellScope):
    """``tf.device(name)`` around each cell."""

    def __init__(self, device: str, soft: bool = False, log: bool = False):
        super().__init__()
        self.device = device
        self.soft = soft
        self.log = log

    def _make(self):
        return tf.device(self.device)


class StrategyScope(_CellScope):
    """A ``tf.distribute`` strategy's scope around each cell."""

    def __init__(self, strategy, label: str):
        super().__init__()
        self.strategy = strategy
        self.label = label

    def _make(self):
        return self.strategy.scope()


def make_strategy(kind: str, devices: tuple[str, ...] = ()) -> StrategyScope:
    """A ``tf.distribute`` strategy: ``mirrored`` (over local devices), ``multiworker`` or ``tpu``.

    Raises:
        OptionError: an unknown kind, a device that is not there, or no TPU to connect to.
    """
    kind = kind.lower()
    if kind == "mirrored":
        names = [check_device(d) for d in devices] or None
        strategy = tf.distribute.MirroredStrategy(devices=names)
        shown = ", ".join(strategy.extended.worker_devices)
        return StrategyScope(strategy, f"MirroredStrategy over {shown}")
    if kind == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return StrategyScope(strategy, f"MultiWorkerMirroredStrategy ({strategy.num_replicas_in_sync} replicas)")
    if kind == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise OptionError(f"no TPU to connect to ({first}); the devices here are: "
                              f"{', '.join(logical_devices())}") from e
        return StrategyScope(tf.distribute.TPUStrategy(resolver), "TPUStrategy")
    raise OptionError(f"--strategy {kind!r}: choose mirrored, multiworker, tpu or off")


def split_cpu(count: int) -> list[str]:
    """Configure ``count`` logical CPU devices (before TensorFlow initialises its devices).

    Raises:
        OptionError: a count below 1.
        TfMagicError: TensorFlow has initialised its devices already.
    """
    if count < 1:
        raise OptionError(f"--split-cpu {count}: N must be 1 or more")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:
        current = len(tf.config.list_logical_devices("CPU"))
        if current == count:
            return logical_devices()
        raise TfMagicError(
            f"too late to split the CPU: TensorFlow initialised its devices already ({current} logical CPU"
            f"{'s' if current != 1 else ''}); restart the kernel and run %tfdevice --split-cpu {count} before "
            "anything else runs a TensorFlow op") from e
    return logical_devices()


# ---------------------------------------------------------------------------
# Where things are


def placement_of(namespace_changes: dict) -> list[tuple[str, str]]:
    """``(name, device)`` for the tensors and variables among the names a cell bound."""
    out = []
    for name, value in namespace_changes.items():
        device = None
        if isinstance(value, tf.Variable) or tf.is_tensor(value):
            device = getattr(value, "device", None)
        elif hasattr(value, "values") and hasattr(value, "_device_map") or type(value).__name__.startswith(
                ("Mirrored", "Distributed", "SyncOnRead")):
            devices = [getattr(v, "device", "") for v in getattr(value, "values", ())]
            device = ", ".join(d for d in devices if d) or None
        if device:
            out.append((name, device))
    return out


_EAGER_LINE = re.compile(r"Executing op (\S+) in device (\S+)")
_PLACER_LINE = re.compile(r"^(?:.*placer\.cc:\d+\] )?(\S+): \((\w+)\): (/\S+)$")


@dataclass
class PlacementLog:
    """What TensorFlow's placement log said while a cell ran.

    Attributes:
        ops: ``(op, op type, device)`` in the order TensorFlow logged them.
        other: what else the process wrote to fd 1 and 2 meanwhile (passed on to the user).
    """

    ops: list[tuple[str, str, str]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def parse_placement(text: str) -> PlacementLog:
    """Split captured output into placement lines and everything else.

    >>> log = parse_placement("x: (_Arg): /job:localhost/replica:0/task:0/device:CPU:0\\nhello\\n")
    >>> log.ops, log.other
    ([('x', '_Arg', '/job:localhost/replica:0/task:0/device:CPU:0')], ['hello'])
    """
    log = PlacementLog()
    for line in text.splitlines():
        eager = _EAGER_LINE.search(line)
        placed = _PLACER_LINE.match(line.strip())
        if eager:
            log.ops.append((eager.group(1), eager.group(1), eager.group(2)))
        elif placed:
            log.ops.append((placed.group(1), placed.group(2), placed.group(3)))
        elif line.strip():
            log.other.append(line)
    return log


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush: nothing was buffered there
        pass


class PlacementCapture:
    """Where a cell's ops ran, until :meth:`stop`.

    Two sources: every eager op (a ``tf.function`` call counts as one) reports,
    through an op callback, the device its outputs were made on; and TensorFlow's
    own placement log, which C++ writes to fd 1 and 2 (caught there), adds the
    ops inside functions.  TensorFlow honours ``set_log_device_placement`` only if
    it is set before its context starts, so that second source may be silent.
    """

    def __init__(self):
        self._saved = None
        self._sink = None
        self._eager: list[tuple[str, str, str]] = []

    def _record(self, op_type, inputs, attrs, outputs, op_name=None, graph=None):
        if graph is None and outputs:
            device = getattr(outputs[0], "device", "") or ""
            self._eager.append((op_name or op_type, op_type, device))
        return None

    def start(self) -> None:
        if self._saved is not None:
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.flush()
        _flush_c_stdio()
        from tensorflow.python.framework import op_callbacks

        self._sink = tempfile.TemporaryFile(mode="w+b")
        self._saved = (os.dup(1), os.dup(2))
        os.dup2(self._sink.fileno(), 1)
        os.dup2(self._sink.fileno(), 2)
        self._eager = []
        op_callbacks.add_op_callback(self._record)
        tf.debugging.set_log_device_placement(True)

    def stop(self) -> PlacementLog:
        if self._saved is None:
            return PlacementLog()
        from tensorflow.python.framework import op_callbacks

        op_callbacks.remove_op_callback(self._record)
        tf.debugging.set_log_device_placement(False)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError):
                stream.flush()
        _flush_c_stdio()  # the placer prints with C's buffered stdout
        out, err = self._saved
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        self._saved = None
        self._sink.seek(0)
        text = self._sink.read().decode("utf-8", "replace")
        self._sink.close()
        log = parse_placement(text)
        log.ops = self._eager + log.ops
        return log

"""Keep C-level chatter out of the user's cells: what a library writes to file descriptor 2.

Two sources write there, below Python's ``sys.stderr``, where a notebook shows it in the cell's output:

- TensorFlow, while it is imported and finds its devices, logs lines about its build and this machine
  (``cudart_stub.cc ... Could not find cuda drivers``, ``cuda_platform.cc ... failed call to cuInit``,
  ``oneDNN custom operations are on``, the CPU instructions it was not built for). They print before
  ``TF_CPP_MIN_LOG_LEVEL`` takes effect, and they say nothing about the user's code. When
  ``%load_ext tfmagic`` is what imports TensorFlow, :func:`import_tensorflow` leaves exactly these
  lines out and passes on everything else. Set ``TFMAGIC_STARTUP_LOG=1`` to see them (on a machine
  whose GPU TensorFlow does not find, they say why). A TensorFlow imported before the extension, and
  anything TensorFlow logs later (the user's warnings and errors), is left alone.
- Graphviz's bundled fontconfig warns about the system's configuration files (``engine.py``).
- An allocator that runs out of memory writes its state (bins, chunks, hundreds of lines): a magic's run
  (:func:`filtered_fd2`) and a plain cell (:class:`CellFd2Filter`) keep it out and hand it to the
  out-of-memory report (``oom.py``); a magic's run also keeps out TensorFlow's log lines below
  ``TF_CPP_MIN_LOG_LEVEL``, which TensorFlow 2.15's XLA prints through absl regardless (:func:`below_log_level`),
  and TensorFlow's profiler's log of the sessions ``--profile`` and ``--memory`` start.

And one Python log: TensorFlow warns of a deprecated *argument* (``from_generator(..., output_types=...)``)
only while it builds a graph. The user's plain cell runs eagerly and never sees it; tfmagic's own trace
of the cell would show it. :func:`graph_only_deprecations` keeps those out of the traces tfmagic makes
(and leaves TensorFlow's warn-once memory as it was, so the user's own ``tf.function`` still warns), the
and the warning that ``Dataset.options()`` was read in a graph (``experimental_distribute_dataset`` reads it).
(TensorFlow's frequent-retracing warning about the cell's own function, which would name tfmagic's internal
``_tfgraph_cell``, is turned off on that function: ``tracing.CellFunction``; tfmagic says why the cell retraced.)

>>> is_tensorflow_startup_line("I0000 00:00:1796068461.362197   21359 cudart_stub.cc:31] Could not find cuda drivers")
True
>>> is_tensorflow_startup_line("E0000 00:00:1.0  1 op_kernel.cc:1]  OP_REQUIRES failed: Incompatible shapes")
False
>>> is_tensorflow_startup_line("2026-12-07 18:09:29.291550: I external/local_tsl/tsl/cuda/cudart_stub.cc:31] Could not")
True
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable

#: The allocator's state it writes to fd 2 when it runs out (``bfc_allocator.cc``), and the lines TensorFlow logs
#: with the same error (``op_kernel.cc``, ``local_rendezvous.cc``).
_DUMP_LINE = re.compile(r"bfc_allocator\.cc|RESOURCE_EXHAUSTED|^\s*(Bin \(|Chunk at|Free at|InUse at|Sum Total of|"
                        r"\d+ Chunks of size|Stats:|Limit:|InUse:|MaxInUse:|NumAllocs:|MaxAllocSize:|Reserved:|"
                        r"PeakReserved:|LargestFreeBlock:|Current allocation summary follows|If the cause is memory "
                        r"fragmentation|Next region of size|\[\[\{\{node |Hint: If you want to see a list of "
                        r"allocated tensors|\*+$|_+[_*]*$)")

#: TensorFlow's sources of start-up lines (absl's format: ``I0000 time thread file.cc:line] message``).
_STARTUP_SOURCES = ("port.cc", "cudart_stub.cc", "cpu_feature_guard.cc", "cuda_platform.cc", "cuda_executor.cc",
                    "cuda_diagnostics.cc", "cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc", "dso_loader.cc",
                    "gpu_device.cc", "computation_placer.cc", "py_utils.cc")  # py_utils.cc: TF-TRT's warning
_ABSL_LINE = re.compile(r"^(?P<severity>[IWE])\d{4} [\d:.]+\s+\d+ (?P<source>[\w.]+):\d+\]")
#: TensorFlow 2.15-2.19 log start-up in their own format: ``2026-12-07 18:09:29.287043: I path/port.cc:113] ...``.
_TF_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+: (?P<severity>[IWE]) (?:[\w.-]*/)*(?P<source>[\w.]+):\d+\]")
_STARTUP_TEXT = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                 "To enable the following instructions:")

_lock = threading.Lock()

#: The message of TensorFlow's deprecated-argument warning, which it logs only while building a graph
#: (``tensorflow/python/util/deprecation.py``, ``deprecated_args``).
_GRAPH_ONLY_DEPRECATION = "From %s: calling %s (from %s) with %s is deprecated"


#: TensorFlow's warning when ``Dataset.options()`` is read in a graph (``dataset_ops.py``): a plain cell reads it
#: eagerly, without the warning.
_GRAPH_ONLY_OPTIONS = "To make it possible to preserve tf.data options across serialization boundaries"


#: TensorFlow's profiler logs each session it starts and stops (and warns of its own options' types).
_PROFILER_SOURCES = ("session_manager.cc", "profiler_session.cc", "save_profile.cc")


def is_profiler_line(line: str) -> bool:
    """Whether a line is the profiler's own log of a session tfmagic started (``--profile``, ``--memory``).

    >>> is_profiler_line("I0000 00:00:1796677933.727169   20274 profiler_session.cc:117] Profiler session started.")
    True
    """
    match = _ABSL_LINE.match(line) or _TF_LINE.match(line)
    return bool(match) and match.group("source") in _PROFILER_SOURCES


def below_log_level(line: str, level: int | None = None) -> bool:
    """Whether a line is one of TensorFlow's log lines below ``TF_CPP_MIN_LOG_LEVEL`` (0: all, 1: no info, 2: no
    warnings, 3: no errors; or ``level``), or absl's banner before such a line: TensorFlow 2.15's XLA logs through
    absl before its log level applies (``Compiled cluster using XLA!``); a magic's run keeps them out as TensorFlow
    means to.

    >>> below_log_level("I0000 00:00:1.5  28186 device_compiler.h:186] Compiled cluster using XLA!", level=1)
    True
    >>> below_log_level("W0000 00:00:1.5  28186 device_compiler.h:186] Slow", level=1)
    False
    """
    if level is None:
        try:
            level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
        except ValueError:
            return False
    if line.startswith(_STARTUP_TEXT[0]):
        return level >= 1
    match = _ABSL_LINE.match(line) or _TF_LINE.match(line)
    return bool(match) and "IWE".index(match.group("severity")) < level


def is_allocator_dump(line: str) -> bool:
    """Whether a line written to fd 2 is part of the allocator's out-of-memory dump."""
    return bool(_DUMP_LINE.search(line))


def is_cell_noise(line: str) -> bool:
    """What a magic's run keeps out of its cell: an allocator's out-of-memory dump (read for the report:
    ``oom.py``) and TensorFlow's log lines below ``TF_CPP_MIN_LOG_LEVEL``."""
    return is_allocator_dump(line) or below_log_level(line)


def is_tensorflow_startup_line(line: str) -> bool:
    """Whether a line is one of TensorFlow's start-up log lines (see the module's docstring)."""
    match = _ABSL_LINE.match(line) or _TF_LINE.match(line)
    if match:
        return match.group("source") in _STARTUP_SOURCES
    return line.startswith(_STARTUP_TEXT)


class _Sink:
    """The file :func:`filtered_fd2` points fd 2 at: one for the session, emptied after each use; and, per thread,
    the drops of the blocks open (the outermost block catches, the inner ones add what they drop)."""

    file = None
    inside = threading.local()


@contextlib.contextmanager
def filtered_fd2(drop: Callable[[str], bool]):
    """Catch what is written to file descriptor 2 inside the block; pass on every line ``drop`` does not, and yield a
    list that holds the dropped lines once the block ends.

    One file serves the session, read only when something was written: a magic's run pays a few microseconds.
    Inside another such block, ``drop`` joins the outer block's, which catches (the inner list stays empty).
    """
    dropped: list[str] = []
    drops = getattr(_Sink.inside, "drops", None)
    if drops is not None:
        drops.append(drop)
        yield dropped
        return
    with _lock:
        if _Sink.file is None:
            _Sink.file = tempfile.TemporaryFile(mode="w+b")
        sink = _Sink.file
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        _Sink.inside.drops = [drop]
        try:
            yield dropped
        finally:
            drops, _Sink.inside.drops = _Sink.inside.drops, None
            os.dup2(saved, 2)
            os.close(saved)
            if os.fstat(sink.fileno()).st_size:
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace")
                sink.seek(0)
                sink.truncate()
                kept = []
                for line in text.splitlines():
                    if line.strip():
                        (dropped if any(d(line) for d in drops) else kept).append(line)
                data = "".join(line + "\n" for line in kept).encode()
                while data:  # where fd 2 went before the block: a kernel that sends fd 2 to the cell does so
                    data = data[os.write(2, data):]


class CellFd2Filter:
    """Each plain cell's fd 2 through a pipe whose reader passes every line on at once, except the lines ``drop``
    tells (the allocator's out-of-memory dump), which it keeps in :attr:`dropped` for the cell's report.

    ``start`` and ``stop`` are the ``pre_run_cell`` and ``post_run_cell`` hooks (a cell run inside a cell runs under
    the outer one's filter): they point fd 2 at the pipe and back, a few microseconds; one reader thread serves the
    session (:meth:`close` ends it), writing to whatever fd 2 was when the cell started.  In a Jupyter kernel, whose
    ``sys.stderr`` reads fd 2 through its own pipe and sends it to the cell, the reader writes to ``sys.stderr``
    itself (and to the kernel's terminal, as the kernel does), so that the line is the running cell's output.
    """

    def __init__(self, drop: Callable[[str], bool]):
        self.drop = drop
        self.dropped: list[str] = []
        self._depth = 0
        self._saved: int | None = None  # fd 2 as the cell found it, while the cell runs
        self._target: int | None = None  # where the reader writes: a copy of fd 2 as the last cell found it
        self._pipe: tuple[int, int] | None = None
        self._lock = threading.Lock()  # held while a chunk is passed on, and while fd 2's target changes
        self._stream = None  # a Jupyter kernel's sys.stderr (ipykernel's OutStream), which the reader writes to
        self._owned = False  # whether _target is this filter's own copy (closed when replaced)

    def start(self, *_) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        try:
            if self._pipe is None:
                self._pipe = os.pipe()
                threading.Thread(target=self._pass_on, args=(self._pipe[0],), daemon=True, name="tfmagic-fd2").start()
            saved = os.dup(2)
            target = os.dup(2)
        except OSError:  # no fd 2 to filter (a closed stderr): the cell runs as it would
            return
        # A kernel that sends fd 2 to the cell keeps a copy of its terminal's fd, where it echoes fd 2 (its own fd)
        echo = getattr(sys.stderr, "_original_stdstream_copy", None)
        stream = sys.stderr if type(sys.stderr).__module__.startswith("ipykernel") and echo is not None else None
        with self._lock:
            old = self._target if self._owned else None
            if stream is not None:
                self._target, self._owned = echo, False
                os.close(target)
            else:
                self._target, self._owned = target, True
            self._stream = stream
            self.dropped = []
        if old is not None:
            os.close(old)
        self._saved = saved
        os.dup2(self._pipe[1], 2)

    def stop(self, *_) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth or self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None
        self.settle()

    def settle(self) -> None:
        """Pass on what the cell wrote that the reader has not (so that it shows in this cell's output, not the next
        one's): under the lock the reader holds while it passes a chunk on, what is left in the pipe is read here."""
        if self._pipe is None:
            return
        with self._lock:
            chunk = _available(self._pipe[0])
            if chunk:
                self._pass(chunk)

    def close(self) -> None:
        """Put fd 2 back (if a cell is running) and end the reader (once it has passed on what the pipe holds)."""
        self._depth = 1
        self.stop()
        if self._pipe is not None:
            os.close(self._pipe[1])  # the reader sees the pipe's end, passes the rest on, and closes its side
            self._pipe = None

    def _pass_on(self, read: int) -> None:
        """The reader: wait for data (without the lock), then take what the pipe holds and pass it on (with it)."""
        import select

        os.set_blocking(read, False)
        try:
            while True:
                select.select([read], [], [])
                with self._lock:
                    chunk = _available(read)
                    if chunk == b"":  # the pipe's end
                        break
                    if chunk:
                        self._pass(chunk)
        except (OSError, ValueError):
            pass
        finally:
            os.close(read)
            with self._lock:
                if self._target is not None and self._owned:
                    os.close(self._target)
                self._target = None

    def _pass(self, chunk: bytes) -> None:
        """A chunk's complete lines filtered, a part line passed on as it is (a log line comes in one write; a
        progress bar's ``\\r`` part does not wait for its newline).  Called with the lock held."""
        out = []
        kept: list[str] = []
        *lines, rest = chunk.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace")
            if text.strip() and self.drop(text):
                kept.append(text)
            else:
                out.append(line + b"\n")
        if kept:  # the dump's blank lines go with it
            out = [line for line in out if line.strip()]
        if rest:
            out.append(rest)
        data = b"".join(out)
        self.dropped.extend(kept)
        if data and self._stream is not None:
            self._stream.write(data.decode("utf-8", "replace"))
        while data and self._target is not None:
            data = data[os.write(self._target, data):]


def _available(read: int) -> bytes | None:
    """What a non-blocking pipe holds now: ``None`` if nothing, ``b""`` at its end."""
    chunks = []
    while True:
        try:
            chunk = os.read(read, 65536)
        except BlockingIOError:
            break
        if not chunk:
            return b"".join(chunks) if chunks else b""
        chunks.append(chunk)
    return b"".join(chunks) if chunks else None


def import_tensorflow() -> None:
    """Import TensorFlow and find its devices, leaving its start-up lines out (unless TFMAGIC_STARTUP_LOG=1)."""
    if "tensorflow" in sys.modules or os.environ.get("TFMAGIC_STARTUP_LOG") == "1":
        return
    with filtered_fd2(is_tensorflow_startup_line):
        import tensorflow as tf

        tf.config.list_physical_devices()  # the cuInit line comes now, not in the user's first cell


class _GraphOnlyDeprecations:
    """A logging filter that drops the deprecated-argument warnings logged while the graph being built is the
    cell's own (not a ``tf.function`` of the user's that the cell calls), noting which (function, argument)."""

    def __init__(self):
        self.dropped: set[tuple[str, str]] = set()

    def filter(self, record) -> bool:
        import tensorflow as tf

        from tfmagic.cell import cell_graph

        if isinstance(record.msg, str) and record.msg.startswith(_GRAPH_ONLY_DEPRECATION) and len(record.args) > 3 \
                and cell_graph(tf.compat.v1.get_default_graph()) is not None:
            self.dropped.add((record.args[1], record.args[3]))
            return False
        return True


@contextlib.contextmanager
def graph_only_deprecations():
    """Inside the block (tfmagic tracing a cell), TensorFlow's graph-only deprecation warnings about the cell's
    own code are left out."""
    from tensorflow.python.platform import tf_logging
    from tensorflow.python.util import decorator_utils, deprecation

    logger = tf_logging.get_logger()
    dropped = _GraphOnlyDeprecations()
    logger.addFilter(dropped)
    before = set(deprecation._PRINTED_WARNING)
    try:
        with warnings.catch_warnings():  # dataset.options() read while tracing (a distributed dataset reads it)
            warnings.filterwarnings("ignore", message=_GRAPH_ONLY_OPTIONS, category=UserWarning)
            yield
    finally:
        logger.removeFilter(dropped)
        for key in set(deprecation._PRINTED_WARNING) - before:  # warn-once: as if never warned
            if isinstance(key, tuple) and len(key) == 2 and \
                    (decorator_utils.get_qualified_name(key[0]), key[1]) in dropped.dropped:
                del deprecation._PRINTED_WARNING[key]

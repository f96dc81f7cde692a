"""What a user asked a magic for, as frozen records: the magics (``magics/``) parse their option lines into these,
and the core reads nothing else (no argparse ``Namespace`` goes past the magics).

- :class:`GraphRequest`: a ``%%tfgraph`` cell or ``%tfgraph FUNC`` -- what to show, how to draw it
  (:class:`DrawOptions`), a profile, a memory measurement, the files to write; a cell's function is built by its
  :class:`FunctionOptions`.
- :class:`TapeOptions`: what a ``%%tape`` cell differentiates and how.

To add an option to a magic: its ``@argument`` in ``magics/``, a field here, and the line in the magic that fills it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What ``%%tfgraph --show`` and ``%tfgraph FUNC --show`` take.
SHOWS = ("graph", "text", "code", "optimized", "diff", "xla", "hlo", "none")


@dataclass(frozen=True)
class DrawOptions:
    """How every magic and the explorer draw a graph: the view, how much of it, and the file ``-o`` writes.

    Attributes:
        ops: ``readable`` (the user's program: see ``readable.py``) or ``all`` (every op).
        max_nodes: the most nodes to draw (larger graphs are collapsed by scope, then cut, with a note).
        depth: draw collapsed by name scope, this many levels deep.
        expand: name scopes (globs) to open one level further than ``depth``.
        budget: seconds a large layout may take (``engine.LAYOUT_BUDGET`` by default).
        output: ``-o FILE``: the drawing is also written there, in the format its extension names.
        keras: the notebook's Keras models and layers (``naming.KerasNames``): the first view draws a model as its
            layers and a layer as one node.
    """

    ops: str = "readable"
    max_nodes: int | None = None
    depth: int | None = None
    expand: tuple[str, ...] = ()
    budget: float | None = None
    output: str | None = None
    keras: object = None

    @property
    def readable(self) -> bool:
        return self.ops == "readable"

    @property
    def formats(self) -> tuple[str, ...]:
        """What to render besides the inline SVG: the format of ``-o FILE``."""
        from tfmagic.engine import file_format

        return (file_format(self.output),) if self.output else ()


@dataclass(frozen=True)
class FunctionOptions:
    """How a ``%%tfgraph`` cell's ``tf.function`` is built (``--jit``, ``--reduce-retracing``, ``--no-autograph``)."""

    jit_compile: bool = False
    reduce_retracing: bool = False
    autograph: bool = True


@dataclass(frozen=True)
class GraphRequest:
    """What a ``%%tfgraph`` cell or a ``%tfgraph FUNC`` line asks for.

    Attributes:
        show: ``--show``: one of :data:`SHOWS`.
        draw: ``--ops``, ``--max-nodes``, ``--depth``, ``--expand``, ``-o FILE`` (the Keras names are the core's).
        profile: ``--profile N``: calls to profile (``None``: no profile).
        memory: ``--memory``: measure one more call's memory.
        tensorboard: ``--tensorboard LOGDIR``.
        name: ``-n NAME`` (a cell): the function's name in the notebook, and the cell's key in the cache.
        function: how a cell's ``tf.function`` is built.
        max_traces: ``--max-traces N`` (a cell).
        target: ``FUNC`` as typed (the line form; empty for a cell).
        trace: ``--trace N`` (the line form): the trace drawn first.
        diff: ``--diff A B`` (the line form).
    """

    show: str = "graph"
    draw: DrawOptions = DrawOptions()
    profile: int | None = None
    memory: bool = False
    tensorboard: str | None = None
    name: str | None = None
    function: FunctionOptions = FunctionOptions()
    max_traces: int | None = None
    target: str = ""
    trace: int | None = None
    diff: tuple[int, int] | None = None

    @property
    def output(self) -> str | None:
        return self.draw.output

    @property
    def draws(self) -> bool:
        """Whether a cell's run draws its trace (``--show graph`` or ``optimized``, or a file to write)."""
        return self.show in ("graph", "optimized") or bool(self.draw.output)


@dataclass(frozen=True)
class TapeOptions:
    """What ``%%tape`` differentiates and how.

    Attributes:
        target: a name or expression (``None``: the cell's last expression).
        wrt: source names or expressions (``None``: every variable the cell read, and the watched names).
        watch: names of tensors to watch (constants are not recorded otherwise).
        persistent: keep the tape for several gradients.
        jacobian: also compute ``tape.jacobian`` of the target with respect to each source.
        hessian: also compute second derivatives (nested tapes).
        watch_accessed_variables: let the tape watch every trainable variable the cell reads (``False``:
            only what ``watch`` names, as ``tf.GradientTape(watch_accessed_variables=False)``).
        unconnected_zero: a disconnected source's gradient is zeros (``tf.UnconnectedGradients.ZERO``),
            not ``None``; its row still says why it is disconnected.
        draw: how ``--show graph`` / ``-o FILE`` draws the gradient graph (``None``: it is not drawn).
    """

    target: str | None = None
    wrt: tuple[str, ...] | None = None
    watch: tuple[str, ...] = ()
    persistent: bool = False
    jacobian: bool = False
    hessian: bool = False
    watch_accessed_variables: bool = True
    unconnected_zero: bool = False
    draw: DrawOptions | None = None

    @property
    def unconnected(self):
        import tensorflow as tf

        return tf.UnconnectedGradients.ZERO if self.unconnected_zero else tf.UnconnectedGradients.NONE

"""One trace, modelled once: the labelled graph model every view of a trace reads.

A :class:`TraceView` holds a traced ``FuncGraph`` with what names it (the function it is a trace of, whether it is a
``%%tfgraph`` cell's, the notebook's names of its variables) and builds, on first use and once, the user's names
in it (``naming.trace_labels``: the one labelling path), its graph model (``graph.build_graph_model``) in each view
(readable or every op), and the model of the graph after Grappler, labelled by the trace's output names (Grappler
keeps them).  The text view, the drawing, the diff, Grappler's view, XLA's, the profile's and memory's tables and
the explorer all read these models; ``render.py`` draws models only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfmagic.engine import gc_paused


@dataclass(eq=False)
class TraceView:
    """A trace and its models, each built once.

    Attributes:
        graph: the trace's ``FuncGraph``.
        function: the ``tf.function`` it is a trace of (its Python function names loops' and calls' variables).
        cell: whether it is a ``%%tfgraph`` cell's function (its outputs are the names the cell binds).
        autograph: whether AutoGraph converted the function (``--no-autograph``: no loop variables to name).
        variable_names: the notebook's names of variables, by ``id`` of their handles (``naming.VariableNames``).
        number: the trace's number (1 for the first).
        reason: what made it (``first trace``, ``x: float32[8] -> float32[9]``).
        readable: the view asked for (``--ops readable``, else every op): the one a profile's shapes read.
    """

    graph: Any
    function: Any = None
    cell: bool = False
    autograph: bool = True
    variable_names: dict = field(default_factory=dict)
    number: int = 1
    reason: str = ""
    readable: bool = True
    _labels: dict = field(default_factory=dict, repr=False)
    _models: dict = field(default_factory=dict, repr=False)

    def labels(self, readable: bool = True) -> dict[str, str]:
        """The user's names in the trace, as every drawing of it labels them (``naming.trace_labels``)."""
        if readable not in self._labels:
            from tfmagic.naming import trace_labels

            self._labels[readable] = trace_labels(self.graph, self.function, self.cell, readable, self.autograph)
        return self._labels[readable]

    def model(self, readable: bool = True):
        """The trace's graph model, labelled for the readable view or for every op (``--ops all``)."""
        if readable not in self._models:
            from tfmagic.graph import build_graph_model

            with gc_paused():
                self._models[readable] = build_graph_model(self.graph, labels=self.labels(readable),
                                                           variable_names=self.variable_names)
        return self._models[readable]

    def optimized(self):
        """``(grappler.Optimized, its model or None)``: the graph after Grappler, labelled by the trace's output
        names (which Grappler keeps)."""
        if "optimized" not in self._models:
            from tfmagic.graph import build_graph_model
            from tfmagic.grappler import optimize

            result = optimize(self.graph)
            model = None
            if result.graph is not None:
                with gc_paused():
                    model = build_graph_model(result.graph, labels=self.labels(readable=False),
                                              variable_names=self.variable_names)
            self._models["optimized"] = (result, model)
        return self._models["optimized"]

    def shapes(self) -> dict[str, str]:
        """Each op's output dtypes and shapes (``float32[8,4]``), by op name: a profile's table column."""
        model = self._models.get(self.readable) or self.model(self.readable)
        return {name: ", ".join(t.label for t in op.outputs) for name, op in model.ops.items()}

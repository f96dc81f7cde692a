"""Hand-made graph models for the fast tests: what ``build_graph_model`` would read from a traced graph,
written out op by op, with no TensorFlow.

>>> g = Graph()
>>> x = g.input("x")
>>> y = g.op("mul", "Mul", x, g.const("mul/y", "2.0"))
>>> model = g.build(g.output("Identity", y, label="y"))
>>> list(model.ops), model.inputs, model.outputs
(['x', 'mul/y', 'mul', 'Identity'], ['x'], ['Identity'])
"""

from __future__ import annotations

from tfmagic.graph import Edge, GraphModel, Op, TensorInfo


def tensor(shape=(2,), dtype: str = "float32") -> TensorInfo:
    """A tensor's dtype and shape (``None`` for an unknown rank)."""
    return TensorInfo(dtype, None if shape is None else tuple(shape))


class Graph:
    """Ops added in the order TensorFlow would make them; each reads the ops named, in input order."""

    def __init__(self, name: str = "f"):
        self.name = name
        self.ops: dict[str, Op] = {}
        self.edges: list[Edge] = []
        self.inputs: list[str] = []

    def op(self, name: str, type_: str, *reads: str, kind: str = "op", shape=(2,), dtype: str = "float32",
           outputs: int = 1, tensors: list | None = None, **fields) -> str:
        """Add an op with ``outputs`` outputs of ``dtype[shape]`` (a NoOp has none), or the ``tensors`` given,
        reading output 0 of each op in ``reads``; return its name."""
        tensors = list(tensors) if tensors is not None else [tensor(shape, dtype)] * outputs
        self.ops[name] = Op(name, type_, kind, tensors, **fields)
        for index, src in enumerate(reads):
            self.edges.append(Edge(src, name, self.ops[src].outputs[0] if self.ops[src].outputs else None,
                                   dst_index=index))
        return name

    def input(self, name: str, shape=(2,), dtype: str = "float32", **fields) -> str:
        self.inputs.append(name)
        return self.op(name, "Placeholder", kind="input", shape=shape, dtype=dtype, **fields)

    def variable(self, name: str, label: str = "", **fields) -> str:
        """A variable's captured handle (``resource``), named ``label`` as the notebook names it."""
        self.inputs.append(name)
        return self.op(name, "Placeholder", kind="variable", shape=(), dtype="resource", label=label, **fields)

    def const(self, name: str, value: str, shape=(), dtype: str = "float32") -> str:
        """A small constant, its value shown as ``build_graph_model`` writes it (``2.0``, ``[1, 0]``)."""
        return self.op(name, "Const", kind="constant", shape=shape, dtype=dtype, detail=value)

    def output(self, name: str, read: str, label: str = "", **fields) -> str:
        """An output of the function (an ``Identity``), named ``label`` as the cell names it."""
        source = self.ops[read].outputs[0]
        return self.op(name, "Identity", read, kind="output", shape=source.shape, dtype=source.dtype, label=label,
                       **fields)

    def edge(self, src: str, dst: str, src_index: int = 0, dst_index: int = 0) -> None:
        """A tensor from output ``src_index`` of ``src`` to input ``dst_index`` of ``dst``."""
        self.edges.append(Edge(src, dst, self.ops[src].outputs[src_index], src_index, dst_index=dst_index))

    def control(self, src: str, dst: str) -> None:
        """A control dependency: ``src`` runs before ``dst``."""
        self.edges.append(Edge(src, dst, None))

    def build(self, *outputs: str) -> GraphModel:
        """The model, its outputs (in order) the ``outputs`` named."""
        return GraphModel(self.name, self.ops, self.edges, list(self.inputs), sorted(outputs),
                          [(name, 0) for name in outputs])

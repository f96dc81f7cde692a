"""What a retrace changed, as a drawing: two traces of a function merged into one graph model.

:func:`diff_models` lays the new trace over the one it was compared with: ops only in the new trace
are marked ``added``, ops only in the earlier one ``removed`` (drawn from the earlier trace, with
their edges), and every edge whose dtype or shape changed carries the earlier label
(``float32[2] -> float32[3]``).  Ops are matched by name, as TensorFlow names them the same way
each time the same code is traced.  The drawing (``dot.py``) highlights the marks, and the readable
view keeps marked ops even where nothing reads them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from tfmagic.graph import GraphModel


@dataclass
class DiffCounts:
    """How many ops were added and removed, and how many edges changed dtype or shape."""

    added: int
    removed: int
    changed: int

    @property
    def text(self) -> str:
        if not (self.added or self.removed or self.changed):
            return "the two traces have the same ops and tensors"
        parts = [f"{n} {what}" for n, what in ((self.added, "ops added"), (self.removed, "ops removed"),
                                               (self.changed, "edges changed dtype or shape")) if n]
        return ", ".join(parts)


def diff_models(old: GraphModel, new: GraphModel) -> tuple[GraphModel, DiffCounts]:
    """The new trace with what changed since ``old`` marked (see the module's docstring).

    Function bodies (``While``/``If``) are compared too, body by body.
    """
    ops = {}
    for name, op in new.ops.items():
        mine = copy.copy(op)
        mine.operands = list(op.operands)
        earlier = old.ops.get(name)
        if earlier is None or earlier.type != op.type:
            mine.mark = "added"
        mine.subgraphs = []
        for label, sub in op.subgraphs:
            before = next((s for l, s in earlier.subgraphs if l == label), None) if earlier is not None else None
            mine.subgraphs.append((label, diff_models(before, sub)[0] if before is not None else sub))
        ops[name] = mine
    removed = {}
    for name, op in old.ops.items():
        if name not in new.ops or new.ops[name].type != op.type:
            gone = copy.copy(op)
            gone.mark = "removed"
            gone.subgraphs = []
            key = name if name not in ops else f"{name} (trace before)"
            removed[name] = key
            ops[key] = gone
    before = {(e.src, e.src_index, e.dst, e.dst_index): e for e in old.edges}
    edges, changed = [], 0
    for edge in new.edges:
        mine = copy.copy(edge)
        earlier = before.get((edge.src, edge.src_index, edge.dst, edge.dst_index))
        if earlier is not None and earlier.tensor and edge.tensor and earlier.tensor.label != edge.tensor.label:
            mine.change = earlier.tensor.label
            changed += 1
        edges.append(mine)
    for edge in old.edges:  # the removed ops' own edges, from the earlier trace
        if edge.src in removed or edge.dst in removed:
            gone = copy.copy(edge)
            gone.src, gone.dst = removed.get(edge.src, edge.src), removed.get(edge.dst, edge.dst)
            if gone.src in ops and gone.dst in ops:
                gone.change = "removed"
                edges.append(gone)
    added = sum(1 for op in ops.values() if op.mark == "added")
    model = GraphModel(new.name, ops, edges, new.inputs, new.outputs, new.output_tensors)
    return model, DiffCounts(added, len(removed), changed)

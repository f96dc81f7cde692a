"""What a retrace changed: one diff of two traces, told in words and drawn.

:func:`match_ops` pairs each op of the new trace with the op it is in the earlier trace by structure,
never by name alone: TensorFlow renames the same code's ops from one trace to the next (``sgd`` ->
``sgd_1``, ``cond_true_30`` -> ``cond_true_76``), so names cannot say what is the same.  An op's
structure is its type, kind, output dtypes and, recursively, the structure of what it reads (which
input of which op); a control-flow op's structure holds its bodies'.  Ops are paired in three passes:
the same structure; then the same type and the same name once TensorFlow's ``_N`` counters are taken
out; then the same type reading the same (paired) ops.  What stays unpaired was added or removed.

:func:`diff_graphs` counts that in words (:class:`GraphDiff`: ``the same ops, 2 shapes changed``);
:func:`diff_models` lays it over the new trace for the drawing: ops only in the new trace are marked
``added``, ops only in the earlier one ``removed`` (drawn from the earlier trace, with their edges),
and every edge whose dtype or shape changed carries the earlier label (``float32[2] -> float32[3]``).
Both read the same pairing, so the words and the drawing never disagree.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from tfmagic.graph import GraphModel, Overlay

#: TensorFlow's counters in names: ``sgd_1/Identity``, ``cond_true_76``, ``while/body/_12``.
_COUNTER = re.compile(r"(_\d+)+(?=/|$)")


def _plain_name(name: str) -> str:
    return _COUNTER.sub("", name)


def _structure_keys(model: GraphModel) -> dict[str, int]:
    """Op name -> a hash of its structure (see the module's docstring); names play no part."""
    inputs: dict[str, list] = {name: [] for name in model.ops}
    for edge in model.edges:
        if not edge.control and edge.dst in inputs:
            inputs[edge.dst].append((edge.dst_index, edge.src, edge.src_index))
    position = {name: i for i, name in enumerate(model.inputs)}
    keys: dict[str, int] = {}

    def key(name: str, depth: int = 0) -> int:
        if name in keys:
            return keys[name]
        op = model.ops[name]
        keys[name] = 0  # a cycle (never in a traced function graph) ends here
        reads = []
        for index, src, src_index in sorted(inputs[name]):
            reads.append((index, key(src, depth + 1) if src in model.ops and depth < 500 else src, src_index))
        bodies = tuple((label, tuple(sorted(_structure_keys(sub).values()))) for label, sub in op.subgraphs)
        place = _plain_name(name) if op.kind == "constant" else None  # a constant's place: its value may change
        keys[name] = hash((op.type, op.kind, tuple(t.dtype for t in op.outputs), position.get(name), place,
                           tuple(reads), bodies))
        return keys[name]

    for name in model.ops:
        key(name)
    return keys


def match_ops(old: GraphModel, new: GraphModel) -> dict[str, str]:
    """New op name -> the name of the op it is in the earlier trace (ops without one are new)."""
    old_keys, new_keys = _structure_keys(old), _structure_keys(new)
    pairs: dict[str, str] = {}
    taken: set[str] = set()

    def pair(index: dict, key_of) -> None:
        for name in new.ops:
            if name in pairs:
                continue
            candidates = index.get(key_of(name, new))
            while candidates:
                candidate = candidates.pop(0)
                if candidate not in taken:
                    pairs[name] = candidate
                    taken.add(candidate)
                    break

    def index_of(key_of) -> dict:
        index: dict = {}
        for name in old.ops:
            if name not in taken:
                index.setdefault(key_of(name, old), []).append(name)
        return index

    by_structure = lambda name, model: (old_keys if model is old else new_keys)[name]  # noqa: E731
    by_place = lambda name, model: (model.ops[name].type, _plain_name(name))  # noqa: E731
    pair(index_of(by_structure), by_structure)
    pair(index_of(by_place), by_place)
    # the same type reading the same ops (its name and what is above it changed)
    new_reads: dict[str, list] = {n: [] for n in new.ops}
    for edge in new.edges:
        if not edge.control and edge.dst in new_reads:
            new_reads[edge.dst].append((edge.dst_index, pairs.get(edge.src, "?" + edge.src), edge.src_index))
    old_reads: dict[str, list] = {n: [] for n in old.ops}
    for edge in old.edges:
        if not edge.control and edge.dst in old_reads:
            old_reads[edge.dst].append((edge.dst_index, edge.src, edge.src_index))
    by_reads = lambda name, model: (model.ops[name].type,  # noqa: E731
                                    tuple(sorted((new_reads if model is new else old_reads)[name])) or name)
    pair(index_of(by_reads), by_reads)
    return pairs


@dataclass
class GraphDiff:
    """What a retrace changed in the graph: ops added and removed, outputs whose dtype or shape changed,
    constants whose value changed (each as a short text: ``MatMul matmul``, ``a: float32[32,8] -> float32[6,8]``)."""

    added: list[str]
    removed: list[str]
    reshaped: list[str]
    constants: list[str]
    constant_dtypes: list[str] = field(default_factory=list)  # the changed constants' dtypes, in order
    retyped: list[str] = field(default_factory=list)  # outputs whose dtype changed (reshaped: shape only)

    @property
    def text(self) -> str:
        if self.added or self.removed:
            parts = [f"{sign}{len(ops)} {'op' if len(ops) == 1 else 'ops'} ({_some(ops)})"
                     for sign, ops in (("+", self.added), ("-", self.removed)) if ops]
        else:
            parts = ["the same ops"]
        if self.retyped:
            parts.append(f"{len(self.retyped)} {'dtype' if len(self.retyped) == 1 else 'dtypes'} changed "
                         f"({_some(self.retyped)})")
        if self.reshaped:
            parts.append(f"{len(self.reshaped)} {'shape' if len(self.reshaped) == 1 else 'shapes'} changed "
                         f"({_some(self.reshaped)})")
        if self.constants:
            parts.append(f"{len(self.constants)} {'constant' if len(self.constants) == 1 else 'constants'} changed "
                         f"({_some(self.constants)})")
        if len(parts) == 1 and parts[0] == "the same ops":
            return "the same ops and shapes"
        return ", ".join(parts)


def _some(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", ... {len(items) - n} more" if len(items) > n else "")


def diff_graphs(old: GraphModel, new: GraphModel) -> GraphDiff:
    """The words of a retrace's diff (bodies of control flow compared body by body)."""
    pairs = match_ops(old, new)
    paired = set(pairs.values())
    diff = GraphDiff([f"{op.type} {op.label or op.name}" for name, op in new.ops.items() if name not in pairs],
                     [f"{op.type} {op.label or op.name}" for name, op in old.ops.items() if name not in paired],
                     [], [])
    for name, earlier_name in pairs.items():
        op, earlier = new.ops[name], old.ops[earlier_name]
        label = op.label or (op.detail if op.kind == "input" and op.detail else name)
        if op.outputs and earlier.outputs and op.outputs[0].dtype != earlier.outputs[0].dtype:
            diff.retyped.append(f"{label}: {earlier.outputs[0].label} -> {op.outputs[0].label}")
        elif op.outputs and earlier.outputs and op.outputs[0].label != earlier.outputs[0].label:
            diff.reshaped.append(f"{label}: {earlier.outputs[0].label} -> {op.outputs[0].label}")
        elif op.kind == "constant" and op.detail != earlier.detail:
            diff.constants.append(f"{earlier.detail} -> {op.detail}")
            diff.constant_dtypes += [t.dtype for t in op.outputs[:1]]
        for label_, sub in op.subgraphs:
            before = next((s for l, s in earlier.subgraphs if l == label_), None)
            if before is not None:
                inner = diff_graphs(before, sub)
                for kept, more in ((diff.added, inner.added), (diff.removed, inner.removed),
                                   (diff.reshaped, inner.reshaped), (diff.retyped, inner.retyped),
                                   (diff.constants, inner.constants),
                                   (diff.constant_dtypes, inner.constant_dtypes)):
                    kept += more
    return diff


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
        parts = [f"{n} {one if n == 1 else many}" for n, one, many in (
            (self.added, "op added", "ops added"), (self.removed, "op removed", "ops removed"),
            (self.changed, "edge changed dtype or shape", "edges changed dtype or shape")) if n]
        return ", ".join(parts)


def diff_models(old: GraphModel, new: GraphModel) -> tuple[GraphModel, DiffCounts]:
    """The new trace with what changed since ``old`` marked (see the module's docstring).

    Function bodies (``While``/``If``) are compared too, body by body.
    """
    pairs = match_ops(old, new)
    paired = set(pairs.values())
    ops = {}
    overlay = Overlay()
    body_counts: list[DiffCounts] = []
    for name, op in new.ops.items():
        mine = copy.copy(op)
        mine.operands = list(op.operands)
        earlier = old.ops.get(pairs[name]) if name in pairs else None
        if earlier is None:
            overlay.diff[name] = "added"
        mine.subgraphs = []
        for label, sub in op.subgraphs:
            before = next((s for l, s in earlier.subgraphs if l == label), None) if earlier is not None else None
            if before is None:
                mine.subgraphs.append((label, sub))
                continue
            drawn, inner = diff_models(before, sub)
            mine.subgraphs.append((label, drawn))
            body_counts.append(inner)  # what changed inside a loop's or branch's body counts too
        ops[name] = mine
    removed = {}
    for name, op in old.ops.items():
        if name not in paired:
            gone = copy.copy(op)
            gone.subgraphs = []
            key = name if name not in ops else f"{name} (trace before)"
            gone.name = key  # the node's own name (an op of the new trace may have the old one's)
            overlay.diff[key] = "removed"
            removed[name] = key
            ops[key] = gone
    before = {(e.src, e.src_index, e.dst, e.dst_index): e for e in old.edges}
    edges, changed = [], 0
    for edge in new.edges:
        mine = copy.copy(edge)
        earlier = before.get((pairs.get(edge.src), edge.src_index, pairs.get(edge.dst), edge.dst_index))
        if earlier is not None and earlier.tensor and edge.tensor and earlier.tensor.label != edge.tensor.label:
            mine.change = earlier.tensor.label
            changed += 1
        edges.append(mine)
    new_name = {old_name: name for name, old_name in pairs.items()}
    for edge in old.edges:  # the removed ops' own edges, from the earlier trace
        if edge.src in removed or edge.dst in removed:
            gone = copy.copy(edge)
            gone.src = removed.get(edge.src) or new_name.get(edge.src, edge.src)
            gone.dst = removed.get(edge.dst) or new_name.get(edge.dst, edge.dst)
            if gone.src in ops and gone.dst in ops:
                gone.change = "removed"
                edges.append(gone)
    added = sum(1 for mark in overlay.diff.values() if mark == "added")
    model = GraphModel(new.name, ops, edges, new.inputs, new.outputs, new.output_tensors, overlay)
    inner = [sum(getattr(c, what) for c in body_counts) for what in ("added", "removed", "changed")]
    return model, DiffCounts(added + inner[0], len(removed) + inner[1], changed + inner[2])

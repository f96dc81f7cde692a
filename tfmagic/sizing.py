"""How much of a graph a drawing holds: large graphs drawn at the level the user wrote them, or collapsed by name
scope, then cut, with a note.

:func:`fit` decides the view.  In the readable view, a graph with a Keras model, a large call, more than
:data:`COLLAPSE_ABOVE` ops or too tall for a notebook is drawn at the program's level (``levels.py``: a model as
its layers, a loss, a gradient, an optimizer's update, a call one node each); ``--depth`` (and every view of every
op) collapses by name scope (:func:`collapse`: one node per scope that deep), opened where ``--expand`` globs say;
a view that still has more than ``--max-nodes`` nodes is collapsed further, then cut (:func:`cut`), and the note
under the drawing says what was left out.  :func:`coarser` gives the views to fall back to when a drawing is
still wider than a notebook.
"""

from __future__ import annotations

import dataclasses

from tfmagic.graph import Edge, GraphModel, Op, scope_matches
from tfmagic.levels import height, needs_folding, program_view

#: How many nodes a drawing holds unless ``--max-nodes`` says otherwise.
DEFAULT_MAX_NODES = 500


#: Graphs with more ops than this start collapsed by name scope (small graphs are drawn whole).
COLLAPSE_ABOVE = 150


def _group_key(name: str, depth: int, expand: tuple[str, ...]) -> str:
    """The collapsed node an op belongs to: its scope ``depth`` levels deep, opened further where
    ``expand`` globs match (``dense_1``, ``conv*``, ``block3/*``; Keras's ``_N`` may be left out)."""
    parts = name.split("/")
    level = depth
    while level < len(parts) and any(scope_matches("/".join(parts[:level]), g) for g in expand):
        level += 1
    return "/".join(parts[:level]) if len(parts) > level else name


def _fed_op(op: Op, ops: dict) -> str | None:
    """The op a variable, input or constant is named after (Keras 2 reads a weight in its op's own scope:
    ``hidden/MatMul/ReadVariableOp/resource`` feeds ``hidden/MatMul``), or ``None``: it is no scope of its own."""
    if op.kind not in ("input", "variable", "constant"):
        return None
    parts = op.name.split("/")
    return next((prefix for prefix in ("/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
                 if prefix in ops), None)


def collapse(model: GraphModel, depth: int = 1, expand: tuple[str, ...] = ()) -> GraphModel:
    """One node per name scope, ``depth`` levels deep (deeper inside scopes matching ``expand``);
    ops outside any scope stay as they are, and a control-flow op or call that ``expand`` names keeps
    its function bodies.

    Edges between scopes are kept once, with the dtype and shape of a tensor crossing them;
    control dependencies and function bodies are left out.
    """
    group: dict[str, str] = {}
    members: dict[str, list[Op]] = {}
    for op in model.ops.values():
        key = _group_key(op.name, depth, expand)
        owner = _fed_op(op, model.ops)
        if owner is not None:  # drawn with the op it feeds: as itself beside it, or in the node that holds it
            owner_key = _group_key(owner, depth, expand)
            key = op.name if owner_key == owner else owner_key
        group[op.name] = key
        members.setdefault(key, []).append(op)
    ops: dict[str, Op] = {}
    for key, inside in members.items():
        if len(inside) == 1 and inside[0].name == key:
            only = inside[0]
            # A control-flow op or call named by --expand keeps its function bodies, drawn collapsed too.
            bodies = [(label, collapse(sub, depth, expand)) for label, sub in only.subgraphs] if any(
                scope_matches(only.name, g) for g in expand) else []
            ops[key] = dataclasses.replace(only, subgraphs=bodies)
        else:
            kinds = {op.kind for op in inside}
            count = len(inside) + sum(sub.total_ops() for op in inside for _, sub in op.subgraphs)
            kind = "variable" if kinds == {"variable"} else "scope"
            ops[key] = Op(key, f"{count} op{'s' if count != 1 else ''}", kind, [], inside[0].device, f"scope {key}")
    seen: set[tuple[str, str]] = set()
    edges = []
    for edge in model.edges:
        src, dst = group.get(edge.src), group.get(edge.dst)
        if edge.control or src is None or dst is None or src == dst or (src, dst) in seen:
            continue
        seen.add((src, dst))
        edges.append(Edge(src, dst, edge.tensor, edge.src_index))
    inputs = list(dict.fromkeys(group[n] for n in model.inputs if n in group))
    outputs = list(dict.fromkeys(group[n] for n in model.outputs if n in group))
    return GraphModel(model.name, ops, edges, inputs, outputs, overlay=model.overlay)


#: A drawing expected taller than this (points, about two screens) starts collapsed by name scope, where
#: that leaves at most half the nodes: one sees the layers first, and --expand opens them.
TALL = 2000

#: A model is drawn as its layers while the drawing stays this tall (about fifty layers in a column): a long scroll
#: through layers in the order the data flows reads better than a node hiding them; ResNet-50's 177 do not.
MODEL_TALL = 2 * TALL


def _tall_enough_to_collapse(model: GraphModel) -> int:
    """The expected height when the expanded drawing is taller than :data:`TALL` and collapsing by name
    scope leaves at most half the nodes; else 0."""
    tall = height(model)
    if tall <= TALL:
        return 0
    collapsed = collapse(model, _first_branching_depth(model))
    return tall if 1 < len(collapsed.ops) <= len(model.ops) // 2 else 0


def cut(model: GraphModel, max_nodes: int) -> GraphModel:
    """The first ``max_nodes`` ops (in the order they were made), the edges among them, no function bodies."""
    kept = {}
    for name, op in model.ops.items():
        if len(kept) >= max_nodes:
            break
        kept[name] = dataclasses.replace(op, subgraphs=[])
    edges = [e for e in model.edges if e.src in kept and e.dst in kept]
    return GraphModel(model.name, kept, edges, [n for n in model.inputs if n in kept],
                      [n for n in model.outputs if n in kept], overlay=model.overlay)


def _first_branching_depth(model: GraphModel, deepest: int = 4) -> int:
    """The shallowest scope depth with more than one scope: a Keras model's layers sit under its own name."""
    for depth in range(1, deepest + 1):
        keys = {_group_key(op.name, depth, ()) for op in model.ops.values() if op.name.count("/") >= depth}
        if len(keys) > 1:
            return depth
    return 1


def fit(model: GraphModel, max_nodes: int = DEFAULT_MAX_NODES, depth: int | None = None,
        expand: tuple[str, ...] = (), total: int | None = None, program: bool = False,
        keras=None) -> tuple[GraphModel, str]:
    """A model small enough to draw in reasonable time, and a note of what was summarised or left out.

    With ``program`` (the readable view), a graph with a Keras model or a large call, one of more than
    :data:`COLLAPSE_ABOVE` ops, or one too tall for a notebook, is drawn at the program's level
    (``levels.program_view``; ``keras``, a ``naming.KerasNames``, tells its models from its layers), ``expand``
    opening it further; other graphs come back whole.  Without it (every op), and with ``depth``, a graph of more
    than :data:`COLLAPSE_ABOVE` ops or too tall starts collapsed by name scope, ``depth`` / ``expand`` opening it.
    What does not fit in ``max_nodes`` is collapsed further, then cut, with a note of how much was left out.
    ``total`` is the size of the graph TensorFlow traced, when ``model`` is a simplified view of it (the readable
    view): whether a graph starts folded depends on TensorFlow's op count, in every view.
    """
    total = model.total_ops() if total is None else total
    tall = 0
    if depth is None and not expand and total <= COLLAPSE_ABOVE:
        tall = _tall_enough_to_collapse(model)
    if program and depth is None and (expand or total > COLLAPSE_ABOVE or tall or needs_folding(model, keras)):
        view, note, _ = program_fit(model, total, expand, max_nodes, keras=keras, tall=tall)
        if view is not None:
            return view, note
    if depth is not None or expand or total > COLLAPSE_ABOVE or tall:
        depth = depth or _first_branching_depth(model)
        view = collapse(model, depth, expand)
        unmatched = _unmatched(model, expand)
        opened = [g for g in expand if g not in unmatched]
        how = (f"depth {depth}" + (f", {', '.join(opened)} expanded" if opened else "")
               + (f"; no scope matches --expand {', '.join(unmatched)}" if unmatched else ""))
        if len(view.ops) <= max_nodes:
            why = f"; expanded, it would be about {tall:,} pt tall" if tall else ""
            note = (f"{total} ops drawn as {len(view.ops)} nodes, collapsed by name scope ({how}{why}); "
                    "--expand SCOPE or --depth N opens them")
            return view, note
    if model.total_ops() <= max_nodes:  # the nodes drawn (fewer than TensorFlow's ops in the readable view)
        return model, ""
    for depth in (3, 2, 1):
        collapsed = collapse(model, depth)
        if len(collapsed.ops) <= max_nodes and len(collapsed.ops) < len(model.ops):
            return collapsed, (f"{total} ops, more than --max-nodes {max_nodes}: collapsed to {len(collapsed.ops)} "
                               f"nodes, one per name scope {depth} level{'s' if depth > 1 else ''} deep")
    collapsed = collapse(model, 1)
    shown = cut(collapsed, max_nodes)
    left = len(collapsed.ops) - len(shown.ops)
    return shown, (f"{total} ops, more than --max-nodes {max_nodes}: drew the first {len(shown.ops)} of "
                   f"{len(collapsed.ops)} nodes (collapsed by name scope), {left} left out; "
                   "raise --max-nodes to draw more")


def program_fit(model: GraphModel, total: int, expand: tuple[str, ...] = (), max_nodes: int = DEFAULT_MAX_NODES,
                models: int | None = None, keras=None, tall: int = 0, wide: int = 0
                ) -> tuple[GraphModel | None, str, int]:
    """The program's level (``levels.program_view``) within ``max_nodes`` and :data:`MODEL_TALL`, its note and how
    many models it opened; ``None`` where even that has more nodes than ``max_nodes``.  ``tall`` / ``wide``: how
    tall the drawing of every op would be, or how wide it was, where that is why it is folded."""
    view, folded, opened = program_view(model, expand, MODEL_TALL, max_nodes, models, keras)
    if len(view.ops) > max_nodes:
        return None, "", 0
    what = f": {'; '.join(folded)}" if folded else ""
    why = (f" (expanded, it would be about {tall:,} pt tall)" if tall
           else f" (expanded, it is {wide:,} pt wide)" if wide else "")
    unmatched = _unmatched(model, expand)
    how = "--expand NAME opens a layer, model or call" + (
        f"; no scope or call matches --expand {', '.join(unmatched)}" if unmatched else "")
    return view, f"{total:,} ops drawn as {len(view.ops)} nodes{why}{what}; {how}", opened


def _unmatched(model: GraphModel, expand: tuple[str, ...]) -> list[str]:
    """The ``--expand`` globs that name no scope, op or call of ``model`` or of the bodies it draws."""
    names: set[str] = set()
    models = [model]
    while models:
        graph = models.pop()
        names |= {op.name.rsplit("/", 1)[0] for op in graph.ops.values()} | set(graph.ops)
        names |= {op.callee for op in graph.ops.values() if op.callee}
        models += [sub for op in graph.ops.values() for _, sub in op.subgraphs]
    names |= {"/".join(s.split("/")[:i]) for s in list(names) for i in range(1, s.count("/") + 1)}
    return [g for g in expand if not any(scope_matches(s, g) for s in names)]


def coarser(model: GraphModel, total: int, expand: tuple[str, ...] = (),
            max_nodes: int = DEFAULT_MAX_NODES, keras=None, wide: int = 0):
    """The views to fall back to, coarsest last, when the first is wider than a notebook: the models it opened
    closed again, the last one opened first (a second call of a model before the first), then one node per
    top-level name scope.  ``wide``: the first view drew every op (a graph neither large nor tall) and was this
    wide: the program's level comes first (Keras 2's layers are wide where Keras 3's are tall), and only views
    that fold something.  A generator: each view is made only when the one before did not fit."""
    if wide:
        view, note, _ = program_fit(model, total, expand, max_nodes, keras=keras, wide=wide)
        if view is not None and len(view.ops) < len(model.ops):
            yield view, note
    _, _, opened = program_view(model, expand, MODEL_TALL, max_nodes, keras=keras)
    for models in range(opened - 1, -1, -1):
        view, note, _ = program_fit(model, total, expand, max_nodes, models, keras)
        if view is not None:
            yield view, note
    top = collapse(model, 1)
    if wide and len(top.ops) >= len(model.ops):
        return
    yield top, (f"{total:,} ops drawn as {len(top.ops)} nodes, one per top-level name scope; "
                "--expand SCOPE or --depth N opens them")

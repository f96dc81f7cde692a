"""The level a first drawing is drawn at: the program as the user wrote it, a model as its layers.

A training step traces to thousands of ops; the user wrote a model call, a loss, ``tape.gradient`` and
``optimizer.apply_gradients``.  :func:`program_view` folds a readable graph model (``readable.py``) to that
level, reading the name scopes Keras and TensorFlow leave in the graph (:func:`classify` tells what each is):

- a Keras model (a name scope whose parts are layers that hold weights) is a box holding one node per layer,
  in the order the data flows; each layer's weights are in its node (``kernel float32[3,3,3,32], bias ...``);
- every other name scope is one node: a layer called on its own, a loss, an optimizer's update (the
  variables it updates counted, its own slots in it, the ``iterations`` step it takes after the scope
  included), a metric's update (Keras makes it outside every scope: it joins by the variables it writes),
  ``strategy.run``'s second replica; a tape's gradient call is one node already (``readable.py``);
- a long stretch of ops outside every scope between those nodes (a strategy's all-reduce) is one node;
- a call of a ``tf.function`` whose body is large (a training step called in an epoch's loop) is one node;
- the bodies of loops and branches are drawn, folded the same way.

What it opens: the scopes ``--expand`` names (and the scopes around them), a scope that holds the whole graph,
then each model, outermost first, with the scopes around it, while the drawing stays within a height and a
node limit (``sizing.py`` gives them); a model that does not fit open stays one node (``resnet50 (176 layers:
about 12,384 pt tall open)``).
"""

from __future__ import annotations

import dataclasses
import re

from tfmagic.graph import (Edge, Folded, GraphModel, Op, Overlay, layer_names,
                           layer_scope, scope_matches, upstream, without_counter)
from tfmagic.vocabulary import BACKWARD_SCOPE, IF_OPS, VARIABLE_READS, VARIABLE_WRITES

#: A call whose body (in the readable view, its own bodies' included) has more ops than this, or a Keras model, is
#: drawn as one node (``--expand NAME`` opens it).
CALL_BODY_SHOWN = 80

#: How many op types a folded node lists (``Conv2D, BiasAdd, Relu``).
TYPES_SHOWN = 3

#: The name scope ``tf.distribute`` runs a step in for each replica after the first (``strategy.run``).
_REPLICA = re.compile(r"^replica_\d+$")

#: Op types that do no work worth naming in a folded node's line of types.
_PLUMBING = frozenset({"Identity", "Reshape", "Squeeze", "ExpandDims", "Cast", "Shape", "Pack", "StridedSlice",
                       "ConcatV2", "Const", "Placeholder", "NoOp", "Fill", "Range", "Size", "Rank", "VarIsInitializedOp",
                       "VarHandleOp", *VARIABLE_READS, *IF_OPS})  # an If: a variable's first-call init


@dataclasses.dataclass(frozen=True)
class Scopes:
    """What the name scopes of one graph are: ``model`` (its parts are layers), ``update`` (an optimizer's: it
    writes variables of others), ``replica`` (``strategy.run``'s step for a second device), or a plain ``scope``;
    each scope's named parts (not an op's own scope); the models the notebook's Keras objects name."""

    roles: dict[str, str]
    children: dict[str, list[str]]
    keras_models: frozenset[str] = frozenset()

    def models(self) -> list[str]:
        """The models, outermost first, in the order the graph made them."""
        return sorted((s for s, role in self.roles.items() if role == "model"), key=lambda s: s.count("/"))


@dataclasses.dataclass
class _Context:
    """What one :func:`program_view` folds with: the ``--expand`` globs, the limits a model opens within, the
    notebook's Keras names, the layers' names, and the bodies folded so far (by ``id``: each once)."""

    expand: tuple[str, ...]
    height_limit: int | None
    max_nodes: int | None
    keras: object
    names: dict[str, str]
    bodies: dict = dataclasses.field(default_factory=dict)


#: About how many points one rank of a drawing takes (a node and the labelled edge below it).
_RANK_HEIGHT = 72


def height(model: GraphModel) -> int:
    """About how tall a drawing of ``model`` is, from its longest chain of ops (bodies below their op)."""
    inputs: dict[str, list[str]] = {name: [] for name in model.ops}
    for edge in model.edges:
        if not edge.control and edge.dst in inputs and edge.src in model.ops:
            inputs[edge.dst].append(edge.src)
    ranks: dict[str, int] = {}

    def rank(name: str) -> int:
        stack = [name]
        while stack:
            current = stack[-1]
            pending = [src for src in inputs[current] if src not in ranks]
            if pending and current not in ranks:
                ranks.setdefault(current, 0)  # a cycle (none in a traced graph) ends here
                stack.extend(pending)
                continue
            stack.pop()
            ranks[current] = 1 + max((ranks.get(src, 0) for src in inputs[current]), default=0)
        return ranks[name]

    longest = max((rank(name) for name in model.ops), default=0)
    bodies = max((height(sub) for op in model.ops.values() for _, sub in op.subgraphs), default=0)
    return longest * _RANK_HEIGHT + bodies


def _is_op_type(name: str) -> bool:
    """Whether ``name`` (without its counter) is an op type: ``Cast_3``, ``Sub_2`` are the scopes of one op."""
    try:
        from tensorflow.python.framework import op_def_registry
    except ImportError:  # no TensorFlow: a drawing read from a file
        return name[:1].isupper()
    return op_def_registry.get(without_counter(name)) is not None


def classify(model: GraphModel, keras=None) -> Scopes:
    """What each name scope of ``model`` (not its function bodies) is: read off its ops, edges and variables, and
    the notebook's Keras models, layers and optimizers (``naming.KerasNames``) where they name it.

    A model is a scope Keras names a model, or (one Keras does not name) one with two parts or more that read
    weights and that no gradient feeds (a backward pass's own scopes aside); an update is a scope outside a model
    that writes variables it does not hold (an optimizer's), or one Keras names an optimizer; what is inside a
    layer, an update or a replica is neither.
    """
    op_names = set(model.ops)
    scopes: dict[str, dict[str, None]] = {}  # scope -> its named child scopes, in order
    for name, op in model.ops.items():
        if op.made_by:  # a tape's gradient call, made one node by readable.py: its name is the user's line
            continue
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            scope = "/".join(parts[:depth])
            scopes.setdefault(scope, {})
            if depth > 1:
                scopes["/".join(parts[:depth - 1])].setdefault(scope, None)
    named = {scope: [c for c in children if c not in op_names and not _is_op_type(c.rsplit("/", 1)[-1])]
             for scope, children in scopes.items()}
    reads = _scopes_fed_by(model, lambda op: op.kind == "variable")  # a second call of a model reads its weights
    trained = _scopes_fed_by(model, lambda op: bool(op.made_by) or op.kind == "backward")  # an optimizer's
    writes = _foreign_writes(model)
    roles: dict[str, str] = {}
    inside: set[str] = set()  # what is inside a layer, an update or a replica
    by_keras: set[str] = set()
    for scope in sorted(named, key=lambda s: s.count("/")):  # a scope's parents first
        children = named[scope]
        parent = scope.rsplit("/", 1)[0] if "/" in scope else ""
        kind = _keras_kind(scope, keras)
        backward = (scope + "/").startswith(BACKWARD_SCOPE)  # a tape's backward pass, in a gradient drawing
        if parent in inside or kind == "layer":
            inside.add(scope)
            roles[scope] = "scope"
        elif _REPLICA.match(scope):  # tf.distribute's copy of the step for another device: one node
            inside.add(scope)
            roles[scope] = "replica"
        elif kind == "optimizer":
            inside.add(scope)  # an optimizer's update: its parts may read weights, they are no models
            roles[scope] = "update"
        elif kind == "model" and children or kind is None and sum(c in reads for c in children) >= 2 and (
                backward or scope not in trained):
            roles[scope] = "model"
            if kind == "model":
                by_keras.add(scope)
        elif writes.get(scope) and roles.get(parent) != "model" and not backward:
            inside.add(scope)
            roles[scope] = "update"
        else:
            roles[scope] = "scope"
    return Scopes(roles, named, frozenset(by_keras))


def _keras_layer_names(keras) -> frozenset[str]:
    """The notebook's Keras models' and layers' names (``naming.KerasNames``), where it has them."""
    return frozenset() if keras is None else keras.models | keras.layers


def _keras_kind(scope: str, keras) -> str | None:
    """``model``, ``layer`` or ``optimizer`` where the notebook's Keras objects name the scope
    (``naming.KerasNames``), else ``None``; Keras 3 adds a counter to each scope it enters (``sequential_1`` for
    the model ``sequential``)."""
    if keras is None:
        return None
    part = scope.rsplit("/", 1)[-1]
    for name in (part, without_counter(part)):
        if name in keras.models:
            return "model"
        if name in keras.layers:
            return "layer"
        if name in keras.optimizers:
            return "optimizer"
    return None


def _scopes_fed_by(model: GraphModel, source) -> set[str]:
    """The scopes with an op fed by an op that ``source`` picks (a variable; a gradient)."""
    found = set()
    for edge in model.edges:
        src, dst = model.ops.get(edge.src), model.ops.get(edge.dst)
        if src is not None and dst is not None and source(src):
            parts = dst.name.split("/")[:-1]
            found.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return found


def _foreign_writes(model: GraphModel) -> dict[str, set[str]]:
    """Scope -> the variables outside it that its ops write (an optimizer's update of a model's weights)."""
    found: dict[str, set[str]] = {}
    for edge in model.edges:
        dst, src = model.ops.get(edge.dst), model.ops.get(edge.src)
        if dst is None or src is None or src.kind != "variable" or not dst.type.startswith(VARIABLE_WRITES):
            continue
        parts = dst.name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            scope = "/".join(parts[:depth])
            if not (src.name + "/").startswith(scope + "/"):
                found.setdefault(scope, set()).add(src.name)
    return found


def needs_folding(model: GraphModel, keras=None) -> bool:
    """Whether a drawing of ``model`` is at a lower level than the user wrote: it has a Keras model (one the
    notebook's Keras objects name, where it has any; else one the graph shows), or a call whose body is too
    large to draw (its function bodies' too)."""
    scopes = classify(model, keras)
    known = keras is not None and bool(keras.models or keras.layers)
    if any(role == "model" and (not known or scope in scopes.keras_models) for scope, role in scopes.roles.items()):
        return True
    for op in model.ops.values():
        for _, sub in op.subgraphs:
            if op.callee and sub.total_ops() > CALL_BODY_SHOWN or needs_folding(sub, keras):
                return True
    return False


def program_view(model: GraphModel, expand: tuple[str, ...] = (), height_limit: int | None = None,
                 max_nodes: int | None = None, models: int | None = None, keras=None
                 ) -> tuple[GraphModel, list[str], int]:
    """``model`` folded to the level the user wrote it at (see the module's docstring), what was folded, in
    words (``sequential as its 8 layers``, ``call train_step``, ``resnet50 (176 layers: ...)``), and how many
    models it opened.

    Args:
        model: a readable graph model.
        expand: ``--expand`` globs: the scopes and calls they name are open (and the scopes around them).
        height_limit: a model opens only while the drawing stays this tall (points; ``None``: no limit).
        max_nodes: a model opens only while the drawing keeps at most this many nodes.
        models: open at most this many models (``0``: every model one node), when the first level is too wide.
        keras: the notebook's Keras models and layers (``naming.KerasNames``), to tell a model from a layer.
    """
    scopes = classify(model, keras)
    names = _layer_names(scopes, layer_names(model) | _keras_layer_names(keras))
    context = _Context(expand, height_limit, max_nodes, keras, names)
    opened = {around for s in scopes.roles if any(scope_matches(s, g) for g in expand) for around in _around(s)}
    opened |= _lone_scopes(model, scopes, opened)
    view = _fold(model, scopes, opened, context)
    count, why = 0, {}
    for scope in scopes.models():
        if scope in opened or any(scopes.roles.get(s) == "model" and s not in opened for s in _around(scope)[:-1]):
            continue  # open already, or inside a model that stays one node
        if models is not None and count >= models:
            why[scope] = "too wide open"
            continue
        candidate = _fold(model, scopes, opened | set(_around(scope)), context)  # with the scopes around it, boxes
        tall = height(candidate)
        if height_limit is not None and tall > height_limit:
            why[scope] = f"about {tall:,} pt tall open"
        elif max_nodes is not None and len(candidate.ops) > max_nodes:
            why[scope] = f"more than --max-nodes {max_nodes} open"
        else:
            opened |= set(_around(scope))
            view = candidate
            count += 1
    return view, _what_was_folded(view, scopes, opened, why, names), count


def _around(scope: str) -> list[str]:
    """A scope and the scopes around it, outermost first: ``a``, ``a/b``, ``a/b/c``."""
    parts = scope.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def _lone_scopes(model: GraphModel, scopes: Scopes, opened: set[str]) -> set[str]:
    """A plain scope that holds all of a graph's work (``with tf.name_scope("train_step"):``) is a box, not one
    node: the first level is what is inside it (and so on down, while one scope holds it all)."""
    lone: set[str] = set()
    prefix = ""
    while True:
        inner, work = set(), False
        for name, op in model.ops.items():
            if not name.startswith(prefix) or op.kind in ("input", "output", "constant", "variable"):
                continue
            rest = name[len(prefix):]
            if "/" in rest and not op.made_by:
                inner.add(prefix + rest.split("/")[0])
            else:
                work = True  # an op of its own at this level
        if work or len(inner) != 1:
            return lone
        scope = inner.pop()
        if scopes.roles.get(scope) != "scope" or scope in opened:
            return lone
        lone.add(scope)
        prefix = scope + "/"


def _fold(model: GraphModel, scopes: Scopes, opened: set[str], context: _Context) -> GraphModel:
    """One graph folded: each op into the first closed scope on its name's path (an open scope is a box), then
    what belongs to a node though TensorFlow made it outside the node's scope joins it."""
    group = {name: _group_of(name, op, opened, model.ops) for name, op in model.ops.items()}
    _one_node_per_optimizer(model, group, scopes)
    _join_own_updates(model, group)
    stretches = _join_loose_stretches(model, group)
    _join_inner_work(model, group)
    members: dict[str, list[Op]] = {}
    for name, op in model.ops.items():
        members.setdefault(group[name], []).append(op)
    ins: dict[str, list[Edge]] = {}
    outs: dict[str, list[Edge]] = {}
    for edge in model.edges:
        ins.setdefault(edge.dst, []).append(edge)
        outs.setdefault(edge.src, []).append(edge)
    ops: dict[str, Op] = {}
    for key, inside in members.items():
        if len(inside) == 1 and inside[0].name == key:
            ops[key] = _open_op(inside[0], context)
        else:
            role = "stretch" if key in stretches else None
            ops[key] = _folded_node(key, inside, model, group, scopes, context.names, ins, outs, role)
    edges = _without_backward_reuse(_group_edges(model, group, ops), ops)
    inputs = list(dict.fromkeys(group[n] for n in model.inputs if n in group))
    outputs = list(dict.fromkeys(group[n] for n in model.outputs if n in group))
    tensors = [(group[n], i) for n, i in model.output_tensors if n in group]
    return GraphModel(model.name, ops, edges, inputs, outputs, tensors, _folded_overlay(model.overlay, group),
                      model.traced_ops())


def _folded_overlay(overlay: Overlay, group: dict[str, str]) -> Overlay:
    """A gradient drawing's roles and a diff's marks on the nodes that hold the ops they were on: a node is on the
    path (or the target) where one of its ops is, added or removed where all of its ops are."""
    folded = Overlay()
    members: dict[str, list[str]] = {}
    for name, key in group.items():
        members.setdefault(key, []).append(name)
    for key, names in members.items():
        if key in names and len(names) == 1:  # drawn as itself: as it was
            for mapping, source in ((folded.gradient, overlay.gradient), (folded.sources, overlay.sources),
                                    (folded.diff, overlay.diff)):
                if key in source:
                    mapping[key] = source[key]
            continue
        roles = {overlay.gradient[n] for n in names if n in overlay.gradient}
        if "target" in roles or roles & {"path", "connected"}:  # a stopped or disconnected source is on no path
            folded.gradient[key] = "target" if "target" in roles else "path"
        marks = {overlay.diff.get(n, "") for n in names}
        if len(marks) == 1 and "" not in marks:
            folded.diff[key] = marks.pop()
    return folded


def _without_backward_reuse(edges: list[Edge], ops: dict[str, Op]) -> list[Edge]:
    """A folded backward pass reads what it reuses of the forward pass (every layer's activations, the inputs):
    only the edges from the last of them (the loss) are drawn, as a gradient call's are (``readable.py``)."""
    into = [e for e in edges if ops[e.dst].kind == "backward" and ops[e.src].kind != "backward"]
    if not into:
        return edges
    feeding: dict[str, list[str]] = {}
    for edge in edges:
        if ops[edge.dst].kind != "backward":
            feeding.setdefault(edge.dst, []).append(edge.src)
    earlier = upstream({e.src for e in into}, feeding.get)
    dropped = {id(e) for e in into if e.src in earlier or ops[e.src].kind in ("input", "variable")}
    return edges if len(dropped) == len(into) else [e for e in edges if id(e) not in dropped]


def _one_node_per_optimizer(model: GraphModel, group: dict[str, str], scopes: Scopes) -> None:
    """An optimizer's scopes are one node: Keras 3 creates its slots in one scope on the first call (``adam_1``)
    and updates them in another (``adam_1_1``), which writes the variables the first holds."""
    into: dict[str, str] = {}
    for edge in model.edges:
        src, dst = model.ops.get(edge.src), model.ops.get(edge.dst)
        if src is None or dst is None or src.kind != "variable" or not dst.type.startswith(VARIABLE_WRITES):
            continue
        holder, writer = group[src.name], group[dst.name]
        if holder != writer and scopes.roles.get(holder) == "update" and scopes.roles.get(writer) == "update":
            into.setdefault(writer, holder)
    for name, key in group.items():
        for _ in range(len(into)):
            key = into.get(key, key)
        group[name] = key


def _group_of(name: str, op: Op, opened: set[str], model_ops: dict) -> str:
    """The node an op is drawn in: the first scope on its path that is not open (or the op itself)."""
    if op.made_by:
        return name
    parts = name.split("/")
    for depth in range(1, len(parts)):
        scope = "/".join(parts[:depth])
        if op.kind in ("input", "variable", "constant") and (scope in model_ops or _is_op_type(parts[depth - 1])):
            return name  # what TensorFlow named after the op it feeds (a loop's captured inputs): drawn as it is
        if scope not in opened:
            return scope
    return name


def _open_op(op: Op, context: _Context) -> Op:
    """An op drawn as itself: a large call's body folded away unless ``--expand`` names it; other bodies folded to
    the program's level too (each body once, however many folds draw it)."""
    if not op.subgraphs:
        return op
    key = id(op)
    if key not in context.bodies:
        named = any(scope_matches(op.name, g) or scope_matches(op.callee, g) for g in context.expand)
        if op.callee and not named and any(sub.total_ops() > CALL_BODY_SHOWN or needs_folding(sub, context.keras)
                                           for _, sub in op.subgraphs):
            count = sum(sub.traced_ops() for _, sub in op.subgraphs)
            context.bodies[key] = dataclasses.replace(op, subgraphs=[],
                                                      folded=Folded("call", op.callee, (op.name,), count))
        else:
            context.bodies[key] = dataclasses.replace(op, subgraphs=[
                (label, program_view(sub, context.expand, context.height_limit, context.max_nodes,
                                     keras=context.keras)[0]) for label, sub in op.subgraphs])
    return context.bodies[key]


def _join_own_updates(model: GraphModel, group: dict[str, str]) -> None:
    """Ops outside every scope (drawn as themselves so far) that only work towards updating the variables of one
    owner join that owner's node: Keras's optimizer steps its ``iterations`` after its scope, and a metric's
    ``update_state`` (``accuracy/total``, ``loss/count``) has no scope at all.  An op joins where everything it
    feeds ends in writes to that owner's variables (the ``Equal``, ``Cast``, ``Sum`` and ``AssignVariableOp`` of an
    accuracy), not where it also feeds something else (the labels both the loss and the accuracy read stay as they
    are).  The owner is a variable's node (the scope it is in) or, for one outside every scope, its path's first
    part; an owner that is an open box (a model's step counter) is none.  Owners of one name whose writes one op
    feeds together are one (a metric's ``total`` and ``count``: ``accuracy``, ``accuracy_1``)."""
    loose = {name for name, op in model.ops.items() if group[name] == name and op.kind in ("op", "output")
             and not op.subgraphs and not op.made_by}
    boxes = {without_counter(key.rsplit("/", 1)[0]) for key in group.values() if "/" in key}  # open scopes
    owner_of: dict[str, str] = {}  # a loose write op -> the owner of the variable it writes
    consumers: dict[str, list[str]] = {}
    for edge in model.edges:
        src, dst = model.ops.get(edge.src), model.ops.get(edge.dst)
        if src is None or dst is None:
            continue
        consumers.setdefault(edge.src, []).append(edge.dst)
        if src.kind == "variable" and edge.dst in loose and dst.type.startswith(VARIABLE_WRITES):
            owner = group[src.name] if group[src.name] != src.name else _owner(src)
            if owner and without_counter(owner) not in boxes:
                owner_of[dst.name] = owner
    if not owner_of:
        return
    ends: dict[str, frozenset] = {}

    def reaches(name: str) -> frozenset:  # the owners whose writes everything ``name`` feeds ends in ("": other)
        stack = [name]
        while stack:  # depth first, without recursion: a chain of 20,000 ops is a graph people trace
            current = stack[-1]
            pending = [c for c in consumers.get(current, ()) if c in loose and c not in ends]
            if pending and current not in ends:
                ends[current] = frozenset({""})  # a cycle (none in a traced graph) ends here
                stack.extend(pending)
                continue
            stack.pop()
            found: set[str] = {owner_of[current]} if current in owner_of else set()
            for consumer in consumers.get(current, ()):
                found |= ends[consumer] if consumer in loose else {""}
            ends[current] = frozenset(found or {""})
        return ends[name]

    one = {owner: owner for owner in owner_of.values()}  # owner -> the owner it is one with

    def first(owner: str) -> str:
        while one[owner] != owner:
            owner = one[owner]
        return owner

    for name in loose:
        owners = reaches(name)
        stems = {without_counter(owner.rsplit("/", 1)[-1]) for owner in owners}
        if "" not in owners and len(owners) > 1 and len(stems) == 1:
            ordered = sorted(first(owner) for owner in owners)
            for owner in ordered[1:]:
                one[owner] = ordered[0]
    for name in loose:
        owners = {first(owner) for owner in reaches(name) if owner}
        if len(owners) == 1 and "" not in reaches(name):
            owner = owners.pop()
            group[name] = owner if owner not in model.ops or group.get(owner) != owner else f"{owner} (update)"
    for name, key in list(group.items()):  # the owner's other scopes, and its variables outside every scope
        op = model.ops[name]
        if key in one and first(key) != key:
            group[name] = first(key)
        elif op.kind == "variable" and key == name and _owner(op) in one:
            group[name] = first(_owner(op))
    _join_readers_of_own(model, group, loose)


def _join_readers_of_own(model: GraphModel, group: dict[str, str], loose: set[str]) -> None:
    """An op outside every scope that reads nothing but the variables of one node that updates them (a metric's
    ``result()``: ``total / count``) joins that node."""
    reads: dict[str, set[str]] = {}
    for edge in model.edges:
        src = model.ops.get(edge.src)
        if edge.dst not in loose or group[edge.dst] != edge.dst or src is None or src.kind == "constant":
            continue
        reads.setdefault(edge.dst, set()).add(group[src.name] if src.kind == "variable" else "")
    updated = {g for name, g in group.items() if g != name and model.ops[name].type.startswith(VARIABLE_WRITES)}
    for name, owners in reads.items():
        if len(owners) == 1 and next(iter(owners)) in updated:
            group[name] = next(iter(owners))


def _join_inner_work(model: GraphModel, group: dict[str, str]) -> None:
    """What belongs to one folded node though TensorFlow made it outside its scope joins it: an op that reads only
    from that node (and constants) and feeds only that node (Keras's optimizer adds 1 to its ``iterations`` beside
    its scope, under a strategy); a variable outside every scope that only that node reads (a strategy's copy of
    a weight for its second replica), and a tensor TensorFlow captured for it alone (an all-reduce's group key)."""
    nodes = set(group.values()) - set(model.ops)  # the folded nodes: scopes, not ops drawn as themselves
    feeding: dict[str, set[str]] = {}
    feeds: dict[str, set[str]] = {}
    for edge in model.edges:
        src = model.ops.get(edge.src)
        if src is not None and edge.dst in group and src.kind != "constant":
            feeding.setdefault(edge.dst, set()).add(edge.src)
            feeds.setdefault(edge.src, set()).add(edge.dst)
    joined: set[str] = set()
    changed = True
    while changed:  # an op that only reads constants (Cast(1)) joins once the op it feeds has joined
        changed = False
        for name, op in model.ops.items():
            captured = op.kind == "input" and op.detail == "captured" and not op.label  # TensorFlow's own capture
            if group[name] != name or op.kind not in ("op", "variable") and not captured or op.subgraphs or op.made_by:
                continue
            targets = {group[d] for d in feeds.get(name, ())}
            if op.kind == "op" and not feeding.get(name):  # it reads constants only: it goes with what it feeds
                sources = targets if feeds.get(name, set()) <= joined else {name}
            elif op.kind == "op":
                sources = {group[s] for s in feeding[name] if feeding.get(s) or model.ops[s].kind != "op"}
            else:  # a variable or a captured tensor only one node reads
                sources = targets
            if len(targets) == 1 and sources <= targets and targets <= nodes:
                group[name] = next(iter(targets))
                joined.add(name)
                changed = True


#: Ops outside every scope that make one connected stretch of at least this many are drawn as one node.
LOOSE_STRETCH = 8


def _join_loose_stretches(model: GraphModel, group: dict[str, str]) -> set[str]:
    """A long stretch of ops outside every scope that TensorFlow made in between the program's parts (a strategy's
    all-reduce of the gradients: a ``Reshape`` per gradient, ``ConcatV2``, ``CollectiveReduceV2``, ``SplitV``, a
    ``Reshape`` back per gradient) is one node, named by the work it does.  Short ones stay as they are, and so
    do a graph's own code where it has no folded parts to be between, and a stretch that both feeds and reads
    another node (an autoencoder's input scaling, which its loss reads again): one node would make a cycle.

    Returns:
        The keys of the stretches' nodes.
    """
    loose = {name for name, op in model.ops.items() if group[name] == name and op.kind == "op" and "/" not in name
             and not op.subgraphs and not op.made_by}
    links: dict[str, set[str]] = {name: set() for name in loose}
    beside: set[str] = set()  # loose ops next to a folded node: a stretch between the program's parts has them
    ins: dict[str, set[str]] = {}  # between the nodes drawn so far
    outs: dict[str, set[str]] = {}
    for edge in model.edges:
        if edge.src not in group or edge.dst not in group:
            continue
        if group[edge.src] != group[edge.dst]:
            ins.setdefault(group[edge.dst], set()).add(group[edge.src])
            outs.setdefault(group[edge.src], set()).add(group[edge.dst])
        if edge.src in loose and edge.dst in loose:
            links[edge.src].add(edge.dst)
            links[edge.dst].add(edge.src)
        elif edge.src in loose and group[edge.dst] != edge.dst:
            beside.add(edge.src)
        elif edge.dst in loose and group[edge.src] != edge.src:
            beside.add(edge.dst)
    keys: set[str] = set()
    seen: set[str] = set()
    for start in [name for name in model.ops if name in loose]:  # in the order TensorFlow made them
        if start in seen:
            continue
        stretch, work = set(), [start]
        while work:
            name = work.pop()
            if name not in seen:
                seen.add(name)
                stretch.add(name)
                work.extend(links[name] - seen)
        if len(stretch) < LOOSE_STRETCH or not beside & stretch:  # short, or the user's own unscoped code
            continue
        below = upstream(stretch, lambda name: [o for o in outs.get(name, ()) if o not in stretch])
        if below & upstream(stretch, lambda name: [i for i in ins.get(name, ()) if i not in stretch]):
            continue  # something it feeds feeds it back: one node would make a cycle
        key = f"{start} ({len(stretch)} ops)"
        keys.add(key)
        for name in stretch:
            group[name] = key
    return keys


def _owner(variable: Op) -> str:
    """Who holds a variable outside every scope, by its path's first part (``accuracy`` of ``accuracy/total``)."""
    name = _variable_name(variable)
    return without_counter(name.split("/")[0]) if "/" in name else ""


def _layer_names(scopes: Scopes, layers: frozenset[str]) -> dict[str, str]:
    """The name to show for each scope: a Keras layer's or model's own name.  Keras 3 enters each layer's name
    scope twice, so TensorFlow adds a counter to every part (``conv2d_1`` for the layer ``conv2d``, ``conv2d_1_2``
    for ``conv2d_1``): the counter is left out where the name without it is a layer's that holds weights
    (``graph.layer_scope``), and, in a model, where every part has one (its layers without weights too:
    ``max_pooling2d_1`` is the layer ``max_pooling2d``); in a model whose parts have none (Keras 2), a part named
    as a layer that holds weights is that layer."""
    names = {scope: layer_scope(scope.rsplit("/", 1)[-1], layers) for scope in scopes.roles}
    for scope, role in scopes.roles.items():
        children = scopes.children.get(scope, [])
        last = [c.rsplit("/", 1)[-1] for c in children]
        if role != "model":
            continue
        counted = all(re.search(r"_\d+$", part) for part in last)
        if len(last) >= 2 and counted and not all(part in layers for part in last):  # Keras 2: dense_3, dense_4
            names.update((child, without_counter(part)) for child, part in zip(children, last))
        else:  # Keras 2 enters each scope once: a part named as a layer is that layer (conv2d_1, beside conv2d)
            names.update((child, part) for child, part in zip(children, last) if part in layers)
    return names


def _folded_node(key: str, inside: list[Op], model: GraphModel, group: dict[str, str], scopes: Scopes,
                 names: dict[str, str], ins: dict[str, list[Edge]], outs: dict[str, list[Edge]],
                 role: str | None = None) -> Op:
    """One node standing for the ops of a scope (or of a stretch outside every scope, ``role="stretch"``): what it
    is, its weights, its work.  ``ins`` and ``outs``: the model's edges by the op they go into and come from."""
    role = role or scopes.roles.get(key, "scope")
    if role == "scope" and "/" in key and scopes.roles.get(key.rsplit("/", 1)[0]) == "model":
        role = "layer"
    count = sum(op.folded.ops if op.folded is not None else 1 + sum(sub.traced_ops() for _, sub in op.subgraphs)
                for op in inside)
    into = [e for op in inside for e in ins.get(op.name, ()) if e.src in model.ops]  # edges into its ops
    held = [op for op in inside if op.kind == "variable"]
    if role in ("layer", "model"):  # a second call of a model reads the weights the first call holds: say them too
        held += [model.ops[e.src] for e in into if model.ops[e.src].kind == "variable" and group.get(e.src) != key]
    weights = tuple(dict.fromkeys((_weight_name(op, key), _read_shape(op, outs)) for op in held))
    if role == "replica":  # the step's copy: its weights are copies of the first replica's
        weights = ()
    updates = tuple(sorted({_variable_name(model.ops[e.src]) for e in into if model.ops[e.src].kind == "variable"
                            and group.get(e.src) != key and model.ops[e.dst].type.startswith(VARIABLE_WRITES)}))
    types = tuple(dict.fromkeys(op.type for op in inside if op.kind in ("op", "output", "control_flow")
                                and op.type not in _PLUMBING and not op.type.startswith(VARIABLE_WRITES)))
    layers = len(scopes.children.get(key, ())) if role == "model" else 0
    folded = Folded(role, names.get(key) or key.rsplit("/", 1)[-1], tuple(op.name for op in inside), count,
                    types[:TYPES_SHOWN], weights, updates, layers)
    device = next((op.device for op in inside if op.device), "")
    working = {op.kind for op in inside if op.kind not in ("variable", "constant", "input")}
    kind = "backward" if working == {"backward"} else "scope"  # a layer's backward pass, drawn as backward ops are
    return Op(key, f"{count} op{'s' if count != 1 else ''}", kind, [], device, f"scope {key}", folded=folded)


def _variable_name(op: Op) -> str:
    """A variable by the user's name for it (``sequential/conv2d/kernel``, ``w``), else TensorFlow's; a strategy's
    copy of a variable for another replica (``sequential/conv2d/kernel/replica_1``) by the variable's name."""
    return re.sub(r"/replica_\d+$", "", op.label or op.detail or op.name)


def _weight_name(op: Op, key: str) -> str:
    """A variable as its node names it: its path inside the node's scopes (``kernel`` in ``sequential/conv2d``;
    Keras 3 names a subclassed model's weights ``resblock/kernel``), else its whole name."""
    name = _variable_name(op)
    scopes = {part for s in key.split("/") for part in (s, without_counter(s))}
    parts = name.split("/")
    return parts[-1] if len(parts) > 1 and all(p in scopes or without_counter(p) in scopes for p in parts[:-1]) \
        else name


def _read_shape(op: Op, outs: dict[str, list[Edge]]) -> str:
    """A variable's value as its readers see it (``float32[3,3,3,32]``), from the edges it feeds."""
    for edge in outs.get(op.name, ()):
        if edge.tensor is not None and edge.tensor.dtype != "resource":
            return edge.tensor.label
    return ""


def _group_edges(model: GraphModel, group: dict[str, str], ops: dict[str, Op]) -> list[Edge]:
    """Edges between the drawn nodes, each once, counting the tensors it stands for.  The edge of a variable a
    folded node holds to another node (the gradient reading a weight, the optimizer writing it) is left out: the
    nodes say it in words; a variable drawn as itself keeps its edges."""
    found: dict[tuple[str, str], Edge] = {}
    tensors: dict[tuple[str, str], set] = {}
    for edge in model.edges:
        if edge.control or edge.src not in group or edge.dst not in group:
            continue
        src, dst = group[edge.src], group[edge.dst]
        if src == dst or model.ops[edge.src].kind == "variable" and ops[src].folded is not None:
            continue
        key = (src, dst)
        if key not in found:
            found[key] = dataclasses.replace(edge, src=src, dst=dst, count=0)
            tensors[key] = set()
        if (edge.src, edge.src_index) not in tensors[key]:
            tensors[key].add((edge.src, edge.src_index))
            found[key].count += max(1, edge.count)
    return list(found.values())


def _folded_calls(view: GraphModel):
    """The calls drawn without their bodies, in the view and in the bodies it draws (a step in an epoch's loop)."""
    for op in view.ops.values():
        if op.folded and op.folded.role == "call":
            yield op.folded.name
        for _, sub in op.subgraphs:
            yield from _folded_calls(sub)


def _what_was_folded(view: GraphModel, scopes: Scopes, opened: set[str], why: dict[str, str],
                     names: dict[str, str]) -> list[str]:
    """What the folded drawing draws as one node, in words, for the note under it: each open model by its layers,
    each closed one and why, each call drawn without its body."""
    words = []
    for scope in scopes.models():
        if scope in opened:
            n = sum(1 for op in view.ops.values() if op.folded and op.folded.role == "layer"
                    and op.name.rsplit("/", 1)[0] == scope)
            name = names.get(scope, scope) + ("'s backward pass" if scope.startswith(BACKWARD_SCOPE) else "")
            words.append(f"{name} as its {n} layer{'s' if n != 1 else ''}")
    for op in view.ops.values():
        if op.folded and op.folded.role == "model":
            reason = why.get(op.name, "")
            words.append(f"{op.folded.name} ({op.folded.layers} layers{': ' + reason if reason else ''})")
    words += [f"call {name}" for name in dict.fromkeys(_folded_calls(view))]
    others = sum(1 for op in view.ops.values() if op.folded and op.folded.role in ("scope", "update")
                 or op.folded and op.folded.role == "layer" and op.name.rsplit("/", 1)[0] not in opened)
    if others:
        words.append(f"{others} other layer{'s' if others != 1 else ''} or name scope{'s' if others != 1 else ''} "
                     f"one node each")
    return words


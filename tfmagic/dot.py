"""Graph model -> DOT source, with tfmagic's colours and shapes.

Legend (under every drawing, it lists just the kinds and styles that drawing uses):

- green, pointing in: an input (an argument of the function: a tensor, array or Python value);
- orange cylinder: a variable (a ``tf.Variable``'s resource handle, captured or passed);
- grey: a constant (its value shown when small; in the readable view small constants are shown
  in the label of the op that reads them: ``AddV2 + 10``);
- blue, pointing out: an output of the function (in the readable view, named as the notebook names it);
- purple: control flow or a function call (``While``, ``If``, ``StatefulPartitionedCall``),
  with the graphs of its functions drawn in purple boxes (below it, in the readable view), reached
  by a dotted purple arrow;
- white: every other op.  Edges carry the tensor's dtype and shape (``float32[2,3]``);
  dashed grey arrows are control dependencies (``--ops all`` only).  Dashed grey boxes are name scopes.

In a gradient drawing (``%%tape --show graph``) the backward ops are light brown,
the forward path from each source to the target has a magenta border and magenta
edges, a stopped source a dashed orange border, a disconnected one a dotted grey
border; the zeros TensorFlow returns for such a source say why.

Every string that comes from the user's code (op names, scopes, constant values)
is escaped with :func:`quote`, so a name cannot break out of its DOT string.

>>> quote('say "hi" \\\\ <b>')
'"say \\\\"hi\\\\" \\\\\\\\ <b>"'
"""

from __future__ import annotations

from dataclasses import dataclass

from tfmagic.graph import GraphModel, Op, Overlay, layer_names, layer_scope
from tfmagic.vocabulary import DATASET_LOOPS

#: Fill colour, border colour and shape of each kind of op.
STYLES: dict[str, tuple[str, str, str]] = {
    "input": ("#e3f4e1", "#2e7d32", "invhouse"),
    "variable": ("#fff0d9", "#e07b00", "cylinder"),
    "constant": ("#f2f2f2", "#9e9e9e", "box"),
    "output": ("#e1ecfb", "#1f5fbf", "house"),
    "control_flow": ("#eee6fa", "#6a3fb5", "box"),
    "op": ("#ffffff", "#444444", "box"),
    "backward": ("#fdf1e6", "#b45f06", "box"),
    "scope": ("#f5f5f5", "#616161", "box3d"),
    "xla": ("#fff8f0", "#ef6c00", "box"),  # an instruction XLA added (drawn by --show xla)
}

#: How a gradient drawing marks ops: (border colour, pen width, extra style).
MARKS: dict[str, tuple[str, str, str]] = {
    "path": ("#d81b60", "2.2", ""),
    "connected": ("#d81b60", "2.6", ""),
    "stopped": ("#e65100", "2.6", "dashed"),
    "disconnected": ("#9e9e9e", "2.0", "dotted"),
    "added": ("#1b9e3e", "3.0", ""),
    "removed": ("#c62828", "2.4", "dashed"),
}

#: How edges are drawn besides a plain tensor edge: DOT attributes by the edge's role.
EDGE_STYLES: dict[str, str] = {
    "control": 'style=dashed color="#aaaaaa" arrowhead=empty',
    "path": 'color="#d81b60" penwidth=2',  # on a gradient's path from a source to the target
    "removed": 'color="#c62828" style=dashed',  # only in the earlier trace
    "changed": 'color="#ef6c00" fontcolor="#ef6c00" penwidth=2.2',  # its dtype or shape changed
}

#: The legend's words for each kind of node, in the order the legend lists them.
KIND_WORDS = {"input": "green: input", "variable": "orange cylinder: variable", "constant": "grey: constant",
              "output": "blue: output", "control_flow": "purple: control flow / call",
              "backward": "light brown: backward (gradient) op", "scope": "grey 3-D box: a collapsed name scope",
              "xla": "small orange box: an instruction XLA added that no TF op accounts for (a copy, a transpose)"}
#: The legend's words for each line and box style.
STYLE_WORDS = {"scope_box": "dashed grey box: name scope", "body_box": "purple box: a loop body, branch or called function",
               "body_link": "dotted purple arrow: op -> the functions it runs",
               "control": "dashed grey arrow: control dependency (runs before)",
               "path": "magenta: path from a source to the target", "stopped": "dashed orange border: stopped source",
               "disconnected": "dotted grey border: disconnected source",
               "added": "thick green border: op added by this trace",
               "removed": "dashed red border and arrows: op of the earlier trace, gone from this one",
               "changed": "orange arrow: dtype or shape changed (earlier -> now)",
               "heat": "fill: share of the measured op time (white 0% -> yellow 4% -> orange 50% -> red 100%)",
               "heat_memory": "fill: share of the bytes the step's ops allocated (white 0% -> yellow 4% -> orange "
                              "50% -> red 100%); 'the peak': the op whose allocation reached the step's peak",
               "xla_box": "solid orange box: one XLA kernel (a fusion) computing the ops inside it"}

#: Above this many edges, dtype/shape labels become external labels (cheaper to lay out).
EDGE_LABEL_LIMIT = 400


@dataclass(frozen=True)
class DotOptions:
    """How the DOT source is written."""

    edge_labels: bool = True
    legend: bool = True
    title: str = ""
    gradient: bool = False
    readable: bool = False  # the readable view's labels and scope boxes (see readable.py)
    heat: dict | None = None  # node name -> share of the profiled op time (profile.py), fills the nodes
    times: dict | None = None  # node name -> tooltip text of its time (or bytes)
    heat_words: str = "heat"  # the legend's words for the fill: "heat" (time) or "heat_memory" (bytes)
    layers: frozenset | None = None  # the Keras layers' names, read before collapsing hid the variables
    groups: dict | None = None  # op name -> the XLA kernel that computes it (xla.fusion_groups): boxes instead of scopes


def quote(text: str) -> str:
    """``text`` as a DOT double-quoted string, every special character neutralised."""
    cleaned = "".join(ch if ch >= " " or ch == "\n" else " " for ch in str(text))
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _readable_label(op: Op, layers: frozenset[str] = frozenset(), overlay: Overlay | None = None) -> str:
    """A node's label in the readable view: the user's names first, TensorFlow's type for the rest."""
    from tfmagic.readable import short_name

    shape = op.outputs[0].label if op.outputs else ""
    note = overlay.note(op.name) if overlay is not None else ""  # a gradient drawing's source or target
    if op.name in (overlay.sources if overlay is not None else ()):  # a source: its name and status
        return f"{op.label}\nsource: {overlay.gradient[op.name]}" if op.label else note
    if op.kind == "variable":
        return op.label or op.detail or op.name
    if op.kind == "input":
        name = op.label or (op.detail if op.detail and op.detail != "captured" else op.name)
        return f"{name}\n{shape}" if shape else name
    if op.kind == "output" and op.label:  # a long name (d loss / d sequential/dense/kernel) on two lines
        name = "\n".join(wrap(op.label, " ", OUTPUT_WIDTH)) if len(op.label) > OUTPUT_WIDTH else op.label
        return f"{name}\n{shape}" if shape else name
    if op.kind == "constant":
        value = op.detail or f"Const {shape}"
        return f"{value}\n{op.label}" if op.label else value
    if op.kind == "xla":
        return op.detail
    if op.folded is not None and op.kind in ("scope", "backward"):
        lines = folded_lines(op.folded)
        if op.kind == "backward":  # a layer's backward pass: named as the forward layer, and said so
            lines[0] += ", backward"
        return "\n".join(lines + ([note] if note else []))
    if op.kind == "scope":
        return f"{layer_scope(op.name, layers)}\n{op.type}"
    if op.type in DATASET_LOOPS and op.label:  # AutoGraph's loop over a dataset: as the code writes it
        lines = [op.label]
    else:
        lines = [f"call {op.callee}"] if op.callee else [f"print {op.prints}"] if op.prints else [op.type]
        name = "" if op.callee or op.prints else short_name(op)
        if name:
            lines.append(name)
        if op.operands:
            lines.append(", ".join(op.operands))
        if op.label:
            lines.append(op.label)
    if op.repeat > 1:
        lines[0] += f" \u00d7{op.repeat}"
    if op.variables:
        lines += wrap(f"reads {variables_text(op.variables)}", ", ", LABEL_WIDTH)
    if op.folded is not None:  # a call whose body is not drawn
        lines.append(f"{op.folded.ops:,} ops")
    if note:
        lines.append(note)
    return "\n".join(lines)


#: Characters per line of a node's label where it lists things (weights, slots, variables).
LABEL_WIDTH = 52

#: Characters per line of an output's name (a gradient's: ``d loss / d sequential/dense/kernel``).
OUTPUT_WIDTH = 28


def variables_text(names: list[str]) -> str:
    """Variables as a node holding them says it: ``26 variables: sequential 8, adam 18`` (by the first part of
    their paths), or their names when they are few.

    >>> variables_text(["net/d/kernel", "net/d/bias", "adam/iteration", "w"])
    '4 variables: net 2, adam 1, w'
    >>> variables_text(["w1", "w2"])
    '2 variables: w1, w2'
    """
    owners: dict[str, int] = {}
    for name in names:
        owner = name.split("/")[0] if "/" in name else name
        owners[owner] = owners.get(owner, 0) + (1 if "/" in name else 0)
    parts = [f"{owner} {count}" if count else owner for owner, count in owners.items()]
    return f"{len(names)} variable{'s' if len(names) != 1 else ''}: {', '.join(parts)}"


def folded_lines(folded) -> list[str]:
    """The label of a node that stands for many ops (``graph.Folded``): what it is, what it holds, its work.

    >>> from tfmagic.graph import Folded
    >>> folded_lines(Folded("layer", "conv2d", ops=10, types=("Conv2D", "BiasAdd", "Relu"),
    ...                     weights=(("kernel", "float32[3,3,3,32]"), ("bias", "float32[32]"))))
    ['conv2d', 'Conv2D, BiasAdd, Relu', 'kernel float32[3,3,3,32], bias float32[32]']
    >>> folded_lines(Folded("update", "adam", ops=195, updates=("net/d/kernel", "net/d/bias"),
    ...                     weights=(("net_d_kernel_momentum", ""), ("net_d_bias_momentum", ""), ("iteration", ""))))
    ['adam', 'updates 2 variables', 'momentum \xd72, iteration']
    """
    types = ", ".join(folded.types)
    weights = ", ".join(f"{name} {shape}".strip() for name, shape in folded.weights)
    if folded.role == "layer":
        lines = [folded.name] + ([types] if types else []) + wrap(weights, ", ", LABEL_WIDTH)
    elif folded.role == "model":
        lines = [folded.name, f"{folded.layers} layers \u00b7 {len(folded.weights)} weights \u00b7 {folded.ops:,} ops"]
    elif folded.role == "update":
        lines = [folded.name, f"updates {len(folded.updates)} variable{'s' if len(folded.updates) != 1 else ''}"]
        lines += wrap(_slots_text(folded), ", ", LABEL_WIDTH)
    elif folded.role == "stretch":  # ops outside every scope between the program's parts: by the work they do
        lines = [types or folded.name, f"{folded.ops:,} ops outside any name scope"]
    elif folded.role == "replica":  # strategy.run's step for a second device, drawn once
        lines = [folded.name, "the step again, on another replica's device", f"{folded.ops:,} ops"]
    elif folded.role == "gradient":  # gradient(...), jacobian(...), batch_jacobian(...): its results, so named
        n, word = folded.outputs, folded.name.split("(")[0].replace("batch_", "")
        lines = [folded.name, (f"{n} {word}{'s' if n != 1 else ''} \u00b7 " if n else "") + f"{folded.ops:,} ops"]
    else:
        count = f"{folded.ops:,} op{'s' if folded.ops != 1 else ''}"
        lines = [folded.name, f"{types} \u00b7 {count}" if types else count]
        lines += wrap(weights, ", ", LABEL_WIDTH) if weights and folded.role == "scope" else []
    if folded.fusions:
        lines.append(f"XLA: {folded.fusions} fusion{'s' if folded.fusions != 1 else ''}")
    return [line for line in lines if line]


def _slots_text(folded) -> str:
    """An optimizer's own variables: its slots counted by kind (``momentum \u00d78``), the rest by name."""
    kinds: dict[str, int] = {}
    mangled = [(u, u.replace("/", "_")) for u in folded.updates]
    for name, _ in folded.weights:
        kind = name.rsplit("/", 1)[-1]
        for path, flat in mangled:  # Keras 3: adam/dense_kernel_momentum; Keras 2: Adam/m/dense/kernel
            for prefix in (flat + "_", path + "/"):
                if prefix in name:
                    kind = name[name.index(prefix) + len(prefix):]
            if name.endswith("/" + path):
                kind = name[:-len(path) - 1].rsplit("/", 1)[-1]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{kind} \u00d7{n}" if n > 1 else kind for kind, n in kinds.items())


def _label(op: Op, overlay: Overlay | None = None) -> str:
    note = overlay.note(op.name) if overlay is not None else ""
    if op.kind == "variable":
        return f"variable\n{op.detail or op.name}" + (f"\n{note}" if note else "")
    if op.kind == "scope":
        return f"{op.name}\n{op.type}"
    if note:
        return f"{op.type}\n{op.name}\n{note}"
    if op.kind == "input":
        name = f"{op.name} ({op.detail})" if op.detail else op.name
        return f"{name}\n{op.outputs[0].label}" if op.outputs else name
    lines = [op.type, op.name]
    if op.kind == "constant" and op.detail:
        lines.append(op.detail)
    return "\n".join(lines)


def _scope_tree(model: GraphModel, readable: bool = False, strip: str = "") -> dict:
    """Ops grouped by name scope: ``{None: [ops here], "scope": {...}}``.

    An op named like a scope (``mul`` beside ``mul/y``) goes inside it, and a scope
    holding a single op is not a cluster of its own.  In the readable view constants do
    not count (``Greater`` beside its ``Greater/y`` is no box), and a box that would hold
    exactly what the box around it holds is merged into it (``hidden_1/Cast`` -> one box),
    and ``strip`` (the scope of the op that runs a body, ``while/``) is no box inside that body.
    """
    def scope_of(op):
        name = op.name[len(strip):] if strip and op.name.startswith(strip) else op.name
        return name, name.rpartition("/")[0]

    scopes = {scope_of(op)[1] for op in model.ops.values() if scope_of(op)[1]}
    prefixes = {"/".join(s.split("/")[:i]) for s in scopes for i in range(1, s.count("/") + 2)}
    tree: dict = {}
    for op in model.ops.values():
        name, scope = scope_of(op)
        path = name if name in prefixes else scope
        if readable and op.kind == "input":  # an input is the graph's (a body's), not its scope's
            path = ""
        node = tree
        for part in path.split("/") if path else ():
            node = node.setdefault(part, {})
        node.setdefault(None, []).append(op)
    tree = _flatten_single(tree, readable)
    if not readable:
        return tree
    tree = _merge_chains(tree)
    while len(tree) == 2 and not tree.get(None):  # one box holding the whole drawing (or body): no box
        tree = next(child for key, child in tree.items() if key is not None)
    return tree


def _flatten_single(tree: dict, readable: bool = False) -> dict:
    out: dict = {None: list(tree.get(None, []))}
    for part, child in tree.items():
        if part is None:
            continue
        child = _flatten_single(child, readable)
        if _size(child, readable) < 2:
            out[None].extend(_all_ops(child))
        else:
            out[part] = child
    return out


def _merge_chains(tree: dict) -> dict:
    """A box holding nothing but one other box becomes that box, labelled ``outer/inner``."""
    out: dict = {None: list(tree.get(None, []))}
    for part, child in tree.items():
        if part is None:
            continue
        child = _merge_chains(child)
        inner = [k for k in child if k is not None]
        while not child.get(None) and len(inner) == 1:
            part, child = f"{part}/{inner[0]}", child[inner[0]]
            inner = [k for k in child if k is not None]
        out[part] = child
    return out


def _size(tree: dict, readable: bool = False) -> int:
    # In the readable view a box is drawn for the ops it groups: constants, inputs and variables feeding
    # one op (``mul`` beside ``mul/y``, ``BiasAdd`` beside its bias) make no box of their own.
    own = [op for op in tree.get(None, []) if not (readable and op.kind in ("constant", "variable", "input"))]
    return len(own) + sum(_size(c, readable) for k, c in tree.items() if k is not None)


def _all_ops(tree: dict) -> list[Op]:
    ops = list(tree.get(None, []))
    for key, child in tree.items():
        if key is not None:
            ops.extend(_all_ops(child))
    return ops


#: Fill colours of ops by device, when a graph's ops sit on more than one device.
DEVICE_COLOURS = ("#e3f2fd", "#fff3e0", "#e8f5e9", "#fce4ec", "#ede7f6", "#e0f7fa", "#f9fbe7", "#efebe9")


def devices_of(model: GraphModel) -> list[str]:
    """The distinct devices the model's ops (and sub-graphs' ops) ask for, in order of appearance.

    ``""`` stands for ops that ask for none (TensorFlow places them); it is listed only beside others.
    """
    found: dict[str, None] = {}
    for op in model.ops.values():
        if op.kind in ("op", "control_flow", "output", "backward"):
            found.setdefault(op.device, None)
        for _, sub in op.subgraphs:
            for device in devices_of(sub):
                found.setdefault(device, None)
    named = [d for d in found if d]
    return list(found) if named else []


class _Writer:
    def __init__(self, options: DotOptions, edge_count: int, device_colours: dict[str, str] | None = None):
        self.lines: list[str] = []
        self.options = options
        self.device_colours = device_colours or {}
        self.edge_attr = "label" if options.edge_labels and edge_count <= EDGE_LABEL_LIMIT else "xlabel"
        self.cluster_count = 0
        self.used: dict[str, None] = {}  # node kinds and line/box styles drawn, for the legend
        self.consumers: dict[str, list[str]] = {}  # node id -> the nodes its tensors feed
        self.layers: frozenset[str] = frozenset()  # Keras layers' own names (readable view's scope labels)
        self.overlay = Overlay()  # what the drawing lays over the model being written (graph.Overlay)
        self.ranked = False  # a variable was put on its reader's rank (which needs newrank)

    def node(self, node_id: str, op: Op, indent: str) -> None:
        self.used[op.kind] = None
        mark = self.overlay.mark(op.name)
        if mark:
            self.used[mark if mark in ("stopped", "disconnected", "added", "removed") else "path"] = None
        fill, border, shape = STYLES[op.kind]
        if op.device in self.device_colours and op.kind in ("op", "control_flow", "output", "backward"):
            fill = self.device_colours[op.device]
        label = _readable_label(op, self.layers, self.overlay) if self.options.readable else _label(op, self.overlay)
        tooltip = op.type + " " + op.name
        heat = self.options.heat
        if heat is not None and node_id in heat:  # a profiled drawing: filled by its share of the time
            from tfmagic.profile import share_colour

            fill = share_colour(heat[node_id])
            self.used[self.options.heat_words] = None
            timing = (self.options.times or {}).get(node_id, f"{heat[node_id]:.1%}")
            tooltip += ": " + timing
            if heat[node_id] >= 0.01:
                label += "\n" + timing
        extra = ' fontsize=8 height=0.2' if op.kind in ("constant", "xla") else ""
        style = '"rounded,filled"' if shape == "box" and op.kind != "constant" else "filled"
        if op.kind == "control_flow":
            style = '"filled,bold"'
        if mark:
            border, width, extra_style = MARKS[mark]
            extra += f" penwidth={width}"
            if extra_style:
                style = f'"{style.strip(chr(34))},{extra_style}"'
        self.lines.append(
            f"{indent}{quote(node_id)} [label={quote(label)} shape={shape} style={style} "
            f'fillcolor="{fill}" color="{border}"{extra} tooltip={quote(tooltip)}]'
        )

    def graph(self, model: GraphModel, prefix: str, indent: str, strip: str = "") -> None:
        outer, self.overlay = self.overlay, model.overlay  # a function body's ops have an overlay of their own
        self._graph(model, prefix, indent, strip)
        self.overlay = outer

    def _graph(self, model: GraphModel, prefix: str, indent: str, strip: str = "") -> None:
        for edge in model.edges:
            if not edge.control:
                self.consumers.setdefault(prefix + edge.src, []).append(prefix + edge.dst)
        if self.options.groups and not prefix:  # XLA's kernels become the boxes, around the ops they compute
            self._groups(model, indent)
        else:  # name scopes become nested clusters
            self._scope(_scope_tree(model, self.options.readable, strip), prefix, "", indent)
        for edge in model.edges:
            src, dst = quote(prefix + edge.src), quote(prefix + edge.dst)
            if edge.control:
                self.used["control"] = None
                self.lines.append(f'{indent}{src} -> {dst} [{EDGE_STYLES["control"]}]')
            else:
                label = edge.tensor.label if edge.tensor else ""
                if edge.count > 1:  # a folded drawing's edge standing for several tensors (a list's parts)
                    label = f"{edge.count} tensors"
                if edge.change and edge.change != "removed":
                    label = f"{edge.change} -> {label}"
                attr = f" {self.edge_attr}={quote(label)}" if self.options.edge_labels and label else ""
                if edge.on_path:
                    attr += " " + EDGE_STYLES["path"]
                if edge.change == "removed":
                    attr += " " + EDGE_STYLES["removed"]
                elif edge.change:
                    attr += " " + EDGE_STYLES["changed"]
                    self.used["changed"] = None
                self.lines.append(f"{indent}{src} -> {dst} [{attr.strip()}]" if attr else f"{indent}{src} -> {dst}")
        for op in model.ops.values():
            for label, sub in op.subgraphs:
                self._subgraph(op, label, sub, prefix, indent)
        if self.options.readable:
            self._backward_below_target(model, prefix, indent)
            self._variables_beside_readers(model, prefix, indent)

    def _variables_beside_readers(self, model: GraphModel, prefix: str, indent: str) -> None:
        """Each variable sits on its first reader's rank, beside it: a layer's box then spans its own ops' ranks
        only, and the boxes of a model's layers stack in the order the data flows (not a staircase)."""
        placed = set()
        for edge in model.edges:
            src = model.ops.get(edge.src)
            if src is None or src.kind != "variable" or edge.src in placed or edge.control:
                continue
            placed.add(edge.src)
            self.ranked = True
            self.lines.append(f"{indent}{{rank=same; {quote(prefix + edge.src)}; {quote(prefix + edge.dst)}}}")

    def _backward_below_target(self, model: GraphModel, prefix: str, indent: str) -> None:
        """In a gradient drawing, the backward ops sit below the forward pass's target (invisible edges)."""
        target = model.overlay.target
        if target is None or target not in model.ops:
            return
        fed_by_backward = {e.dst for e in model.edges if model.ops.get(e.src) and model.ops[e.src].kind == "backward"}
        for name, op in model.ops.items():
            if op.kind == "backward" and name not in fed_by_backward:
                self.lines.append(f"{indent}{quote(prefix + target)} -> {quote(prefix + name)} [style=invis]")

    def _groups(self, model: GraphModel, indent: str) -> None:
        boxes: dict[str, list[Op]] = {}
        for op in model.ops.values():
            group = self.options.groups.get(op.name)
            if group is None:
                self.node(op.name, op, indent)
            else:
                boxes.setdefault(group, []).append(op)
        for label, ops in boxes.items():
            self.cluster_count += 1
            self.used["xla_box"] = None
            self.lines.append(f"{indent}subgraph {quote(f'cluster_{self.cluster_count}')} {{")
            self.lines.append(f'{indent}  label={quote(label)} style="rounded" color="#ef6c00" fontcolor="#bf360c" '
                              "penwidth=1.6")
            for op in ops:
                self.node(op.name, op, indent + "  ")
            self.lines.append(f"{indent}}}")

    def _scope(self, tree: dict, prefix: str, path: str, indent: str) -> None:
        for op in tree.get(None, []):
            self.node(prefix + op.name, op, indent)
        for part, child in tree.items():
            if part is None:
                continue
            scope_path = f"{path}/{part}" if path else part
            self.cluster_count += 1
            self.used["scope_box"] = None
            self.lines.append(f"{indent}subgraph {quote(f'cluster_{self.cluster_count}')} {{")
            caption = part
            if self.options.readable:
                caption = "backward pass: gradient_tape" if scope_path == "gradient_tape" else layer_scope(
                    part, self.layers)
            self.lines.append(f'{indent}  label={quote(caption)} tooltip={quote(scope_path)} '
                              f'style="rounded,dashed" color="#9e9e9e" fontcolor="#616161"')
            self._scope(child, prefix, scope_path, indent + "  ")
            self.lines.append(f"{indent}}}")

    def _subgraph(self, op: Op, label: str, sub: GraphModel, prefix: str, indent: str) -> None:
        self.cluster_count += 1
        self.used["body_box"] = None
        cluster = f"cluster_{self.cluster_count}"
        sub_prefix = f"{prefix}{op.name}/{label}:"
        self.lines.append(f"{indent}subgraph {quote(cluster)} {{")
        if op.callee:  # a call of the user's tf.function: its box is named by the function
            caption = op.callee if self.options.readable else f"{op.type} {op.callee}: {sub.name}"
        elif op.type in DATASET_LOOPS and self.options.readable:  # AutoGraph's loop over a dataset
            caption = "loop body"
        else:
            caption = f"{op.type} {label}" if self.options.readable else f"{op.type} {label}: {sub.name}"
        self.lines.append(f'{indent}  label={quote(caption)} tooltip={quote(sub.name)} style="rounded,filled" '
                          f'fillcolor="#faf7ff" color="#6a3fb5" fontcolor="#6a3fb5"')
        self.graph(sub, sub_prefix, indent + "  ", op.name + "/" if self.options.readable else "")
        self.lines.append(f"{indent}}}")
        if sub.ops:
            self.used["body_link"] = None
            first = next((n for n in sub.inputs if n in sub.ops), next(iter(sub.ops)))
            self.lines.append(f'{indent}{quote(prefix + op.name)} -> {quote(sub_prefix + first)} '
                              f'[lhead={quote(cluster)} style=dotted color="#6a3fb5" arrowhead=odot]')
            if self.options.readable:  # what uses the op's results sits below its bodies: a narrow drawing
                sinks = [n for n, o in sub.ops.items() if o.kind == "output"]
                for consumer in dict.fromkeys(self.consumers.get(prefix + op.name, ())):
                    for sink in sinks:
                        self.lines.append(f"{indent}{quote(sub_prefix + sink)} -> {quote(consumer)} "
                                          "[style=invis weight=0]")


_COLOUR_NAMES = dict(zip(DEVICE_COLOURS, ("light blue", "light orange", "light green", "pink", "lavender",
                                          "light cyan", "light lime", "light brown")))


def _colour_name(colour: str) -> str:
    return _COLOUR_NAMES.get(colour, colour)


def legend(used) -> list[str]:
    """The legend's lines for the node kinds and styles a drawing uses (every one it uses, no other)."""
    words = [KIND_WORDS[k] for k in KIND_WORDS if k in used and k != "op"]
    words += [STYLE_WORDS[k] for k in STYLE_WORDS if k in used]
    if "op" in used:
        words.append("white: op (type, then name)")
    if any(k in used for k in ("op", "control_flow", "backward")):
        words.append("arrows: tensors, labelled dtype[shape]")
    return wrap(" · ".join(words), " · ")


#: Characters per line of a caption or legend (about 500 pt at the caption's font size).
CAPTION_WIDTH = 100


def wrap(text: str, separator: str = " ", width: int = CAPTION_WIDTH) -> list[str]:
    """``text`` cut at ``separator`` into lines of at most ``width`` characters (where it can be).

    >>> wrap("aaa bbb ccc", " ") == ["aaa bbb ccc"]
    True
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        parts = paragraph.split(separator)
        if separator != " " and any(len(part) > width for part in parts):  # a part too long: cut it at spaces
            return wrap(text, " ", width)
        for part in parts:
            candidate = f"{line}{separator}{part}" if line else part
            if line and len(candidate) > width:
                lines.append(line + separator.rstrip())
                line = part
            else:
                line = candidate
        lines.append(line)
    return lines


def build_dot(model: GraphModel, options: DotOptions = DotOptions()) -> str:
    """The DOT source that draws ``model`` (with its sub-graphs) in tfmagic's style."""
    edge_count = len(model.edges)
    devices = devices_of(model)
    colours = {d: DEVICE_COLOURS[i % len(DEVICE_COLOURS)] for i, d in enumerate(devices)} if len(devices) > 1 else {}
    writer = _Writer(options, edge_count, colours)
    if options.readable:
        writer.layers = options.layers if options.layers is not None else layer_names(model)
    writer.graph(model, "", "  ")
    body = writer.lines
    lines = [part for line in (options.title or model.name).split("\n")  # a list of counts breaks at its commas
             for part in wrap(line, ", " if ", " in line else " ")]
    if options.legend:
        lines += legend(writer.used)
    if colours:
        lines += wrap("ops filled by device: " + " · ".join(
            f"{_colour_name(c)}: {d or 'placed by TensorFlow'}" for d, c in colours.items()), " · ")
    label = "\n".join(lines)
    newrank = options.readable and (writer.used.get("body_box", 1) is None or writer.ranked)  # bodies, rank=same
    head = [
        f"digraph {quote(model.name)} {{",
        f'  graph [{"newrank=true " if newrank else ""}'
        f'rankdir=TB compound=true fontname="Helvetica" fontsize=10 nodesep=0.25 ranksep=0.35 '
        f"labelloc=b label={quote(label)}" + (" nslimit=1 splines=line" if edge_count > 300 else "") + "]",
        '  node [fontname="Helvetica" fontsize=10 height=0.3 margin="0.08,0.03"]',
        '  edge [fontname="Helvetica" fontsize=8 color="#555555" fontcolor="#555555" arrowsize=0.6]',
    ]
    return "\n".join(head + body + ["}"]) + "\n"

"""Graph model -> DOT source, with tfmagic's colours and shapes.

Legend (also printed under every drawing):

- green, pointing in: an input (an argument of the function: a tensor, array or Python value);
- orange cylinder: a variable (a ``tf.Variable``'s resource handle, captured or passed);
- grey: a constant (its value shown when small);
- blue, pointing out: an output of the function;
- purple: control flow or a function call (``While``, ``If``, ``StatefulPartitionedCall``),
  with the graphs of its functions drawn in clusters beside it;
- white: every other op.  Edges carry the tensor's dtype and shape (``float32[2,3]``);
  dashed grey edges are control dependencies.  Dashed boxes are name scopes.

In a gradient drawing (``%%tape --show graph``) the backward ops are light brown,
the forward path from each source to the target has a magenta border and magenta
edges, a stopped source a dashed orange border, a disconnected one a dashed grey
border.

Every string that comes from the user's code (op names, scopes, constant values)
is escaped with :func:`quote`, so a name cannot break out of its DOT string.

>>> quote('say "hi" \\\\ <b>')
'"say \\\\"hi\\\\" \\\\\\\\ <b>"'
"""

from __future__ import annotations

from dataclasses import dataclass

from tfmagic.graph import GraphModel, Op

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
}

#: How a gradient drawing marks ops: (border colour, pen width, extra style).
MARKS: dict[str, tuple[str, str, str]] = {
    "path": ("#d81b60", "2.2", ""),
    "connected": ("#d81b60", "2.6", ""),
    "stopped": ("#e65100", "2.6", "dashed"),
    "disconnected": ("#9e9e9e", "2.0", "dashed"),
}

LEGEND = ("green: input · orange: variable · grey: constant · blue: output · "
          "purple: control flow / call · dashed: control dependency")
GRADIENT_LEGEND = ("light brown: backward (gradient) ops · magenta: path from a source to the target · "
                   "dashed orange: stopped source · dashed grey: disconnected source")

#: Above this many edges, dtype/shape labels become external labels (cheaper to lay out).
EDGE_LABEL_LIMIT = 400


@dataclass(frozen=True)
class DotOptions:
    """How the DOT source is written."""

    edge_labels: bool = True
    legend: bool = True
    title: str = ""
    gradient: bool = False


def quote(text: str) -> str:
    """``text`` as a DOT double-quoted string, every special character neutralised."""
    cleaned = "".join(ch if ch >= " " or ch == "\n" else " " for ch in str(text))
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _label(op: Op) -> str:
    if op.kind == "variable":
        return f"variable\n{op.detail or op.name}"
    if op.kind == "scope":
        return f"{op.name}\n{op.type}"
    if op.detail.startswith("source ") or op.detail == "target":
        return f"{op.type}\n{op.name}\n{op.detail}"
    if op.kind == "input":
        name = f"{op.name} ({op.detail})" if op.detail else op.name
        return f"{name}\n{op.outputs[0].label}" if op.outputs else name
    lines = [op.type, op.name]
    if op.kind == "constant" and op.detail:
        lines.append(op.detail)
    return "\n".join(lines)


def _scope_tree(model: GraphModel) -> dict:
    """Ops grouped by name scope: ``{None: [ops here], "scope": {...}}``.

    An op named like a scope (``mul`` beside ``mul/y``) goes inside it, and a scope
    holding a single op is not a cluster of its own.
    """
    scopes = {op.scope for op in model.ops.values() if op.scope}
    prefixes = {"/".join(s.split("/")[:i]) for s in scopes for i in range(1, s.count("/") + 2)}
    tree: dict = {}
    for op in model.ops.values():
        path = op.name if op.name in prefixes else op.scope
        node = tree
        for part in path.split("/") if path else ():
            node = node.setdefault(part, {})
        node.setdefault(None, []).append(op)
    return _flatten_single(tree)


def _flatten_single(tree: dict) -> dict:
    out: dict = {None: list(tree.get(None, []))}
    for part, child in tree.items():
        if part is None:
            continue
        child = _flatten_single(child)
        if _size(child) < 2:
            out[None].extend(_all_ops(child))
        else:
            out[part] = child
    return out


def _size(tree: dict) -> int:
    return len(tree.get(None, [])) + sum(_size(c) for k, c in tree.items() if k is not None)


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

    def node(self, node_id: str, op: Op, indent: str) -> None:
        fill, border, shape = STYLES[op.kind]
        if op.device in self.device_colours and op.kind in ("op", "control_flow", "output", "backward"):
            fill = self.device_colours[op.device]
        extra = ' fontsize=8 height=0.2' if op.kind == "constant" else ""
        style = '"rounded,filled"' if shape == "box" and op.kind != "constant" else "filled"
        if op.kind == "control_flow":
            style = '"filled,bold"'
        if op.mark:
            border, width, extra_style = MARKS[op.mark]
            extra += f" penwidth={width}"
            if extra_style:
                style = f'"{style.strip(chr(34))},{extra_style}"'
        self.lines.append(
            f"{indent}{quote(node_id)} [label={quote(_label(op))} shape={shape} style={style} "
            f'fillcolor="{fill}" color="{border}"{extra} tooltip={quote(op.type + " " + op.name)}]'
        )

    def graph(self, model: GraphModel, prefix: str, indent: str) -> None:
        # Name scopes become nested clusters.
        self._scope(_scope_tree(model), prefix, "", indent)
        for edge in model.edges:
            src, dst = quote(prefix + edge.src), quote(prefix + edge.dst)
            if edge.control:
                self.lines.append(f'{indent}{src} -> {dst} [style=dashed color="#aaaaaa" arrowhead=empty]')
            else:
                label = edge.tensor.label if edge.tensor else ""
                attr = f" {self.edge_attr}={quote(label)}" if self.options.edge_labels and label else ""
                if edge.on_path:
                    attr += ' color="#d81b60" penwidth=2'
                self.lines.append(f"{indent}{src} -> {dst} [{attr.strip()}]" if attr else f"{indent}{src} -> {dst}")
        for op in model.ops.values():
            for label, sub in op.subgraphs:
                self._subgraph(op, label, sub, prefix, indent)

    def _scope(self, tree: dict, prefix: str, path: str, indent: str) -> None:
        for op in tree.get(None, []):
            self.node(prefix + op.name, op, indent)
        for part, child in tree.items():
            if part is None:
                continue
            scope_path = f"{path}/{part}" if path else part
            self.cluster_count += 1
            self.lines.append(f"{indent}subgraph {quote(f'cluster_{self.cluster_count}')} {{")
            self.lines.append(f'{indent}  label={quote(part)} tooltip={quote(scope_path)} '
                              f'style="rounded,dashed" color="#9e9e9e" fontcolor="#616161"')
            self._scope(child, prefix, scope_path, indent + "  ")
            self.lines.append(f"{indent}}}")

    def _subgraph(self, op: Op, label: str, sub: GraphModel, prefix: str, indent: str) -> None:
        self.cluster_count += 1
        cluster = f"cluster_{self.cluster_count}"
        sub_prefix = f"{prefix}{op.name}/{label}:"
        self.lines.append(f"{indent}subgraph {quote(cluster)} {{")
        self.lines.append(f'{indent}  label={quote(f"{op.type} {label}: {sub.name}")} style="rounded,filled" '
                          f'fillcolor="#faf7ff" color="#6a3fb5" fontcolor="#6a3fb5"')
        self.graph(sub, sub_prefix, indent + "  ")
        self.lines.append(f"{indent}}}")
        if sub.ops:
            first = sub.inputs[0] if sub.inputs else next(iter(sub.ops))
            self.lines.append(f'{indent}{quote(prefix + op.name)} -> {quote(sub_prefix + first)} '
                              f'[lhead={quote(cluster)} style=dotted color="#6a3fb5" arrowhead=odot]')


_COLOUR_NAMES = dict(zip(DEVICE_COLOURS, ("light blue", "light orange", "light green", "pink", "lavender",
                                          "light cyan", "light lime", "light brown")))


def _colour_name(colour: str) -> str:
    return _COLOUR_NAMES.get(colour, colour)


def build_dot(model: GraphModel, options: DotOptions = DotOptions()) -> str:
    """The DOT source that draws ``model`` (with its sub-graphs) in tfmagic's style."""
    edge_count = len(model.edges)
    devices = devices_of(model)
    colours = {d: DEVICE_COLOURS[i % len(DEVICE_COLOURS)] for i, d in enumerate(devices)} if len(devices) > 1 else {}
    writer = _Writer(options, edge_count, colours)
    title = options.title or model.name
    label = title + ("\n" + LEGEND if options.legend else "") + (
        "\n" + GRADIENT_LEGEND if options.legend and options.gradient else "")
    if colours:
        label += "\nops filled by device: " + " · ".join(
            f"{_colour_name(c)}: {d or 'placed by TensorFlow'}" for d, c in colours.items())
    writer.lines += [
        f"digraph {quote(model.name)} {{",
        f'  graph [rankdir=TB compound=true fontname="Helvetica" fontsize=10 nodesep=0.25 ranksep=0.35 '
        f"labelloc=b label={quote(label)}" + (" nslimit=1 splines=line" if edge_count > 300 else "") + "]",
        '  node [fontname="Helvetica" fontsize=10 height=0.3 margin="0.08,0.03"]',
        '  edge [fontname="Helvetica" fontsize=8 color="#555555" fontcolor="#555555" arrowsize=0.6]',
    ]
    writer.graph(model, "", "  ")
    writer.lines.append("}")
    return "\n".join(writer.lines) + "\n"

"""The readable view: a graph model simplified to the program the user wrote.

:func:`readable_view` is the one simplification step every default drawing goes through
(``%%tfgraph``, ``%tfgraph FUNC``, ``%%tape --show graph``, the explorer, ``--show optimized``);
``--ops all`` skips it and draws every op as TensorFlow has it.  It works on the graph model
(``graph.py``) and returns a new one, with a count of what it hid:

- a ``ReadVariableOp`` folds into the edge from its variable to the op that reads it;
- a pass-through ``Identity`` folds into the edge it forwards; outputs that return the same
  tensor under several names become one output node carrying every name;
- ``NoOp`` and control-dependency edges are hidden (a stateful op with no consumer, an
  ``assign_add``, stays: it is the only thing that shows the effect);
- ops whose results nothing uses are hidden (TensorFlow prunes them: they never run);
- loop bookkeeping: a ``While``'s iteration counter and ``maximum_iterations``, what computes
  them, and the loop values a body only forwards, fold away; inputs of a loop body or branch are
  named after what feeds them outside (``n``, ``xs``, ``hidden/kernel``).

Nothing is hidden silently: :meth:`Hidden.line` is printed under the drawing.

>>> h = Hidden(); h.add("noop"); h.add("control", 3); h.add("bookkeeping", 6)
>>> h.line()
'hidden: 1 NoOp, 3 control edges, 6 loop bookkeeping ops -- --ops all shows every op'
"""

from __future__ import annotations

import collections
import copy
import re
from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace

from tfmagic.graph import Edge, GraphModel, Op, without_counter

#: What the readable view hides, in the order the note lists it: key -> (singular, plural).
CATEGORIES: dict[str, tuple[str, str]] = {
    "noop": ("NoOp", "NoOps"),
    "control": ("control edge", "control edges"),
    "read": ("variable read", "variable reads"),
    "identity": ("pass-through Identity", "pass-through Identities"),
    "bookkeeping": ("loop bookkeeping op", "loop bookkeeping ops"),
    "forward": ("body input only forwarded or unread", "body inputs only forwarded or unread"),
    "unused": ("unused op (never runs)", "unused ops (never run)"),
    "constant": ("constant shown in the op that reads it", "constants shown in the ops that read them"),
    "format": ("tf.print format shown in its print", "tf.print formats shown in their prints"),
    "gradient": ("op of a tape's gradient call drawn as its call", "ops of tape gradient calls drawn as their calls"),
}

#: How a constant operand reads beside a binary op: ``+ 10``, ``\u00d7 3.0``.
_SYMBOLS = {"AddV2": "+", "Add": "+", "Sub": "-", "Mul": "\u00d7", "RealDiv": "/", "Div": "/", "FloorDiv": "//",
            "FloorMod": "%", "Pow": "**", "Maximum": "max", "Minimum": "min", "Greater": ">", "GreaterEqual": ">=",
            "Less": "<", "LessEqual": "<=", "Equal": "==", "NotEqual": "!="}

_WHILE = ("While", "StatelessWhile")
_IF = ("If", "StatelessIf", "Case", "StatelessCase")


@dataclass
class Hidden:
    """How many ops and edges of each kind the readable view hid."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        """``hidden: 1 NoOp, 3 control edges -- --ops all shows every op``, or ``""`` when nothing was."""
        parts = [f"{self.counts[k]} {CATEGORIES[k][self.counts[k] != 1]}" for k in CATEGORIES if self.counts.get(k)]
        return f"hidden: {', '.join(parts)} -- --ops all shows every op" if parts else ""


def readable_view(model: GraphModel) -> tuple[GraphModel, Hidden]:
    """The model as the user wrote it, and what was hidden to get there (see the module's docstring)."""
    hidden = Hidden()
    return _Simplifier(model, hidden).run(), hidden


class _Simplifier:
    """One graph (and, recursively, its function bodies) being simplified."""

    def __init__(self, model: GraphModel, hidden: Hidden, role: str = "",
                 slot_labels: list[tuple[str, str]] | None = None, result_names: list[str] | None = None):
        self.model = model
        self.hidden = hidden
        self.role = role  # "" (the traced function), "while body", "while cond", "branch", "function"
        self.slot_labels = slot_labels or []  # per body input: (the user's name, or a constant's value)
        self.result_names = result_names or []  # a branch's outputs, as the cell names them
        self.ops = {name: _copy_op(op) for name, op in model.ops.items()}  # the model itself stays as it is
        self.edges = [copy.copy(e) for e in model.edges if e.src in model.ops and e.dst in model.ops]
        self._indexed = None  # the edge list the indexes below were built from
        self._ins: dict[str, list[Edge]] = {}
        self._outs: dict[str, list[Edge]] = {}

    def _index(self) -> None:
        if self._indexed is not self.edges:  # every step that changes edges makes a new list
            self._ins, self._outs = {}, {}
            for edge in self.edges:
                self._ins.setdefault(edge.dst, []).append(edge)
                self._outs.setdefault(edge.src, []).append(edge)
            self._indexed = self.edges

    def _in(self, name: str) -> list[Edge]:
        self._index()
        return self._ins.get(name, [])

    def _out(self, name: str) -> list[Edge]:
        self._index()
        return self._outs.get(name, [])

    # -- the steps -----------------------------------------------------------------

    def run(self) -> GraphModel:
        self._drop_control()
        self._fold_gradient_calls()
        self._name_inputs()
        bodies = self._body_roles()  # before bookkeeping goes: the slot labels read what feeds each op
        self._fold("ReadVariableOp", "read")
        self._fold("Identity", "identity")
        self._sweep("unused", placeholders=False)
        self._fold_constants()
        self._fold_prints()
        self._operands_text()
        self._drop_loop_bookkeeping()
        self._sweep("bookkeeping", placeholders=True)
        self._merge_outputs()
        for name, (kind, labels, results) in bodies.items():
            op = self.ops.get(name)
            if op is not None:
                op.subgraphs = [(label, _Simplifier(sub, self.hidden, f"while {label}" if kind == "while" else kind,
                                                    labels, results).run()) for label, sub in op.subgraphs]
        inputs = [n for n in self.model.inputs if n in self.ops]
        kept = [(n, i) for n, i in self.model.output_tensors if n in self.ops]
        return GraphModel(self.model.name, self.ops, self.edges, inputs,
                          sorted({n for n in self.model.outputs if n in self.ops}), kept, self.model.overlay)

    def _drop_control(self) -> None:
        control = [e for e in self.edges if e.control]
        self.hidden.add("control", len(control))
        self.edges = [e for e in self.edges if not e.control]
        self._remove_all({n: "noop" for n, op in self.ops.items() if op.type == "NoOp"})

    def _fold_gradient_calls(self) -> None:
        """Each ``tape.gradient`` / ``jacobian`` / ``batch_jacobian`` call is one node (``jacobian(y, x)``, with
        what it reads and returns), not the hundred ops of its backward pass and ``pfor`` plumbing."""
        groups: dict[str, list[str]] = {}
        for name, op in self.ops.items():
            if op.made_by and op.kind not in ("input", "variable", "output"):
                groups.setdefault(op.made_by, []).append(name)
        for call, members in groups.items():
            if len(members) < 2:
                continue
            inside = set(members)
            count = len(members) + sum(sub.total_ops() for n in members for _, sub in self.ops[n].subgraphs)
            node = Op(call, f"{count} ops", "scope", [], self.ops[members[0]].device, f"scope {call}")
            edges, seen = [], set()
            results: dict[tuple[str, int], int] = {}  # each tensor the call gives: an output of its own
            for edge in self.edges:
                src = call if edge.src in inside else edge.src
                dst = call if edge.dst in inside else edge.dst
                if src == dst == call:
                    continue
                if call in (src, dst):
                    index = results.setdefault((edge.src, edge.src_index), len(results)) if src == call \
                        else edge.src_index
                    key = (src, index, dst, edge.dst_index if dst != call else 0)
                    if key in seen:
                        continue
                    seen.add(key)
                    edge = dataclasses_replace(edge, src=src, dst=dst, src_index=index)
                edges.append(edge)
            for name in members:
                del self.ops[name]
            self.ops[call] = node
            self.edges = edges
            self.hidden.add("gradient", len(members) - 1)

    def _fold_prints(self) -> None:
        """``tf.print``: the StringFormat that makes its text goes into the print, which says what it prints
        (``print 'Fizz'``, ``print i``); what the format read feeds the print."""
        for name, op in list(self.ops.items()):
            ins = self._in(name)
            if op.type != "PrintV2" or len(ins) != 1 or self.ops.get(ins[0].src) is None:
                continue
            fmt = self.ops[ins[0].src]
            if fmt.type != "StringFormat" or len(self._out(fmt.name)) != 1 or fmt.kind == "output":
                continue
            reads = self._in(fmt.name)
            if fmt.detail == "{}" and len(reads) == 1 and reads[0].src in self.ops:
                op.prints = _shown_name(self.ops[reads[0].src])
            else:
                op.prints = repr(fmt.detail)
            moved = [dataclasses_replace(e, dst=name) for e in reads]
            self.edges = [e for e in self.edges if e.dst != fmt.name and e.src != fmt.name] + moved
            del self.ops[fmt.name]
            self.hidden.add("format")

    def _name_inputs(self) -> None:
        """A function body's inputs take the names of what feeds them outside; its outputs say what they are."""
        if not self.role:
            return
        forwarded = self._forwarded_slots()
        for index, name in enumerate(self.model.inputs):
            op = self.ops.get(name)
            if op is not None and op.label and self.role == "function" and index < len(self.slot_labels):
                value = self.slot_labels[index][1]  # a parameter fed a constant: the value it was called with
                if value:
                    op.label = f"{op.label} = {value}"
                continue
            if op is not None and not op.label and index < len(self.slot_labels):
                user, value = self.slot_labels[index]
                loop_var = self.role.startswith("while") and index not in forwarded
                if user and loop_var and value:  # where the loop starts: the constant it was folded from
                    op.label = f"{user} (from {value})"
                else:
                    op.label = user or (f"loop var (from {value})" if loop_var and value else
                                        "loop var" if loop_var else value or op.label)
        for index, (name, _) in enumerate(self.model.output_tensors):
            op = self.ops.get(name)
            if op is None or op.kind != "output" or op.label:
                continue
            if self.role == "while body":
                user, value = self.slot_labels[index] if index < len(self.slot_labels) else ("", "")
                op.label = f"next {user}" if user else f"next loop var (from {value})" if value else "next loop var"
            elif self.role == "while cond":
                op.label = "go on?"
            elif len(self.result_names) == len(self.model.output_tensors):
                op.label = self.result_names[index]
            else:
                op.label = "result" if len(self.model.output_tensors) == 1 else f"result {index}"

    def _forwarded_slots(self) -> set[int]:
        """The inputs of a while body that it returns unchanged (loop invariants: captured tensors)."""
        if self.role != "while body":
            return set()
        forwarded = set()
        inputs = self.model.inputs
        for index, (name, _) in enumerate(self.model.output_tensors):
            if index >= len(inputs):
                continue
            feeding = [e.src for e in self.model.edges if e.dst == name and not e.control]
            if name == inputs[index] or feeding == [inputs[index]]:
                forwarded.add(index)
        return forwarded

    def _body_roles(self) -> dict[str, tuple[str, list[tuple[str, str]], list[str]]]:
        """For each control-flow op: the kind of its bodies, a name for each body input and output."""
        named_results = self._named_results()  # (op, output) -> name; loops add their variables' names below
        roles = {}
        for name, op in self.ops.items():
            if not op.subgraphs:
                continue
            offset = 1 if op.type in _IF else 0
            feeding = {e.dst_index: e for e in self._in(name)}
            labels = []
            for slot in range(offset, 1 + max(feeding, default=-1)):
                edge = feeding.get(slot)
                # a loop variable is named by what the loop's result becomes, else by what feeds it
                user = named_results.get((name, slot), "") if op.type in _WHILE else ""
                source, value = self._source_label(edge, named_results, op.type in _WHILE) if edge else ("", "")
                user = user or source
                labels.append((user, value))
            carried = op.label.split(", ") if op.label else []  # AutoGraph's names (naming.control_flow_names)
            if op.type in _WHILE:
                labels[:2] = [("iteration counter", ""), ("maximum_iterations", "")][:len(labels)]
                body = next((sub for label, sub in op.subgraphs if label == "body"), None)
                forwarded = _Simplifier(body, Hidden(), "while body")._forwarded_slots() if body else set()
                slots = [k for k in range(2, len(labels)) if k not in forwarded]
                if carried and len(slots) == len(carried):
                    for slot, carried_name in zip(slots, carried):
                        labels[slot] = (carried_name, labels[slot][1])
                        named_results[(name, slot)] = carried_name  # what the loop's output slot holds
            results = carried if op.type in _IF else []
            roles[name] = ("while" if op.type in _WHILE else "branch" if op.type in _IF else "function", labels,
                           results)
        return roles

    def _named_results(self) -> dict[tuple[str, int], str]:
        """``(op, output index) -> name`` where an op's output leaves the function as a named output."""
        found = {}
        for edge in self.edges:
            dst = self.ops.get(edge.dst)
            src = edge.src
            for _ in range(len(self.ops)):  # through identities
                if dst is None or dst.type != "Identity" or dst.kind == "output":
                    break
                onward = self._out(dst.name)
                dst = self.ops.get(onward[0].dst) if len(onward) == 1 else None
            if dst is not None and dst.kind == "output" and dst.label:
                found.setdefault((src, edge.src_index), dst.label.split(", ")[0])
        return found

    def _source_label(self, edge: Edge, named_results: dict, loop: bool) -> tuple[str, str]:
        src = self.ops.get(edge.src)
        if src is None:
            return "", ""
        if src.kind == "control_flow":  # one of a loop's or branch's outputs: by its index
            named = named_results.get((src.name, edge.src_index), "")
            return named or ("" if loop else f"{src.name.rsplit('/', 1)[-1]} result"), ""
        if src.label:
            return src.label, ""
        if src.bound:  # input_data = tf.transpose(input_data, ...): the name the code gives it
            return src.bound, ""
        if src.kind in ("input", "variable"):
            return (src.detail if src.detail and src.detail != "captured" else src.name.rsplit("/", 1)[-1]), ""
        if src.kind == "constant":
            return "", src.detail
        named = named_results.get((src.name, edge.src_index), "")
        return named or ("" if loop else f"{src.name.rsplit('/', 1)[-1]} result"), ""

    def _fold(self, op_type: str, key: str) -> None:
        """Fold single-input ops of ``op_type`` (not outputs) into the edges they forward."""
        folding = {}
        for name, op in self.ops.items():
            if op.type == op_type and op.kind != "output" and len(self._in(name)) == 1:
                folding[name] = self._in(name)[0]
        for edge in self.edges:
            source = edge
            for _ in range(len(folding)):  # through a chain of folded ops, to the first one kept
                if source.src not in folding:
                    break
                source = folding[source.src]
            if source is not edge and edge.dst not in folding:
                edge.src, edge.src_index = source.src, source.src_index
                if edge.tensor is None:
                    edge.tensor = source.tensor
        self._remove_all(dict.fromkeys(folding, key))

    def _fold_constants(self) -> None:
        """A small constant (its value shown) becomes part of the label of each op that reads it."""
        folded = {}
        for name in [n for n, op in self.ops.items() if op.kind == "constant" and op.detail and not op.label]:
            readers = self._out(name)
            if not readers or any(self.ops[e.dst].kind in ("output", "variable") for e in readers):
                continue
            value = self.ops[name].detail
            for edge in readers:
                reader = self.ops[edge.dst]
                if not reader.subgraphs:  # a loop or branch shows it where its body reads it
                    reader.operands.append((edge.dst_index, value))
            folded[name] = "constant"
        self._remove_all(folded)

    def _operands_text(self) -> None:
        """``+ 10`` beside a binary op reading a constant; ``2.0 - 1.0`` when it reads two; else ``perm: [1, 0]``."""
        for op in self.ops.values():
            if not op.operands or not all(isinstance(o, tuple) for o in op.operands):
                continue
            values = dict(op.operands)
            symbol = _SYMBOLS.get(op.type)
            if symbol and set(values) == {0, 1}:
                text = [f"{values[0]} {symbol} {values[1]}"]
            elif symbol and set(values) <= {0, 1}:
                text = [f"{symbol} {values[1]}" if 1 in values else f"{values[0]} {symbol}"]
            else:
                names = op.arg_names
                text = [f"{names[i] if i < len(names) else f'input {i}'}: {v}" for i, v in sorted(values.items())]
            op.operands = text

    def _drop_loop_bookkeeping(self) -> None:
        """A ``While``'s counter and ``maximum_iterations``, outside and inside its bodies."""
        for name, op in self.ops.items():
            if op.type in _WHILE:
                self.edges = [e for e in self.edges if not (
                    (e.dst == name and e.dst_index < 2) or (e.src == name and e.src_index < 2))]
        if self.role != "while body":
            return
        placeholders = self.model.inputs
        for index, (name, _) in enumerate(self.model.output_tensors):
            op = self.ops.get(name)
            if op is None or op.kind != "output":  # a placeholder returned as it is goes with the sweep
                continue
            feeding = self._in(name)
            if index < 2:
                self._remove(name, "bookkeeping")
            elif index < len(placeholders) and len(feeding) == 1 and feeding[0].src == placeholders[index]:
                self._remove(name, "forward")

    def _sweep(self, key: str, placeholders: bool) -> None:
        """Hide ops whose results nothing reads (and that change nothing), and then what only they read."""
        readers = collections.Counter(e.src for e in self.edges)
        work = [n for n, op in self.ops.items() if not readers[n] and self._removable(op, placeholders)]
        removed: dict[str, str] = {}
        while work:
            name = work.pop()
            if name in removed:
                continue
            removed[name] = self._category(name, key)
            for edge in self._in(name):
                readers[edge.src] -= 1
                source = self.ops.get(edge.src)
                if not readers[edge.src] and source is not None and self._removable(source, placeholders):
                    work.append(edge.src)
        self._remove_all(removed)

    def _category(self, name: str, key: str) -> str:
        if self.ops[name].type != "Placeholder":
            return key
        index = self.model.inputs.index(name) if name in self.model.inputs else -1
        return "bookkeeping" if self.role.startswith("while") and 0 <= index < 2 else "forward"

    def _removable(self, op: Op, placeholders: bool) -> bool:
        if op.kind == "output" or op.stateful and op.type != "Placeholder":
            return False
        if op.name in self.model.overlay.gradient:  # a gradient drawing keeps the forward pass it explains
            return False
        if op.type == "Placeholder":
            return placeholders and bool(self.role)
        return True

    def _merge_outputs(self) -> None:
        """Outputs that return the same tensor become one node carrying all their names."""
        first: dict[tuple[str, int], str] = {}
        merged = []
        for name, op in self.ops.items():
            feeding = self._in(name)
            if op.kind != "output" or op.type != "Identity" or len(feeding) != 1:
                continue
            key = (feeding[0].src, feeding[0].src_index)
            if key not in first:
                first[key] = name
                continue
            kept = self.ops[first[key]]
            if op.label and op.label not in kept.label.split(", "):
                kept.label = f"{kept.label}, {op.label}" if kept.label else op.label
            merged.append(name)
        for name in merged:  # one output node, not something hidden: nothing to count
            del self.ops[name]
        if merged:
            self.edges = [e for e in self.edges if e.dst not in merged]

    def _remove(self, name: str, key: str) -> None:
        self._remove_all({name: key})

    def _remove_all(self, names: dict[str, str]) -> None:
        """Remove ops and their edges, counting each under its category (``names``: op -> category)."""
        if not names:
            return
        for name, key in names.items():
            if self.ops.pop(name, None) is not None:
                self.hidden.add(key)
        self.edges = [e for e in self.edges if e.src not in names and e.dst not in names]


def _copy_op(op: Op) -> Op:
    new = copy.copy(op)
    new.subgraphs, new.operands = list(op.subgraphs), list(op.operands)
    return new


def _shown_name(op: Op) -> str:
    """How the drawing names what an op holds, without the notes about where a loop started (``i``)."""
    name = op.label or (op.detail if op.kind in ("input", "constant") and op.detail else "") or op.name
    return re.sub(r" (\(from .*\)|= .*)$", "", name)


def short_name(op: Op) -> str:
    """The last part of an op's name, or ``""`` when it only repeats the op's type (``MatMul``, ``add_1``).

    >>> short_name(Op("hidden/MatMul", "MatMul", "op")), short_name(Op("add_1", "AddV2", "op"))
    ('', '')
    >>> short_name(Op("loss/my_mean", "Mean", "op"))
    'my_mean'
    """
    last = op.name.rsplit("/", 1)[-1]
    base = without_counter(last).replace("_", "").lower()
    kind = re.sub(r"V\d+$", "", op.type).lower()
    redundant = (base in (kind, op.type.lower(), "cond", "case") or kind.startswith(base) or base.startswith(kind)
                 or kind.endswith(base))
    return "" if redundant else last

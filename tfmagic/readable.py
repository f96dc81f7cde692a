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
  named after what feeds them outside (``n``, ``xs``, ``hidden/kernel``); a loop over a dataset
  (``for xb, yb in ds:``, which AutoGraph makes a ``ScanDataset`` read out by a ``ReduceDataset``) is
  one loop op with its body, as a ``While`` is;
- a ``Reshape``, ``Squeeze``, ``ExpandDims`` or ``Cast`` of nothing but a variable (Keras reshapes a
  convolution's bias) folds into the variable's edge;
- a tape's gradient call reads the forward tensors its backward pass reuses: only the edges from
  the last of them (the loss, where the pass reuses it) are drawn;
- outputs that are the parts of one list (``grads[0]`` ... ``grads[7]``) are one node, ``grads``;
- calls of the same ``tf.function`` that a Python loop made while tracing (ten calls of a training
  step) are one call node marked ``x10``;
- a call or loop that reads more than :data:`VARIABLES_SHOWN` variables (a training step reads every
  weight and optimizer slot) holds them, counted by owner (``sequential 8, adam 18``), instead of
  a row of variable nodes.

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

from tfmagic.graph import (Edge, Folded, GraphModel, Op, upstream,
                           without_counter)
from tfmagic.vocabulary import (CALL_OPS, CASE_OPS, DATASET_LOOP_RUNNERS, DATASET_LOOPS, IF_OPS, VARIABLE_READS,
                                WHILE_OPS)

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
    "reuse": ("forward tensor a gradient call reuses (its edge)", "forward tensors gradient calls reuse (their edges)"),
    "weight": ("op that only reshapes or casts a variable (on its edge)",
               "ops that only reshape or cast a variable (on their edges)"),
    "list": ("list part drawn in its list's node", "list parts drawn in their lists' nodes"),
    "repeat": ("repeated call drawn as one (xN)", "repeated calls drawn as one (xN)"),
    "variable": ("variable shown in the call or loop that reads it",
                 "variables shown in the calls or loops that read them"),
}

#: A call or loop that reads more variables than this holds them (counted by owner) instead of drawing each.
VARIABLES_SHOWN = 3

#: Ops that only change a variable's shape or dtype on its way to the op that uses it.
_WEIGHT_PLUMBING = ("Reshape", "Squeeze", "ExpandDims", "Cast")

#: How a constant operand reads beside a binary op: ``+ 10``, ``\u00d7 3.0``.
_SYMBOLS = {"AddV2": "+", "Add": "+", "Sub": "-", "Mul": "\u00d7", "RealDiv": "/", "Div": "/", "FloorDiv": "//",
            "FloorMod": "%", "Pow": "**", "Maximum": "max", "Minimum": "min", "Greater": ">", "GreaterEqual": ">=",
            "Less": "<", "LessEqual": "<=", "Equal": "==", "NotEqual": "!="}

_WHILE = WHILE_OPS
_IF = IF_OPS + CASE_OPS
#: A name the user may have given a list (``grads[3]``): the list's name and the part's index.
_LIST_PART = re.compile(r"^([A-Za-z_][\w.]*)\[(\d+)\]$")


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
                 slot_labels: list[tuple[str, str]] | None = None, result_names: list[str] | None = None,
                 states: int = 0):
        self.model = model
        self.hidden = hidden
        # "" (the traced function), "while body", "while cond", "branch", "function", "dataset body"
        self.role = role
        self.slot_labels = slot_labels or []  # per body input: (the user's name, or a constant's value)
        self.result_names = result_names or []  # a branch's outputs, as the cell names them
        self.states = states  # a dataset loop's body: how many loop variables it carries (its first inputs)
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
        for read in VARIABLE_READS:
            self._fold(read, "read")
        self._fold("Identity", "identity")
        self._fold_identity_n()
        self._fold_loop_runners()
        self._sweep("unused", placeholders=False)
        self._hide_gradient_reuse()
        self._fold_constants()
        self._fold_weight_plumbing()
        self._fold_prints()
        self._operands_text()
        self._drop_loop_bookkeeping()
        self._sweep("bookkeeping", placeholders=True)
        self._merge_outputs()
        self._count_gradients()
        self._merge_list_outputs()
        self._merge_repeated_calls()
        self._fold_call_variables()
        for name, (kind, labels, results, states) in bodies.items():
            op = self.ops.get(name)
            if op is not None:
                op.subgraphs = [(label, _Simplifier(sub, self.hidden, f"while {label}" if kind == "while" else kind,
                                                    labels, results, states).run()) for label, sub in op.subgraphs]
        inputs = [n for n in self.model.inputs if n in self.ops]
        kept = [(n, i) for n, i in self.model.output_tensors if n in self.ops]
        return GraphModel(self.model.name, self.ops, self.edges, inputs,
                          sorted({n for n in self.model.outputs if n in self.ops}), kept, self.model.overlay,
                          self.model.traced_ops())

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
            node = Op(call, f"{count} ops", "scope", [], self.ops[members[0]].device, f"scope {call}", made_by=call)
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
            node.folded = Folded("gradient", call, tuple(members), count, outputs=len(results))
            self.ops[call] = node
            self.edges = edges
            self.hidden.add("gradient", len(members) - 1)

    def _fold_identity_n(self) -> None:
        """An ``IdentityN`` (Keras 2's optimizer passes the gradients through one) forwards its i-th input as its
        i-th output: each edge out of it comes from what feeds that input."""
        folding = {name: {e.dst_index: e for e in self._in(name)} for name, op in self.ops.items()
                   if op.type == "IdentityN" and op.kind != "output"}
        if not folding:
            return
        for edge in self.edges:
            source = edge
            for _ in range(len(folding)):  # through a chain of them, to what feeds the first
                forwarded = folding.get(source.src, {}).get(source.src_index)
                if forwarded is None:
                    break
                source = forwarded
            if source is not edge and edge.dst not in folding:
                edge.src, edge.src_index = source.src, source.src_index
        self._remove_all(dict.fromkeys(folding, "identity"))

    def _count_gradients(self) -> None:
        """How many tensors each gradient call gives, once what nothing reads of them is gone."""
        for name, op in self.ops.items():
            if op.made_by and op.folded is not None:
                given = {e.src_index for e in self._out(name) if self.ops[e.dst].kind != "xla"}  # not XLA's copies
                op.folded = dataclasses_replace(op.folded, outputs=len(given))

    def _fold_loop_runners(self) -> None:
        """A ``ReduceDataset`` that reads a dataset loop to its end hands on the loop's last values: what reads them
        reads the loop."""
        runners = {name: op for name, op in self.ops.items() if op.type in DATASET_LOOP_RUNNERS}
        if not runners:
            return

        def loop_of(name):  # the dataset loop a runner reads (through the others: a break's TakeWhileDataset)
            for _ in range(len(runners) + 1):
                feeding = [e for e in self._in(name) if e.dst_index == 0]
                if not feeding or feeding[0].src not in runners:
                    source = self.ops.get(feeding[0].src) if feeding else None
                    return source.name if source is not None and source.type in DATASET_LOOPS and source.subgraphs \
                        else None
                name = feeding[0].src
            return None

        runners = {name: op for name, op in runners.items() if loop_of(name) is not None}  # not ds.reduce(...)

        for edge in self.edges:
            if edge.src in runners and edge.dst not in runners:
                source = loop_of(edge.src)
                if source is not None:
                    edge.src, edge.src_index = source, 0
        for name, runner in runners.items():  # the loop runs for its effects (a training step's updates) too
            loop = self.ops.get(loop_of(name) or "")
            if loop is not None:
                loop.stateful = loop.stateful or runner.stateful
        self._remove_all(dict.fromkeys(runners, "bookkeeping"))

    def _hide_gradient_reuse(self) -> None:
        """A gradient call reads what its backward pass reuses of the forward pass: every layer's activations, the
        inputs, the weights.  Only the edges from the last of them (those no other one feeds: the loss, where the
        pass reuses it) are drawn; the others are counted."""
        calls = [name for name, op in self.ops.items() if op.made_by and op.kind == "scope"]
        for call in calls:
            feeding = [e for e in self._in(call) if e.src in self.ops]
            earlier = upstream({e.src for e in feeding}, lambda name: [e.src for e in self._in(name)])
            hidden = [e for e in feeding if e.src in earlier or self.ops[e.src].kind in ("variable", "input")]
            if len(hidden) == len(feeding):  # nothing is last: keep the call's inputs as they are
                continue
            dropped = {id(e) for e in hidden}
            self.edges = [e for e in self.edges if id(e) not in dropped]
            self.hidden.add("reuse", len(hidden))

    def _fold_weight_plumbing(self) -> None:
        """A reshape or cast of nothing but a variable (a convolution's bias reshaped for ``BiasAdd``) folds into
        the variable's edge: the op that uses it reads the variable."""
        while True:  # a chain of them (Reshape, then Squeeze) folds one op at a time
            folding = {}
            for name, op in self.ops.items():
                ins = self._in(name)
                if (op.type in _WEIGHT_PLUMBING and op.kind == "op" and len(ins) == 1
                        and self.ops[ins[0].src].kind == "variable"):
                    folding[name] = ins[0]
            if not folding:
                return
            for edge in self.edges:
                if edge.src in folding:
                    edge.src, edge.src_index = folding[edge.src].src, folding[edge.src].src_index
            self._remove_all(dict.fromkeys(folding, "weight"))

    def _merge_list_outputs(self) -> None:
        """Outputs that are the parts of one list one op gives (``grads[0]`` ... ``grads[7]`` of a gradient call:
        more than two) become one node named by the list; the parts of a tuple of different results stay apart."""
        lists: dict[str, list[str]] = {}
        for name, op in self.ops.items():
            match = _LIST_PART.match(op.label) if op.kind == "output" else None
            if match:
                lists.setdefault(match.group(1), []).append(name)
        for base, parts in lists.items():
            if len(parts) < 3 or len({e.src for name in parts for e in self._in(name)}) != 1:
                continue
            kept = self.ops[parts[0]]
            kept.label = f"{base}: list of {len(parts)}"
            kept.outputs = []
            inside = set(parts)
            edges, by_source = [], {}
            for edge in self.edges:
                if edge.dst not in inside:
                    edges.append(edge)
                    continue
                merged = by_source.get(edge.src)
                if merged is None:
                    by_source[edge.src] = merged = dataclasses_replace(edge, dst=kept.name, count=0)
                    edges.append(merged)
                merged.count += 1
            for name in parts[1:]:
                del self.ops[name]
            self.edges = [e for e in edges if e.src not in inside or e.src == kept.name]
            self.hidden.add("list", len(parts) - 1)

    def _merge_repeated_calls(self) -> None:
        """Calls of the same ``tf.function`` (a Python loop called it while tracing) become one call node marked with
        their number, where no op between them depends on one and feeds another (the drawing keeps its order)."""
        calls: dict[tuple[str, str], list[str]] = {}
        for name, op in self.ops.items():
            if op.type in CALL_OPS and op.subgraphs:
                calls.setdefault((op.callee, op.subgraphs[0][1].name), []).append(name)
        for members in calls.values():
            if len(members) < 2 or not self._repeated(members) or self._between(set(members)):
                continue
            kept, inside = self.ops[members[0]], set(members)
            kept.repeat = len(members)
            edges, seen = [], set()
            for edge in self.edges:
                if edge.src in inside and edge.dst in inside:
                    continue
                if edge.src in inside or edge.dst in inside:
                    edge = dataclasses_replace(edge, src=kept.name if edge.src in inside else edge.src,
                                               dst=kept.name if edge.dst in inside else edge.dst)
                    key = (edge.src, edge.src_index, edge.dst, edge.dst_index)
                    if key in seen:
                        continue
                    seen.add(key)
                edges.append(edge)
            for name in members[1:]:
                del self.ops[name]
            self.edges = edges
            self.hidden.add("repeat", len(members) - 1)

    def _repeated(self, members: list[str]) -> bool:
        """Whether calls are one call repeated: each reads what the first reads (``train_step(x, y)`` ten times),
        or what the one before it gave (``h = cell(h)`` unrolled); ``f(a) + f(b)`` are two calls."""
        def reads(name):
            return {(e.src, e.src_index, e.dst_index) for e in self._in(name)}

        if all(reads(name) == reads(members[0]) for name in members[1:]):
            return True
        return all(any(e.src == before for e in self._in(after)) for before, after in zip(members, members[1:]))

    def _between(self, members: set[str]) -> bool:
        """Whether an op that is not a member both depends on a member and feeds one."""
        below = upstream(members, lambda n: [e.dst for e in self._out(n) if e.dst not in members])
        return bool(below & upstream(members, lambda n: [e.src for e in self._in(n) if e.src not in members]))

    def _fold_call_variables(self) -> None:
        """A call or loop that reads more than :data:`VARIABLES_SHOWN` variables holds them (a training step called
        in a loop reads every weight and slot): the variables no other op reads are drawn in it, not in a row."""
        folded: dict[str, str] = {}
        for name, op in self.ops.items():
            if not op.subgraphs:
                continue
            reads = [e for e in self._in(name) if self.ops[e.src].kind == "variable"]
            if len(reads) <= VARIABLES_SHOWN:
                continue
            for edge in reads:
                variable = self.ops[edge.src]
                shown = variable.label or variable.detail or variable.name
                if shown not in op.variables:  # a variable fed to two of its inputs is one variable
                    op.variables.append(shown)
                if all(e.dst == name for e in self._out(edge.src)):
                    folded[edge.src] = "variable"
            dropped = {id(e) for e in reads}
            self.edges = [e for e in self.edges if id(e) not in dropped]
        self._remove_all(folded)

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
                loop_var = (self.role.startswith("while") and index not in forwarded
                            or self.role == "dataset body" and index < self.states)
                if user and loop_var and value:  # where the loop starts: the constant it was folded from
                    op.label = f"{user} (from {value})"
                else:
                    op.label = user or (f"loop var (from {value})" if loop_var and value else
                                        "loop var" if loop_var else value or op.label)
        for index, (name, _) in enumerate(self.model.output_tensors):
            op = self.ops.get(name)
            if op is None or op.kind != "output" or op.label:
                continue
            if self.role == "while body" or self.role == "dataset body" and index < self.states:
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

    def _body_roles(self) -> dict[str, tuple[str, list[tuple[str, str]], list[str], int]]:
        """For each control-flow op: the kind of its bodies, a name for each body input and output, and (a dataset
        loop's body) how many loop variables it carries."""
        named_results = self._named_results()  # (op, output) -> name; loops add their variables' names below
        roles = {}
        for name, op in self.ops.items():
            if not op.subgraphs:
                continue
            if op.type in DATASET_LOOPS:
                roles[name] = self._dataset_body_role(op, named_results)
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
                           results, 0)
        return roles

    def _dataset_body_role(self, op: Op, named_results: dict) -> tuple[str, list[tuple[str, str]], list[str], int]:
        """A ``ScanDataset``'s body takes the loop's variables (fed by ``initial_state``), the element's parts, then
        what it captured (fed by ``other_arguments``): each named as the code names it, or by what feeds it."""
        feeding = {e.dst_index: e for e in self._in(op.name)}
        states = op.arg_names.count("initial_state")
        captured = [i for i, arg in enumerate(op.arg_names) if arg == "other_arguments"]
        body = op.subgraphs[0][1]
        parts = max(0, len(body.inputs) - states - len(captured))
        carried = op.label.split(", ") if op.label else []
        if len(carried) == parts:  # AutoGraph carries a variable of its own when the loop has none
            carried = [""] * states + carried
        if len(carried) != states + parts:
            carried = [""] * states + [f"element[{j}]" if parts > 1 else "element" for j in range(parts)]
        labels = []
        for index in range(states):
            source, value = self._source_label(feeding[1 + index], named_results, True) if 1 + index in feeding \
                else ("", "")
            labels.append((carried[index] or source, value))
        labels += [(name, "") for name in carried[states:]]
        for slot in captured:
            labels.append(self._source_label(feeding[slot], named_results, False) if slot in feeding else ("", ""))
        dataset = self._source_label(feeding[0], named_results, False)[0] if 0 in feeding else ""
        op.label = f"for {', '.join(carried[states:])} in {dataset or 'the dataset'}"  # the loop as the code has it
        return "dataset body", labels, [], states

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
        if self.role == "dataset body":  # it returns its variables twice (state, element) and a flag: once is enough
            for index, (name, _) in enumerate(self.model.output_tensors):
                op = self.ops.get(name)
                if op is None or op.kind != "output":
                    continue
                feeding = self._in(name)
                constant = len(feeding) == 1 and self.ops[feeding[0].src].kind == "constant"
                unnamed = index < len(self.slot_labels) and not self.slot_labels[index][0]
                if index >= self.states or constant and unnamed:  # AutoGraph's own variable of a loop with none
                    self._remove(name, "bookkeeping")
            return
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
    new.subgraphs, new.operands, new.variables = list(op.subgraphs), list(op.operands), list(op.variables)
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

"""The graph model: ops, tensors, scopes and sub-graphs of a traced ``tf.Graph``.

:func:`build_graph_model` reads a ``FuncGraph`` (what ``tf.function`` traced)
into plain dataclasses that the renderer draws: every op with its kind (input,
variable, constant, output, control flow, plain op), every tensor edge with its
dtype and shape, and, for ``While``/``If``/``PartitionedCall`` ops, the graphs
of the functions they run, read the same way.  Nothing here draws or imports
IPython.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from tfmagic.vocabulary import (BACKWARD_SCOPE, CALL_OPS, CONTROL_FLOW_BODIES, DATASET_LOOPS, LIBRARY_FILE, STOP_OPS,
                                TENSORFLOW_FILE, user_frame)

def is_dataset_loop(tf_op) -> bool:
    """Whether ``tf_op`` is AutoGraph's loop over a dataset (``for x in ds:``): a ``ScanDataset`` made to run
    anywhere (``use_default_device=False``, ``dataset_autograph.py``), not one of the user's ``ds.scan(...)``."""
    try:
        return tf_op.type in DATASET_LOOPS and not tf_op.get_attr("use_default_device")
    except ValueError:  # an older TensorFlow without the attribute
        return False

#: The kinds of op, as the drawing tells them apart.
KINDS = ("input", "variable", "constant", "output", "control_flow", "op", "backward", "scope", "xla")

#: How deep function sub-graphs are read (a While inside an If inside a call ...).
MAX_DEPTH = 8

@dataclass(frozen=True)
class TensorInfo:
    """A tensor's dtype and shape, as the drawing labels an edge (``float32[2,3]``)."""

    dtype: str
    shape: tuple[int | None, ...] | None

    @property
    def label(self) -> str:
        if self.shape is None:
            return f"{self.dtype}[...]"
        return f"{self.dtype}[{','.join('?' if d is None else str(d) for d in self.shape)}]"


@dataclass
class Edge:
    """A tensor from one op's output to another op's input, or a control dependency."""

    src: str
    dst: str
    tensor: TensorInfo | None  # None for a control dependency
    src_index: int = 0
    on_path: bool = False
    dst_index: int = 0  # which input of ``dst`` the tensor feeds
    change: str = ""  # in a drawn trace diff: the earlier trace's label, or "removed" (see tracediff.py)
    count: int = 1  # in a folded drawing: how many tensors the edge stands for (``8 tensors``)

    @property
    def control(self) -> bool:
        return self.tensor is None


@dataclass
class Op:
    """One node of the graph.

    Attributes:
        name: the op's name (``dense/MatMul``); its scope is what comes before the last ``/``.
        type: the op's type (``MatMul``).
        kind: one of :data:`KINDS`.
        outputs: the op's output tensors.
        device: the device TensorFlow assigned, if any.
        detail: a short extra line: a constant's value, an input's parameter name.
        subgraphs: the functions a control-flow op runs, as ``(label, GraphModel)``.
        stateful: TensorFlow keeps the op even when nothing reads its result (an assign, a print).
        label: the user's name for it (``u``, ``steps``, ``hidden/kernel``), where it has one.
        operands: in the readable view, the small constants it reads, as its label shows them (``+ 10``).
        arg_names: the names TensorFlow gives its inputs (``x``, ``perm``), where they are one per input.
        callee: for a call of a ``tf.function`` (``PartitionedCall``), the Python function's name
            (``inner_function``).
        prints: in the readable view, what a ``tf.print`` prints (``'Fizz'``, ``i``).
        bound: for an op whose result a loop, branch or call reads, the name the user's code binds it to
            (``input_data = tf.transpose(input_data, [1, 0, 2])``: ``input_data``), from the op's traceback.
        made_by: for an op a ``tape.gradient`` / ``jacobian`` / ``batch_jacobian`` call made, that call as
            the user's line writes it (``jacobian(y, layer.kernel)``): the readable view draws each as one node.
        repeat: in the readable view, how many calls of the same function this node stands for (a Python loop
            that called a ``tf.function`` ten times while tracing: ``x10``).
        variables: in the readable view, the variables a call or loop reads, folded into it (by the user's names).
        folded: in a folded drawing, what the node stands for (:class:`Folded`: a layer, a model, an update).
    """

    name: str
    type: str
    kind: str
    outputs: list[TensorInfo] = field(default_factory=list)
    device: str = ""
    detail: str = ""
    subgraphs: list[tuple[str, "GraphModel"]] = field(default_factory=list)
    stateful: bool = False
    label: str = ""
    operands: list = field(default_factory=list)
    arg_names: tuple[str, ...] = ()
    callee: str = ""
    prints: str = ""
    bound: str = ""
    made_by: str = ""
    repeat: int = 1
    variables: list = field(default_factory=list)
    folded: "Folded | None" = None

    @property
    def scope(self) -> str:
        return self.name.rpartition("/")[0]


@dataclass
class Folded:
    """What one node of a folded drawing stands for (``levels.py``): a layer, a model, a loss, an optimizer's
    update, a tape's gradient call, or any other name scope, drawn as one node.

    Attributes:
        role: ``layer`` (of an open model), ``model`` (drawn as one node), ``update`` (an optimizer's),
            ``gradient`` (a tape's call), ``call`` (of a ``tf.function``, its body not drawn), ``replica``
            (``strategy.run``'s step for a second device), ``stretch`` (ops outside every scope) or ``scope``.
        name: the user's name for it (the layer's, ``adam``, ``gradient(loss, model.trainable_variables)``).
        members: the op names it stands for (a profile's times add up over them).
        ops: how many of TensorFlow's ops it holds (its members' function bodies included).
        types: the op types that do its work, in order (``Conv2D``, ``BiasAdd``, ``Relu``), at most a few.
        weights: the variables it holds, as ``(name, dtype[shape])`` (a layer's ``kernel``, an optimizer's slots).
        updates: the variables of others it writes (an optimizer's update of a model's weights), by name.
        layers: for a model drawn as one node, how many layers it holds.
        outputs: how many tensors it gives (a gradient call: one per source).
        fusions: in a drawing of what XLA made (``--show xla``), how many of XLA's fusions compute its ops.
    """

    role: str
    name: str
    members: tuple[str, ...] = ()
    ops: int = 0
    types: tuple[str, ...] = ()
    weights: tuple[tuple[str, str], ...] = ()
    updates: tuple[str, ...] = ()
    layers: int = 0
    outputs: int = 0
    fusions: int = 0


@dataclass
class Overlay:
    """What a drawing lays over a graph model, by op name, beside it (as Model Explorer keeps per-node data beside
    its graph): a gradient drawing's roles and a trace diff's marks.  The ops themselves keep only what
    TensorFlow and the user's code say.  (A profile's times are the drawing's own: ``dot.DotOptions.heat``.)

    Attributes:
        gradient: op name -> its role in a gradient drawing: ``target``, ``path`` (between a source and the
            target), or a source's status (``connected``, ``stopped``, ``disconnected``).
        sources: op name -> the name of the gradient's source it is.
        diff: op name -> ``added`` (only in the new trace) or ``removed`` (only in the earlier one).
    """

    gradient: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    diff: dict[str, str] = field(default_factory=dict)

    def mark(self, name: str) -> str:
        """How the op is drawn: a diff's mark, else its gradient role (the target on the path); ``""``: plain."""
        if name in self.diff:
            return self.diff[name]
        role = self.gradient.get(name, "")
        return "path" if role == "target" else role

    def note(self, name: str) -> str:
        """The line a gradient drawing adds to the op: ``source w1: stopped``, ``target`` or ``""``."""
        if name in self.sources:
            return f"source {self.sources[name]}: {self.gradient.get(name, '')}"
        return "target" if self.gradient.get(name) == "target" else ""

    @property
    def target(self) -> str | None:
        """The gradient's target op, in a gradient drawing."""
        return next((name for name, role in self.gradient.items() if role == "target"), None)


@dataclass
class GraphModel:
    """A traced graph: its ops in order, its edges, its inputs and outputs, and what a drawing lays over it."""

    name: str
    ops: dict[str, Op]
    edges: list[Edge]
    inputs: list[str]
    outputs: list[str]
    output_tensors: list[tuple[str, int]] = field(default_factory=list)  # the function's outputs, in order
    overlay: Overlay = field(default_factory=Overlay)
    traced: int = 0  # a simplified view's: how many ops TensorFlow traced (its bodies' included); 0: as many as it has

    def traced_ops(self) -> int:
        """How many ops TensorFlow traced for this graph and its bodies (a simplified view has fewer)."""
        return self.traced or self.total_ops()

    def count(self, kind: str | None = None) -> int:
        """How many ops (of a kind) the graph has, its sub-graphs not included."""
        return sum(1 for op in self.ops.values() if kind is None or op.kind == kind)

    def total_ops(self) -> int:
        """Ops here and in every sub-graph."""
        return len(self.ops) + sum(g.total_ops() for op in self.ops.values() for _, g in op.subgraphs)


def closure(starts, parents) -> set:
    """``starts`` and everything they depend on, through ``parents`` (a node -> the nodes it reads; none past a node
    for which it gives none): the one walk up a graph every module uses, depth first, without recursion (a chain of
    20,000 ops is a graph people trace).

    >>> sorted(closure(["c"], {"c": ["b"], "b": ["a"]}.get))
    ['a', 'b', 'c']
    """
    found = set(starts)
    work = list(found)
    while work:
        for parent in parents(work.pop()) or ():
            if parent not in found:
                found.add(parent)
                work.append(parent)
    return found


def upstream(starts, inputs) -> set[str]:
    """Every op that one of ``starts`` depends on, through ``inputs`` (an op's name -> the names of the ops it reads):
    the starts themselves only where one depends on another.

    >>> sorted(upstream(["c"], {"c": ["b"], "b": ["a"]}.get))
    ['a', 'b']
    """
    return closure({source for start in starts for source in inputs(start) or ()}, inputs)


def _tensor_info(tensor) -> TensorInfo:
    shape = tensor.shape
    dims = None if shape.rank is None else tuple(shape.as_list())
    return TensorInfo(tensor.dtype.name, dims)


def _constant_detail(op) -> str:
    try:
        from tensorflow.python.framework import tensor_util

        value = tensor_util.MakeNdarray(op.get_attr("value"))
    except Exception:  # a constant of an exotic dtype: draw it without its value
        return ""
    if value.size > 4:
        return ""
    if value.dtype.kind == "f":  # as written: float32's 0.1 is 0.1, not 0.10000000149011612
        import numpy as np

        items = [np.format_float_positional(x, trim="0") for x in value.reshape(-1)]
        text = items[0] if value.size == 1 else f"[{', '.join(items)}]"
    elif value.size == 1:
        item = value.reshape(()).item()
        text = repr(item.decode("utf-8", "replace") if isinstance(item, bytes) else item)
    else:
        text = repr(value.tolist())
    return text if len(text) <= 24 else text[:21] + "..."


def lookup_function(graph, name: str):
    """The function ``name`` as a ``FuncGraph``, looked up in ``graph`` and the graphs around it."""
    current = graph
    while current is not None:
        getter = getattr(current, "_get_function", None)
        fn = getter(name) if getter else None
        if fn is not None:
            return getattr(fn, "graph", None)
        current = getattr(current, "outer_graph", None)
    try:
        from tensorflow.python.eager import context
        from tensorflow.python.framework import function_def_to_graph

        fdef = context.context().get_function_def(name)
        return function_def_to_graph.function_def_to_graph(fdef)
    except Exception:  # not registered anywhere: draw the op without its body
        return None


def build_graph_model(graph, name: str = "", depth: int = 0, captured_names: dict | None = None,
                      labels: dict[str, str] | None = None, variable_names: dict[int, str] | None = None,
                      called: bool = False) -> GraphModel:
    """Read a ``tf.Graph`` / ``FuncGraph`` into a :class:`GraphModel`.

    Args:
        graph: the traced graph (``concrete_function.graph``).
        name: a label for the graph.
        depth: how deep this graph is nested in control flow (sub-graphs stop at :data:`MAX_DEPTH`).
        captured_names: names to show for captured inputs, by placeholder name.
        labels: the user's names of ops (outputs: ``u``, ``result``), by op name (see ``naming.output_names``);
            a key ``(function name, op name)`` names an op of that function's body (a called function's loops).
        variable_names: the user's names of variables, by ``id`` of the variable's handle
            (see ``naming.VariableNames``); other variables keep TensorFlow's name.
        called: the graph is the body of a call of a ``tf.function``: its inputs are named by its parameters.

    Returns:
        The model.
    """
    captured_names = dict(captured_names or {})
    labels = dict(labels or {})
    captured = _captured(graph, captured_names, labels, variable_names)
    parameters = parameter_names(graph) if depth == 0 or called else {}  # a loop's or branch's are TensorFlow's
    for placeholder, parameter in parameters.items():  # vs_1 -> vs[1]
        if parameter != placeholder or called:  # a called function's inputs are its parameters
            labels.setdefault(placeholder, parameter)
    output_tensors = [(t.op.name, t.value_index) for t in getattr(graph, "outputs", ()) if t is not None]
    output_ops = {op_name for op_name, _ in output_tensors}
    input_ops = [t.op.name for t in getattr(graph, "inputs", ())]
    ops: dict[str, Op] = {}
    edges: list[Edge] = []
    for tf_op in graph.get_operations():
        op_type = tf_op.type
        outputs = [_tensor_info(t) for t in tf_op.outputs]
        kind, detail = _kind(tf_op, captured, captured_names, labels, output_ops)
        op = Op(tf_op.name, op_type, kind, outputs, tf_op.device or "", detail,
                stateful=_is_stateful(tf_op), label=labels.get(tf_op.name, ""), arg_names=_arg_names(tf_op))
        if op_type in CALL_OPS:
            op.callee = python_name(function_attrs(tf_op)[0][1]) if function_attrs(tf_op) else ""
        loop = op_type not in DATASET_LOOPS or is_dataset_loop(tf_op)  # a user's ds.scan is one op, as ds.map is
        if op_type in CONTROL_FLOW_BODIES and loop and depth < MAX_DEPTH:
            op.subgraphs = _bodies(tf_op, graph, labels, depth, called=bool(op.callee))
        ops[op.name] = op
        for index, tensor in enumerate(tf_op.inputs):
            edges.append(Edge(tensor.op.name, op.name, _tensor_info(tensor), tensor.value_index, dst_index=index))
        for control in tf_op.control_inputs:
            edges.append(Edge(control.name, op.name, None))
    for op_name, call in _gradient_calls(graph.get_operations()).items():  # a tape's gradient: which call made it
        ops[op_name].made_by = call
    for tf_op in graph.get_operations():  # what loops, branches and calls read: by the code's names
        if tf_op.type in CONTROL_FLOW_BODIES:
            for tensor in tf_op.inputs:
                producer = tensor.op
                if producer.type not in ("Placeholder", "Const") and producer.name in ops and len(producer.outputs) == 1:
                    ops[producer.name].bound = ops[producer.name].bound or _bound_name(producer)
    return GraphModel(name or getattr(graph, "name", "graph"), ops, edges, input_ops, sorted(output_ops),
                      output_tensors)


def _captured(graph, captured_names: dict, labels: dict, variable_names: dict | None) -> set[str]:
    """The placeholders of what ``graph`` captured; their names go into ``captured_names`` (TensorFlow's, a
    variable's) and ``labels`` (the notebook's name of a variable)."""
    import tensorflow as tf

    captured = set()
    for external, internal in getattr(graph, "captures", ()):
        captured.add(internal.op.name)
        if variable_names and id(external) in variable_names:
            labels.setdefault(internal.op.name, variable_names[id(external)])
        var_name = getattr(external, "name", None) if not isinstance(external, tf.Tensor) else None
        if var_name:
            captured_names.setdefault(internal.op.name, var_name)
    try:
        variables = list(getattr(graph, "variables", ()) or ())
    except AssertionError:  # an earlier trace whose variables were deleted since (a retrace's diff reads it)
        variables = []
    for variable in variables:
        try:
            handle = variable.handle
        except Exception:  # a distributed variable without a single handle
            continue
        for external, internal in getattr(graph, "captures", ()):
            if external is handle:
                captured_names.setdefault(internal.op.name, variable.name.split(":")[0])
    return captured


def _kind(tf_op, captured: set, captured_names: dict, labels: dict, output_ops: set) -> tuple[str, str]:
    """An op's kind (``graph.KINDS``) and the detail its node shows (a constant's value, tf.print's template)."""
    op_type = tf_op.type
    detail = ""
    if op_type == "Placeholder":
        is_resource = bool(tf_op.outputs) and tf_op.outputs[0].dtype.name == "resource"
        kind = "variable" if is_resource else "input"
        detail = captured_names.get(tf_op.name, "")
        if tf_op.name in captured and not is_resource:
            detail = detail or "captured"
    elif op_type in ("Const", "HostConst"):
        kind = "constant"
        detail = _constant_detail(tf_op)
    elif tf_op.name in output_ops or (tf_op.name in labels and op_type not in CONTROL_FLOW_BODIES):
        # labels name the outputs (Grappler's graph has no list of them); a loop's label names its variables
        kind = "output"
    elif op_type == "StringFormat":  # tf.print's text: its template, as the drawing shows what it prints
        kind = "output" if tf_op.name in output_ops else "op"
        try:
            detail = tf_op.get_attr("template").decode("utf-8", "replace")
        except (ValueError, AttributeError):
            detail = ""
    elif tf_op.name.startswith(BACKWARD_SCOPE):
        kind = "backward"
    elif op_type in CONTROL_FLOW_BODIES and (op_type not in DATASET_LOOPS or is_dataset_loop(tf_op)):
        kind = "control_flow"
    else:
        kind = "op"
    return kind, detail


def _bodies(tf_op, graph, labels: dict, depth: int, called: bool) -> list:
    """``(label, model)`` of each function a control-flow op or call runs (``cond``, ``body``, ``then``, ...)."""
    bodies = []
    for label, fn_name in function_attrs(tf_op):
        sub_graph = lookup_function(graph, fn_name)
        if sub_graph is not None:
            body_labels = {key[1]: text for key, text in labels.items() if isinstance(key, tuple) and key[0] == fn_name}
            bodies.append((label, build_graph_model(sub_graph, fn_name, depth + 1, labels=body_labels, called=called)))
    return bodies


#: A line that binds one name: ``state = cell(x, state)`` (not ``a == b``, not ``a, b = ...``).
_ASSIGNMENT = re.compile(r"\s*([A-Za-z_]\w*)\s*(?::[^=]+)?=(?!=)")

#: A tape's gradient call on a user's line: ``tape.jacobian(y, layer.kernel)``.
_GRADIENT_CALL = re.compile(r"\.(gradient|jacobian|batch_jacobian)\((.*)\)")


def _user_line(tf_op, library: re.Pattern = LIBRARY_FILE) -> tuple[str, int] | None:
    """Where in the user's code (not TensorFlow's, Keras's or tfmagic's) ``tf_op`` was made; with
    ``library=TENSORFLOW_FILE``, where outside TensorFlow's code (Keras's ``train_step`` is the caller there)."""
    try:
        frames = tf_op.traceback
    except Exception:  # no traceback kept (a graph read from a GraphDef)
        return None
    return user_frame(frames, library)  # Grappler's graph, read back from a GraphDef, has none


def _gradient_calls(tf_ops: list) -> dict[str, str]:
    """Op name -> the tape call that made it (``jacobian(y, layer.kernel)``), for the ops a ``tape.gradient`` /
    ``jacobian`` / ``batch_jacobian`` line made (the user's, or Keras's own in ``fit``'s step).

    A line's ops are made one after another, so the lines are read at the edges of runs only (halving
    each stretch whose two ends are on different lines), from just before the first backward op on:
    reading an op's traceback costs tens of microseconds, and a training step has thousands of ops.  Inside a
    run of a gradient call's line, the ops not named as backward ops are read one by one (pfor's plumbing of a
    jacobian, or another replica's forward ops, made by another thread in between).
    """
    import linecache

    first = next((i for i, op in enumerate(tf_ops) if op.name.startswith(BACKWARD_SCOPE)), None)
    if first is None:
        return {}
    lines: dict[int, tuple[str, int] | None] = {}

    def line(i):  # the user's line, or Keras's (its train_step calls tape.gradient)
        if i not in lines:
            lines[i] = _user_line(tf_ops[i], TENSORFLOW_FILE)
        return lines[i]

    start = first
    while start > 0 and line(start - 1) == line(first):  # what the call made before its backward pass (pfor's)
        start -= 1
    owner: dict[int, tuple[str, int] | None] = {}
    stretches = [(start, len(tf_ops) - 1)]
    while stretches:
        lo, hi = stretches.pop()
        if line(lo) == line(hi) or hi - lo <= 1:
            for i in range(lo, hi + 1):
                owner[i] = line(lo) if line(lo) == line(hi) or i == lo else line(hi)
            continue
        mid = (lo + hi) // 2
        stretches += [(lo, mid), (mid, hi)]
    calls: dict[tuple[str, int], str] = {}

    def call(where):  # the gradient call a line makes, or ""
        if where is not None and where not in calls:
            match = _GRADIENT_CALL.search(linecache.getline(*where))
            calls[where] = f"{match.group(1)}({match.group(2).strip()})" if match else ""
        return calls.get(where, "")

    found = {}
    for i, where in owner.items():
        if call(where) and not tf_ops[i].name.startswith(BACKWARD_SCOPE):
            where = line(i)  # not a backward op: its own line says whether the call made it
        if call(where):
            found[tf_ops[i].name] = calls[where]
    return found


def _bound_name(tf_op) -> str:
    """The name the user's line that made ``tf_op`` binds, where that line binds one name and ``tf_op`` is the
    last op it made that the line's own ops do not read further (``y = tf.matmul(x, w) + b``: the add, not the
    matmul)."""
    import linecache

    where = _user_line(tf_op)
    if where is None:
        return ""
    match = _ASSIGNMENT.match(linecache.getline(*where))
    if match is None:
        return ""
    for consumer in tf_op.outputs[0].consumers():
        if consumer.type not in CONTROL_FLOW_BODIES and _user_line(consumer) == where:
            return ""  # the line goes on computing with it: not what it binds
    return match.group(1)


def python_name(function_name: str) -> str:
    """The Python name of a traced function: ``__inference_inner_function_42`` -> ``inner_function``.

    >>> python_name("__inference_inner_function_42"), python_name("my_fn")
    ('inner_function', 'my_fn')
    """
    match = re.match(r"^__inference_(.+)$", function_name)
    return without_counter(match.group(1)) if match else function_name


def parameter_names(graph) -> dict[str, str]:
    """A traced function's input placeholders by the parameter (or part of one) each holds: ``x``,
    ``vs[0]``, ``vs[1]``, ``cfg['k']`` (from the graph's structured input signature; empty where the
    placeholders do not match it one for one, as with composite tensors)."""
    signature = getattr(graph, "structured_input_signature", None)
    inputs = list(getattr(graph, "inputs", ()))
    if not signature or not inputs:
        return {}
    args, kwargs = signature
    names: list[str] = []

    def leaves(value, path):
        if isinstance(value, dict):
            for key in sorted(value):
                leaves(value[key], f"{path}[{key!r}]")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                leaves(item, f"{path}[{index}]")
        elif hasattr(value, "dtype") and hasattr(value, "shape") and type(value).__name__ == "TensorSpec":
            names.append(path)
        elif hasattr(value, "_type_spec") or type(value).__name__.endswith("Spec"):
            raise ValueError("composite")  # several placeholders per value: no one-for-one names

    try:
        for value in list(args) + [kwargs[k] for k in sorted(kwargs)]:
            if type(value).__name__ == "TensorSpec":
                names.append(value.name or "")
                continue
            first = next(iter(_specs(value)), None)
            base = without_counter(first.name) if first is not None and first.name else ""
            if not base:
                return {}
            leaves(value, base)
    except ValueError:
        return {}
    captured = len(getattr(graph, "captures", ()) or ())
    if len(names) != len(inputs) - captured or not all(names):
        return {}
    return {tensor.op.name: name for tensor, name in zip(inputs, names)}


def _specs(value):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _specs(value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _specs(item)
    elif type(value).__name__ == "TensorSpec":
        yield value


def _arg_names(tf_op) -> tuple[str, ...]:
    """The name TensorFlow gives each input of ``tf_op``; a list argument names each of its inputs
    (``ScanDataset``: ``input_dataset``, ``initial_state`` per loop variable, ``other_arguments``)."""
    names: list[str] = []
    try:
        for arg in tf_op.op_def.input_arg:
            if arg.number_attr:
                count = tf_op.get_attr(arg.number_attr)
            elif arg.type_list_attr:
                count = len(tf_op.get_attr(arg.type_list_attr))
            else:
                count = 1
            names += [arg.name] * count
    except Exception:  # an op TensorFlow cannot describe: its inputs go by number
        return ()
    return tuple(names) if len(names) == len(tf_op.inputs) else ()


def _is_stateful(tf_op) -> bool:
    try:
        return bool(tf_op.op_def.is_stateful)
    except Exception:  # an op TensorFlow cannot describe: keep it, as TensorFlow would
        return True


def function_attrs(tf_op) -> list[tuple[str, str]]:
    """The ``(label, function name)`` pairs of a control-flow op."""
    found = []
    for attr, label in CONTROL_FLOW_BODIES[tf_op.type]:
        try:
            found.append((label, tf_op.get_attr(attr).name))
        except (ValueError, AttributeError):
            continue
    if tf_op.type in ("Case", "StatelessCase"):
        try:
            found.extend((f"branch {i}", b.name) for i, b in enumerate(tf_op.get_attr("branches")))
        except ValueError:
            pass
    return found


def mark_gradient_path(model: GraphModel, target: str | None, sources: dict[str, str],
                       status: dict[str, str], gradients: dict[str, str] | None = None,
                       target_name: str = "") -> None:
    """Mark a gradient drawing: the forward ops between each connected source and the target, and each source.

    Args:
        model: the traced cell with its gradient ops.
        target: the target's op name.
        sources: source name -> op name (a variable's captured handle, an input, a tensor the cell made).
        status: source name -> ``connected``, ``stopped`` or ``disconnected``.
        gradients: source name -> the op name of its gradient output (labelled ``d target / d source``;
            the zeros TensorFlow returns for a stopped or disconnected source say why).
        target_name: the target as the user wrote it.
    """
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for edge in model.edges:
        if not edge.control and model.ops.get(edge.dst) is not None and model.ops[edge.dst].kind != "backward":
            parents.setdefault(edge.dst, []).append(edge.src)
            children.setdefault(edge.src, []).append(edge.dst)

    stops = {name for name, op in model.ops.items() if op.type in STOP_OPS}

    def walk(start, links):  # a gradient does not pass a stop_gradient: neither does the path
        return closure([start], lambda current: () if current in stops else links.get(current, ()))

    upstream = walk(target, parents) if target in model.ops else set()
    path: set[str] = set()
    for name, op_name in sources.items():
        op = model.ops.get(op_name)
        if op is None:
            continue
        overlay = model.overlay
        if status.get(name):
            overlay.gradient[op_name] = status[name]
            overlay.sources[op_name] = name
        op.label = op.label or name
        if status.get(name) == "connected":
            path |= (walk(op_name, children) & upstream) - stops
    for op_name in path:
        model.overlay.gradient.setdefault(op_name, "path")
    if target in model.ops:
        if target not in model.overlay.sources:
            model.overlay.gradient[target] = "target"
        if target_name and target_name != "target":  # named as the cell names it (loss)
            model.ops[target].label = model.ops[target].label or target_name
    for edge in model.edges:
        edge.on_path = edge.src in path and edge.dst in path
    why = {"stopped": "tf.stop_gradient blocks it", "disconnected": "no path to the target"}
    for name, op_name in (gradients or {}).items():
        out = model.ops.get(op_name)
        if out is None:
            continue
        out.label = f"d {target_name or 'target'} / d {name}"
        if status.get(name) in why:  # TensorFlow returns zeros (unconnected_gradients=ZERO): say why
            for edge in model.edges:
                feeding = model.ops.get(edge.src)
                if edge.dst == op_name and feeding is not None and not edge.control:
                    feeding.label = f"zeros for {name}: {why[status[name]]}"


# ---------------------------------------------------------------------------
# Names as the user gives them


def without_counter(name: str) -> str:
    """A name without the ``_N`` TensorFlow and Keras add to keep names unique (``hidden_1`` -> ``hidden``): the
    one home of that rule.

    >>> without_counter("hidden_1"), without_counter("add"), without_counter("conv1")
    ('hidden', 'add', 'conv1')
    """
    return re.sub(r"_\d+$", "", name)


def user_scope(scope: str) -> str:
    """A name scope as the user named it: Keras adds ``_N`` to a layer's scope when it is called again
    (``hidden_1`` for ``Dense(name="hidden")``).

    >>> user_scope("cnn_1/conv1_1"), user_scope("block3")
    ('cnn/conv1', 'block3')
    """
    return "/".join(without_counter(part) for part in scope.split("/"))


def layer_scope(scope: str, layers: frozenset[str] | set[str]) -> str:
    """A scope as the user named it where a part is a Keras layer's (``hidden_1`` -> ``hidden``), else as it is:
    the one rule for which scopes are layers (the drawing's boxes, the profile's rows).

    >>> layer_scope("net_1/wide_1/BiasAdd", frozenset({"net", "wide"}))
    'net/wide/BiasAdd'
    """
    return "/".join(without_counter(part) if without_counter(part) in layers else part for part in scope.split("/"))




def layer_names(model: GraphModel) -> frozenset[str]:
    """The Keras layers a model's variables belong to, by their own names (``hidden`` of ``hidden/kernel``)."""
    found: set[str] = set()
    for op in model.ops.values():
        name = op.label or op.detail  # a weight no notebook name points at is named by TensorFlow: its path
        if op.kind == "variable" and "/" in name:
            found.update(name.split("/")[:-1])
        for _, sub in op.subgraphs:
            found |= layer_names(sub)
    return frozenset(found)


def scope_matches(scope: str, pattern: str) -> bool:
    """Whether ``--expand`` glob ``pattern`` names ``scope``, as TensorFlow or the user names it: its path, or a
    layer's own name for the layer inside its model (``conv_a`` for ``cnn_1/conv_a_1``).

    >>> scope_matches("cnn_1/conv_a_1", "conv_a"), scope_matches("cnn_1/conv_a_1", "cnn/*")
    (True, True)
    >>> scope_matches("cnn_1", "conv*")
    False
    """
    user = user_scope(scope)
    return any(fnmatch.fnmatchcase(name, pattern) for name in (scope, user, user.rsplit("/", 1)[-1]))

"""What XLA made of a ``jit_compile`` function: its kernels over the user's ops, its memory plan, its HLO.

:func:`xla_report` asks TensorFlow for the optimized HLO module of one call
(``experimental_get_compiler_ir(*args)(stage="optimized_hlo_proto_serialized")``) and reads it:

- each instruction of the entry computation that runs is a kernel: a fusion (XLA's ``kLoop``, ``kInput``,
  ``kOutput``: loop, input, output) or a lone op (a ``dot``, a ``copy``); the TF ops it computes are
  named in the HLO metadata of it and of the instructions fused into it (``op_name="Tanh"``), so each
  kernel lists the user's ops; instructions no TF op accounts for (copies, transposes, layout changes
  XLA added) are named so;
- the buffer assignment is XLA's memory plan: every allocation's size, whether it holds a parameter,
  the output or temporaries; the largest buffers are named by the TF op that produces them.

:func:`fusion_groups` gives the drawing its boxes: TF op name -> the kernel that computes it.
Nothing here imports IPython.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfmagic.errors import TfMagicError

#: XLA's fusion kinds, as the table names them.
FUSION_KINDS = {"kLoop": "loop", "kInput": "input", "kOutput": "output", "kCustom": "custom"}

#: Entry-computation opcodes that run nothing of their own (the module's inputs, tuples of outputs).
_PLUMBING = {"parameter", "tuple", "get-tuple-element", "constant", "bitcast"}

_BYTES = {"PRED": 1, "S8": 1, "U8": 1, "S16": 2, "U16": 2, "F16": 2, "BF16": 2, "S32": 4, "U32": 4, "F32": 4,
          "S64": 8, "U64": 8, "F64": 8, "C64": 8, "C128": 16}


@dataclass(frozen=True)
class Kernel:
    """One kernel XLA runs: a fusion or a lone instruction.

    Attributes:
        name: the HLO instruction's name (``add_tanh_fusion``).
        kind: ``loop fusion`` / ``input fusion`` / ``output fusion``, or the opcode (``dot``, ``copy``).
        tf_ops: the TF ops it computes (from the HLO metadata), in order; empty where XLA added it.
        shape: its output (``f32[2,3]``).
        bytes: its output's size.
        size: how many HLO instructions it holds (1 for a lone one).
    """

    name: str
    kind: str
    tf_ops: tuple[str, ...]
    shape: str
    bytes: int
    size: int = 1
    reads: tuple[str, ...] = ()  # the TF ops whose results it reads (through the kernels that compute them)


@dataclass
class MemoryPlan:
    """XLA's buffer assignment: bytes in all, by role, and the largest buffers."""

    total: int
    parameters: int
    outputs: int
    temporaries: int
    largest: list[tuple[int, str]] = field(default_factory=list)  # (bytes, what: the TF op or the instruction)


@dataclass
class XlaReport:
    """What XLA made of one call (see the module's docstring)."""

    kernels: list[Kernel]
    memory: MemoryPlan
    hlo_text: str
    allocations: list[int] = field(default_factory=list)  # every allocation's size, in the HloProto's order

    @property
    def added(self) -> list[Kernel]:
        """Kernels no TF op accounts for: what XLA added (copies, transposes, layout changes)."""
        return [k for k in self.kernels if not k.tf_ops]


def _shape_text(shape) -> tuple[str, int]:
    """``("f32[2,3]", 24)`` for an HLO shape proto (a tuple: its parts, summed)."""
    from tensorflow.compiler.xla import xla_data_pb2

    element = xla_data_pb2.PrimitiveType.Name(shape.element_type)
    if element == "TUPLE":
        parts = [_shape_text(s) for s in shape.tuple_shapes]
        return "(" + ", ".join(p[0] for p in parts) + ")", sum(p[1] for p in parts)
    size = _BYTES.get(element, 4)
    for dim in shape.dimensions:
        size *= dim
    return f"{element.lower()}[{','.join(str(d) for d in shape.dimensions)}]", size


def hlo_module(function, args: list, text: bool = False):
    """The optimized ``HloProto`` of ``function(*args)`` and (``text``: TensorFlow runs XLA's passes again
    for it) its HLO text, else ``""``.

    Raises:
        TfMagicError: the function is not compiled by XLA, or XLA cannot compile it (the message names
            the op without an XLA kernel).
    """
    if not getattr(function, "_jit_compile", False):
        raise TfMagicError("XLA does not compile this function: it is not jit_compile (%%tfgraph --jit, "
                           "@tf.function(jit_compile=True))")
    try:
        from tensorflow.compiler.xla.service import hlo_pb2

        compiler_ir = function.experimental_get_compiler_ir(*args)
        proto = hlo_pb2.HloProto()
        proto.ParseFromString(compiler_ir(stage="optimized_hlo_proto_serialized"))
        hlo_text = compiler_ir(stage="optimized_hlo") if text else ""
    except TfMagicError:
        raise
    except Exception as e:  # XLA refused the graph: say which op, in one line
        raise TfMagicError(unsupported_op_text(e)) from None
    return proto, hlo_text


def unsupported_op_text(error: Exception) -> str:
    """One line for an XLA compile failure: the op without an XLA kernel, where the message names it."""
    import re

    message = str(getattr(error, "message", error))
    match = re.search(r"unsupported operations?[^:]*:\s*(?:\n\s*)?([\w/]+)\s*\(No registered '(\w+)'", message) or \
        re.search(r"No registered '(\w+)' OpKernel for XLA_\w+ devices", message)
    argument = re.search(r"No registered '_Arg' OpKernel.*?\{\{node (\w+)\}\}.*?T=DT_(\w+)", message, re.S)
    if argument:
        return (f"XLA cannot compile it: its argument {argument.group(1)} is a {argument.group(2).lower()} tensor, "
                "which XLA does not take; pass it to a function without jit_compile")
    if match:
        op = match.group(match.lastindex)
        return f"XLA cannot compile it: {op} has no XLA kernel (jit_compile needs every op to have one); " \
               "run that part outside the jit_compile function"
    first = next((line.strip() for line in message.splitlines() if line.strip()), type(error).__name__)
    return f"XLA cannot compile it: {first}"


def parameter_names(graph) -> list[str]:
    """The names of a traced function's inputs, in order (XLA's parameters): arguments by their placeholder,
    captured variables by the variable's name."""
    by_handle = {}
    try:
        variables = list(getattr(graph, "variables", ()) or ())
    except AssertionError:  # variables deleted since
        variables = []
    for variable in variables:
        try:
            by_handle[id(variable.handle)] = variable.name.split(":")[0]
        except Exception:  # a distributed variable without one handle
            continue
    captured = {id(internal): by_handle.get(id(external)) for external, internal in getattr(graph, "captures", ())}
    return [captured.get(id(t)) or t.op.name for t in getattr(graph, "inputs", ())]


def xla_report(function, args: list, parameters: list[str] | None = None, text: bool = False) -> XlaReport:
    """What XLA made of ``function(*args)``: kernels, memory plan, HLO text (see the module's docstring).

    Args:
        function: a ``jit_compile`` ``tf.function``.
        args: the call's arguments.
        parameters: the names of the function's inputs in order (:func:`parameter_names`), for the memory plan.
        text: also the HLO text (``XlaReport.hlo_text``; ``""`` without).
    """
    proto, text = hlo_module(function, args, text)
    module = proto.hlo_module
    computations = {c.id: c for c in module.computations}
    entry = computations.get(module.entry_computation_id) or module.computations[-1]
    producer: dict[int, str] = {}  # instruction id -> the TF op it computes
    for instruction in entry.instructions:  # the function's inputs, by their placeholders
        if instruction.opcode == "parameter" and parameters and instruction.parameter_number < len(parameters):
            producer[instruction.id] = parameters[instruction.parameter_number]
    kernels = []
    for instruction in entry.instructions:
        if instruction.opcode in _PLUMBING:
            continue
        names: list[str] = []
        size = 1
        if instruction.opcode == "fusion":
            fused = [i for cid in instruction.called_computation_ids for i in computations[cid].instructions
                     if i.opcode != "parameter"]
            size = len(fused)
            for inner in fused:
                names.append(inner.metadata.op_name)
            kind = f"{FUSION_KINDS.get(instruction.fusion_kind, instruction.fusion_kind.lower())} fusion"
        else:
            names.append(instruction.metadata.op_name)
            kind = instruction.opcode
        tf_ops = tuple(dict.fromkeys(n for n in names if n and n != "XLA_Args" and n != "XLA_Retvals"))
        shape, nbytes = _shape_text(instruction.shape)
        reads = tuple(dict.fromkeys(producer[i] for i in instruction.operand_ids if i in producer))
        kernels.append(Kernel(instruction.name, kind, tf_ops, shape, nbytes, size, reads))
        if tf_ops:
            producer[instruction.id] = tf_ops[-1]
    return XlaReport(kernels, _memory_plan(proto, producer, entry), text,
                     [a.size for a in proto.buffer_assignment.buffer_allocations])


def _memory_plan(proto, producer: dict[int, str], entry) -> MemoryPlan:
    assignment = proto.buffer_assignment
    names = {i.id: i.name for i in entry.instructions}
    order = {i.id: n for n, i in enumerate(entry.instructions)}
    defined = {b.id: b.defined_at.instruction_id for b in assignment.logical_buffers}
    parameters = outputs = temporaries = 0
    largest = []
    for allocation in assignment.buffer_allocations:
        if allocation.is_entry_computation_parameter:
            parameters += allocation.size
            role = "parameter"
        elif allocation.maybe_live_out:
            outputs += allocation.size
            role = "output"
        else:
            temporaries += allocation.size
            role = "temporary"
        # a buffer XLA reuses holds several values: name it by the last one defined (an output: the result)
        holders = sorted((defined.get(a.logical_buffer_id) for a in allocation.assigned),
                         key=lambda h: -order.get(h, -1))
        what = next((producer[h] for h in holders if h in producer), None) or \
            next((names[h] for h in holders if h in names), "")
        largest.append((allocation.size, f"{role}: {what}" if what else role))
    largest.sort(key=lambda item: -item[0])
    total = parameters + outputs + temporaries
    return MemoryPlan(total, parameters, outputs, temporaries, largest[:5])


def fusion_groups(report: XlaReport) -> dict[str, str]:
    """TF op name -> the label of the kernel that computes it (``loop fusion add_tanh_fusion, 3 HLO ops``),
    for kernels that compute more than one TF op or are fusions (the drawing boxes them)."""
    groups = {}
    for kernel in report.kernels:
        if kernel.kind.endswith("fusion"):
            label = f"XLA {kernel.kind}: {kernel.name} ({kernel.size} HLO op{'s' if kernel.size != 1 else ''})"
            for op in kernel.tf_ops:
                groups.setdefault(op, label)
    return groups


def with_added(model, report: XlaReport):
    """``model`` with a small node for each kernel XLA added (no TF op accounts for it: a copy, a transpose),
    fed by the ops whose results it reads."""
    import copy

    from tfmagic.graph import Edge, Op

    model = copy.copy(model)
    model.ops, model.edges = dict(model.ops), list(model.edges)
    for kernel in report.added:
        name = f"xla:{kernel.name}"
        model.ops[name] = Op(name, kernel.kind, "xla", [], detail=f"XLA {kernel.name}\n{kernel.shape}", stateful=True)
        for read in kernel.reads:
            source = model.ops.get(read)
            if source is not None and source.outputs:
                model.edges.append(Edge(read, name, source.outputs[0]))
    return model


def fusions_in_nodes(view, groups: dict[str, str]):
    """A drawing at the program's level (``levels.py``) of what XLA made: each node that stands for many ops says
    how many of XLA's fusions compute them (the boxes are drawn around ops drawn as themselves only), and the
    kernels XLA added on its own (copies, transposes: the table lists them) are counted in a note instead of drawn.

    Returns:
        ``(view, note)``.
    """
    import copy
    import dataclasses

    if not any(op.folded is not None for op in view.ops.values()):
        return view, ""
    view = copy.copy(view)
    added = [name for name, op in view.ops.items() if op.kind == "xla"]
    view.ops = {name: op for name, op in view.ops.items() if op.kind != "xla"}
    view.edges = [e for e in view.edges if e.src in view.ops and e.dst in view.ops]
    for name, op in view.ops.items():
        if op.folded is not None:
            fusions = {groups[m] for m in op.folded.members if m in groups}
            view.ops[name] = dataclasses.replace(op, folded=dataclasses.replace(op.folded, fusions=len(fusions)))
    return view, (f"{len(added)} kernel{'s' if len(added) != 1 else ''} XLA added on its own (copies, transposes) "
                  "in the table, not drawn" if added else "")


def groups_for_graph(function, graph) -> dict[str, str] | None:
    """:func:`fusion_groups` for one trace of ``function`` (called with zeros of the trace's shapes), or
    ``None`` where its arguments are not tensors (or variables) of known shapes or XLA cannot compile it."""
    from tfmagic.profile import zeros_for

    signature = getattr(graph, "structured_input_signature", None)
    if not signature or signature[1]:
        return None
    arguments = [zeros_for(s, known=True) for s in signature[0]]
    if any(a is None for a in arguments):
        return None
    try:
        return fusion_groups(xla_report(function, arguments))
    except TfMagicError:
        return None


def size_text(nbytes: int) -> str:
    """``48 B``, ``1.5 KiB``, ``3.2 MiB``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def kernel_table(report: XlaReport, title: str):
    """The kernels XLA runs, each with the TF ops it computes, its output and its size (``reports.Table``)."""
    from tfmagic.reports import Table

    rows = []
    for kernel in report.kernels:
        ops = ", ".join(kernel.tf_ops[:6]) + (f", ... {len(kernel.tf_ops) - 6} more" if len(kernel.tf_ops) > 6 else "")
        rows.append([kernel.name, kernel.kind, ops or "(added by XLA: no TF op)", kernel.shape,
                     size_text(kernel.bytes)])
    fused = sum(1 for k in report.kernels if k.kind.endswith("fusion"))
    notes = [f"{len(report.kernels)} kernels, {fused} of them fusions; {len(report.added)} added by XLA "
             "(copies, transposes, layout changes no TF op accounts for)"]
    return Table(title, ["kernel", "kind", "TF ops it computes", "output", "bytes"], rows, notes)


def memory_table(report: XlaReport):
    """XLA's memory plan: bytes by role and the largest buffers, by the TF op that produces them."""
    from tfmagic.reports import Table

    plan = report.memory
    rows = [[size_text(nbytes), what] for nbytes, what in plan.largest]
    return Table(f"XLA's memory plan: {size_text(plan.total)} in all: parameters {size_text(plan.parameters)}, "
                 f"outputs {size_text(plan.outputs)}, temporaries {size_text(plan.temporaries)}",
                 ["buffer", "holds"], rows, ["largest buffers first (from the HLO module's buffer assignment)"])

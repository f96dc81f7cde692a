"""How a cell's values leave its graph: as tensors, as Python values, rebuilt eagerly, or not at all.

A ``%%tfgraph`` cell's names are written back after the graph ran: :func:`place` decides, at the end of
each trace, how each one leaves the graph (see its kinds); the tensors leave as the function's outputs and
:func:`join_mixed` puts a container's Python parts back around them.  What cannot leave (a generator made
while tracing, an object holding graph tensors) is not written back, and the trace says why.
"""

from __future__ import annotations

import ast
import collections.abc
import linecache
import os
import re
import sys
import types
from typing import Any

import tensorflow as tf

from tfmagic import diagnostics
from tfmagic.cell import CellCode, binding_line
from tfmagic.naming import is_keras
from tfmagic.redefine import function_node, is_cell_function
from tfmagic.vocabulary import ASSIGN_OPS

def holds_tensors(value: Any) -> bool:
    """Whether a value a cell bound must leave the graph as a tensor (not a Python value)."""
    if isinstance(value, tf.Variable):
        return False  # the variable object itself is what the plain cell would bind
    if tf.is_tensor(value):
        return True
    if isinstance(value, (list, tuple, dict)):
        try:
            return any(tf.is_tensor(v) and not isinstance(v, tf.Variable) for v in tf.nest.flatten(value))
        except (TypeError, ValueError):
            return False
    return False


RESULT_KEY = object()  # the last expression's entry among a trace's mixed containers


_LEAVES = object()  # marks the parts of a value that leave the graph as tensors


SYMBOLIC_TEXT = re.compile(r'Tensor\("[^"]*", shape=')


def is_mixed(value: Any) -> bool:
    """A list, tuple or dict holding tensors beside plain Python values."""
    if not isinstance(value, (list, tuple, dict)):
        return False
    try:
        leaves = tf.nest.flatten(value)
    except (TypeError, ValueError):
        return False
    return any(not (tf.is_tensor(v) and not isinstance(v, tf.Variable)) for v in leaves)


def split_mixed(value: Any) -> tuple[tuple, tuple]:
    """The tensors of a mixed container (they leave the graph), and how to rebuild it around them."""
    leaves = tf.nest.flatten(value)
    is_tensor = [tf.is_tensor(v) and not isinstance(v, tf.Variable) for v in leaves]
    template = (value, tuple(None if t else v for v, t in zip(leaves, is_tensor)), tuple(is_tensor))
    return tuple(v for v, t in zip(leaves, is_tensor) if t), template


def join_mixed(template: tuple, tensors) -> Any:
    """The container as the plain cell would leave it: eager tensors and the trace's Python values."""
    structure, python, is_tensor = template
    flowing = iter(tensors)
    leaves = [next(flowing) if t else v for v, t in zip(python, is_tensor)]
    return tf.nest.pack_sequence_as(structure, leaves)


def is_defined(value: Any) -> bool:
    """False for AutoGraph's placeholders of names a branch or loop did not bind."""
    return type(value).__name__ not in ("Undefined", "UndefinedReturnValue")


def graph_bound(value: Any, depth: int = 0) -> bool:
    """Whether a value holds tensors of a graph (usable only inside it): symbolic tensors, a graph
    TensorArray, an assign's graph view of a variable, containers and the cell's own objects holding them."""
    if isinstance(value, tf.Variable):
        handle = getattr(value, "_handle", None)
        return handle is not None and tf.is_symbolic_tensor(handle)
    if isinstance(value, tf.Operation):  # only a graph has ops (eager code gets None, or a value, instead)
        return True
    if isinstance(value, tf.TensorArray):
        return tf.is_symbolic_tensor(value.flow)
    if isinstance(value, tf.Tensor):
        return tf.is_symbolic_tensor(value)
    if isinstance(value, tf.data.Dataset):
        variant = getattr(value, "_variant_tensor", None)
        return variant is not None and tf.is_symbolic_tensor(variant)
    if depth > 3:
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(graph_bound(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(graph_bound(v, depth + 1) for v in value.values())
    module = getattr(type(value), "__module__", "") or ""
    if tf.is_tensor(value) or module in ("__tfmagic_cell__", "__main__") or module.startswith("tensorflow."):
        try:
            parts = vars(value)
        except TypeError:  # no __dict__
            return False
        return any(graph_bound(v, depth + 1) for v in parts.values())
    return False


def holds_graph_objects(value: Any) -> bool:
    """A container holding what cannot leave the graph inside it (a TensorArray, a generator, an assign's result,
    a graph op)."""
    try:
        leaves = tf.nest.flatten(value)
    except (TypeError, ValueError):
        return graph_bound(value)
    for leaf in leaves:
        if isinstance(leaf, (tf.TensorArray, tf.Variable)) or (tf.is_tensor(leaf) and not isinstance(leaf, tf.Tensor)):
            if graph_bound(leaf):
                return True
        elif isinstance(leaf, (types.GeneratorType, collections.abc.Iterator)) and not tf.is_tensor(leaf):
            return True
        elif not tf.is_tensor(leaf) and graph_bound(leaf):
            return True
    return False


def _tensor_array_rebuilder(array: tf.TensorArray):
    """A function that makes an eager ``tf.TensorArray`` like ``array`` from its list (``array.flow``)."""
    dtype = array.dtype
    impl = getattr(array, "_implementation", array)
    dynamic_size = bool(getattr(impl, "_dynamic_size", False))
    infer_shape = bool(getattr(impl, "_infer_shape", True))
    shape = array.element_shape

    def rebuild(flow):
        size = int(tf.raw_ops.TensorListLength(input_handle=flow))
        element_shape = shape if shape.rank is not None else None
        eager = tf.TensorArray(dtype, size=size, dynamic_size=dynamic_size, infer_shape=infer_shape,
                               element_shape=element_shape)
        if size == 0:
            return eager
        try:
            stacked = tf.raw_ops.TensorListStack(input_handle=flow, element_dtype=dtype, element_shape=-1,
                                                 num_elements=-1)
            return eager.unstack(stacked)
        except (tf.errors.OpError, ValueError):  # elements of different shapes, or some never written
            pass
        for index in range(size):
            try:
                item = tf.raw_ops.TensorListGetItem(input_handle=flow, index=index, element_shape=-1,
                                                    element_dtype=dtype)
            except tf.errors.OpError:  # never written: left unwritten, as the graph's array had it
                continue
            eager = eager.write(index, item)
        return eager

    return rebuild


#: The ops that assign a variable (their first input is its handle).


class _Handle:
    """A variable's handle as ``variable_for`` looks for it (on an assign's value: ``.handle``)."""

    def __init__(self, handle):
        self.handle = handle


def _bound_by_update_state(tree: ast.Module, name: str | None) -> bool:
    """Whether ``name`` (``None``: the cell's last expression) is bound to a call of ``.update_state(...)``."""
    if name is None:
        values = [tree.body[-1].value] if tree.body and isinstance(tree.body[-1], ast.Expr) else []
    else:
        values = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)]
    return any(isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "update_state"
               for v in values)


def place(value: Any, graph, values: dict, name: str | None = None, *, variable_for, code: CellCode,
          captured: frozenset = frozenset()) -> tuple[str, Any]:
    """How one value the cell bound leaves the graph: ``(kind, payload)``.

    Kinds: ``tensor`` (it leaves as a tensor, composite ones included), ``mixed`` (a container: its tensors leave,
    the rest stays Python; payload from :func:`split_mixed`), ``rebuild`` (``(tensors, rebuild)``: made again
    eagerly from its tensors, a ``tf.TensorArray`` as its list), ``function`` (a function the cell defined: its
    node, to be defined again), ``python`` (the value itself), ``drop`` (it cannot leave the graph: payload says
    why).  ``variable_for(value, graph, values)`` finds the variable behind an assign's graph view of it;
    ``captured``: the ids of the objects the cell read from the namespace (what it did not make while tracing).
    """
    if isinstance(value, tf.GradientTape) and id(value) not in captured and getattr(value, "_tape", 0) is not None:
        # (a used non-persistent tape has let go of its recording: it refuses a second gradient, as a plain one does)
        return "drop", ("a GradientTape that recorded while tracing holds the trace's graph tensors (outside the "
                        "cell its gradients would be None); call tape.gradient(...) in this cell (the gradients are "
                        "written back), or record in a plain cell or under %%tape")
    if isinstance(value, tf.Operation):  # what eager code gets as None (tf.group, an assign with read_value=False)
        return _place_operation(value, graph, values, name, variable_for, code)
    if isinstance(value, tf.TensorArray):
        if not tf.is_symbolic_tensor(value.flow):
            return "python", value
        return "rebuild", (value.flow, _tensor_array_rebuilder(value))
    if type(value).__module__.startswith("keras") and isinstance(getattr(value, "value", None), tf.Variable):
        return "python", value  # a Keras variable: the object itself, as the plain cell binds it
    if isinstance(value, tf.Variable):
        if not graph_bound(value):
            return "python", value
        variable = variable_for(value, graph, values)
        if variable is None:
            return "drop", ("the variable-like value an assign returns inside a graph (it reads the graph's "
                            "handle of the variable) cannot leave the graph; bind the variable itself")
        return "python", variable
    if isinstance(value, (types.GeneratorType, collections.abc.Iterator)) and not tf.is_tensor(value):
        return "drop", (f"a {type(value).__name__} made while tracing would run later, outside the graph, on the "
                        "trace's values (and a re-run that reuses the graph would give back the same, used "
                        "one); make a list (list(...)) or a tf.data.Dataset")
    if tf.is_tensor(value) or isinstance(value, (tf.data.Dataset, tf.distribute.DistributedDataset)):
        return _place_composite(value)
    if isinstance(value, (list, tuple, dict)):
        if holds_graph_objects(value):
            return "drop", ("a container holding graph objects that cannot leave the graph (a TensorArray, "
                            "a generator, an assign's result, a graph op): bind them one by one")
        if not holds_tensors(value):
            return "python", value
        if is_mixed(value):  # (x, 1, 'a'): only the tensors leave the graph; the rest stays Python
            return "mixed", split_mixed(value)
        return "tensor", value
    if name is not None and is_cell_function(value):
        return "function", function_node(code, name)
    if graph_bound(value):
        return "drop", (f"this {type(value).__name__} holds graph tensors made while tracing, which cannot be "
                        "used outside the graph; bind the tensors themselves (they are written back)")
    return "python", value


def _place_operation(op, graph, values: dict, name: str | None, variable_for, code: CellCode) -> tuple[str, Any]:
    """:func:`place` of a graph op: what eager code gets as ``None`` (``tf.group``, an assign with
    ``read_value=False``), or the variable a Keras 2 metric's ``update_state`` assigned."""
    if op.type not in ASSIGN_OPS or not _bound_by_update_state(code.tree, name):
        return "python", None  # the plain cell's value
    # Keras 2's update_state returns the graph's last op inside a function (metrics_utils.update_state_wrapper),
    # and eagerly what the metric's update returned: an unread view of the variable it assigned last
    variable = variable_for(_Handle(op.inputs[0]), graph, values) if op.inputs else None
    if variable is None:
        return "drop", (f"{op.name} is an op of the trace's graph, which cannot leave it; read the updated "
                        "value in the cell (metric.result(), v.read_value())")
    with tf.init_scope():
        lazy = getattr(variable, "_lazy_read", None)  # (resource_variable_ops, TF 2.15-2.21)
        return "python", lazy(None) if lazy is not None else variable


def _place_composite(value) -> tuple[str, Any]:
    """:func:`place` of a tensor, a composite tensor or a dataset: it leaves whole, or rebuilt from its tensor parts
    (an ``IndexedSlices``), or not at all."""
    try:
        leaves = tf.nest.flatten(value, expand_composites=True)
    except (TypeError, ValueError, AttributeError):
        leaves = None
    if leaves is not None and all(tf.is_tensor(v) for v in leaves):
        return "tensor", value
    if not graph_bound(value):
        return "python", value  # tf.IndexedSlices(values=[[1.]], indices=[0]): lists, as the plain cell has
    if isinstance(value, tf.IndexedSlices):  # tensor parts leave the graph; lists stay, as in a plain cell
        parts = (value.values, value.indices, value.dense_shape)
        kept = tuple(_LEAVES if isinstance(p, tf.Tensor) else p for p in parts)
        if not graph_bound(kept):
            leaving = tuple(p for p in parts if isinstance(p, tf.Tensor))

            def rebuild(tensors, kept=kept):
                flowing = iter(tensors)
                values, indices, shape = [next(flowing) if p is _LEAVES else p for p in kept]
                return tf.IndexedSlices(values, indices, shape)

            return "rebuild", (leaving, rebuild)
    return "drop", f"a {type(value).__name__} whose parts are not all tensors cannot leave the graph"


def finish_keras2_models(values) -> None:
    """Keras 2 (TensorFlow 2.15, tf-keras) makes a model's fit/evaluate/predict step counters in its constructor
    only outside a function (``training.py``, ``_init_batch_counters``): a model the cell constructed while
    tracing gets them now, eagerly, as a plain cell's model has them (else its ``fit`` fails)."""
    for value in values:
        if is_keras(value, ("Model",)) and hasattr(value, "_init_batch_counters") \
                and getattr(value, "_train_counter", None) is None:
            value._init_batch_counters()


def not_written_back(record, code: CellCode) -> list[tuple[tuple[str, ...], int | None, str, str]]:
    """What a trace (``collect.TraceRecord``) does not write back, though a plain cell would bind it:
    ``(names, line, why, fix)``, one entry per loop or binding statement, the result's under :data:`RESULT_KEY`."""
    out = []
    loops = (  # names a loop or branch binds that stay behind: (names, where they were bound, and what to do)
        (record.kept_inside, "bound inside a graph loop, AutoGraph keeps them inside the graph unless the cell "
         "reads them after the loop (a plain cell leaves them bound)",
         lambda listed: "bind what you need before the loop and read it after the loop"),
        (record.python_loop_kept, "bound in the body of this Python loop, which AutoGraph runs while tracing "
         "and keeps only the names the cell reads after it (a plain cell leaves them bound)",
         lambda listed: f"read {listed} after the loop, or loop over list(...) so that tfmagic sees a Python "
         "loop before tracing"),
        (record.graph_kept, "bound only inside a branch or loop on a tensor (a tf.cond or tf.while_loop AutoGraph "
         "made), which keeps them inside the graph unless the cell reads them after it and every branch binds "
         "them (a plain cell leaves them bound when its branch runs)",
         lambda listed: f"bind {listed} before the if or loop too (e.g. to tf.zeros_like(...)), so that every "
         "path binds it, and read it after"))
    for kept, why, fix in loops:
        by_line: dict[int | None, list[str]] = {}
        for name in kept:
            by_line.setdefault((code.loop_bound or {}).get(name) or binding_line(code.tree, name), []).append(name)
        for line, names in by_line.items():
            listed = ", ".join(names)
            out.append((tuple(names), line, why, fix(listed)))
    for name, reason in record.dropped.items():
        if name is RESULT_KEY:
            lines = code.source.splitlines()
            line = len(lines)
            while line > 1 and not lines[line - 1].strip():
                line -= 1
            out.append(((RESULT_KEY,), line, reason, ""))
        else:
            out.append(((name,), binding_line(code.tree, name), reason, ""))
    return out


def write_back_notes(record, code: CellCode) -> list:
    """One finding per name (or result) of a trace (``collect.TraceRecord``) that does not leave the graph as the
    plain cell's would, at the line that binds it."""
    lines = code.source.splitlines()

    def text(line):
        return lines[line - 1] if line and 0 < line <= len(lines) else ""

    notes = []
    for name in record.texts:
        line = binding_line(code.tree, name)
        notes.append(diagnostics.Finding(
            "symbolic_text", line, text(line),
            f"{name} holds the text of a symbolic tensor, formatted while tracing: it shows no values, where a "
            "plain cell's text shows them", "format in the graph (tf.strings.format('{}', t), "
            "tf.strings.as_string(t)), or format in a plain cell"))
    for name in record.rebuild:
        if isinstance(name, str) and f"{name}.read(" in code.source:
            line = binding_line(code.tree, name)
            notes.append(diagnostics.Finding(
                "tensorarray", line, text(line),
                f"{name} comes back as an eager TensorArray rebuilt from its contents: every element is there, "
                "where an eager TensorArray clears an element when it is read (clear_after_read)",
                "read the elements you need in the cell (they are written back)"))
    for name, line in record.branch_variables:
        notes.append(diagnostics.Finding(
            "branch_variable", line, text(line),
            f"{name} is a tensor, the value of the variable it is bound to here, in an if or loop on a tensor: a "
            "tf.cond's and a while loop's outputs are tensors, where a plain cell binds the variable itself",
            f"read {name} as a value (its gradient is the variable's), or pick the variable in a plain cell"))
    for names, line, why, fix in not_written_back(record, code):
        if fix:
            verb = "is" if len(names) == 1 else "are"
            notes.append(diagnostics.Finding("loop_name", line, text(line),
                                             f"{', '.join(names)} {verb} not written back: {why}", fix))
        else:  # one line: what the cell binds that stays behind, and why
            what = "the cell's last expression is not shown" if names[0] is RESULT_KEY else \
                f"{names[0]} is not written back"
            notes.append(diagnostics.Finding("write_back", None, "", f"line {line}: {what}: {why}"))
    return notes


class NotWrittenBack:
    """What a name is bound to when the cell's value for it could not leave the graph: any use of it raises
    :class:`~tfmagic.errors.NotWrittenBackError`, which says which cell and line bound it, why, and what to do
    (an earlier value left in place would be silently wrong)."""

    __slots__ = ("_tfmagic_text",)

    def __init__(self, text: str):
        object.__setattr__(self, "_tfmagic_text", text)

    def __repr__(self) -> str:
        return f"<not written back: {self._tfmagic_text}>"

    def _tfmagic_fail(self, *args, **kwargs):
        raise self._tfmagic_error(_use_site())

    def _tfmagic_error(self, site: str = ""):
        """The error a use raises; ``site``: ``line N (code): `` where it was used."""
        from tfmagic.errors import NotWrittenBackError

        return NotWrittenBackError(site + self._tfmagic_text)

    def __getattr__(self, attribute: str):
        if attribute.startswith("_") or attribute == "is_tensor_like":  # protocols asked of any value
            raise AttributeError(attribute)
        self._tfmagic_fail()

    __setattr__ = __call__ = __iter__ = __len__ = __getitem__ = __setitem__ = __contains__ = _tfmagic_fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __matmul__ = __rmatmul__ = _tfmagic_fail
    __truediv__ = __rtruediv__ = __floordiv__ = __pow__ = __neg__ = __abs__ = _tfmagic_fail
    __lt__ = __le__ = __gt__ = __ge__ = __float__ = __int__ = __index__ = __array__ = __format__ = _tfmagic_fail
    __enter__ = __next__ = _tfmagic_fail


def _use_site() -> str:
    """``line N (code): `` of the plain cell that used a :class:`NotWrittenBack`; empty elsewhere (a magic's
    cell shows its own line)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    name = frame.f_code.co_filename if frame is not None else ""
    if not (name.startswith("<ipython-input-") or f"{os.sep}ipykernel_" in name):  # IPython's, a kernel's cells
        return ""
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"line {frame.f_lineno} ({code}): " if code else f"line {frame.f_lineno}: "


def check_reads(code: CellCode, values: dict) -> None:
    """Raise a :class:`NotWrittenBack`'s error, at the line that reads it, when a cell reads one."""
    for name, value in values.items():
        if isinstance(value, NotWrittenBack):
            lines = code.source.splitlines()
            line = min((node.lineno for node in ast.walk(code.tree) if isinstance(node, ast.Name)
                        and node.id == name and isinstance(node.ctx, ast.Load)), default=None)
            site = f"line {line} ({lines[line - 1].strip()}): " if line else ""
            raise value._tfmagic_error(site)


def stand_ins(not_written: list, where: str) -> dict[str, NotWrittenBack]:
    """A :class:`NotWrittenBack` for each name of :func:`not_written_back`'s list; ``where``: the cell
    (``"%%tfgraph cell [3]"``)."""
    out = {}
    for names, line, why, fix in not_written:
        for name in names:
            if name is not RESULT_KEY:
                out[name] = NotWrittenBack(f"{name} was not written back by the {where}, line {line}: {why}"
                                           + (f"; {fix}" if fix else ""))
    return out

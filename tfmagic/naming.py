"""The names a notebook user knows things by: variables, and a traced function's outputs.

TensorFlow names a variable ``Variable`` and a function's outputs ``Identity``, ``Identity_1``;
the user wrote ``steps = tf.Variable(0)`` and ``u = t + 10``.  The drawings, ``%%tape``'s
``grads`` and the messages use the user's names, chosen here:

- a Keras weight by its layer path (``hidden/kernel``), whatever other name points at it;
- any other variable by the name the notebook binds it to, preferring names bound by an
  assignment (``w1 = tf.Variable(5.)``) over names left over from a loop
  (``for variable in model.variables:``) or a ``with ... as`` target;
- a function's outputs by the structure it returns (a cell's names and its result).

>>> sorted(loop_targets(["for variable in m.variables:\\n    pass", "w = 1", "with a as k: pass", "[j for j in js]"]))
['k', 'variable']
>>> sorted(assignment_targets(["w1, w2 = a, b", "for v in vs: pass", "x: int = 3", "y += 1"]))
['w1', 'w2', 'x', 'y']
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tfmagic.vocabulary import CALL_OPS, DATASET_LOOPS, IF_OPS, WHILE_OPS


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _parse_all(sources: Iterable[str]):
    for source in sources:
        try:
            yield ast.parse(source or "")
        except (SyntaxError, ValueError):  # IPython syntax (%magic) or a broken cell: nothing to learn
            continue


def loop_targets_of(node: ast.AST) -> set[str]:
    """The names one statement binds as a loop or ``with ... as`` target (a comprehension's stay inside it)."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return _targets(node.target)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return set().union(*(_targets(i.optional_vars) for i in node.items if i.optional_vars is not None))
    return set()


def assignment_targets_of(node: ast.AST) -> set[str]:
    """The names one node binds by an assignment statement (plain, annotated, augmented or ``:=``)."""
    if isinstance(node, ast.Assign):
        return set().union(*(_targets(t) for t in node.targets))
    if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        return _targets(node.target)
    return set()


def loop_targets(sources: Iterable[str]) -> set[str]:
    """Names bound as loop or ``with ... as`` targets anywhere in ``sources``."""
    return {name for tree in _parse_all(sources) for node in ast.walk(tree) for name in loop_targets_of(node)}


def assignment_targets(sources: Iterable[str]) -> set[str]:
    """Names bound by an assignment statement (plain, annotated, augmented or ``:=``) in ``sources``."""
    return {name for tree in _parse_all(sources) for node in ast.walk(tree) for name in assignment_targets_of(node)}


def tf_variable(value: Any):
    """The ``tf.Variable`` behind a value (a Keras 3 variable wraps one), or ``None``."""
    import tensorflow as tf

    if isinstance(value, tf.Variable):
        return value
    inner = getattr(value, "value", None) if type(value).__module__.startswith("keras") else None
    return inner if isinstance(inner, tf.Variable) else None


def holds_variables(value: Any) -> bool:
    """Whether ``value`` is a layer, model, optimizer or module (it has a ``variables`` attribute), told from its
    class: an unbuilt Keras 2 model's ``variables`` property raises ``ValueError``, so it is not read."""
    import tensorflow as tf

    return hasattr(type(value), "variables") and not isinstance(value, (tf.Variable, type))


def held_variables(value: Any) -> list:
    """The ``tf.Variable``\\ s a layer, model, optimizer or module holds (a Keras 3 variable's inner one), or
    ``[]`` where it holds none or cannot list them yet (an unbuilt Keras 2 model)."""
    if not holds_variables(value):
        return []
    try:
        own = value.variables
        own = own() if callable(own) else own  # a Keras 2 optimizer's is a method
        return [v for v in map(tf_variable, own) if v is not None]
    except Exception:  # a Keras object that cannot list its variables yet (not built)
        return []


def layer_path(variable) -> str:
    """A layer's weight's path (``hidden/kernel``), or ``""`` for a variable no layer owns.

    Keras names the ``tf.Variable`` of a weight by its path; a plain ``tf.Variable(...)`` has no ``/``
    in its name unless the user gave one.
    """
    path = getattr(variable, "path", None)
    if isinstance(path, str) and "/" in path:
        return path
    name = getattr(variable, "name", "") or ""
    name = name.split(":")[0]
    return name if "/" in name else ""


class HistoryTargets:
    """How each name was last bound in a session's cells (an assignment or a loop target), read once per cell.

    >>> t = HistoryTargets().update(["v = tf.Variable(1.)", "for v in vs: pass", "w = 2"])
    >>> sorted(t.loops), sorted(t.assigned)
    (['v'], ['w'])
    """

    def __init__(self):
        self.seen = 0
        self.kind: dict[str, str] = {}

    def update(self, history: list[str]) -> HistoryTargets:
        """Read the cells of ``history`` (IPython's ``In``) not read yet."""
        if len(history) < self.seen:  # a new session's history: start again
            self.__init__()
        for source in history[self.seen:]:
            for tree in _parse_all([source]):
                for node in sorted((n for n in ast.walk(tree) if hasattr(n, "lineno")),
                                   key=lambda n: (n.lineno, n.col_offset)):
                    for name in assignment_targets_of(node):
                        self.kind[name] = "assign"
                    for name in loop_targets_of(node):
                        self.kind[name] = "loop"
        self.seen = len(history)
        return self

    @property
    def assigned(self) -> set[str]:
        return {n for n, k in self.kind.items() if k == "assign"}

    @property
    def loops(self) -> set[str]:
        return {n for n, k in self.kind.items() if k == "loop"}


class VariableNames:
    """Name the variables of a namespace as the user knows them.

    Args:
        namespace: the notebook's namespace.
        history: the cells run so far (``In``), to tell assignments from leftover loop targets.
    """

    def __init__(self, namespace: dict, history: Iterable[str] | HistoryTargets = ()):
        if not isinstance(history, HistoryTargets):
            history = HistoryTargets().update(list(history))
        self._assigned = history.assigned
        self._loops = history.loops
        self._by_id: dict[int, list[str]] = {}
        self._values: dict[int, Any] = {}
        self._datasets: dict[int, str] = {}  # id of a dataset's variant tensor (what a graph captures) -> its name
        self._owned: dict[int, str] = {}  # a Keras object's own variable without a path -> ``owner/name``
        self._paths: dict[int, str] = {}  # the tf.Variable inside a Keras 3 variable -> the Keras variable's path
        import tensorflow as tf

        for name, value in list(namespace.items()):
            if name.startswith("_") or not name.isidentifier():
                continue
            variable = tf_variable(value)
            if variable is not None:
                self._by_id.setdefault(id(variable), []).append(name)
                self._values[id(variable)] = variable
            elif isinstance(value, tf.data.Dataset):
                variant = getattr(value, "_variant_tensor", None)
                if variant is not None and id(variant) not in self._datasets:
                    self._datasets[id(variant)] = name
            elif is_keras(value, ("Layer", "Metric", "Optimizer")):
                self._name_owned(value)
            elif isinstance(value, (list, tuple, dict)) and len(value) <= 64:  # models = [generator, critic]
                for item in value.values() if isinstance(value, dict) else value:
                    if is_keras(item, ("Layer", "Metric", "Optimizer")):
                        self._name_owned(item)

    def _name_owned(self, value: Any) -> None:
        """A Keras object's variables by the names ``model.summary()`` and ``v.path`` show: a Keras 3 variable's
        inner ``tf.Variable`` by the Keras variable's path (its own name may be ``my_model/kernel`` for two
        layers' kernels); those Keras names without a path (a metric's ``total``, Keras 2's optimizer
        ``iteration`` and model step counters), by their owner: ``accuracy/total``, ``Adam/iteration``,
        ``net/train_counter``."""
        owners = [value, *(getattr(value, "metrics", None) or [])]
        optimizer = getattr(value, "optimizer", None)
        if optimizer is not None and not isinstance(optimizer, str):
            owners.append(optimizer)
        for owner in owners:
            try:
                own = getattr(owner, "variables", None) or []
                own = list(own() if callable(own) else own)  # Keras 2's optimizer: a method
            except Exception:  # a Keras object that cannot list its variables yet (not built)
                continue
            counters = [(getattr(owner, f"_{step}_counter", None), f"{step}_counter")
                        for step in ("train", "test", "predict")]  # Keras 2's models
            for item, short in [(v, "") for v in own] + counters:
                variable = tf_variable(item)
                if variable is None:
                    continue
                path = getattr(item, "path", None) if variable is not item else None
                if isinstance(path, str) and path:  # Keras 3: the inner tf.Variable's name is not the path
                    self._paths.setdefault(id(variable), path)  # (a subclassed model's: my_model/kernel, twice)
                    self._values.setdefault(id(variable), variable)
                    continue
                if layer_path(variable) or id(variable) in self._owned:
                    continue
                short = short or variable.name.split(":")[0]
                self._owned[id(variable)] = f"{getattr(owner, 'name', '') or type(owner).__name__}/{short}"
                self._values.setdefault(id(variable), variable)

    def _rank(self, name: str) -> tuple:
        return (name in self._loops, name not in self._assigned, len(name), name)

    def name_of(self, value: Any, fallback: str = "") -> str:
        """The name to show for a variable (or a Keras variable wrapping one)."""
        variable = tf_variable(value)
        if variable is None:
            return fallback
        path = self._paths.get(id(variable)) or layer_path(variable) or self._owned.get(id(variable), "")
        if path:
            return path
        names = self._by_id.get(id(variable))
        if names:
            return min(names, key=self._rank)
        return fallback or variable.name.split(":")[0]

    def by_handle(self, variables: Iterable[Any] | None = None) -> dict[int, str]:
        """``id(variable.handle) -> name`` for each variable (to name a graph's captured handles), and, by default,
        ``id`` of each dataset's variant tensor -> its name (a graph that loops over a dataset captures it).

        Args:
            variables: the variables to name (default: every variable and dataset the namespace holds).
        """
        found = {}
        if variables is None:
            variables = [value for value in self._values.values()]
            found.update(self._datasets)
        for value in variables:
            variable = tf_variable(value)
            if variable is None:
                continue
            try:
                found[id(variable.handle)] = self.name_of(variable)
            except (AttributeError, ValueError):  # a distributed variable without a single handle
                continue
        return found


@dataclass(frozen=True)
class KerasNames:
    """The names of the Keras models and of the other layers a namespace holds (theirs and their layers'), to tell
    a model's name scope (drawn as its layers) from a layer's (one node, even one holding layers, as a
    ``MultiHeadAttention`` does) where the graph alone cannot: a layer that trains a ``BatchNormalization``
    has parts (``moments``, ``AssignMovingAvg``) that read weights as a model's layers do."""

    models: frozenset[str] = frozenset()
    layers: frozenset[str] = frozenset()
    optimizers: frozenset[str] = frozenset()


def keras_names(namespace: dict) -> KerasNames:
    """The Keras models, layers and optimizers of a namespace, nested ones included (``model.layers``, a layer's
    sublayers, ``model.optimizer``)."""
    found: dict[str, set[str]] = {"models": set(), "layers": set(), "optimizers": set()}
    seen: set[int] = set()
    for name, value in list(namespace.items()):
        if name.startswith("_") or id(value) in seen:
            continue
        if is_keras(value, ("Optimizer", "OptimizerV2")):
            found["optimizers"].add(getattr(value, "name", "") or "")
        if not is_keras(value, ("Layer",)):
            continue
        try:
            every = list(value._flatten_layers(include_self=True, recursive=True))
        except Exception:  # a Keras without _flatten_layers, or a model that cannot list them: itself alone
            every = [value]
        for layer in every:
            seen.add(id(layer))
            model = is_keras(layer, ("Model", "Functional", "Sequential"))
            found["models" if model else "layers"].add(getattr(layer, "name", "") or "")
            optimizer = getattr(layer, "optimizer", None) if model else None
            if optimizer is not None:
                found["optimizers"].add(getattr(optimizer, "name", "") or "")
    return KerasNames(**{kind: frozenset(names - {""}) for kind, names in found.items()})


def is_keras(value: Any, classes: tuple[str, ...]) -> bool:
    """Whether ``value`` is an instance of one of Keras's classes of these names (Keras 3's or tf-keras's)."""
    return any(c.__name__ in classes and "keras" in c.__module__ for c in type(value).__mro__)


def output_names(graph, cell: bool = False) -> dict[str, str]:
    """The user's name for each output op of a traced function, by the structure it returned.

    Args:
        graph: the ``FuncGraph``.
        cell: the function is a ``%%tfgraph`` cell's, which returns ``({name: tensor}, result)``.

    Returns:
        ``{op name: label}``: ``u``, ``result``; for other functions ``result``, ``result[0]``,
        ``result['loss']``.
    """
    structure = getattr(graph, "structured_outputs", None)
    found: dict[str, str] = {}

    import tensorflow as tf

    def walk(value, label):
        if value is None:
            return
        if isinstance(value, tf.Tensor):
            found.setdefault(value.op.name, label)
        elif isinstance(value, dict):
            for key in value:
                walk(value[key], f"{label}[{key!r}]")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{label}[{i}]")
        else:  # a composite tensor: its component tensors, by the attribute that holds each
            try:
                parts = tf.nest.flatten(value, expand_composites=True)
            except (TypeError, ValueError):
                return
            fields = ("values", "indices", "dense_shape", "flat_values", "row_splits", "row_lengths")
            for i, part in enumerate(parts):
                name = next((f for f in fields if getattr(value, f, None) is part), str(i))
                walk(part, f"{label}.{name}" if len(parts) > 1 else label)

    if cell and isinstance(structure, (tuple, list)) and len(structure) == 2 and isinstance(structure[0], dict):
        for key, value in structure[0].items():
            walk(value, str(key))
        walk(structure[1], "result")
    else:
        walk(structure, "result")
    return found


#: AutoGraph's calls that become control-flow ops, with the position of their ``symbol_names`` argument.
_AUTOGRAPH_STATEMENTS = {"for_stmt": ("loop", 5), "while_stmt": ("loop", 4), "if_stmt": ("if", 5)}
_LOOP_OPS = WHILE_OPS + DATASET_LOOPS  # ScanDataset: ``for x in dataset:``
_IF_OPS = IF_OPS


def control_flow_names(graph, python_function) -> dict[str, str]:
    """The names of the variables each loop and ``if`` of a function carries, read from AutoGraph's code.

    AutoGraph turns ``for i in tf.range(n): total += i`` into ``ag__.for_stmt(..., ('total',),
    {'iterate_names': 'i'})``: the loop's variables, in the order of the ``While`` op's loop slots.  A loop over a
    dataset (``for xb, yb in ds:``, a ``ScanDataset``) carries its variables first, then the element's parts.
    The names are given only where the converted statements match the graph's control-flow ops one
    for one (a Python ``if`` or ``range`` loop makes no op, and then nothing is named).

    Returns:
        ``{op name: "i, total"}`` for the top-level ``While`` and ``If`` ops of ``graph``.
    """
    import tensorflow as tf

    try:
        code = tf.autograph.to_code(python_function)
        tree = ast.parse(code)
    except Exception:  # no AutoGraph code (autograph off, a builtin): nothing to name
        return {}
    outer = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if outer is None:
        return {}
    statements = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue  # a loop body's own statements are inside its op's function
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and \
                    child.func.attr in _AUTOGRAPH_STATEMENTS:
                kind, position = _AUTOGRAPH_STATEMENTS[child.func.attr]
                names = _string_tuple(child.args[position]) if len(child.args) > position else None
                iterate = _iterate_name(child.args[6]) if child.func.attr == "for_stmt" and len(child.args) > 6 else ""
                statements.append((kind, names, iterate))
            visit(child)

    visit(outer)
    from tfmagic.graph import is_dataset_loop

    ops = [op for op in graph.get_operations() if op.type in _LOOP_OPS + _IF_OPS
           and (op.type not in DATASET_LOOPS or is_dataset_loop(op))]  # not a user's own ds.scan(...)
    kinds = ["loop" if op.type in _LOOP_OPS else "if" for op in ops]
    if kinds != [kind for kind, _, _ in statements] or any(names is None for _, names, _ in statements):
        return {}
    found = {}
    for op, (kind, names, iterate) in zip(ops, statements):
        if op.type == "ScanDataset":  # the body takes the loop's variables, then the element: (xb, yb)
            carried = names + tuple(part for part in iterate.strip("()").split(", ") if part)
        else:
            carried = ((iterate,) if iterate and "," not in iterate else ()) + names
        if carried:
            found[op.name] = ", ".join(carried)
    return found


def called_control_flow_names(graph, python_function) -> dict[tuple[str, str], str]:
    """:func:`control_flow_names` for the bodies of the ``tf.function``\\ s that ``graph`` calls, found by
    name in the calling function's globals (a cell's: the notebook's names).

    Returns:
        ``{(function name, op name): "i"}`` (the keys :func:`tfmagic.graph.build_graph_model` reads for bodies).
    """
    from tfmagic.graph import function_attrs, lookup_function, python_name

    found = {}
    names = getattr(python_function, "__globals__", {})
    for op in graph.get_operations():
        if op.type not in CALL_OPS:
            continue
        for _, fn_name in function_attrs(op):
            callee = names.get(python_name(fn_name))
            inner = getattr(callee, "python_function", None)
            body = lookup_function(graph, fn_name) if inner is not None else None
            if body is not None:
                found.update({(fn_name, k): v for k, v in control_flow_names(body, inner).items()})
    return found


def _string_tuple(node) -> tuple[str, ...] | None:
    if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None


def _iterate_name(node) -> str:
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "iterate_names" and isinstance(value, ast.Constant):
                return str(value.value)
    return ""


def dataset_argument_names(graph, python_function) -> dict[str, str]:
    """The input placeholders of the arguments that are one tensor but not a ``tf.Tensor`` (a ``tf.data.Dataset``
    is one ``variant`` tensor), by the parameter's name (TensorFlow names the others' placeholders itself)."""
    import inspect

    import tensorflow as tf

    signature = getattr(graph, "structured_input_signature", None)
    try:
        names = list(inspect.signature(python_function).parameters)
    except (TypeError, ValueError):  # a builtin: no names to give
        return {}
    if not signature or len(signature[0]) > len(names):
        return {}
    found, index = {}, 0
    inputs = list(getattr(graph, "inputs", ()))
    for name, spec in zip(names, signature[0]):
        count = sum(isinstance(part, tf.TypeSpec) for part in tf.nest.flatten(spec, expand_composites=True))
        if count == 1 and not isinstance(spec, tf.TensorSpec) and index < len(inputs):
            found[inputs[index].op.name] = name
        index += count
    return found


def trace_labels(graph, function=None, cell: bool = False, readable: bool = True, autograph: bool = True
                 ) -> dict[str, str]:
    """The user's names in a traced graph, as every drawing of it labels them (the magics and the explorer):
    its outputs by what they become (a ``%%tfgraph`` cell's names and result, or the returned structure), and
    in the readable view the variables of loops and branches as AutoGraph names them, the calls' too.

    Args:
        graph: the trace's ``FuncGraph``.
        function: the ``tf.function`` it is a trace of (its Python function names the loops' variables).
        cell: whether it is a ``%%tfgraph`` cell's function.
        readable: the readable view (``--ops readable``).
        autograph: whether AutoGraph converted the function (``--no-autograph``: no loop variables to name).
    """
    labels = output_names(graph, cell=cell)
    python_function = getattr(function, "python_function", None)
    if not readable or python_function is None:
        return labels
    labels.update(dataset_argument_names(graph, python_function))
    if autograph and any(op.type in _LOOP_OPS + _IF_OPS for op in graph.get_operations()):
        labels.update(control_flow_names(graph, python_function))
    labels.update(called_control_flow_names(graph, python_function))
    return labels

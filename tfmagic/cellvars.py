"""The variables of a ``%%tfgraph`` cell: the ones it creates (once, eagerly) and what runs eagerly while it traces.

A plain ``tf.function`` refuses to create a ``tf.Variable`` on any call but its first; a cell that creates
one (directly, in a Keras layer, an optimizer, a module) is a cell like any other.  :class:`CellVariables`
is the variable creator every trace of the cell runs under: the first trace creates each variable once,
eagerly, and the traces after it get the same variables again, in creation order.  :class:`EagerEffects`
is the op callback that notes what ran eagerly while the cell traced (under ``tf.init_scope``) and keeps
the graph a failing trace had built.
"""

from __future__ import annotations

import tensorflow as tf

from tfmagic import diagnostics
from tfmagic.cell import CellCode, cell_graph
from tfmagic.leaving import graph_bound
from tfmagic.naming import held_variables
from tfmagic.opcallbacks import OpCallback
from tfmagic.vocabulary import CONTROL_FLOW_GRAPHS, VARIABLE_WRITES

#: The graphs of a graph ``if``'s branches and a graph loop's body (a variable made there is refused).


class CellVariables:
    """The variables a cell reads and creates.

    Args:
        captured: the ``tf.Variable``\\ s the cell reads from the notebook.
        objects: the captured objects that hold variables (layers, models, optimizers, modules).
    """

    def __init__(self, captured: list, objects: list):
        self.captured = list(captured)
        self.objects = objects
        self.created: list = []  # the variables the cell's traces created, in creation order (see create)
        self._next = 0  # which of them the trace running now asks for next
        self.effects = EagerEffects(None)

    def restart(self, effects: EagerEffects | None = None) -> None:
        """A new trace (or run) starts: it asks for the created variables from the first again."""
        self._next = 0
        if effects is not None:
            self.effects = effects

    def scope(self):
        """The variable creator scope a trace of the cell runs under (its graphs inherit it)."""
        return tf.variable_creator_scope(self.create)

    def made_anew(self) -> bool:
        """Whether a re-run of the cell would create variables again, as a plain cell's re-run does: the cell's
        own ``tf.Variable``\\ s and the layers, optimizers and modules it constructs, not the weights a captured
        layer (or optimizer, module) built on its first call and keeps (a plain re-run reuses those)."""
        if not self.created:
            return False
        kept = {id(v) for obj in self.objects for v in held_variables(obj)}
        return any(id(v) not in kept for v in self.created)

    def create(self, next_creator, **kwargs):
        """Every ``tf.Variable`` the cell makes while tracing (directly, in a Keras layer, an optimizer, a module).

        The first trace creates each one once, eagerly (under ``tf.init_scope``, initialised at once, so code
        that reads or assigns it while tracing sees its value); the traces TensorFlow makes after it get the
        same variables again, in creation order, where a plain ``tf.function`` would refuse to create them.  An
        initial value the graph computes (``tf.random.normal(...)``) is left to TensorFlow, which lifts its
        initializer out of the graph on the first call.  Inside a graph ``if`` or loop a variable would exist
        whether or not the branch runs: that is refused, with what to write instead.
        """
        index = self._next
        self._next += 1
        if index < len(self.created):
            return self.created[index]
        graph = tf.compat.v1.get_default_graph()
        if type(graph).__name__ in CONTROL_FLOW_GRAPHS:
            raise ValueError(
                "a tf.Variable is created inside a graph `if` or loop (its condition is a tensor): the variable "
                "would exist whether or not that branch runs; create it before the `if` or loop "
                "(v = tf.Variable(...)) and assign it inside (v.assign(...)), or make the condition a Python "
                "value")
        initial = kwargs.get("initial_value")
        if tf.is_tensor(initial) and tf.is_symbolic_tensor(initial):
            value = tf.get_static_value(initial)
            if value is None:  # computed by the graph: TensorFlow lifts its initializer out of it
                variable = next_creator(**kwargs)
                self.created.append(variable)
                return variable
            initial = value
        # The notebook's own creators (a distribution strategy's) still apply; tf.function's lifting does not.
        arguments = {**kwargs, "initial_value": initial, "experimental_enable_variable_lifting": False}
        with tf.init_scope(), self.effects.paused():  # its initialising assign is no trace-time effect of the cell's
            variable = next_creator(**arguments)
        self.created.append(variable)
        return variable

    def variable_for(self, unread, graph, values: dict):
        """The variable behind an assign's result inside the graph (``v.assign(...)`` returns a graph view of v)."""
        handle = getattr(unread, "handle", None)
        external = next((ext for ext, internal in graph.captures if internal is handle), None)
        if external is None:
            return None
        candidates = list(self.captured) + [v for v in values.values() if isinstance(v, tf.Variable)]
        candidates += self.created
        candidates += [v for obj in self.objects for v in held_variables(obj)]
        for variable in candidates:
            if isinstance(variable, tf.Variable) and not graph_bound(variable) and variable.handle is external:
                return variable
        return None


class EagerEffects(OpCallback):
    """An op callback: the variable updates that ran eagerly while the cell traced (under ``tf.init_scope``).

    Code under ``tf.init_scope`` runs while TensorFlow traces, once, and not when a later call reuses the
    graph, where a plain cell runs it every time: each is a finding at the cell's line that ran it.
    """


    def __init__(self, code: CellCode):
        self.code = code
        self.found: dict[int | None, str] = {}  # cell line -> the first op type that ran there
        self.graph = None  # the cell's graph of the latest trace (kept for a trace that fails)
        self._paused = 0

    def __call__(self, op_type, inputs, attrs, outputs, op_name=None, graph=None):
        if graph is not None:
            self.graph = cell_graph(graph) or self.graph
            return None
        if isinstance(op_type, bytes):  # an eager op's type comes as bytes
            op_type = op_type.decode()
        if self._paused or not op_type.startswith(VARIABLE_WRITES):
            return None
        from tensorflow.python.framework.func_graph import FuncGraph
        from tensorflow.python.util import tf_stack

        if not isinstance(tf.compat.v1.get_default_graph(), FuncGraph):  # a graph's own run, not a trace
            return None
        line = None
        for frame in reversed(tf_stack.extract_stack()):  # AutoGraph's lines mapped to the cell's
            if frame.filename == self.code.filename:
                line = self.code.cell_line(frame.lineno)
                break
        self.found.setdefault(line, op_type)
        return None

    def paused(self):
        effects = self

        class _Paused:
            def __enter__(self):
                effects._paused += 1

            def __exit__(self, *exc):
                effects._paused -= 1
                return False

        return _Paused()

    def findings(self) -> list:
        lines = self.code.source.splitlines()
        return [diagnostics.Finding(
            "init_scope", line, lines[line - 1] if line and 0 < line <= len(lines) else "",
            f"a variable update ({op}) ran eagerly while TensorFlow traced (under tf.init_scope): it ran once, "
            "now, and does not run when a later run reuses the graph, where a plain cell runs it every time",
            "update the variable in the graph (v.assign_add(...) outside tf.init_scope), or run this line in a "
            "plain cell") for line, op in self.found.items()]

"""The graph after Grappler, TensorFlow's graph optimiser, and what it changed, in plain words.

Before it runs a ``tf.function``'s graph, TensorFlow hands it to Grappler, which folds constant
expressions (``1. + 2.`` becomes ``3.``), prunes ops whose results are never used, removes identities
and simplifies arithmetic.  :func:`optimize` runs the same optimiser on a traced graph, and
:func:`describe_changes` says what became of each op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf


@dataclass
class Optimized:
    """A traced graph and Grappler's version of it.

    Attributes:
        graph: Grappler's graph, imported into a ``tf.Graph`` (``None`` if it could not be imported).
        before: op name -> type, in the traced graph.
        after: op name -> type, in the optimised graph.
        folded: ops replaced by a constant, with the ops folded into them.
        pruned: ops removed because nothing used their results.
        simplified: other ops removed on the way to the outputs (identities, arithmetic).
    """

    graph: object
    before: dict[str, str]
    after: dict[str, str]
    folded: dict[str, list[str]] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    simplified: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """``9 ops -> 4: add folded into a constant (from Const, Const_1); mul pruned (unused); ...``"""
        parts = []
        for name, sources in self.folded.items():
            origin = f" (from {', '.join(sources)})" if sources else ""
            parts.append(f"{name} ({self.before.get(name, '?')}) folded into a constant{origin}")
        if self.pruned:
            parts.append(f"{', '.join(self.pruned)} pruned: {'its result is' if len(self.pruned) == 1 else 'their results are'} never used")
        if self.simplified:
            parts.append(f"{', '.join(self.simplified)} simplified away")
        head = f"{len(self.before)} ops -> {len(self.after)}"
        return head + (": " + "; ".join(parts) if parts else ": Grappler changed nothing")


def optimize(func_graph) -> Optimized:
    """Run Grappler on a traced ``FuncGraph`` as TensorFlow would before running it."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer

    graph_def = func_graph.as_graph_def()
    meta = tf.compat.v1.train.export_meta_graph(graph_def=graph_def, graph=func_graph)
    outputs = [t.op.name for t in func_graph.outputs]
    meta.collection_def["train_op"].node_list.value.extend(outputs)
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.min_graph_nodes = -1  # optimise small graphs too
    optimized = tf_optimizer.OptimizeGraph(config, meta)
    result = Optimized(None, {n.name: n.op for n in graph_def.node}, {n.name: n.op for n in optimized.node})
    try:
        imported = tf.Graph()
        with imported.as_default():
            tf.graph_util.import_graph_def(optimized, name="")
        result.graph = imported
    except Exception:  # an op Python cannot import (rare): the summary still stands
        result.graph = None
    _classify(func_graph, result, outputs)
    return result


def _classify(func_graph, result: Optimized, outputs: list[str]) -> None:
    ops = {op.name: op for op in func_graph.get_operations()}
    from tfmagic.graph import closure

    needed = {op.name for op in closure([ops[name] for name in outputs if name in ops],
                                        lambda op: [t.op for t in op.inputs] + list(op.control_inputs))}
    folded_inputs: set[str] = set()
    for name, kind in result.after.items():
        before = result.before.get(name)
        if kind == "Const" and before is not None and before != "Const":
            sources = [t.op.name for t in ops[name].inputs] if name in ops else []
            gone = [s for s in sources if s not in result.after]
            result.folded[name] = gone
            folded_inputs.update(gone)
    for name in result.before:
        if name in result.after or name in folded_inputs:
            continue
        if name not in needed and result.before[name] != "NoOp":
            result.pruned.append(name)
        elif result.before[name] != "NoOp":
            result.simplified.append(name)

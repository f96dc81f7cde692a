"""TensorFlow's vocabulary as tfmagic reads it: op types, graph classes, name scopes and files, one table each.

Every other module reads these tables instead of spelling an op type or a path itself, so that teaching tfmagic a
new op is one line here:

- a control-flow op (a loop, a branch, a call): :data:`CONTROL_FLOW_BODIES` (its function attributes, drawn as
  bodies), and :data:`WHILE_OPS`, :data:`IF_OPS`, :data:`CASE_OPS` or :data:`CALL_OPS` for what it is (the
  readable view, the names of loop variables and the retrace diagnostics read those);
- an op that writes a variable: :data:`VARIABLE_WRITES` (by prefix); one that only reads: :data:`VARIABLE_READS`;
- what counts as the user's code in a traceback: :func:`is_user_file` and :data:`LIBRARY_FILE`.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from typing import Final

# ---------------------------------------------------------------------------
# Control flow

#: Op types whose function attributes are sub-graphs worth drawing, with the attributes' labels.
CONTROL_FLOW_BODIES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "While": (("cond", "cond"), ("body", "body")),
    "StatelessWhile": (("cond", "cond"), ("body", "body")),
    "If": (("then_branch", "then"), ("else_branch", "else")),
    "StatelessIf": (("then_branch", "then"), ("else_branch", "else")),
    "Case": (),  # its branches are a list attribute (``graph.py`` reads them)
    "StatelessCase": (),
    "PartitionedCall": (("f", "function"),),
    "StatefulPartitionedCall": (("f", "function"),),
    "ScanDataset": (("f", "body"),),  # AutoGraph's ``for x in dataset:`` (dataset_autograph.py): the loop's body
}

#: Loops: ``tf.while_loop``, AutoGraph's ``while`` and ``for`` over a tensor.
WHILE_OPS: Final = ("While", "StatelessWhile")

#: Two-way branches: ``tf.cond``, AutoGraph's ``if`` on a tensor.
IF_OPS: Final = ("If", "StatelessIf")

#: Many-way branches: ``tf.switch_case``.
CASE_OPS: Final = ("Case", "StatelessCase")

#: Call ops: they run a ``tf.function``'s graph (its Python name is the callee).
CALL_OPS: Final = ("PartitionedCall", "StatefulPartitionedCall")

#: A call op's name in a graph (``StatefulPartitionedCall_2``): the ops a call ran are named under it.
CALL_NAME: Final = re.compile(r"^(Stateful)?PartitionedCall(_\d+)?$")

#: Op types that run a function per element of a dataset: AutoGraph turns ``for x in ds:`` into a ``ScanDataset``
#: (the loop) read to the end by a ``ReduceDataset`` (which only hands the last state on; a ``break`` adds a
#: ``TakeWhileDataset`` between them).  A user's own ``ds.scan(...)`` is no loop (``graph.is_dataset_loop``).
DATASET_LOOPS: Final = ("ScanDataset",)
DATASET_LOOP_RUNNERS: Final = ("ReduceDataset", "TakeWhileDataset")

#: The ``FuncGraph`` classes of a branch and of a loop's condition and body (not a function of their own).
CONTROL_FLOW_GRAPHS: Final = frozenset({"CondBranchFuncGraph", "WhileCondFuncGraph", "WhileBodyFuncGraph"})

#: The name scope ``tf.cond`` puts a branch's ops under (``cond/``, ``cond_1/``).
COND_SCOPE: Final = re.compile(r"(^|/)cond(_\d+)?/")

# ---------------------------------------------------------------------------
# Variables

#: Op types that read a variable (their input is its handle).
VARIABLE_READS: Final = ("ReadVariableOp",)

#: Op type prefixes of the ops that write a variable (their first input is its handle): ``assign``, an optimizer's
#: ``ResourceApplyAdam``, ``scatter_update``.
VARIABLE_WRITES: Final = ("Assign", "ResourceApply", "ResourceScatter", "ResourceSparseApply",
                          "ResourceStridedSliceAssign")

#: The ops ``v.assign``, ``v.assign_add`` and ``v.assign_sub`` make.
ASSIGN_OPS: Final = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})

# ---------------------------------------------------------------------------
# Gradients

#: Name scope of the ops a GradientTape adds when it computes gradients in a graph.
BACKWARD_SCOPE: Final = "gradient_tape/"

#: Ops that stop gradients on purpose (``tf.stop_gradient``): the gradient path of a drawing and ``%%tape``'s
#: reasons both stop there.
STOP_OPS: Final = frozenset({"StopGradient", "PreventGradient"})

# ---------------------------------------------------------------------------
# Randomness (the Python functions a cell calls)

#: ``tf.random``'s functions whose draws depend on hidden state (a graph draws anew each call; a trace-time
#: NumPy or ``random`` draw is one value forever).
STATEFUL_RANDOM: Final = frozenset({"uniform", "normal", "truncated_normal", "shuffle", "categorical", "gamma",
                                    "poisson", "uniform_candidate_sampler", "log_uniform_candidate_sampler",
                                    "experimental_stateless"})

#: Python's own module of random draws.
RANDOM_MODULES: Final = frozenset({"random"})

#: The calls that set a global seed.
SEED_FUNCTIONS: Final = frozenset({"tf.random.set_seed", "tf.keras.utils.set_random_seed",
                                   "keras.utils.set_random_seed", "tf.compat.v1.set_random_seed",
                                   "tf.compat.v1.random.set_random_seed", "set_random_seed"})

# ---------------------------------------------------------------------------
# The user's code


def _library_dirs() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where tfmagic lives
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        paths.add(os.path.join(prefix, "lib"))
    return tuple(os.path.join(p, "") for p in paths if p)


#: Where Python's, the installed packages' and tfmagic's own code live.
LIBRARY_DIRS: Final = _library_dirs()

#: The file names of code a notebook runs: IPython's cells, tfmagic's generated cells, ``exec`` of a string.
USER_SOURCES: Final = ("<ipython-input", "<tfgraph-", "<tape-")


def is_user_file(filename: str) -> bool:
    """Whether a frame's file is the user's code (a cell, a script) rather than a library's (a Python traceback's
    frames: the error at the user's line)."""
    if "__autograph_generated_file" in filename:
        return False
    if filename.startswith("<"):
        return filename.startswith(USER_SOURCES) or filename == "<string>"
    return not os.path.abspath(filename).startswith(LIBRARY_DIRS)


#: Where library code lives, by path alone (an op's traceback, read thousands of times in a training step).
LIBRARY_FILE: Final = re.compile(r"[/\\](site-packages|dist-packages|tensorflow|keras|tfmagic)[/\\]")

#: Where TensorFlow's and tfmagic's own code lives (not Keras's ``backend/tensorflow``): a tape's gradient call is the
#: first frame outside it (Keras's ``train_step`` calls ``tape.gradient`` in ``fit``).
TENSORFLOW_FILE: Final = re.compile(r"[/\\](tensorflow[/\\](python|core|compiler|dtensor|tsl)|tfmagic)[/\\]")

#: TensorFlow's and Keras's own functions (Keras makes a train function per model): not the user's retraces.
FRAMEWORK_FILE: Final = re.compile(r"/(tensorflow|keras|tf_keras)/")

#: tfmagic's own code.
TFMAGIC_FILE: Final = re.compile(r"[/\\]tfmagic[/\\]")


def user_frame(frames, library: re.Pattern = LIBRARY_FILE) -> tuple[str, int] | None:
    """The innermost of ``frames`` (a traceback's ``FrameSummary``s, outermost first) outside ``library``, as
    ``(filename, line)``; ``None`` if every frame is the library's."""
    for frame in reversed(frames or ()):
        if not library.search(frame.filename) and not frame.filename.startswith("<frozen"):
            return frame.filename, frame.lineno
    return None

"""Findings: dtype mismatches and the trace-time pitfalls of ``tf.function``.

Each finding is a value (:class:`Finding`) naming the cell line, what happened
and the fix; the magics decide how to show it.  Covered, from the seed chapter's
rules for TensorFlow functions:

- dtype mismatches: TensorFlow never converts dtypes implicitly (``float32 + int32``
  fails), at trace time (``TypeError``/``ValueError``) and eagerly (``InvalidArgumentError``);
  a float64 operand usually comes from NumPy, which defaults to 64 bits;
- Python side effects that run only while tracing: ``print``, appending to a Python
  list, ``np.random``/``random`` draws, ``time.time()``;
- NumPy functions and ``sorted`` where a TensorFlow op was meant (run once, at trace time);
- a Python ``for`` over ``range(...)``, unrolled into copies of its body;
- a ``tf.Variable`` created on a call other than the first.

>>> [f.message for f in find_source_pitfalls("y = x * 2\\nprint(y)\\n")]
['print() runs only while TensorFlow traces the function: it printed now, and will not print on calls that reuse the graph']
>>> [f.message[:62] for f in find_source_pitfalls("if c:\\n    print(y)\\n")]
['print() runs only while TensorFlow traces the function (if thi']
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from tfmagic.vocabulary import (CALL_OPS, COND_SCOPE, IF_OPS, RANDOM_MODULES, SEED_FUNCTIONS,
                                STATEFUL_RANDOM)


@dataclass(frozen=True)
class Finding:
    """One diagnosis.

    Attributes:
        kind: ``dtype``, ``side_effect``, ``numpy``, ``unrolled_loop``, ``variable_creation``.
        line: the line it is about (of the cell's body, or of the function's source), if known.
        code: that line's source.
        message: what happened.
        fix: what to do instead.
        lines: every line it is about, when it is about several (see :func:`grouped`).
    """

    kind: str
    line: int | None
    code: str
    message: str
    fix: str = ""
    lines: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        if len(self.lines) > 1:
            where = f"lines {line_ranges(self.lines)}:\n  "
        else:
            where = f"line {self.line}: {self.code.strip()}\n  " if self.line else ""
        return f"{where}{self.message}" + (f"\n  fix: {self.fix}" if self.fix else "")


def grouped(findings: list[Finding]) -> list[Finding]:
    """One finding per kind of note: the same message and fix at several lines become one, listing the lines.

    >>> f = [Finding("side_effect", n, "print(x)", "print() runs while tracing", "tf.print") for n in (2, 4, 6, 7, 8)]
    >>> [g.text.splitlines()[0] for g in grouped(f + [Finding("numpy", 3, "np.sum(x)", "NumPy")])]
    ['lines 2, 4, 6-8:', 'line 3: np.sum(x)']
    """
    groups: dict[tuple, list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.kind, finding.message, finding.fix), []).append(finding)
    merged = []
    for same in groups.values():
        lines = tuple(sorted({f.line for f in same if f.line}))
        first = same[0]
        merged.append(first if len(lines) < 2 else Finding(first.kind, lines[0], first.code, first.message,
                                                           first.fix, lines))
    return merged


def line_ranges(lines) -> str:
    """``2, 4, 6-9`` for lines 2, 4, 6, 7, 8, 9.

    >>> line_ranges([2, 4, 6, 7, 8, 9])
    '2, 4, 6-9'
    """
    parts, start, previous = [], None, None
    for line in sorted(set(lines)):
        if previous is not None and line == previous + 1:
            previous = line
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = line
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# dtype mismatches

_DTYPE_WORDS = {"float": "float32", "double": "float64", "half": "float16", "int": "int32",
                "long": "int64", "bool": "bool", "string": "string"}

_DTYPE_PATTERNS = [
    # graph mode, from op construction
    re.compile(r"Input '(?P<arg2>\w+)' of '(?P<op>\w+)' Op has type (?P<got>\w+) that does not match "
               r"type (?P<want>\w+) of argument '(?P<arg1>\w+)'"),
    # math_ops' binary operators, both modes
    re.compile(r"`x` and `y` must have the same dtype, got tf\.(?P<want>\w+) != tf\.(?P<got>\w+)"),
    # eager kernels
    re.compile(r"cannot compute (?P<op>\w+) as input #(?P<index>\d+)\(zero-based\) was expected to be a "
               r"(?P<want>\w+) tensor but is a (?P<got>\w+) tensor"),
    # conversion of a tensor to another dtype
    re.compile(r"Tensor conversion requested dtype (?P<want>\w+) for Tensor with dtype (?P<got>\w+)"),
]


def _dtype_name(word: str) -> str:
    return _DTYPE_WORDS.get(word, word)


def explain_dtype_error(message: str, line: int | None = None, code: str = "",
                        operand_dtypes: dict[str, str] | None = None) -> Finding | None:
    """A :class:`Finding` for a dtype-mismatch error message, or ``None`` for any other error.

    Args:
        message: the exception's message.
        line: the user's line where it happened.
        code: that line's source.
        operand_dtypes: names used on that line and their dtypes (to name a NumPy float64 operand).

    >>> f = explain_dtype_error("cannot compute AddV2 as input #1(zero-based) was expected to be a "
    ...                         "float tensor but is a int32 tensor [Op:AddV2]", 1, "tf.constant(2.) + tf.constant(40)")
    >>> print(f.message)
    AddV2 got float32 and int32: TensorFlow never converts dtypes implicitly
    >>> print(f.fix)
    cast the int32 operand: tf.cast(..., tf.float32) (or write the integer literal as a float: 40 -> 40.0)
    >>> print(explain_dtype_error("cannot compute AddV2 as input #1(zero-based) was expected to be a "
    ...                           "int32 tensor but is a float tensor [Op:AddV2]", 1, "tf.constant(1) + tf.constant(2.0)").fix)
    cast the int32 operand: tf.cast(..., tf.float32) (or write the integer literal as a float: 1 -> 1.0)
    """
    for pattern in _DTYPE_PATTERNS:
        m = pattern.search(message)
        if m:
            break
    else:
        return None
    groups = m.groupdict()
    want, got = _dtype_name(groups["want"]), _dtype_name(groups["got"])
    op = groups.get("op") or _operator_op(code)
    text = f"{op + ' got' if op else 'an op got'} {want} and {got}: TensorFlow never converts dtypes implicitly"
    if want.startswith("int") and got.startswith(("float", "bfloat", "complex")):
        want, got = got, want  # casting the float to an integer would lose its fraction: cast the integer up
    fix = f"cast the {got} operand: tf.cast(..., tf.{want})"
    if "float64" in (want, got) and "float32" in (want, got):
        names = [n for n, d in (operand_dtypes or {}).items() if d == "float64"]
        source = f"{', '.join(names)} is float64" if names else "the float64 operand"
        text += (f"; {source}: NumPy makes float64 by default, TensorFlow float32")
        fix = ("make it float32 where it is created: tf.constant(array, dtype=tf.float32) or "
               "array.astype(np.float32), or tf.cast(..., tf.float32)")
    elif got.startswith("int") and want.startswith("float"):
        literal = re.search(r"(?<![\w.])\d+(?![\w.])", code)
        if literal:
            fix += f" (or write the integer literal as a float: {literal.group()} -> {literal.group()}.0)"
    return Finding("dtype", line, code, text, fix)


def _operator_op(code: str) -> str:
    for symbol, op in (("@", "MatMul"), ("+", "AddV2"), ("-", "Sub"), ("*", "Mul"), ("/", "RealDiv")):
        if symbol in code:
            return op
    return ""


def line_dtypes(code: str, namespace: dict) -> dict[str, str]:
    """The dtypes of the tensors and arrays that a line names (for the NumPy float64 hint)."""
    out = {}
    for name in re.findall(r"[A-Za-z_]\w*", code):
        value = namespace.get(name)
        dtype = getattr(value, "dtype", None)
        if dtype is not None:
            out[name] = getattr(dtype, "name", str(dtype))
    return out


# ---------------------------------------------------------------------------
# Trace-time pitfalls, from the source

_NUMPY_TO_TF = {
    "sum": "tf.reduce_sum", "mean": "tf.reduce_mean", "max": "tf.reduce_max", "min": "tf.reduce_min",
    "prod": "tf.reduce_prod", "exp": "tf.exp", "log": "tf.math.log", "sqrt": "tf.sqrt", "abs": "tf.abs",
    "dot": "tf.tensordot", "matmul": "tf.matmul", "square": "tf.square", "tanh": "tf.tanh",
    "maximum": "tf.maximum", "minimum": "tf.minimum", "argmax": "tf.argmax", "argmin": "tf.argmin",
    "sort": "tf.sort", "concatenate": "tf.concat", "stack": "tf.stack", "reshape": "tf.reshape",
    "transpose": "tf.transpose", "where": "tf.where", "clip": "tf.clip_by_value", "cumsum": "tf.cumsum",
    "std": "tf.math.reduce_std", "var": "tf.math.reduce_variance", "sin": "tf.sin", "cos": "tf.cos",
}
_IN_PLACE = {"extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem", "add", "discard",
             "sort", "reverse"}
_TIME_FUNCTIONS = {"time", "perf_counter", "monotonic", "process_time", "time_ns"}
_TF_ERRORS = {"OpError", "InvalidArgumentError", "ResourceExhaustedError", "OutOfRangeError", "NotFoundError",
              "FailedPreconditionError", "UnknownError", "InternalError", "AbortedError", "CancelledError",
              "UnimplementedError", "DataLossError", "UnavailableError", "DeadlineExceededError",
              "PermissionDeniedError", "UnauthenticatedError", "AlreadyExistsError"}


def _enclosing_blocks(tree: ast.AST) -> dict[int, str]:
    """id(node) -> ``"except"`` for nodes in an except branch, ``"block"`` for nodes in any other compound
    statement's body (a branch or loop that may not run while tracing); top-level nodes are absent."""
    out: dict[int, str] = {}
    # a function's own source (a user's tf.function): its body is the top level
    own = tree.body[0] if len(getattr(tree, "body", [])) == 1 and isinstance(
        tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) else None

    def mark(node, kind):
        for sub in ast.walk(node):
            if out.get(id(sub)) != "except":
                out[id(sub)] = kind

    for node in ast.walk(tree):
        if node is own:
            continue
        if isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith,
                             ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.Match)) \
                or type(node).__name__ == "TryStar":
            if isinstance(node, ast.Lambda):
                mark(node.body, "block")
                continue
            for block in ("body", "orelse"):
                for child in getattr(node, block, []) or []:
                    mark(child, "block")
            for case in getattr(node, "cases", []) or []:
                for child in case.body:
                    mark(child, "block")
        if isinstance(node, ast.ExceptHandler):
            for child in node.body:
                for sub in ast.walk(child):
                    out[id(sub)] = "except"
    return out


def _check_try(node, add) -> None:
    """A try whose except names TensorFlow's runtime errors (they happen when the graph runs, not here)."""
    caught = []
    for handler in node.handlers:
        if handler.type is None:
            continue
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            name = _dotted(t)
            if name.rpartition(".")[2] in _TF_ERRORS or ".errors." in f".{name}":
                caught.append(name)
    if caught:
        add(node, "try_except",
            f"try/except {', '.join(caught)} around graph code catches only what is raised while TensorFlow "
            "traces the cell (an assert on constants, say); an op's error when the graph runs happens after "
            "tracing, outside this try, and is not caught here (and while tracing a dtype mismatch is a TypeError)",
            "check values in the graph (tf.debugging.assert_*, tf.where, tf.cond), or run the try in a plain cell")


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _parsed(source: str, tree: ast.Module | None) -> ast.Module | None:
    """The source's tree: the one given (a cell's is parsed once: ``CellCode.tree``), else parsed now; ``None``
    where it does not parse."""
    if tree is not None:
        return tree
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def find_source_pitfalls(source: str, numpy_names: tuple[str, ...] = ("np", "numpy"),
                         local_names: frozenset[str] = frozenset(),
                         in_place: frozenset[str] = frozenset(), tree: ast.Module | None = None) -> list[Finding]:
    """Python code in a function's source that runs only while tracing.

    Args:
        source: the cell's (or function's) source.
        numpy_names: names NumPy is imported as.
        local_names: names bound inside the function (lists it makes itself are fine to append to).
        in_place: names of the notebook's lists, dicts and sets that the cell changes with ``+=`` and the like.

    Returns:
        The findings, in source order.
    """
    tree = _parsed(source, tree)
    if tree is None:
        return []
    lines = source.splitlines()
    bound = set(local_names) | {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                                for t in n.targets if isinstance(t, ast.Name)}
    findings: list[Finding] = []

    def add(node, kind, message, fix):
        code = lines[node.lineno - 1] if 0 < node.lineno <= len(lines) else ""
        findings.append(Finding(kind, node.lineno, code, message, fix))

    where = _enclosing_blocks(tree)
    for node in ast.walk(tree):
        _statement_pitfalls(node, add, bound, in_place)
        if isinstance(node, ast.Call):
            found = _call_pitfall(node, where.get(id(node)), bound, numpy_names)
            if found:
                add(node, *found)
    findings.sort(key=lambda f: f.line or 0)
    return findings


#: What a change of a notebook's list, dict or set in a cell does, said at its line.
_ONCE = ("changes {name} in Python, while tracing only: a re-run that reuses the graph does not change it again (a "
         "plain cell does, every run)")
_ONCE_FIX = "build a new value in the cell (it is written back), or change it in a plain cell"


def _statement_pitfalls(node: ast.AST, add, bound: set, in_place: frozenset) -> None:
    """A statement that runs only while tracing (``try``, ``match``, ``+=`` or ``del`` on a notebook's value)."""
    if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
        _check_try(node, add)
    if type(node).__name__ == "Match":
        add(node, "match", "AutoGraph does not convert a match statement: TensorFlow then traces the whole "
            "cell as written (its warning says so), so no if, for or while of the cell is converted: on a tensor "
            "they fail, on Python values they run while tracing", "write the match as if/elif")
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id in in_place:
        add(node, "side_effect", _ONCE.format(name=node.target.id), _ONCE_FIX)
    if isinstance(node, ast.Delete):
        for target in node.targets:
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                    and target.value.id not in bound:
                add(node, "side_effect", "del " + _ONCE.format(name=target.value.id), _ONCE_FIX)


def _call_pitfall(node: ast.Call, block: str | None, bound: set, numpy_names: tuple[str, ...]
                  ) -> tuple[str, str, str] | None:
    """``(kind, message, fix)`` for a call that runs only while tracing (``print``, a seed, NumPy, a clock, a
    stateful random op, a list's append), or ``None``; ``block`` is the block it is in (``except``, a branch)."""
    name = _dotted(node.func)
    head, _, last = name.rpartition(".")
    if name == "print":
        if block == "except":
            return ("side_effect",
                    "print() in this except branch runs only if the try block raised while TensorFlow traced the "
                    "function; an error raised when the graph runs never reaches it",
                    "tf.print(...) in the graph prints on every call; check values with tf.debugging.assert_*")
        if block:
            return ("side_effect",
                    "print() runs only while TensorFlow traces the function (if this line runs then), and not on "
                    "calls that reuse the graph", "tf.print(...) prints on every call")
        else:
            return ("side_effect",
                    "print() runs only while TensorFlow traces the function: it printed now, and will not print "
                    "on calls that reuse the graph", "tf.print(...) prints on every call")
    elif (last or head) in ("display", "clear_output", "update_display") and (
            not head or head.split(".")[-1] in ("display", "IPython")):
        return ("side_effect",
                f"{name}() runs only while TensorFlow traces the function (a tensor it shows is a symbolic one, "
                "with no value), not on calls that reuse the graph",
                "display in a plain cell after this one (the cell's names are written back); tf.print(...) prints "
                "on every call")
    elif name in SEED_FUNCTIONS or (last == "seed" and (head in RANDOM_MODULES or (
            head.split(".")[0] in numpy_names and head.endswith("random")))):
        return ("seed",
                f"{name}() runs only while TensorFlow traces the function: running the cell again reuses the "
                "graph and does not reseed, and the graph's random ops draw from streams of their own, so their "
                "values differ from the same code run eagerly",
                "set the seed in a plain cell before this one; for draws a graph repeats exactly, use stateless "
                "ops with a seed: tf.random.stateless_uniform(shape, seed=[1, 2])")
    elif (head == "tf.random" and last in STATEFUL_RANDOM) or name == "tf.nn.dropout":
        return ("random",
                f"{name}() is a stateful random op: in a graph it draws from the graph op's own random stream, "
                "so its values differ from the same code run eagerly (under the same seeds), and each run "
                "of the graph draws anew", "for values that match eager code, use a stateless op with a seed: "
                "tf.random.stateless_uniform(shape, seed=[1, 2]) (or pass in a tf.random.Generator)")
    elif isinstance(node.func, ast.Attribute) and node.func.attr == "shuffle" and not head.endswith("random") \
            and len(node.args) < 2 and not any(k.arg == "seed" for k in node.keywords):  # a dataset's
        return ("random",
                f"{name or 'Dataset.shuffle'}() has no seed: in a graph its order comes from the graph's own random "
                "streams, so under the same tf.random.set_seed it differs from the same code run eagerly",
                "give it a seed for an order that matches eager code: .shuffle(buffer_size, seed=42)")
    elif last == "append" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
            and node.func.value.id not in bound:
        return ("side_effect",
                f"{name}() appends to a Python list while tracing only: {node.func.value.id} grows once per "
                "trace, not once per call", "return the values, or collect them in a tf.TensorArray")
    elif last in _IN_PLACE and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
            and node.func.value.id not in bound and head.split(".")[0] not in numpy_names + ("tf",):
        return ("side_effect", f"{name}() " + _ONCE.format(name=node.func.value.id), _ONCE_FIX)
    elif (head.split(".")[0] in numpy_names and "random" in head.split(".")[1:]) or head in RANDOM_MODULES:
        return ("side_effect",
                f"{name}() draws its random number once, while tracing: every call of the graph reuses it",
                "tf.random.uniform / tf.random.normal draw anew on every call")
    elif head == "time" and last in _TIME_FUNCTIONS:
        return ("side_effect",
                f"{name}() is read once, while tracing: the graph holds that moment as a constant",
                "tf.timestamp() reads the clock on every call")
    elif head in numpy_names and last in _NUMPY_TO_TF:
        return ("numpy",
                f"{name}() runs in NumPy while tracing: on a tensor it fails, on Python values its result is "
                "frozen into the graph as a constant", f"{_NUMPY_TO_TF[last]}(...) runs in the graph")
    elif name == "sorted":
        return ("numpy",
                "sorted() runs in Python while tracing: its result is frozen into the graph",
                "tf.sort(...) sorts in the graph")
    return None


@dataclass
class TracedCode:
    """What the graph finders read: a cell's or function's source, its tree, and the graph a trace of it made (whose
    ops' tracebacks name lines of ``filename``, at ``line + line_offset``).

    Attributes:
        source: the cell's or function's source.
        graph: the traced graph.
        filename: the file name the source was compiled under.
        line_offset: source line + offset = line in that file.
        tree: the source already parsed (a cell's ``CellCode.tree``); parsed on first use otherwise.
    """

    source: str
    graph: Any
    filename: str
    line_offset: int = 0
    tree: ast.Module | None = None
    _ops_by_line: dict | None = field(default=None, repr=False)

    @property
    def parsed(self) -> ast.Module | None:
        """The source's tree (``None`` where it does not parse)."""
        if self.tree is None:
            self.tree = _parsed(self.source, None)
        return self.tree

    @property
    def lines(self) -> list[str]:
        return self.source.splitlines()

    def ops_by_line(self) -> dict[int, list]:
        """The graph's ops by the source line that made them (read once for every finder)."""
        if self._ops_by_line is None:
            self._ops_by_line = _ops_by_line(self.graph, self.filename, self.line_offset)
        return self._ops_by_line


def find_in_graph(traced: TracedCode) -> list[Finding]:
    """Every finder's findings about a trace: unrolled loops, pruned lines, converted builtins, cond gradients."""
    return [f for find in (find_unrolled_loops, find_pruned_lines, find_converted_builtins, find_cond_gradients)
            for f in find(traced)]


def find_unrolled_loops(traced: TracedCode) -> list[Finding]:
    """Python ``for ... in range(...)`` loops that tracing unrolled, with how many copies they made."""
    tree = traced.parsed
    if tree is None:
        return []
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.iter, ast.Call)
             and _dotted(n.iter.func) == "range"]
    if not loops:
        return []
    per_line: dict[tuple[int, str], int] = {}
    for line, ops in traced.ops_by_line().items():
        for op in ops:
            per_line[(line, op.type)] = per_line.get((line, op.type), 0) + 1
    lines = traced.lines
    findings = []
    for loop in loops:
        body = range(loop.body[0].lineno, loop.end_lineno + 1)
        counts = [(n, t) for (ln, t), n in per_line.items() if ln in body and t not in ("Const", "Identity")]
        if not counts:
            continue
        copies = max(n for n, _ in counts)
        total = sum(n for (ln, _), n in per_line.items() if ln in body)
        if copies < 2:
            continue
        findings.append(Finding(
            "unrolled_loop", loop.lineno, lines[loop.lineno - 1],
            f"this Python for loop over range() was unrolled while tracing: {copies} copies of its body "
            f"({total} ops) are in the graph",
            "for i in tf.range(...) makes one graph loop (a While op), whatever the count"))
    return findings


def explain_tape_reuse(message: str, line: int | None, code: str) -> Finding | None:
    """A non-persistent GradientTape asked for gradients twice, explained; ``None`` for other errors."""
    if "non-persistent GradientTape can only be used to compute one set of gradients" not in message:
        return None
    return Finding("tape_reuse", line, code,
                   "a GradientTape computes gradients once unless it is persistent",
                   "tf.GradientTape(persistent=True) (or %%tape --persistent), or one tape per gradient")


_KERAS_LOOP = re.compile(r"\b([A-Za-z_][\w.]*)\.(fit|evaluate|predict)\s*\(")


def explain_keras_loop(line: int | None, code: str, namespace: dict) -> Finding | None:
    """A Keras model's ``fit``/``evaluate``/``predict`` called in a graph cell (whatever it then raised),
    explained; ``None`` for other lines."""
    from tfmagic.naming import is_keras

    for match in _KERAS_LOOP.finditer(code):
        owner, _, attr = match.group(1).partition(".")
        value = namespace.get(owner)
        for part in attr.split(".") if attr else ():
            value = getattr(value, part, None)
        if is_keras(value, ("Model",)):
            call = f"{match.group(1)}.{match.group(2)}"
            return Finding(
                "keras_loop", line, code,
                f"{call}() runs Keras's own Python loop over the data (batches, epochs, callbacks) around a "
                "tf.function of its own, reading values as it goes: it cannot run inside a graph, and this cell "
                "runs as one",
                f"call {call}(...) in a plain cell (Keras already runs each step as a graph: %tfretrace lists it, "
                "%tfgraph draws it)")
    return None


def explain_variable_creation(message: str, line: int | None, code: str) -> Finding | None:
    """The ``tf.Variable``-on-a-later-call error, explained; ``None`` for other errors."""
    if "singleton tf.Variables created on the first call" not in message and \
            "tf.function only supports singleton" not in message:
        return None
    return Finding(
        "variable_creation", line, code,
        "a tf.Variable is created inside the function on a call other than the first (TensorFlow traces "
        "again after a first call that creates variables, so this line would make a new variable each time)",
        "create the variable once outside (in a plain cell) and update it in the function with "
        "v.assign(...) / v.assign_add(...)")




def find_cond_gradients(traced: TracedCode) -> list[Finding]:
    """An ``if`` on a tensor (a ``tf.cond``) in a cell that asks a tape for gradients: a gradient through the
    branch that did not run is zeros in a graph, where eager code, which records only the branch that ran,
    gives ``None``."""
    tree = traced.parsed
    if tree is None or not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in (
            "gradient", "jacobian", "batch_jacobian") for n in ast.walk(tree)):
        return []
    lines = traced.lines
    ifs = {n.lineno for n in ast.walk(tree) if isinstance(n, ast.If)}
    conds = sorted(line for line, ops in traced.ops_by_line().items()  # (a constant
                   if line in ifs and any(op.type in IF_OPS or COND_SCOPE.search(op.name)  # condition:
                                          for op in ops))  # the branch's call, in a cond scope)
    return [Finding("cond_gradient", line, lines[line - 1] if 0 < line <= len(lines) else "",
                    "an if on a tensor is a tf.cond in a graph, which records both branches: a gradient for a source "
                    "only the branch that did not run reads is zeros here, where a plain cell's is None",
                    "test for zeros (tf.reduce_all(g == 0)), not for None; or ask for the gradients in a plain cell")
            for line in conds]


def find_pruned_lines(traced: TracedCode) -> list[Finding]:
    """Expression statements whose ops nothing uses: TensorFlow prunes them, so they never run.

    A plain cell runs ``tf.gather(x, 10)`` and fails; in a graph an op whose output no output and no
    stateful op needs is pruned before the graph runs, so its error never happens.  A call of a concrete
    function with a tensor of the wrong dtype is said as such: a plain cell raises there at once.
    """
    tree = traced.parsed
    if tree is None:
        return []
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    statements = {n.lineno: n for n in ast.walk(tree)  # in a with block too (assert_raises), not the result
                  if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and n is not last}
    if not statements:
        return []
    per_line = {line: ops for line, ops in traced.ops_by_line().items() if line in statements}
    if not per_line:
        return []
    needed = _needed_ops(traced.graph)
    lines = traced.lines
    findings = []
    for line, ops in sorted(per_line.items()):
        work = [op for op in ops if op.type not in ("Const", "Identity", "NoOp", "Placeholder")]
        if work and not any(op in needed for op in work):
            code = lines[line - 1] if 0 < line <= len(lines) else ""
            mismatch = next((m for m in map(call_dtype_mismatch, work) if m), "")
            if mismatch:
                findings.append(Finding(
                    "pruned", line, code,
                    f"{mismatch}: a plain cell raises InvalidArgumentError here, at once; in the graph the call is "
                    "an op that nothing uses, so TensorFlow prunes it and nothing is raised",
                    "check eager behaviour (a call that must raise) in a plain cell, or pass the dtype the function "
                    "takes"))
                continue
            types = ", ".join(dict.fromkeys(op.type for op in work[:4]))
            findings.append(Finding(
                "pruned", line, code,
                f"nothing uses this line's result, so TensorFlow prunes its ops ({types}) before the graph runs: "
                "it does not run, and an error it would raise never happens",
                "bind the result and use it (or return it); checks that must run: tf.debugging.assert_*"))
    return findings


def op_line(op, filename: str, line_offset: int = 0) -> int | None:
    """The line of the source compiled as ``filename`` that made a graph op (its innermost frame there; AutoGraph's
    lines are mapped back to the source's), minus ``line_offset``; ``None`` when no frame is there."""
    for frame in reversed(op.traceback):
        if frame.filename == filename:
            return frame.lineno - line_offset
    return None


def _ops_by_line(graph, filename: str, line_offset: int) -> dict[int, list]:
    """The graph's ops by the cell line that made them."""
    per_line: dict[int, list] = {}
    for op in graph.get_operations():
        line = op_line(op, filename, line_offset)
        if line is not None:
            per_line.setdefault(line, []).append(op)
    return per_line




def call_dtype_mismatch(op) -> str:
    """``the call passes int32 where the function takes string`` for a function call op whose input's dtype is
    not the one its function takes (a concrete function called with the wrong dtype inside a graph: TensorFlow
    makes the op, and it fails only when it runs); else ``""``."""
    if op.type not in CALL_OPS:
        return ""
    try:  # Tin is what the call passes; the function's own signature is in the graph's library
        name = op.get_attr("f").name
        takes = [arg.type for arg in op.graph._get_function(name).cached_definition.signature.input_arg]
    except (AttributeError, ValueError):
        return ""
    for tensor, want in zip(op.inputs, takes):
        if want and tensor.dtype.base_dtype.as_datatype_enum != want:  # 0: a type the function leaves open
            from tensorflow import as_dtype

            from tfmagic.graph import python_name

            return (f"the call of {python_name(name)} (a concrete function) passes {tensor.dtype.name} where it takes "
                    f"{as_dtype(want).name}")
    return ""


def find_mismatched_calls(graph, code) -> list[Finding]:
    """Each call of a concrete function with a wrong dtype in a graph, at the cell's line (for a cell that failed
    while tracing because no error came where a plain cell has one: ``assert_raises`` around the call)."""
    findings = []
    lines = code.source.splitlines()
    for line, ops in sorted(_ops_by_line(graph, code.filename, 0).items()):
        mismatch = next((m for m in map(call_dtype_mismatch, ops) if m), "")
        line = code.cell_line(line)
        if mismatch:
            findings.append(Finding(
                "pruned", line, lines[line - 1] if 0 < line <= len(lines) else "",
                f"{mismatch}: a plain cell raises InvalidArgumentError here, at once; in a graph the call is only "
                "an op, which fails when it runs (or never, where nothing uses its result), so nothing was raised "
                "while tracing", "check eager behaviour (a call that must raise) in a plain cell"))
    return findings


def _needed_ops(graph) -> set:
    """The ops a graph's run executes: ancestors of its outputs and of its stateful ops."""
    roots = [t.op for t in getattr(graph, "outputs", []) if t is not None]
    roots += list(getattr(graph, "control_outputs", []) or [])
    roots += [op for op in graph.get_operations() if getattr(op.op_def, "is_stateful", False)]
    from tfmagic.graph import closure

    return closure(roots, lambda op: [t.op for t in op.inputs] + list(op.control_inputs))


_TENSOR_AS_BOOL = re.compile(r"(?i)symbolic `?tf\.Tensor`? as a Python `?bool`?|iterating over (a )?(symbolic )?"
                             r"`?tf\.Tensor`? is not allowed")

_GRAPH_ONLY = [
    (re.compile(r"object has no attribute 'numpy'|numpy\(\) is only (available|supported) (when|in) eager"),
     "{what}.numpy() needs a value, and inside a graph a tensor is symbolic: its value exists only when the graph runs",
     "use the tensor itself (TensorFlow ops take it), or call .numpy() in a plain cell after this one"),
    (re.compile(r"Cannot convert a symbolic (tf\.)?Tensor|You are passing .*SymbolicTensor.*to a NumPy call"
                r"|__array__\(\) .* symbolic"),
     "NumPy needs a tensor's value, and inside a graph a tensor is symbolic: its value exists only when the graph runs",
     "use the TensorFlow op (tf.reduce_sum, tf.math...), or the NumPy call in a plain cell"),
    (_TENSOR_AS_BOOL,
     "a tensor is used as a Python bool (or iterated) where AutoGraph does not convert it: it converts if, while "
     "and for statements of the cell, not a tensor's truth in an assert, or iteration inside comprehensions, "
     "lambdas or calls",
     "write it as a statement (if/for at the cell's level), or with tf.where / tf.cond / tf.map_fn; checks: "
     "tf.debugging.assert_*"),
    (re.compile(r"unsupported format string passed to \w*Tensor\.__format__"),
     "a format spec (f'{{t:.3f}}', '{{:.2%}}'.format(t)) needs a tensor's value, and inside a graph a tensor is symbolic: "
     "its value exists only when the graph runs",
     "tf.print('loss', t) prints the value on every run; tf.strings.format('{}', t) makes the text in the graph; "
     "or format in a plain cell after this one (f'{float(t):.3f}')"),
    (re.compile(r"argument must be a string, a bytes-like object or a (real )?number, not '(Symbolic)?Tensor'"
                r"|float\(\) argument must be .*'(Symbolic)?Tensor'|only supported in eager mode"),
     "this needs a value, and inside a graph a tensor (or dataset) is symbolic: values exist only when the graph "
     "runs, and this is eager-only",
     "keep it a tensor (tf.cast instead of int()/float()), or do this in a plain cell"),
]


_SHAPE_ERROR = re.compile(r"Shapes must be equal rank|Dimensions must be equal|Shape must be rank|"
                          r"are incompatible|with input shapes:")


def explain_graph_only(message: str, line: int | None, code: str, autograph: bool = True) -> Finding | None:
    """An error of eager-only code run as a graph (``x.numpy()``, NumPy on a tensor, a tensor as a bool), explained;
    ``autograph=False``: the function was traced with AutoGraph off (``--no-autograph``)."""
    if not autograph and _TENSOR_AS_BOOL.search(message):  # no statement of the cell is converted
        return Finding("graph_only", line, code,
                       "a tensor is used as a Python bool (or iterated), and AutoGraph is off (--no-autograph), so "
                       "no if, while or for of the cell is converted to graph control flow: Python runs it while "
                       "tracing, on a symbolic tensor",
                       "drop --no-autograph (AutoGraph converts the cell's if/while/for), or write it with tf.cond, "
                       "tf.while_loop or tf.where")
    wrapped = re.match(r"\s*(async\s+)?for\b.*?\bin\s+(enumerate|zip)\(", code)
    if wrapped and _TENSOR_AS_BOOL.search(message):  # AutoGraph converts the for, not Python's enumerate or zip
        name = wrapped.group(2)
        fix = ("for i in tf.range(tf.shape(t)[0]): then t[i] (a graph loop), or loop over "
               "tf.data.Dataset.from_tensor_slices(t).enumerate()" if name == "enumerate" else
               "for i in tf.range(tf.shape(a)[0]): then a[i], b[i] (a graph loop), or loop over "
               "tf.data.Dataset.zip((da, db)) of datasets")
        return Finding("graph_only", line, code,
                       f"{name}(...) of a tensor in a for: AutoGraph makes a graph loop of a for over a tensor or "
                       f"dataset, but Python's {name} iterates the tensor itself, and inside a graph a tensor is "
                       "symbolic", fix)
    for pattern, text, fix in _GRAPH_ONLY:
        if pattern.search(message):
            what = ""
            m = re.search(r"([A-Za-z_][\w.\[\]]*)\.numpy\(\)", code)
            if m:
                what = m.group(1)
            return Finding("graph_only", line, code, text.format(what=what or "a tensor's "), fix)
    if _SHAPE_ERROR.search(message) and "[Op:" not in message:
        core = message.split("\n")[0].split(" for '{{node")[0].strip()
        return Finding("shape", line, code,
                       f"{core}: TensorFlow checks shapes while tracing, so a graph fails here with a ValueError, "
                       "where eager code raises InvalidArgumentError when the op runs",
                       "make the shapes agree (tf.reshape, tf.expand_dims, or broadcasting shapes)")
    return None


def find_converted_builtins(traced: TracedCode) -> list[Finding]:
    """``int(t)`` / ``float(t)`` / ``bool(t)`` of a tensor: AutoGraph makes it a ``tf.cast``, so the name holds a
    tensor where a plain cell holds a Python number.  A ``Cast`` op made on the call's line tells that it got a tensor.
    """
    tree = traced.parsed
    if tree is None:
        return []
    calls = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("int", "float", "bool"):
            calls.setdefault(node.lineno, node.func.id)
    if not calls:
        return []
    cast_lines = {line for line, ops in traced.ops_by_line().items()
                  if any(op.type == "Cast" for op in ops)}
    lines = traced.lines
    return [Finding("converted_builtin", line, lines[line - 1] if 0 < line <= len(lines) else "",
                    f"{name}() of a tensor is a tf.cast in a graph (AutoGraph converts it): the result is a tensor, "
                    f"where a plain cell gets a Python {name}",
                    f"for a Python {name}, call {name}(t) in a plain cell; in the graph, tf.cast(t, ...) says what "
                    "happens")
            for line, name in sorted(calls.items()) if line in cast_lines]

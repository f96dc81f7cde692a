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
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One diagnosis.

    Attributes:
        kind: ``dtype``, ``side_effect``, ``numpy``, ``unrolled_loop``, ``variable_creation``.
        line: the line it is about (of the cell's body, or of the function's source), if known.
        code: that line's source.
        message: what happened.
        fix: what to do instead.
    """

    kind: str
    line: int | None
    code: str
    message: str
    fix: str = ""

    @property
    def text(self) -> str:
        where = f"line {self.line}: {self.code.strip()}\n  " if self.line else ""
        return f"{where}{self.message}" + (f"\n  fix: {self.fix}" if self.fix else "")


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

_RANDOM_MODULES = {"random"}
_NUMPY_TO_TF = {
    "sum": "tf.reduce_sum", "mean": "tf.reduce_mean", "max": "tf.reduce_max", "min": "tf.reduce_min",
    "prod": "tf.reduce_prod", "exp": "tf.exp", "log": "tf.math.log", "sqrt": "tf.sqrt", "abs": "tf.abs",
    "dot": "tf.tensordot", "matmul": "tf.matmul", "square": "tf.square", "tanh": "tf.tanh",
    "maximum": "tf.maximum", "minimum": "tf.minimum", "argmax": "tf.argmax", "argmin": "tf.argmin",
    "sort": "tf.sort", "concatenate": "tf.concat", "stack": "tf.stack", "reshape": "tf.reshape",
    "transpose": "tf.transpose", "where": "tf.where", "clip": "tf.clip_by_value", "cumsum": "tf.cumsum",
    "std": "tf.math.reduce_std", "var": "tf.math.reduce_variance", "sin": "tf.sin", "cos": "tf.cos",
}
_TIME_FUNCTIONS = {"time", "perf_counter", "monotonic", "process_time", "time_ns"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def find_source_pitfalls(source: str, numpy_names: tuple[str, ...] = ("np", "numpy"),
                         local_names: frozenset[str] = frozenset()) -> list[Finding]:
    """Python code in a function's source that runs only while tracing.

    Args:
        source: the cell's (or function's) source.
        numpy_names: names NumPy is imported as.
        local_names: names bound inside the function (lists it makes itself are fine to append to).

    Returns:
        The findings, in source order.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    bound = set(local_names) | {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                                for t in n.targets if isinstance(t, ast.Name)}
    findings: list[Finding] = []

    def add(node, kind, message, fix):
        code = lines[node.lineno - 1] if 0 < node.lineno <= len(lines) else ""
        findings.append(Finding(kind, node.lineno, code, message, fix))

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, last = name.rpartition(".")
        if name == "print":
            add(node, "side_effect",
                "print() runs only while TensorFlow traces the function: it printed now, and will not print "
                "on calls that reuse the graph", "tf.print(...) prints on every call")
        elif last == "append" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id not in bound:
            add(node, "side_effect",
                f"{name}() appends to a Python list while tracing only: {node.func.value.id} grows once per "
                "trace, not once per call", "return the values, or collect them in a tf.TensorArray")
        elif (head.split(".")[0] in numpy_names and "random" in head.split(".")[1:]) or head in _RANDOM_MODULES:
            add(node, "side_effect",
                f"{name}() draws its random number once, while tracing: every call of the graph reuses it",
                "tf.random.uniform / tf.random.normal draw anew on every call")
        elif head == "time" and last in _TIME_FUNCTIONS:
            add(node, "side_effect",
                f"{name}() is read once, while tracing: the graph holds that moment as a constant",
                "tf.timestamp() reads the clock on every call")
        elif head in numpy_names and last in _NUMPY_TO_TF:
            add(node, "numpy",
                f"{name}() runs in NumPy while tracing: on a tensor it fails, on Python values its result is "
                "frozen into the graph as a constant", f"{_NUMPY_TO_TF[last]}(...) runs in the graph")
        elif name == "sorted":
            add(node, "numpy",
                "sorted() runs in Python while tracing: its result is frozen into the graph",
                "tf.sort(...) sorts in the graph")
    findings.sort(key=lambda f: f.line or 0)
    return findings


def find_unrolled_loops(source: str, graph, filename: str, line_offset: int) -> list[Finding]:
    """Python ``for ... in range(...)`` loops that tracing unrolled, with how many copies they made.

    Args:
        source: the cell's or function's source.
        graph: the traced graph (its ops' tracebacks name the lines that made them).
        filename: the file name the function's source was compiled under.
        line_offset: source line + offset = line in that file.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.iter, ast.Call)
             and _dotted(n.iter.func) == "range"]
    if not loops:
        return []
    per_line: dict[tuple[int, str], int] = {}
    for op in graph.get_operations():
        for frame in reversed(op.traceback):
            if frame.filename == filename:
                key = (frame.lineno - line_offset, op.type)
                per_line[key] = per_line.get(key, 0) + 1
                break
    lines = source.splitlines()
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

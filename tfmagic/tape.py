"""Run a cell under ``tf.GradientTape`` and differentiate its target.

:func:`run_tape` executes the cell in the notebook's namespace as a plain cell
would (so its values are the plain cell's), under a tape, then differentiates
the target (a tensor, or a list, tuple or dict of them) with respect to the
sources: the variables the tape watched and the names given.  Why a gradient
is ``None`` or not finite is ``gradients.py``'s job.

If the cell fails, the namespace is restored to what it was before the cell
(variables the cell had assigned cannot be rolled back by TensorFlow).
"""

from __future__ import annotations

import ast
import hashlib
import linecache
from typing import Any

import tensorflow as tf

from tfmagic import tracebacks
from tfmagic.cell import assigned_names
from tfmagic.errors import CellSourceError, OptionError, TfMagicError, cell_syntax_error
from tfmagic.gradients import (NoGradientError, NonFiniteRecorder, SourceGradient, TapeCode, TapeRun, explain_nones,
                               no_gradient, trace_gradient_graph)
from tfmagic.requests import DrawOptions, TapeOptions

#: The name under which the running tape is visible to the inserted ``watch`` calls (removed afterwards).
TAPE_NAME = "_tfmagic_tape"

def _prepare(source: str, filename: str, watch: tuple[str, ...], transform_ast=None):
    """Parse the cell (then the shell's AST transformers, as a plain cell's run); watch calls go in after each
    top-level binding of a watched name."""
    try:
        tree = ast.parse(source, filename=filename, mode="exec")
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise cell_syntax_error(e, source, "%%tape") from None
    if transform_ast is not None:
        tree = transform_ast(tree)
    if not tree.body:
        raise CellSourceError("the cell is empty: write the code to differentiate below %%tape")
    body = []
    for stmt in tree.body:
        body.append(stmt)
        bound = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for name in watch:
            if name in bound and not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
                call = ast.parse(f"{TAPE_NAME}.watch({name})").body[0]
                body.append(ast.copy_location(call, stmt))
                ast.fix_missing_locations(body[-1])
    last = None
    if isinstance(body[-1], ast.Expr):
        last = body.pop()
    module = ast.Module(body=body, type_ignores=[])
    exec_code = compile(module, filename, "exec", dont_inherit=True)
    eval_code = compile(ast.Expression(last.value), filename, "eval", dont_inherit=True) if last else None
    return tree, exec_code, eval_code


def _restore(namespace: dict, snapshot: dict) -> None:
    """Put every name back as it was (the objects themselves are not rolled back)."""
    for key in [k for k in namespace if k not in snapshot]:
        del namespace[key]
    for key, value in snapshot.items():
        if namespace.get(key, snapshot) is not value:
            namespace[key] = value


def run_tape(source: str, namespace: dict, options: TapeOptions = TapeOptions(),
             history: list[str] | tuple[str, ...] = (), transform_ast=None) -> TapeRun:
    """Run ``source`` in ``namespace`` under a GradientTape and differentiate the target.

    Args:
        source: the cell's Python source.
        namespace: the notebook's namespace: the cell runs in it, as a plain cell.
        options: the target, sources and what to compute; with ``options.draw``, the gradient graph is traced too
            (``run.graph``, for :func:`gradient_drawing`).
        history: the cells run so far (IPython's ``In``): a variable is named by an assignment of the
            user's rather than by a leftover loop variable (``for variable in model.variables:``).
        transform_ast: the shell's ``transform_ast`` (its AST transformers), applied as to a plain cell.

    Returns:
        The :class:`TapeRun`.

    Raises:
        SyntaxError: the cell does not compile.
        CellSourceError: the cell is empty.
        OptionError: a target or source that is missing or not a tensor (the namespace is restored).
        Exception: what the cell raised, with a traceback of its lines (the namespace is restored).
    """
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    code = TapeCode(source, f"<tape-{digest}>")
    linecache.cache[code.filename] = (len(source), None, source.splitlines(True), code.filename)
    tree, exec_code, eval_code = _prepare(source, code.filename, options.watch, transform_ast)
    assigned = set(assigned_names(tree.body))
    for name in list(options.watch) + [n for n in options.wrt or () if n.isidentifier()]:
        if name not in namespace and name not in assigned:
            flag = "--watch" if name in options.watch else "--wrt"
            raise OptionError(f"{flag} {name}: no such name in the namespace, and the cell does not assign it")
    snapshot = dict(namespace)
    recorder = NonFiniteRecorder(code.filename)
    several = options.jacobian or options.hessian
    try:
        with recorder:
            run = _differentiate(code, exec_code, eval_code, namespace, options, recorder, several, snapshot,
                                 history)
    except (OptionError, NoGradientError, tf.errors.InvalidArgumentError) as e:
        _restore(namespace, snapshot)
        if isinstance(e, (OptionError, NoGradientError)):
            raise
        raise tracebacks.for_cell(e, code, snapshot, phase="eager") from None
    except _CellFailed as failed:
        _restore(namespace, snapshot)
        assigned = _assigned_before(tree, failed.error, code)
        raise tracebacks.for_cell(failed.error, code, snapshot, phase="eager", assigned=assigned) from None
    except BaseException:  # KeyboardInterrupt and the like: still leave the names as they were
        _restore(namespace, snapshot)
        raise
    finally:
        namespace.pop(TAPE_NAME, None)
    if any(not s.finite for s in run.sources):
        run.nonfinite = recorder.first
    explain_nones(run, code, snapshot, namespace, options)
    if options.unconnected_zero:  # as tape.gradient(..., unconnected_gradients=ZERO) gives them
        for source in run.sources:
            if source.gradient is None:
                source.gradient = tf.zeros_like(source.value)
                source.cause = source.cause and f"zeros for a disconnected source (--unconnected zero): {source.cause}"
        run.gradients = {s.name: s.gradient for s in run.sources}
    if options.draw is not None:
        run.graph = trace_gradient_graph(code, snapshot, options, run)
    return run


_ASSIGN_METHODS = ("assign", "assign_add", "assign_sub", "scatter_update", "scatter_add", "scatter_sub",
                   "scatter_nd_update", "scatter_nd_add", "scatter_nd_sub")


def _assigned_before(tree: ast.Module, error: BaseException, code: TapeCode) -> list[str]:
    """Variables the cell's lines assigned (``v.assign...``) before the line that failed."""
    _, frames, _, _ = tracebacks.cell_frames(error, code)
    failed = next((f.lineno for f in frames if f.filename is None), None)
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _ASSIGN_METHODS \
                and isinstance(node.func.value, ast.Name) and (failed is None or node.lineno < failed):
            names[node.func.value.id] = None
    return list(names)


class _CellFailed(Exception):
    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def _differentiate(code, exec_code, eval_code, namespace, options, recorder, several, before, history=()) -> TapeRun:
    persistent = options.persistent or several
    auto = options.watch_accessed_variables
    outer = tf.GradientTape(persistent=True, watch_accessed_variables=auto) if options.hessian else None
    if outer is not None:
        outer.__enter__()
    try:
        with tf.GradientTape(persistent=persistent, watch_accessed_variables=auto) as tape:
            namespace[TAPE_NAME] = tape
            for name in options.watch:
                if name in namespace:
                    tape.watch(namespace[name])
                    if outer is not None:
                        outer.watch(namespace[name])
            try:
                exec(exec_code, namespace)
                result = eval(eval_code, namespace) if eval_code is not None else None
            except Exception as e:  # the user's code failed
                raise _CellFailed(e) from e
            target_name, target = _target(options.target, result, namespace, last_expression(code.source))
        names, values = _sources(options, tape, namespace, before, history)
        watched = frozenset(id(v) for v in tape.watched_variables())
        recorder.phase = "backward"
        try:  # None where disconnected, even with --unconnected zero: run_tape explains them, then fills in zeros
            gradients = tape.gradient(target, values, unconnected_gradients=tf.UnconnectedGradients.NONE)
        except LookupError as e:  # an op with no registered gradient
            raise no_gradient(e, recorder) from None
    finally:
        if outer is not None:
            outer.__exit__(None, None, None)
    hessians = {}
    if outer is not None:  # the gradients were recorded by the outer tape: differentiate them again
        for name_i, g in zip(names, gradients):
            # None where nested plain tapes give None: a first derivative that is None, or that does not
            # depend on the second source (outer_tape.gradient(inner_gradient, sources) is None there)
            if g is not None:
                second = outer.jacobian(g, values, unconnected_gradients=options.unconnected)
            elif options.unconnected_zero:  # the zero gradient's own jacobian: zeros, as the plain tapes give
                second = [tf.zeros(list(values[names.index(name_i)].shape) + list(v.shape), v.dtype) for v in values]
            else:
                second = [None] * len(values)
            for name_j, h in zip(names, second):
                hessians[(name_i, name_j)] = h
    jacobians = {}
    if options.jacobian:
        if not tf.is_tensor(target):
            raise OptionError(f"--jacobian: the target ({target_name}) is a {type(target).__name__}: a jacobian "
                              "is of one tensor; name one (%%tape z1 --jacobian)")
        for name, jac in zip(names, tape.jacobian(target, values, unconnected_gradients=options.unconnected)):
            jacobians[name] = jac
    sources = [SourceGradient(n, v, g) for n, v, g in zip(names, values, gradients)]
    return TapeRun(target_name, target, sources, {s.name: s.gradient for s in sources}, jacobians, hessians,
                   result=result, has_result=eval_code is not None, watched=watched)


def last_expression(source: str, longest: int = 24) -> str:
    """The cell's last expression as written (``loss``, ``z``), where it is short; else ``""``.

    >>> last_expression("loss = x ** 2\\nloss"), last_expression("y = 1")
    ('loss', '')
    """
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return ""
    text = ast.unparse(body[-1].value) if body and isinstance(body[-1], ast.Expr) else ""
    return text if len(text) <= longest else ""


def _target(expression: str | None, result, namespace, last: str = "") -> tuple[str, Any]:
    if expression is None:
        if result is None:
            raise OptionError("no target: end the cell with the expression to differentiate, or name it "
                              "(%%tape loss)")
        name, value = last or "the cell's last expression", result
    else:
        try:
            value = eval(expression, namespace)  # noqa: S307 - the user's own expression, inside the tape
        except Exception as e:
            raise OptionError(f"target {expression!r}: {type(e).__name__}: {e}") from e
        name = expression
    if isinstance(value, tf.Variable):
        value = tf.convert_to_tensor(value)
    what = name if expression is None and not last else repr(name)
    if isinstance(value, (list, tuple, dict)) and value:  # tape.gradient sums the gradients of nested targets
        try:
            leaves = tf.nest.flatten(value)
        except (TypeError, ValueError):
            leaves = [None]
        bad = next((v for v in leaves if not tf.is_tensor(v)), None) if leaves else [None]
        if bad is None:
            return name, tf.nest.map_structure(
                lambda v: tf.convert_to_tensor(v) if isinstance(v, tf.Variable) else v, value)
        raise OptionError(f"the target ({what}) holds a {type(bad).__name__}, not a tensor: the tape "
                          "differentiates tensors (or lists, tuples and dicts of tensors) only")
    if not tf.is_tensor(value):
        raise OptionError(f"the target ({what}) is a {type(value).__name__}, not a tensor: the tape "
                          "differentiates tensors (or lists, tuples and dicts of tensors) only")
    return name, value


def _sources(options: TapeOptions, tape, namespace, before: dict, history=()) -> tuple[list[str], list[Any]]:
    if options.wrt:
        names = list(options.wrt)
        values = []
        for name in names:
            try:
                values.append(eval(name, namespace))  # noqa: S307 - the user's own expression
            except Exception as e:
                raise OptionError(f"--wrt {name}: {type(e).__name__}: {e}") from e
        return names, values
    from tfmagic.naming import VariableNames, tf_variable

    known = dict(namespace)
    for key, value in before.items():  # a variable the cell rebound (a = a * 2) keeps its name
        if tf_variable(value) is not None and tf_variable(known.get(key)) is None:
            known[key] = value
    naming = VariableNames(known, history)
    names, values = [], []
    for variable in tape.watched_variables():
        name = naming.name_of(variable, variable.name.split(":")[0])
        while name in names:  # two unnamed variables: never one key for two gradients
            name += "'"
        names.append(name)
        values.append(variable)
    for name in options.watch:
        if name in namespace and name not in names:
            names.append(name)
            values.append(namespace[name])
    if not names:
        raise OptionError("no source: the cell reads no tf.Variable; name the sources (--wrt a,b) and watch "
                          "constants (--watch a,b)")
    return names, values


# ---------------------------------------------------------------------------
# Why is a gradient None?


def split_target(line: str) -> tuple[str, str]:
    """``%%tape``'s line as ``(target, options)``: the target is the text before the first option, as typed.

    Option parsing splits words and drops quotes (``d["loss"]`` would become ``d[loss]``), so the target,
    an expression, is cut off the line first: up to the first `` -x``/`` --x`` outside brackets and quotes.

    >>> split_target('d["loss"] --wrt a,b')
    ('d["loss"]', '--wrt a,b')
    >>> split_target("[z1, z2, z3]")
    ('[z1, z2, z3]', '')
    >>> split_target("--hessian")
    ('', '--hessian')
    """
    depth, quote = 0, ""
    for i, char in enumerate(line):
        if quote:
            if char == quote and line[i - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "-" and depth == 0 and (i == 0 or line[i - 1].isspace()) and \
                i + 1 < len(line) and (line[i + 1].isalpha() or line[i + 1] == "-"):
            return line[:i].strip(), line[i:].strip()
    return line.strip(), ""


def gradient_drawing(run: TapeRun, source: str, draw: DrawOptions, variable_names: dict):
    """``--show graph`` / ``-o FILE``: the gradient graph drawn, the path from each source to the target marked
    (``graph.mark_gradient_path``): a ``reports.GraphReport``, or a ``reports.Notice`` saying why it is not drawn
    (the table stands)."""
    from tfmagic.graph import build_graph_model, mark_gradient_path
    from tfmagic.render import draw_model
    from tfmagic.reports import Notice

    if run.graph is None:
        return Notice("%%tape: the gradient graph could not be drawn: the cell does not trace as a tf.function "
                      "(the table above stands)", level="warning")
    graph = run.graph.graph
    inputs = {t.op.name: name for t, name in zip(graph.inputs, run.graph.params)}  # call_args_0 -> x
    model = build_graph_model(graph, "gradient", labels=inputs, variable_names=variable_names)
    outputs = [t.op.name for t in graph.outputs if t is not None]
    gradients = dict(zip(run.graph.order, outputs)) if len(outputs) == len(run.graph.order) else {}
    target = run.target_name if not run.target_name.startswith("the cell") else last_expression(source) or "target"
    mark_gradient_path(model, run.graph.target, run.graph.sources, run.graph.status, gradients, target)
    try:
        report, _ = draw_model(model, f"%%tape: gradient of {run.target_name}", draw, gradient=True)
    except (TfMagicError, OSError) as e:
        return Notice(f"%%tape: the drawing failed: {e}", level="warning")
    return report

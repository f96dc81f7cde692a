"""Cell source -> the source of a function that AutoGraph can convert.

A ``%%tfgraph`` cell becomes the body of a Python function::

    def _tfgraph_cell(x, n):          # names the cell reads before it binds them
        global seen                   # captured names the cell binds (else: pass)
        <the cell, indented>          # line k of the cell is line k + 2 here
        return _tfmagic_return(locals(), (y, z), _tfmagic_result)

The generated source is registered in :mod:`linecache` under a file name of its
own, so AutoGraph (which reads source through :mod:`inspect`) can convert it and
tracebacks can show the cell's lines.  Nothing here imports TensorFlow or
IPython: this is pure source analysis.

>>> code = analyze_cell("y = x * 2\\ny + 1\\n")
>>> code.candidates, code.definite, code.has_result
(('x',), ('y',), True)
>>> print(code.function_source(("x",)))
def _tfgraph_cell(x):
    _tfmagic_start()
    y = x * 2
    _tfmagic_result = (y + 1)
    return _tfmagic_return(None, (y,), _tfmagic_result)
<BLANKLINE>
"""

from __future__ import annotations

import ast
import hashlib
import io
import linecache
import symtable
import tokenize
from dataclasses import dataclass, field

from tfmagic.errors import CellSourceError, cell_syntax_error

FUNCTION_NAME = "_tfgraph_cell"
RESULT_NAME = "_tfmagic_result"
RETURN_HELPER = "_tfmagic_return"
#: Wraps the iterable of each top-level ``for`` loop: it tells, while tracing, a graph loop from a Python one.
LOOP_HELPER = "_tfmagic_loop"
#: Follows the statements in a branch or loop body that bind names (the last of each run of them):
#: ``_tfmagic_bound(LINE, locals())`` tells, while tracing, what the body bound (AutoGraph keeps a name bound
#: there only when the cell reads it after).
BOUND_HELPER = "_tfmagic_bound"
#: The generated function's first call: a trace starts (``collect.TraceCollector.start``).
START_HELPER = "_tfmagic_start"
#: Line k of the cell is line ``k + LINE_OFFSET`` of the generated source.
LINE_OFFSET = 2
_INDENT = "    "


def cell_graph(graph):
    """The cell's own graph (its ``tf.function``'s, named after :data:`FUNCTION_NAME`) that ``graph`` is, or is a
    branch's or loop body's graph inside; ``None`` for any other graph (a ``tf.function`` the cell calls)."""
    while graph is not None and not getattr(graph, "name", "").startswith(FUNCTION_NAME):
        graph = getattr(graph, "outer_graph", None)
    return graph


@dataclass(frozen=True)
class CellCode:
    """What a cell reads, binds and returns, and the source of its function.

    Attributes:
        source: the cell's Python source (after IPython's input transforms).
        filename: the name the generated source is registered under in linecache.
        candidates: names the cell may read before binding them, in order of
            first appearance; those present in the namespace become inputs.
        assigned: every name the cell binds at its top level.
        definite: the names certainly bound when the cell ends (returned explicitly).
        deleted: names the cell deletes with ``del NAME`` at its top level.
        mutated: names whose objects the cell may change in place (``seen.append(x)``, ``d[k] = v``,
            ``items += [4]``): a list, dict or set passed as an argument, TensorFlow would refuse the change,
            so those are captured.
        has_result: whether the cell ends with an expression (its displayed result).
        quiet: whether that expression ends with ``;`` (no display, as IPython does).
        tree: the cell's parsed source, parsed once and shared by everything that reads it.
    """

    source: str
    filename: str
    candidates: tuple[str, ...]
    assigned: tuple[str, ...]
    definite: tuple[str, ...]
    deleted: tuple[str, ...]
    mutated: frozenset[str]
    has_result: bool
    quiet: bool
    _body: str
    magic: str = "%%tfgraph"
    loop_bound: dict = None  # name -> line of the top-level loop that binds it (and nothing else binds it)
    for_loops: tuple = ()  # (iterable, names its target and body bind) of each top-level for loop
    loop_targets: tuple = ()  # (line, target) of each top-level for loop: its iterable goes through LOOP_HELPER
    tree: ast.Module | None = field(default=None, compare=False, repr=False)

    def function_source(self, params: tuple[str, ...], global_names: tuple[str, ...] = (),
                        forced: tuple[str, ...] = ()) -> str:
        """The generated function's source.

        Args:
            params: its parameters (the cell's inputs that are values).
            global_names: captured names the cell binds: declared ``global``, so the cell reads the captured
                object, changes it in place (``seen += [y]``) and rebinds it as a plain cell does.
            forced: names bound in Python loops, returned explicitly (AutoGraph keeps a name a loop binds
                only when it is read after the loop; a Python loop's names are plain values, safe to read).
        """
        names = self.returned_names(params, forced)
        returned = "(" + "".join(f"{n}, " for n in names).rstrip(" ") + ")"
        result = RESULT_NAME if self.has_result else "None"
        # locals() (costly under AutoGraph) only where a name may be bound: in a branch or a loop.
        maybe = "locals()" if set(self.assigned) - set(names) else "None"
        declared = (f"global {', '.join(global_names)}; " if global_names else "") + f"{START_HELPER}()"
        return (
            f"def {FUNCTION_NAME}({', '.join(params)}):\n"
            f"{_INDENT}{declared}\n"
            f"{self._body}"
            f"{_INDENT}return {RETURN_HELPER}({maybe}, {returned}, {result})\n"
        )

    def returned_names(self, params: tuple[str, ...], forced: tuple[str, ...] = ()) -> list[str]:
        """The names the function returns explicitly: those certainly bound, assigned inputs, and ``forced``."""
        names = [n for n in self.definite if n not in params] + [n for n in params if n in self.assigned]
        return names + [n for n in forced if n not in names]

    def python_loop_names(self, namespace: dict) -> tuple[str, ...]:
        """Names bound by the cell's top-level ``for`` loops over evident Python iterables.

        ``for k, v in zip(items, vals):`` over a list of the namespace, a literal or ``range`` of Python
        ints is a Python loop: what it binds is a plain value after it, as in a plain cell.  Loops over
        anything that may be a tensor or dataset (a graph loop) are left to AutoGraph.
        """
        if not self.for_loops:
            return ()
        assigned = set(self.assigned)
        names: dict[str, None] = {}
        for iterable, bound in self.for_loops:
            if _python_iterable(iterable, namespace, assigned):
                names.update(dict.fromkeys(bound))
        return tuple(names)

    def cell_line(self, function_line: int) -> int:
        """The cell's line number for a line number of the generated source."""
        return function_line - LINE_OFFSET

    def register(self, params: tuple[str, ...], global_names: tuple[str, ...] = (),
                 forced: tuple[str, ...] = ()) -> str:
        """Put the generated source in linecache (for AutoGraph and tracebacks)."""
        text = self.function_source(params, global_names, forced)
        linecache.cache[self.filename] = (len(text), None, text.splitlines(True), self.filename)
        return text

    def unregister(self) -> None:
        """Drop the generated source from linecache."""
        linecache.cache.pop(self.filename, None)


def analyze_cell(source: str, tag: str = "") -> CellCode:
    """Analyse a cell's source and prepare the function it becomes.

    Args:
        source: the cell's Python source.
        tag: a short label that goes into the file name (for example the cell's ``-n NAME``).

    Returns:
        The :class:`CellCode`.

    Raises:
        SyntaxError: the cell does not compile; its line numbers are the cell's.
        CellSourceError: the cell is empty, or uses ``global``/``nonlocal`` at its top level.
    """
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    filename = f"<tfgraph-{tag + '-' if tag else ''}{digest}>"
    try:
        tree = ast.parse(source, filename=filename, mode="exec")  # SyntaxError with the cell's lines
        compile(tree, filename, "exec", dont_inherit=True)  # 'return'/'yield'/'await' outside a function
    except SyntaxError as e:
        raise cell_syntax_error(e, source, "%%tfgraph") from None
    if not tree.body:
        raise CellSourceError("the cell is empty: write the code to run as a tf.function below the magic's line")
    for stmt in tree.body:
        if isinstance(stmt, (ast.Global, ast.Nonlocal)):
            raise CellSourceError(
                f"line {stmt.lineno}: 'global' at the top of a %%tfgraph cell is not supported: "
                "the cell's names are already the notebook's; remove the statement"
            )
    nested_globals = _nested_global_reads(source, filename)
    flow = _Flow(nested_globals)
    flow.block(tree.body)
    definite = _definite(tree.body)
    assigned = assigned_names(tree.body)
    deleted = _deleted_at_end(tree.body)
    last = tree.body[-1]
    has_result = isinstance(last, ast.Expr)
    loops = [stmt for stmt in tree.body if isinstance(stmt, ast.For)]
    body = _indented_body(source, last if has_result else None, loops, _nested_statements(tree))
    return CellCode(
        source=source,
        filename=filename,
        candidates=tuple(flow.reads),
        assigned=tuple(n for n in assigned if n not in deleted),
        definite=tuple(n for n in definite if n not in deleted),
        deleted=deleted,
        mutated=_mutated(tree),
        has_result=has_result,
        quiet=has_result and _ends_with_semicolon(source),
        _body=body,
        loop_bound=_loop_bound(tree.body),
        for_loops=tuple((stmt.iter, tuple(sorted(_store_names(stmt.target))) + tuple(
            n for s in stmt.body if not isinstance(s, (ast.If, ast.For, ast.While, ast.Try, ast.With))
            for n in scope_names(s)[1])) for stmt in tree.body if isinstance(stmt, ast.For)),
        loop_targets=tuple((stmt.lineno, stmt.target) for stmt in loops),
        tree=tree,
    )


# ---------------------------------------------------------------------------
# Which names does the cell read before binding them?


def _nested_global_reads(source: str, filename: str) -> frozenset[str]:
    """Names that nested scopes (functions, lambdas, comprehensions, classes) read from the cell's scope."""
    found: set[str] = set()
    stack = list(symtable.symtable(source, filename, "exec").get_children())
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        for sym in table.get_symbols():
            if sym.is_referenced() and (sym.is_global() or (table.get_type() == "class" and not sym.is_assigned())):
                found.add(sym.get_name())
    return frozenset(found)


class _Flow:
    """Walks statements in order, tracking which names are certainly bound so far."""

    def __init__(self, nested_globals: frozenset[str]):
        self.nested_globals = nested_globals
        self.reads: dict[str, None] = {}

    def _loads(self, node: ast.AST | None, bound: set[str]) -> None:
        if node is None:
            return
        loads, stores = scope_names(node)
        for name in loads:
            if name not in bound:
                self.reads.setdefault(name, None)
        for name in stores:
            if name in self.nested_globals and name not in bound:
                self.reads.setdefault(name, None)

    def block(self, stmts: list[ast.stmt], bound: set[str] | None = None) -> set[str]:
        bound = set() if bound is None else bound
        for stmt in stmts:
            self.stmt(stmt, bound)
        return bound

    def stmt(self, stmt: ast.stmt, bound: set[str]) -> None:
        if isinstance(stmt, ast.If):
            self._loads(stmt.test, bound)
            a = self.block(stmt.body, set(bound))
            b = self.block(stmt.orelse, set(bound))
            bound |= a & b
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._loads(stmt.iter, bound)
            inner = set(bound) | _store_names(stmt.target)
            self.block(stmt.body, inner)
            self.block(stmt.orelse, set(bound))
        elif isinstance(stmt, ast.While):
            self._loads(stmt.test, bound)
            self.block(stmt.body, set(bound))
            self.block(stmt.orelse, set(bound))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                self._loads(item.context_expr, bound)
                bound |= _store_names(item.optional_vars)
            self.block(stmt.body, bound)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            self.block(stmt.body, set(bound))
            for handler in stmt.handlers:
                self._loads(handler.type, bound)
                self.block(handler.body, set(bound) | ({handler.name} if handler.name else set()))
            self.block(stmt.orelse, set(bound))
            self.block(stmt.finalbody, bound)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for dec in stmt.decorator_list:
                self._loads(dec, bound)
            if not isinstance(stmt, ast.ClassDef):
                for default in stmt.args.defaults + [d for d in stmt.args.kw_defaults if d is not None]:
                    self._loads(default, bound)
            else:
                for base in stmt.bases + [k.value for k in stmt.keywords]:
                    self._loads(base, bound)
            # The body runs later, so every name it reads from the cell's scope counts now.
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Name) and sub.id in self.nested_globals and sub.id not in bound:
                    self.reads.setdefault(sub.id, None)
            bound.add(stmt.name)
        elif isinstance(stmt, ast.Match):
            self._loads(stmt.subject, bound)
            for case in stmt.cases:
                self.block(case.body, set(bound))
        else:
            # A simple statement: its expressions are evaluated before its targets are bound.
            if isinstance(stmt, ast.AugAssign):
                self._loads(stmt.target, bound)
                if isinstance(stmt.target, ast.Name) and stmt.target.id not in bound:
                    self.reads.setdefault(stmt.target.id, None)
            value_parts = [getattr(stmt, f) for f in ("value", "test", "msg", "exc", "cause") if hasattr(stmt, f)]
            for part in value_parts:
                self._loads(part, bound)
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if not isinstance(target, ast.Name):
                        self._loads(target, bound)  # x[i] = ..., obj.attr = ...
            if isinstance(stmt, ast.Delete):
                for target in stmt.targets:
                    self._loads(target, bound)
            bound |= _simple_bindings(stmt)


def _loop_bound(stmts: list[ast.stmt]) -> dict[str, int]:
    """Names bound only by top-level ``for``/``while`` loops (their targets and bodies), with the loop's line."""
    elsewhere = set(assigned_names([s for s in stmts if not isinstance(s, (ast.For, ast.AsyncFor, ast.While))]))
    out: dict[str, int] = {}
    for stmt in stmts:
        if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            for name in assigned_names([stmt]):
                if name not in elsewhere:
                    out.setdefault(name, stmt.lineno)
    return out


def _deleted_at_end(stmts: list[ast.stmt]) -> tuple[str, ...]:
    """Names whose last top-level statement is a ``del`` (``y = x; del y; y = 3`` leaves ``y`` bound)."""
    state: dict[str, bool] = {}
    for stmt in stmts:
        if isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    state[target.id] = True
        else:
            for name in assigned_names([stmt]):
                state[name] = False
    return tuple(n for n, gone in state.items() if gone)


_EVIDENT_ATTRIBUTES = frozenset({"variables", "trainable_variables", "non_trainable_variables", "weights",
                                 "trainable_weights", "non_trainable_weights", "layers", "submodules"})
_EVIDENT_CALLS = frozenset({"range", "zip", "enumerate", "reversed", "sorted", "list", "tuple", "dict", "set"})


def _python_iterable(node: ast.AST, namespace: dict, assigned: set[str]) -> bool:
    """Whether an expression is evidently a Python iterable (never a tensor or a dataset)."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp)):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes, int))
    if isinstance(node, ast.Name):
        value = namespace.get(node.id)
        return node.id not in assigned and type(value) in (list, tuple, dict, set, frozenset, str, range, int, bool)
    if isinstance(node, ast.Attribute) and node.attr in _EVIDENT_ATTRIBUTES and isinstance(node.value, ast.Name) \
            and node.value.id not in assigned and node.value.id in namespace:
        try:
            return type(getattr(namespace[node.value.id], node.attr)) in (list, tuple)
        except Exception:  # a property that fails: not evident
            return False
    if isinstance(node, ast.UnaryOp):
        return _python_iterable(node.operand, namespace, assigned)
    if isinstance(node, ast.BinOp):
        return _python_iterable(node.left, namespace, assigned) and _python_iterable(node.right, namespace, assigned)
    if isinstance(node, ast.Call) and not node.keywords:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _EVIDENT_CALLS and func.id not in assigned:
            return all(_python_iterable(a, namespace, assigned) for a in node.args)
        if isinstance(func, ast.Attribute) and func.attr in ("items", "keys", "values") and not node.args:
            return _python_iterable(func.value, namespace, assigned)
    return False


def _store_names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _simple_bindings(stmt: ast.stmt) -> set[str]:
    """Names a simple (non-compound) statement binds (a comprehension's or lambda's own variables are not the cell's)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"}
    return set(scope_names(stmt)[1])


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def scope_names(node: ast.AST) -> tuple[list[str], list[str]]:
    """``(loads, stores)``: the names ``node`` reads and binds in the scope it is written in, in order.

    A lambda's parameters and a comprehension's loop variables belong to their own scope (Python
    runs them as nested functions): ``[i * k for i in r]`` reads ``k`` and ``r`` and binds nothing;
    a walrus in a comprehension binds in the enclosing scope, as Python does.

    >>> scope_names(ast.parse("n = [i * k for i in range(3)]"))
    (['range', 'k'], ['n'])
    >>> scope_names(ast.parse("f = lambda a, b=c: a * d"))
    (['c', 'd'], ['f'])
    """
    loads: dict[str, None] = {}
    stores: dict[str, None] = {}
    _scope_visit(node, loads, stores, frozenset())
    return list(loads), list(stores)


def _scope_visit(node: ast.AST, loads: dict, stores: dict, local: frozenset) -> None:
    if isinstance(node, ast.Name):
        if node.id not in local:
            (stores if isinstance(node.ctx, ast.Store) else loads).setdefault(node.id, None)
    elif isinstance(node, ast.NamedExpr):
        _scope_visit(node.value, loads, stores, local)
        if node.target.id not in local:
            stores.setdefault(node.target.id, None)
    elif isinstance(node, ast.Lambda):
        args = node.args
        for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
            _scope_visit(default, loads, stores, local)
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        _scope_visit(node.body, loads, {}, local | params)  # what it binds stays in the lambda
    elif isinstance(node, _COMPREHENSIONS):
        generators = node.generators
        _scope_visit(generators[0].iter, loads, stores, local)  # evaluated in the enclosing scope
        inner = local | {n.id for g in generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        for i, generator in enumerate(generators):
            if i:
                _scope_visit(generator.iter, loads, stores, inner)
            for condition in generator.ifs:
                _scope_visit(condition, loads, stores, inner)
        for part in ((node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)):
            _scope_visit(part, loads, stores, inner)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        stores.setdefault(node.name, None)  # its body is another scope
    else:
        for child in ast.iter_child_nodes(node):
            _scope_visit(child, loads, stores, local)


def _definite(stmts: list[ast.stmt]) -> list[str]:
    """Names certainly bound after ``stmts`` run to their end, in order."""
    out: dict[str, None] = {}

    def visit(block: list[ast.stmt]) -> set[str]:
        bound: set[str] = set()
        for stmt in block:
            if isinstance(stmt, ast.If):
                both = visit(stmt.body) & visit(stmt.orelse)
                new = both
            elif isinstance(stmt, (ast.With, ast.AsyncWith)):
                # the body's names only maybe: a context manager may suppress an exception (contextlib.suppress)
                new = set().union(*(_store_names(i.optional_vars) for i in stmt.items))
                visit(stmt.body)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                new = {stmt.name}
            elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While, ast.Try)) or not isinstance(stmt, ast.stmt):
                new = visit(getattr(stmt, "finalbody", []))
            elif type(stmt).__name__ in ("Match", "TryStar"):
                new = set()
            elif isinstance(stmt, ast.Delete):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        bound.discard(target.id)
                new = set()
            else:
                new = _simple_bindings(stmt)
            bound |= new
        return bound

    final = visit(stmts)
    for stmt in stmts:  # keep source order
        for sub in ast.walk(stmt):
            name = sub.id if isinstance(sub, ast.Name) else getattr(sub, "name", None)
            if isinstance(name, str) and name in final:
                out.setdefault(name, None)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                name = (alias.asname or alias.name).split(".")[0]
                if name in final:
                    out.setdefault(name, None)
    return [n for n in out if n in final]


def binding_lines(tree: ast.Module, name: str) -> list[int]:
    """The lines of the cell's top-level statements that bind ``name``, in order.

    >>> binding_lines(ast.parse("a = 1\\nb = a\\nfor a in range(2):\\n    pass"), "a")
    [1, 3]
    """
    return [stmt.lineno for stmt in tree.body if name in assigned_names([stmt])]


def binding_line(tree: ast.Module, name: str) -> int | None:
    """The line of the cell's last top-level statement that binds ``name`` (where notes about it point)."""
    lines = binding_lines(tree, name)
    return lines[-1] if lines else None


def assigned_names(stmts: list[ast.stmt]) -> list[str]:
    """Every name bound at the cell's top scope (in any branch or loop), in order."""
    out: dict[str, None] = {}
    stack: list[ast.AST] = list(reversed(stmts))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.setdefault(node.name, None)
            continue  # its body is another scope
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    out.setdefault((alias.asname or alias.name).split(".")[0], None)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.setdefault(node.id, None)
        if isinstance(node, ast.NamedExpr):
            out.setdefault(node.target.id, None)
        if isinstance(node, ast.ExceptHandler) and node.name:
            out.setdefault(node.name, None)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            # Only a walrus inside a comprehension binds in the enclosing scope.
            stack.extend(n for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return list(out)


_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault",
                       "popitem", "add", "discard", "sort", "reverse"})


def _mutated(tree: ast.AST) -> frozenset[str]:
    """Names whose objects the code changes in place: ``x.append(...)``, ``x[i] = ...``, ``del x[i]``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS \
                and isinstance(node.func.value, ast.Name):
            names.add(node.func.value.id)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                and isinstance(node.value, ast.Name):
            names.add(node.value.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)  # items += [4] extends the list in place
    return frozenset(names)


# ---------------------------------------------------------------------------
# The body's text


def _nested_statements(tree: ast.Module) -> list[ast.stmt]:
    """The simple statements of the cell's scope inside a branch or a loop's body (at any depth, a ``with`` or
    ``try`` in them too) after which the names their block bound are reported (see :data:`BOUND_HELPER`): the
    last of each run of statements that bind names, and the last of a body whose loop or ``with`` binds a name,
    each the last on its line."""
    out: dict[int, ast.stmt] = {}  # by line: the last statement on it

    def block(stmts: list[ast.stmt], nested: bool, header_binds: bool = False) -> None:
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue  # another scope
            blocks = [getattr(stmt, f, None) or [] for f in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(stmt, "handlers", ())] + [c.body for c in getattr(stmt, "cases", ())]
            if any(blocks):  # AutoGraph makes functions of a branch's and a loop's body, not a with's or try's
                binds = isinstance(stmt, (ast.For, ast.AsyncFor)) or any(  # a loop's target, a with's "as"
                    item.optional_vars is not None for item in getattr(stmt, "items", ()))
                for inner in blocks:
                    block(inner, nested or isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While)), binds)
                continue
            following = stmts[i + 1] if i + 1 < len(stmts) else None
            if not nested or (not assigned_names([stmt]) and not (header_binds and following is None)) or (
                    following is not None and not any(getattr(following, f, None) for f in ("body", "orelse"))
                    and not isinstance(following, (ast.FunctionDef, ast.ClassDef)) and assigned_names([following])):
                continue  # binds nothing, or the next statement binds too and reports for both
            last = out.get(stmt.end_lineno)
            if last is None or (last.end_col_offset or 0) < (stmt.end_col_offset or 0):
                out[stmt.end_lineno] = stmt

    block(tree.body, False)
    return sorted(out.values(), key=lambda s: s.end_lineno)


def _indented_body(source: str, last_expr: ast.Expr | None, loops: list[ast.For] = (),
                   nested: list[ast.stmt] = ()) -> str:
    """The cell's lines indented into a function body, keeping line numbers.

    Lines that continue a multi-line string are left as they are, so string
    values do not change.  A last expression becomes ``_tfmagic_result = (...)``;
    a top-level loop's iterable ``for t in ITER:`` becomes ``_tfmagic_loop(LINE, ITER)``;
    each statement of ``nested`` (:func:`_nested_statements`) is followed by ``; _tfmagic_bound(LINE, locals())``.
    """
    lines = source.splitlines(True) or ["\n"]
    if lines[-1] and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    for stmt in nested:  # each on its own line, at the line's end: the loops' positions stay valid
        end, ec = stmt.end_lineno - 1, _char_col(lines[stmt.end_lineno - 1], stmt.end_col_offset)
        lines[end] = f"{lines[end][:ec]}; {BOUND_HELPER}({stmt.lineno}, locals()){lines[end][ec:]}"
    for loop in reversed(loops):  # from the end: earlier positions stay valid
        it = loop.iter
        end, ec = it.end_lineno - 1, _char_col(lines[it.end_lineno - 1], it.end_col_offset)
        lines[end] = f"{lines[end][:ec]}){lines[end][ec:]}"
        start, sc = it.lineno - 1, _char_col(lines[it.lineno - 1], it.col_offset)
        lines[start] = f"{lines[start][:sc]}{LOOP_HELPER}({loop.lineno}, {lines[start][sc:]}"
    if last_expr is not None:
        start, end = last_expr.lineno - 1, last_expr.end_lineno - 1
        sc = _char_col(lines[start], last_expr.col_offset)
        ec = _char_col(lines[end], last_expr.end_col_offset)
        if start == end:
            line = lines[start]
            lines[start] = f"{line[:sc]}{RESULT_NAME} = ({line[sc:ec]}){line[ec:]}"
        else:
            lines[end] = f"{lines[end][:ec]}){lines[end][ec:]}"
            lines[start] = f"{lines[start][:sc]}{RESULT_NAME} = ({lines[start][sc:]}"
    inside_string = _string_continuation_lines(source)
    return "".join(line if i + 1 in inside_string else _INDENT + line for i, line in enumerate(lines))


def _char_col(line: str, byte_col: int) -> int:
    """ast's column offsets count UTF-8 bytes; convert one to a character index."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))


def _string_continuation_lines(source: str) -> set[int]:
    """1-based numbers of lines that start inside a multi-line string token."""
    inside: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.start[0] != tok.end[0] and tok.type not in (tokenize.NL, tokenize.NEWLINE):
                if tok.type == tokenize.STRING or tokenize.tok_name.get(tok.type, "").startswith("FSTRING"):
                    inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return inside


def _ends_with_semicolon(source: str) -> bool:
    """Whether the cell's last token (comments aside) is ``;``, as IPython checks."""
    last = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER,
                                tokenize.INDENT, tokenize.DEDENT):
                last = tok
    except (tokenize.TokenError, SyntaxError):
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"

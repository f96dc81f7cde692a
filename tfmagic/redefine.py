"""The functions and classes a ``%%tfgraph`` cell defines, as the user's own afterwards.

Inside the cell's ``tf.function`` the cell's definitions are AutoGraph's converted copies reading the
trace's values; after the run each is defined again from its source over the notebook's namespace
(:func:`redefine`), as a plain cell's definitions are.  The cell's code runs with :data:`CELL_BUILTINS`
(classes it defines are built as the user's, not AutoGraph's) under the module name :data:`CELL_MODULE`.
"""

from __future__ import annotations

import ast
import builtins
import types
from typing import Any

from tfmagic.cell import FUNCTION_NAME, LINE_OFFSET, CellCode

def redefine(traced: types.FunctionType, node, code: CellCode, namespace: dict):
    """A function the cell defined, defined again over the notebook's namespace.

    Inside the cell's ``tf.function`` the cell's names are the function's locals, so a function the cell
    defines reads them through a closure: the trace's values, graph tensors that cannot be used outside
    the graph.  A plain cell's function reads them from the namespace when called: compiled again from
    its source with the namespace as its globals, it does the same.  Defaults and attributes are the
    trace's.  When its source cannot be found, the traced function stays.
    """
    if node is None:
        _read_names_from(traced, namespace)
        return traced
    if isinstance(node, ast.ClassDef):
        return _redefine_class(traced, node, code, namespace)
    decorators = getattr(node, "decorator_list", [])
    inner = _unwrap(traced, node.name) if decorators else traced
    if inner is None:
        _read_names_from(traced, namespace)
        return traced
    if decorators:
        try:
            applied = [eval(compile(ast.increment_lineno(ast.fix_missing_locations(ast.Expression(d)), LINE_OFFSET),
                                    code.filename, "eval", dont_inherit=True), namespace)  # noqa: S307 - the user's
                       for d in decorators]
        except Exception:  # a decorator that does not evaluate alone: keep the traced object
            _read_names_from(traced, namespace)
            return traced
        function = redefine(inner, ast.copy_location(type(node)(**{**{f: getattr(node, f) for f in node._fields},
                                                                   "decorator_list": []}), node), code, namespace)
        if function is inner:
            _read_names_from(traced, namespace)
            return traced
        try:
            for decorator in reversed(applied):  # as Python applies them, innermost first
                function = decorator(function)
        except Exception:
            _read_names_from(traced, namespace)
            return traced
        return function
    if isinstance(node, ast.Lambda):
        node = ast.copy_location(ast.Lambda(args=ast.arguments(
            posonlyargs=node.args.posonlyargs, args=node.args.args, vararg=node.args.vararg,
            kwonlyargs=node.args.kwonlyargs, kw_defaults=[None] * len(node.args.kwonlyargs),
            kwarg=node.args.kwarg, defaults=[]), body=node.body), node)
        tree = ast.Expression(body=node)
        mode = "eval"
    else:
        args = node.args
        bare = ast.arguments(posonlyargs=args.posonlyargs, args=args.args, vararg=args.vararg,
                             kwonlyargs=args.kwonlyargs, kw_defaults=[None] * len(args.kwonlyargs),
                             kwarg=args.kwarg, defaults=[])
        fields = {f: getattr(node, f) for f in node._fields}
        fields.update(args=bare, decorator_list=[], returns=None)
        node = ast.copy_location(type(node)(**fields), node)
        tree = ast.Module(body=[node], type_ignores=[])
        mode = "exec"
    tree = ast.increment_lineno(ast.fix_missing_locations(tree), LINE_OFFSET)
    try:
        compiled = compile(tree, code.filename, mode, dont_inherit=True)
        if mode == "eval":
            function = eval(compiled, namespace)  # noqa: S307 - the user's own lambda
        else:
            scope: dict = {}
            exec(compiled, namespace, scope)  # noqa: S102 - the user's own def, over the notebook's names
            function = scope[node.name]
    except Exception:  # a form this cannot compile alone: keep the traced function, reading the written-back values
        _read_names_from(traced, namespace)
        return traced
    if not isinstance(function, types.FunctionType) or function.__closure__:
        _read_names_from(traced, namespace)
        return traced
    function.__defaults__ = traced.__defaults__
    function.__kwdefaults__ = traced.__kwdefaults__
    function.__dict__.update((k, v) for k, v in traced.__dict__.items() if k != "autograph_info__")  # AutoGraph's
    # mark of its own converted code: on the user's function it would keep AutoGraph from converting it
    function.__doc__ = traced.__doc__
    function.__qualname__ = traced.__name__
    function.__module__ = namespace.get("__name__", function.__module__)
    return function


def _unwrap(wrapper: Any, name: str):
    """The function named ``name`` inside a decorator's result (a ``tf.function``, a functools.wraps wrapper)."""
    for _ in range(8):
        if isinstance(wrapper, types.FunctionType) and wrapper.__name__ == name:
            return wrapper
        wrapper = getattr(wrapper, "python_function", None) or getattr(wrapper, "__wrapped__", None)
        if wrapper is None:
            return None
    return None


def _redefine_class(traced: type, node: ast.ClassDef, code: CellCode, namespace: dict):
    """A class the cell defined, defined again from its source over the notebook's namespace.

    Its methods are then the user's own (AutoGraph converts them where a tf.function calls them, as it does a
    plain cell's) and read the notebook's names.  Class attributes the cell changed (``cls.total += k``) keep
    the trace's values.  When it cannot be compiled alone, the traced class stays, reading the notebook's names.
    """
    tree = ast.increment_lineno(ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[])), LINE_OFFSET)
    try:
        scope: dict = {}
        exec(compile(tree, code.filename, "exec", dont_inherit=True), namespace, scope)  # noqa: S102 - the user's
        new = scope[node.name]
    except Exception:
        _read_names_from(traced, namespace)
        return traced
    if not isinstance(new, type):
        _read_names_from(traced, namespace)
        return traced
    fresh = vars(new)
    for key, value in list(vars(traced).items()):
        if key.startswith("__") or key == "autograph_info__" or key not in fresh:
            continue
        if isinstance(fresh[key], (types.FunctionType, staticmethod, classmethod, property)):
            continue
        if fresh[key] is not value:
            try:
                setattr(new, key, value)
            except (AttributeError, TypeError):
                pass
    new.__qualname__ = node.name
    new.__module__ = namespace.get("__name__", new.__module__)
    return new


def _build_class(func, name, *bases, **kwds):
    """``__build_class__`` for the cell's function: its classes are AutoGraph's converted code already.

    AutoGraph would try to convert their methods again when the cell calls them and, failing ("closure
    mismatch"), print a warning asking to report it; marked as AutoGraph's own, they are called as they are.
    """
    cls = builtins.__build_class__(func, name, *bases, **kwds)
    try:
        cls.autograph_info__ = frozenset()
    except (AttributeError, TypeError):  # a metaclass that refuses attributes
        pass
    return cls


CELL_BUILTINS = {**vars(builtins), "__build_class__": _build_class}


#: The module name of what the cell's function defines while tracing (its globals' ``__name__``).
CELL_MODULE = "__tfmagic_cell__"


def is_cell_function(value: Any) -> bool:
    """A function or class defined at the cell's top level (AutoGraph's converted copy of the cell included),
    or a decorator's result around one (``@tf.function``)."""
    if not isinstance(value, (types.FunctionType, type)):
        inner = getattr(value, "python_function", None) or getattr(value, "__wrapped__", None)
        return inner is not None and not isinstance(value, type) and is_cell_function(inner)
    if getattr(value, "__module__", None) == CELL_MODULE and "." not in getattr(value, "__qualname__", "."):
        return True  # a notebook name the cell rebinds (declared global in the cell's function)
    scope, _, _ = getattr(value, "__qualname__", "").rpartition(".<locals>.")
    return scope.endswith(FUNCTION_NAME)


def _read_names_from(obj: Any, namespace: dict) -> None:
    """Point the closures of a cell's function or class (its methods) at the notebook's values.

    Inside the graph they read the cell's names through closure cells that hold the trace's values;
    after the write-back those cells get the values written back (eager tensors).
    """
    functions = [obj] if isinstance(obj, types.FunctionType) else []
    for member in vars(obj).values() if isinstance(obj, type) else ():
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            functions += [f for f in (member.fget, member.fset, member.fdel) if f is not None]
        elif isinstance(member, types.FunctionType):
            functions.append(member)
    seen: set[int] = set()
    while functions:
        function = functions.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        # Its own code's scope (functools.wraps copies a wrapped function's __qualname__, not its code's).
        scope, _, _ = getattr(function.__code__, "co_qualname", function.__qualname__).rpartition(".<locals>.")
        in_cell = scope.endswith(FUNCTION_NAME)
        for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
            if not _cell_filled(cell):
                continue
            if in_cell and name != "__class__" and name in namespace:
                cell.cell_contents = namespace[name]
            elif isinstance(cell.cell_contents, types.FunctionType):  # a decorator's wrapper: the function inside
                functions.append(cell.cell_contents)


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def function_node(code: CellCode, name: str):
    """The cell's top-level ``def NAME`` (decorated too), ``class NAME`` or ``NAME = lambda ...`` (the last one)."""
    found = None
    for stmt in code.tree.body if code.tree is not None else ():
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == name:
            found = stmt
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Lambda) and \
                [t.id for t in stmt.targets if isinstance(t, ast.Name)] == [name]:
            found = stmt.value
    return found

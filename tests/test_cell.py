"""Cell source -> function source: which names are inputs, which are written back."""

import linecache

import pytest

from tfmagic.cell import analyze_cell
from tfmagic.errors import CellSourceError


def test_reads_before_binding_are_candidates_in_order():
    code = analyze_cell("y = x * w\nz = y + b\n")
    assert code.candidates == ("x", "w", "b")
    assert code.definite == ("y", "z")


def test_name_bound_before_use_is_not_an_input():
    # `y` is bound by the cell before it is read: it must not become an argument,
    # or the cell's second run (with `y` now in the namespace) would retrace.
    code = analyze_cell("y = x + 1\nz = y * 2\n")
    assert "y" not in code.candidates


def test_augmented_assignment_reads_the_name():
    code = analyze_cell("total += x\n")
    assert code.candidates == ("total", "x")


def test_loop_and_branch_bindings_are_not_definite():
    code = analyze_cell("for i in tf.range(n):\n    t = i\nif c:\n    a = 1\nelse:\n    a = 2\n")
    assert code.definite == ("a",)
    assert set(code.assigned) == {"i", "t", "a"}


def test_nested_function_reads_cell_names():
    code = analyze_cell("def f(a):\n    return a * scale\nr = f(x)\n")
    assert code.candidates == ("scale", "x")
    assert code.definite == ("f", "r")


def test_last_expression_becomes_the_result_keeping_line_numbers():
    code = analyze_cell("y = x\n(y +\n 1)  # note\n")
    source = code.function_source(("x",))
    lines = source.splitlines()
    assert lines[1].strip() == "_tfmagic_start()"  # a trace starts (with `global NAMES; ` when the cell rebinds names)
    assert lines[3].strip().startswith("_tfmagic_result = ((y +")
    assert lines[4].strip() == "1))  # note"
    assert code.cell_line(4) == 2


def test_multiline_string_is_not_reindented():
    code = analyze_cell('s = """a\nb"""\n')
    namespace = {}
    exec(code.function_source(()) + "\n", {"_tfmagic_return": lambda loc, e, r: e, "_tfmagic_start": lambda: None},
         namespace)
    assert namespace["_tfgraph_cell"]() == ("a\nb",)


def test_semicolon_makes_the_result_quiet():
    assert analyze_cell("x + 1;\n").quiet
    assert not analyze_cell("x + 1\n").quiet


def test_del_removes_the_name():
    code = analyze_cell("y = x\ndel x\n")
    assert code.deleted == ("x",)
    assert "x" not in code.definite


@pytest.mark.parametrize("source,line", [("x = (1,\n", 1), ("y = 1\nreturn y\n", 2), ("y = 1\nyield y\n", 2)])
def test_syntax_errors_carry_the_cell_line(source, line):
    with pytest.raises(SyntaxError) as info:
        analyze_cell(source)
    assert info.value.lineno == line


@pytest.mark.parametrize("source", ["", "# only a comment\n", "\n\n"])
def test_empty_cell_is_refused(source):
    with pytest.raises(CellSourceError, match="empty"):
        analyze_cell(source)


def test_global_statement_is_refused_with_its_line():
    with pytest.raises(CellSourceError, match="line 2: 'global'"):
        analyze_cell("x = 1\nglobal y\ny = 1\n")


def test_source_is_registered_for_autograph_and_dropped():
    code = analyze_cell("y = x\n", tag="t")
    code.register(("x",))
    assert linecache.getlines(code.filename)[2] == "    y = x\n"
    code.unregister()
    assert code.filename not in linecache.cache


@pytest.mark.parametrize("source,candidates,definite", [
    ("n = [i * 2 for i in range(3)]\n", ("range",), ("n",)),
    ("g = {k: v * s for k, v in d.items()}\n", ("d", "s"), ("g",)),
    ("t = sum(x for x in r if x > lo)\n", ("sum", "r", "lo"), ("t",)),
    ("f = lambda a, b=c: a * k\n", ("c", "k"), ("f",)),
    ("y = [(z := i) for i in r]\n", ("r",), ("y", "z")),
    ("m = [[i * j for j in range(i)] for i in range(3)]\n", ("range",), ("m",)),
])
def test_comprehension_and_lambda_variables_are_their_own(source, candidates, definite):
    code = analyze_cell(source)
    assert code.candidates == candidates
    assert code.definite == definite


def test_rebinding_after_del_keeps_the_name_and_with_bodies_are_not_certain():
    code = analyze_cell("y = x\ndel y\ny = 3\nwith s:\n    r = 1\n")
    assert code.deleted == () and "y" in code.definite and "r" not in code.definite and "r" in code.assigned


def test_captured_names_the_cell_binds_are_declared_global():
    code = analyze_cell("items += [4]\nseen = [1]\n")
    assert "items" in code.mutated
    assert code.function_source((), ("items", "seen")).splitlines()[1] == "    global items, seen; _tfmagic_start()"


@pytest.mark.parametrize("source,namespace,names", [
    ("for k, v in zip(a, b):\n    last = v * k\n", {"a": [1], "b": [2]}, ("k", "v", "last")),
    ("for k in range(3):\n    pass\n", {}, ("k",)),
    ("for k in tf.range(3):\n    t = k\n", {}, ()),
    ("for e in x:\n    t = e\n", {"x": object()}, ()),
    ("for k, v in cfg.items():\n    if v:\n        w = k\n", {"cfg": {}}, ("k", "v")),
])
def test_python_loops_are_told_from_graph_loops(source, namespace, names):
    assert analyze_cell(source).python_loop_names(namespace) == names


def test_top_level_loops_tell_their_kind_while_tracing_keeping_line_numbers():
    code = analyze_cell("acc = 0\nfor k, v in zip(a,\n                b):\n    acc += k\n")
    source = code.function_source(("a", "b"))
    assert "    for k, v in _tfmagic_loop(2, zip(a,\n                    b)):\n" in source
    assert code.loop_targets[0][0] == 2 and source.splitlines()[3].strip() == "for k, v in _tfmagic_loop(2, zip(a,"

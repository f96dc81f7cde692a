"""The differential corpus: every cell of tests/corpus_cases.py as a plain cell and under %%tfgraph (and %%tape).

One real IPython shell for the module.  Each cell runs, from the same notebook state (corpus_cases.SETUP),
twice as a plain cell and twice under ``%%tfgraph --show none`` (a re-run reuses the graph, where a plain
cell runs its Python again), and what each left is compared: the names it bound and deleted, their values,
the state of the notebook's variables, containers and Keras objects, the displayed result, what it printed,
the exception when it failed, and a probe (a plain cell run afterwards that uses what the cell bound).
A cell passes when all of these are equal, or when they differ and ``%%tfgraph`` said so: a message that
names the cell's line and why a graph differs.  Nothing may differ silently.  Cells with a target also run
under ``%%tape``: the same namespace as the plain cell, and the gradients of hand-written GradientTape code.

Hypothesis grows the constructs that have many forms (arithmetic, slices, augmented assignments,
unpacking, comprehensions, f-strings).  ``pytest -s tests/test_corpus.py`` prints the tallies by construct.
"""

from __future__ import annotations

import ast
import collections
import types

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .corpus_cases import CASES, SETUP, STATE, Case
from .shellutil import output_text, run

#: construct -> Counter(equal=..., explained=...)
TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

_HIDDEN = {"In", "Out", "exit", "quit", "get_ipython", "grads"}


@pytest.fixture(scope="module")
def shell(ip):
    """The module's shell, with the names the fixture made as the baseline every variant starts from."""
    baseline = set(ip.user_ns)
    ip._corpus_baseline = baseline
    return ip


def _visible(name: str) -> bool:
    return not name.startswith("_") and name not in _HIDDEN


def _reset(ip) -> None:
    for name in [k for k in ip.user_ns if k not in ip._corpus_baseline and _visible(k)]:
        del ip.user_ns[name]
    result, captured = run(ip, SETUP)
    assert result.success, captured.stdout


# ---------------------------------------------------------------------------
# Values in a form that survives the next reset, and compares


def _norm(value, depth: int = 0):
    """A comparable, eager-only description of a value; a graph tensor shows up as such (it must not leak)."""
    if depth > 4:
        return ("deep",)
    if isinstance(value, tf.Tensor):
        if tf.is_symbolic_tensor(value):
            return ("GRAPH TENSOR", str(value))
        return ("tensor", value.dtype.name, tuple(value.shape), value.numpy())
    if isinstance(value, tf.Variable):
        return ("variable", value.dtype.name, value.numpy())
    if type(value).__module__.startswith("keras") and hasattr(value, "path") and hasattr(value, "numpy"):
        return ("keras variable", value.path, np.asarray(value.numpy()))
    if isinstance(value, tf.RaggedTensor):
        return ("ragged", value.dtype.name, value.to_list())
    if isinstance(value, tf.SparseTensor):
        return ("sparse", value.indices.numpy(), value.values.numpy(), value.dense_shape.numpy())
    if isinstance(value, tf.IndexedSlices):
        return ("slices", _norm(value.values, depth + 1), _norm(value.indices, depth + 1))
    if isinstance(value, tf.TensorArray):
        try:
            return ("tensorarray", int(value.size()), value.stack().numpy())
        except Exception as e:  # noqa: BLE001 - any failure is a difference to report
            return ("tensorarray unusable", type(e).__name__)
    if isinstance(value, tf.data.Dataset):
        return ("dataset", [_norm(e, depth + 1) for e in value.take(20)])
    if isinstance(value, (np.ndarray, np.generic)):
        return ("array", str(value.dtype), np.asarray(value))
    if isinstance(value, (bool, int, float, complex, str, bytes, type(None))):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_norm(v, depth + 1) for v in value])
    if isinstance(value, dict):
        return ("dict", [(repr(k), _norm(v, depth + 1)) for k, v in value.items()])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(map(repr, value)))
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)) or callable(value) and \
            hasattr(value, "python_function"):
        return ("function", getattr(value, "__name__", ""))
    if isinstance(value, type):
        return ("class", value.__name__)
    if isinstance(value, types.ModuleType):
        return ("module", value.__name__)
    if isinstance(value, (tf.TensorShape, tf.DType)):
        return (type(value).__name__, repr(value))
    if isinstance(value, tf.keras.layers.Layer):
        return ("keras", type(value).__name__, [_norm(w, depth + 1) for w in value.weights])
    if isinstance(value, (tf.GradientTape, tf.random.Generator)):
        return (type(value).__name__,)
    try:
        attributes = vars(value)
    except TypeError:
        return ("object", type(value).__name__)
    return ("object", type(value).__name__, [(k, _norm(v, depth + 1)) for k, v in sorted(attributes.items())
                                             if not k.startswith("_")])


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - values that do not compare are different
        return False


# ---------------------------------------------------------------------------
# Running one variant


def _variant(ip, cell: str, times: int, probe: str) -> dict:
    """Run ``cell`` ``times`` times from SETUP; what it left, normalised."""
    _reset(ip)
    before = {k: id(v) for k, v in ip.user_ns.items() if _visible(k)}
    texts, printed, error, result = [], [], None, None
    for _ in range(times):
        outcome, captured = run(ip, cell)
        texts.append(output_text(captured, printed=True))
        if outcome.error_in_exec is not None:
            error = type(outcome.error_in_exec).__name__
            break
        printed.append(captured.stdout)
        result = _norm(outcome.result)
    names = {k: v for k, v in ip.user_ns.items() if _visible(k)}
    changed = {k: _norm(v) for k, v in names.items() if before.get(k) != id(v) and k not in STATE}
    state = {k: _norm(names[k]) for k in STATE if k in names}
    deleted = sorted(set(before) - set(names))
    probed = None
    if probe and error is None:
        outcome, captured = run(ip, probe)
        probed = (type(outcome.error_in_exec).__name__ if outcome.error_in_exec else None, _norm(outcome.result))
    return {"error": error, "changed": changed, "deleted": deleted, "state": state, "result": result,
            "printed": "".join(printed), "probe": probed, "text": "\n".join(texts),
            "tfmagic_ns": {k: ip.user_ns[k] for k in ("grads",) if k in ip.user_ns}}


def _differences(plain: dict, other: dict) -> list[str]:
    out = []
    if plain["error"] != other["error"]:
        out.append(f"error: plain {plain['error']}, here {other['error']}")
    if other["error"] is None or plain["error"] is None:
        if set(plain["changed"]) != set(other["changed"]):
            out.append(f"names: plain {sorted(plain['changed'])}, here {sorted(other['changed'])}")
        for name in set(plain["changed"]) & set(other["changed"]):
            if not _same(plain["changed"][name], other["changed"][name]):
                out.append(f"{name}: plain {plain['changed'][name]!r:.200}, here {other['changed'][name]!r:.200}")
        if plain["deleted"] != other["deleted"]:
            out.append(f"deleted: plain {plain['deleted']}, here {other['deleted']}")
        if not _same(plain["result"], other["result"]):
            out.append(f"result: plain {plain['result']!r:.200}, here {other['result']!r:.200}")
        if plain["printed"] != other["printed"]:
            out.append(f"printed: plain {plain['printed']!r:.200}, here {other['printed']!r:.200}")
        if not _same(plain["probe"], other["probe"]):
            out.append(f"probe: plain {plain['probe']!r:.200}, here {other['probe']!r:.200}")
    for name in plain["state"]:
        if not _same(plain["state"][name], other["state"].get(name)):
            out.append(f"state of {name}: plain {plain['state'][name]!r:.200}, here {other['state'].get(name)!r:.200}")
    return out


def _explained(case: Case, text: str) -> bool:
    if not case.explained:
        return False
    line, *words = case.explained
    lowered = text.lower()
    return f"line {line}" in text and all(word.lower() in lowered for word in words)


def check_case(ip, case: Case, construct: str | None = None) -> str:
    """Run a case both ways; ``"equal"`` or ``"explained"``, or fail saying what differs."""
    times = 1 if case.once else 2
    plain = _variant(ip, case.source, times, case.probe)
    graph = _variant(ip, "%%tfgraph --show none\n" + case.source, times, case.probe)
    if graph["error"] is not None and plain["error"] is not None:
        assert graph["changed"] == {} and graph["deleted"] == [], "a failing %%tfgraph cell changed the namespace"
    differences = _differences(plain, graph)
    if case.explained:  # where a graph differs, the message must be there whatever the values
        assert _explained(case, graph["text"]), (
            f"expected a %%tfgraph message at line {case.explained[0]} with {case.explained[1:]}; got:\n"
            f"{graph['text'][-1500:]}\ndifferences: {differences}")
    if differences:
        assert _explained(case, graph["text"]), (
            f"%%tfgraph differs from the plain cell without saying so:\n{case.source}\n" + "\n".join(differences)
            + f"\n--- %%tfgraph output:\n{graph['text'][-1500:]}")
        kind = "explained"
    else:
        kind = "equal"
    TALLY[construct or case.construct][kind] += 1
    if case.tape is not None:
        _check_tape(ip, case, construct)
    return kind


def _hand_written(source: str, target: str) -> str:
    """The cell inside a hand-written persistent GradientTape, with the gradients of its watched variables."""
    tree = ast.parse(source)
    lines = source.rstrip("\n").splitlines()
    if isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        lines = lines[:last.lineno - 1] + [f"_tape_result = ({ast.get_source_segment(source, last)})"]
    body = "\n".join("    " + ln for ln in lines)
    return (f"with tf.GradientTape(persistent=True) as _tape:\n{body}\n"
            f"    _tape_target = {target or '_tape_result'}\n"
            "_hand = _tape.gradient(_tape_target, _tape.watched_variables())")


def _check_tape(ip, case: Case, construct: str | None) -> None:
    plain = _variant(ip, case.source, 1, case.probe)
    taped = _variant(ip, f"%%tape {case.tape} --show none\n" + case.source, 1, case.probe)
    differences = _differences(plain, taped)
    assert not differences, f"%%tape differs from the plain cell:\n{case.source}\n" + "\n".join(differences)
    grads = taped["tfmagic_ns"]["grads"]
    ours = [None if g is None else tf.convert_to_tensor(g).numpy() for g in grads.values()]
    _reset(ip)
    outcome, captured = run(ip, _hand_written(case.source, case.tape))
    assert outcome.success, captured.stdout
    hand = [None if g is None else tf.convert_to_tensor(g).numpy() for g in ip.user_ns["_hand"]]
    assert len(ours) == len(hand) and all(
        (a is None and b is None) or (a is not None and b is not None and np.allclose(a, b))
        for a, b in zip(ours, hand)), f"%%tape grads {grads} != hand-written {hand}"
    assert all("/" in k or k.isidentifier() for k in grads) and "variable" not in grads
    TALLY[(construct or case.construct) + " (%%tape)"]["equal"] += 1


# ---------------------------------------------------------------------------
# The corpus


@pytest.mark.parametrize("case", CASES, ids=[f"{i:03d}-{c.construct}" for i, c in enumerate(CASES)])
def test_corpus_cell(shell, case):
    check_case(shell, case)


# ---------------------------------------------------------------------------
# Constructs with many forms, grown by hypothesis (derandomised: the same examples every run)

_SETTINGS = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_LEAVES = st.sampled_from(["x", "x6[:3]", "2.0", "0.5", "tf.reduce_sum(x)", "v"])
_EXPRESSIONS = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["tf.abs", "tf.square", "tf.nn.relu", "tf.sin"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
    st.tuples(inner, inner).map(lambda t: f"tf.maximum({t[0]}, {t[1]})"),
), max_leaves=6)


@_SETTINGS
@given(expression=_EXPRESSIONS)
def test_arithmetic_forms(shell, expression):
    check_case(shell, Case("hypothesis: arithmetic", f"y = {expression}\ny\n"))


_BOUND = st.one_of(st.none(), st.integers(-7, 7))


@_SETTINGS
@given(start=_BOUND, stop=_BOUND, step=st.sampled_from([None, 1, 2, -1, -2, 3]))
def test_slice_forms(shell, start, stop, step):
    text = ":".join("" if b is None else str(b) for b in (start, stop, step))
    check_case(shell, Case("hypothesis: slicing", f"t = x6[{text}]\nl = items[{text}]\nc = m[{text}, {text}]\n"))


@_SETTINGS
@given(steps=st.lists(st.tuples(st.sampled_from(["+=", "-=", "*=", "/="]), st.sampled_from(["1.0", "2.0", "x",
                                                                                            "0.5"])),
                      min_size=1, max_size=5))
def test_augmented_assignment_forms(shell, steps):
    body = "a = x * 1.0\nk = 3\n" + "".join(f"a {op} {operand}\n" for op, operand in steps)
    body += "".join(f"k {op} {len(operand)}\n" for op, operand in steps if op != "/=")
    check_case(shell, Case("hypothesis: augmented assignment", body))


@_SETTINGS
@given(size=st.integers(2, 6), star=st.integers(0, 2))
def test_unpacking_forms(shell, size, star):
    names = [f"u{i}" for i in range(min(size, 3))]
    if star < len(names):
        names[star] = "*" + names[star]
    elif len(names) < size:
        return
    check_case(shell, Case("hypothesis: unpacking",
                           f"{', '.join(names)} = tf.unstack(tf.range({size}))\n"
                           f"{', '.join(names)} = list(range({size}))\n"))


@_SETTINGS
@given(kind=st.sampled_from(["[{e} for i in range({k}){cond}]", "{{{e} for i in range({k}){cond}}}",
                             "{{i: {e} for i in range({k}){cond}}}", "sum({e} for i in range({k}){cond})",
                             "tf.stack([{e} for i in range({k}){cond}] + [x])"]),
       k=st.integers(1, 5), element=st.sampled_from(["i", "i * i", "x * i", "float(i) * n"]),
       cond=st.sampled_from(["", " if i % 2", " if i > 1", " for j in range(2)"]))
def test_comprehension_forms(shell, kind, k, element, cond):
    if "{i:" in kind and "x *" in element:
        element = "i * n"
    if kind.startswith("{{") and "i:" not in kind and "x *" in element:
        element = "i + n"  # tensors are not hashable in a set
    if kind.startswith("tf.stack"):
        element = "x * i"  # one shape (a shape error is a corpus case of its own)
    body = f"c = {kind.format(e=element, k=k, cond=cond)}\n"
    check_case(shell, Case("hypothesis: comprehension", body))


@_SETTINGS
@given(spec=st.sampled_from(["", ":>6", ":05.1f", "!r", ":x", ":,"]), value=st.sampled_from(["n", "n * 1000",
                                                                                             "3.5", "len(items)"]))
def test_fstring_forms(shell, spec, value):
    if spec in (":x", ":,") and "." in value:
        spec = ""
    if spec == ":x" and value == "3.5":
        spec = ""
    check_case(shell, Case("hypothesis: f-string",
                           f"msg = f'{{{value}{spec}}} / {{x.shape}} / {{x.dtype.name!s}}'\n"))


def test_zz_tallies(shell):
    """The tallies by construct (``pytest -s`` prints them); the corpus has 150 cells or more."""
    total = sum(sum(c.values()) for c in TALLY.values())
    width = max(len(k) for k in TALLY) if TALLY else 10
    lines = [f"{'construct':<{width}}  equal  explained", *(
        f"{name:<{width}}  {counts['equal']:>5}  {counts['explained']:>9}" for name, counts in sorted(TALLY.items()))]
    lines.append(f"{'total':<{width}}  {sum(c['equal'] for c in TALLY.values()):>5}  "
                 f"{sum(c['explained'] for c in TALLY.values()):>9}   ({total} cells, none failing silently)")
    print("\n" + "\n".join(lines))
    if len(TALLY) > 20:  # the whole module ran (not a selection of it)
        assert total >= 150

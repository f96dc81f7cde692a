"""%%tfgraph's notes about a cell: one per kind listing its lines, a pruned call that a plain cell would see fail,
no warning that only tfmagic's own tracing causes, what a graph does differently said at its line (a seed set
in the cell, try/except of graph errors, an op the graph prunes), trace-time pitfalls, and no false alarms."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from .shellutil import magic_notes, output_text, run

ASSERT_RAISES = '''\
import contextlib
@contextlib.contextmanager
def assert_raises(error_class):
    try:
        yield
    except error_class:
        print("caught the expected", error_class.__name__)
    else:
        raise Exception(f"Expected {error_class.__name__} to be raised but no error was raised!")
'''


@pytest.fixture(scope="module")
def ns(ip):
    run(ip, ASSERT_RAISES + "double_s = tf.function(lambda t: t + t).get_concrete_function("
                            "tf.TensorSpec(None, tf.string))\nx = tf.constant([1., 2.])")
    return ip


def test_several_prints_are_one_note_listing_their_lines(ns):
    cell = ('print("start")\ny = x * 2\nprint("y")\nz = y + 1\nprint("z")\nprint("again")\nprint("more")\n'
            'w = z - 1\ntf.reduce_sum(w)')
    plain, plain_out = run(ns, cell)
    result, captured = run(ns, "%%tfgraph --show none\n" + cell)
    assert result.success and float(result.result) == float(plain.result) == 6.0
    assert captured.stdout == plain_out.stdout  # the prints ran once, as the plain cell's did
    notes = magic_notes(captured)
    assert len(notes) == 1, notes
    assert notes[0].startswith("%%tfgraph: lines 1, 3, 5-7:\n  print() runs only while TensorFlow traces")


def test_a_pruned_concrete_call_with_a_wrong_dtype_is_said_at_its_line(ns):
    plain, plain_out = run(ns, "double_s(tf.constant(1))\nr = 1")
    assert type(plain.error_in_exec).__name__ == "InvalidArgumentError"
    result, captured = run(ns, "%%tfgraph --show none\ndouble_s(tf.constant(1))\nr = 1")
    assert result.success  # the graph prunes the call: this is where tfmagic cannot give the plain outcome...
    notes = "\n".join(magic_notes(captured))  # ...so it says so, at the line
    assert "line 1: double_s(tf.constant(1))" in notes
    assert "passes int32 where it takes string: a plain cell raises InvalidArgumentError here" in notes
    assert "prunes" in notes


def test_assert_raises_around_a_wrong_dtype_call_fails_with_a_note_at_the_call(ns):
    cell = "with assert_raises(tf.errors.InvalidArgumentError):\n    double_s(tf.constant(1))"
    plain, plain_out = run(ns, cell)
    assert plain.success and "caught the expected InvalidArgumentError" in plain_out.stdout
    result, captured = run(ns, "%%tfgraph --show none\n" + cell)
    assert not result.success
    text = captured.stdout
    assert "Expected InvalidArgumentError to be raised" in text
    assert "note: line 2: double_s(tf.constant(1))" in text
    assert "the call of" in text and "passes int32 where it takes string" in text
    assert "nothing was raised while tracing" in text and "check eager behaviour" in text


GEN = "def gen3():\n    for k in range(3):\n        yield k\n"
FROM_GENERATOR = "ds3 = tf.data.Dataset.from_generator(gen3, output_types=tf.int32, output_shapes=())\n"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _tf_warnings(ip, cell):
    import tensorflow as tf

    logger = tf.get_logger()
    handler = _Records()
    logger.addHandler(handler)
    try:
        result, _ = run(ip, cell)
    finally:
        logger.removeHandler(handler)
    return result, [m for m in handler.messages if "deprecated" in m]


def test_graph_only_deprecation_warnings_of_tfmagics_tracing_are_kept_out(ns):
    run(ns, GEN)
    plain, plain_warnings = _tf_warnings(ns, FROM_GENERATOR + "ds3.reduce(0, lambda a, b: a + b)")
    magic, magic_warnings = _tf_warnings(ns, "%%tfgraph --show none\n" + FROM_GENERATOR +
                                         "ds3.reduce(0, lambda a, b: a + b)")
    assert int(plain.result) == int(magic.result) == 3
    assert plain_warnings == magic_warnings == []  # eager code does not warn, and neither does the magic
    # the user's own tf.function still gets TensorFlow's warning (tfmagic left its warn-once memory alone)
    _, own = _tf_warnings(ns, "@tf.function\ndef from_gen():\n    " + FROM_GENERATOR.strip() +
                          "\n    return ds3.reduce(0, lambda a, b: a + b)\nfrom_gen()")
    assert any("with output_types is deprecated" in m for m in own), own


# ---------------------------------------------------------------------------
# What a graph does differently from the plain cell, said at its line (cells of a published chapter, issue 12)


def test_a_seed_set_in_the_cell_is_named(ip):
    result, captured = run(ip, "%%tfgraph --show none\ntf.keras.utils.set_random_seed(42)\nr = tf.random.uniform([2])")
    assert result.success
    notes = output_text(captured, drawings=False)
    assert "line 1: tf.keras.utils.set_random_seed(42)" in notes and "does not reseed" in notes
    assert "set the seed in a plain cell" in notes


def test_try_except_of_graph_errors_is_named_and_an_except_print_is_not_said_to_have_printed(ip):
    run(ip, "xt = tf.constant([1., 2.])")
    body = ("try:\n    y = xt + 1\nexcept tf.errors.InvalidArgumentError as ex:\n    print(ex)\n    y = xt")
    result, captured = run(ip, "%%tfgraph --show none\n" + body)
    assert result.success and captured.stdout == ""
    notes = output_text(captured, drawings=False)
    assert "line 1: try:" in notes and "is not caught here" in notes
    assert "line 4: print(ex)" in notes and "runs only if the try block raised" in notes
    assert "printed now" not in notes
    result, captured = run(ip, "%%tfgraph --show none\ntry:\n    y = tf.gather(xt, 10)\n"
                               "except tf.errors.InvalidArgumentError:\n    y = xt")
    assert isinstance(result.error_in_exec, tf.errors.InvalidArgumentError)
    assert "----> 2     y = tf.gather(xt, 10)" in captured.stdout and "note: line 1: try:" in captured.stdout


def test_an_unused_op_is_pruned_and_said_so(ip):
    run(ip, "xp = tf.constant([1., 2.])")
    result, captured = run(ip, "%%tfgraph --show none\nyp = xp * 2\ntf.gather(xp, 10)\nzp = yp + 1")
    assert result.success  # a plain cell fails here: the graph never runs the gather
    assert not run(ip, "tf.gather(xp, 10)")[0].success
    notes = output_text(captured, drawings=False)
    assert "line 2: tf.gather(xp, 10)" in notes and "prunes its ops (GatherV2)" in notes


# ---------------------------------------------------------------------------
# Trace-time pitfalls: Python code that runs only while TensorFlow traces

PITFALLS = {
    "print": ("print(xs)", "print() runs only while TensorFlow traces", "tf.print"),
    "append": ("seen.append(xs)", "appends to a Python list while tracing only", "tf.TensorArray"),
    "np_random": ("noise = np.random.rand()", "draws its random number once, while tracing", "tf.random"),
    "random": ("import random\nr = random.random()", "random.random() draws its random number once", "tf.random"),
    "time": ("import time\nstamp = time.time()", "read once, while tracing", "tf.timestamp"),
    "np_sum": ("total = np.sum([1.0, 2.0])", "np.sum() runs in NumPy while tracing", "tf.reduce_sum"),
    "sorted": ("order = sorted([3, 1, 2])", "sorted() runs in Python while tracing", "tf.sort"),
}


@pytest.mark.parametrize("kind", sorted(PITFALLS))
def test_pitfall_is_flagged_with_its_line(ip, kind):
    code, message, fix = PITFALLS[kind]
    run(ip, "xs = tf.constant([1.0, 2.0])\nseen = []")
    result, captured = run(ip, f"%%tfgraph --show none\nys = xs * 2.0\n{code}\n")
    assert result.success, result.error_in_exec
    text = output_text(captured)
    assert message in text and fix in text
    line = code.splitlines()[-1]
    assert f"line {1 + len(code.splitlines())}: {line}" in text


def test_unrolled_range_loop_says_how_many_copies(ip):
    run(ip, "xs = tf.constant([1.0, 2.0])")
    _, captured = run(ip, "%%tfgraph --show none\nacc = xs\nfor i in range(5):\n    acc = acc * 2.0 + 1.0\n")
    text = output_text(captured)
    assert "line 2: for i in range(5):" in text and "5 copies of its body" in text and "tf.range" in text
    np.testing.assert_allclose(ip.user_ns["acc"].numpy(), [63.0, 95.0])


@pytest.mark.parametrize("body", [
    "ys = tf.nn.relu(xs * 2.0 - 1.0)\nzs = tf.reduce_sum(ys)",
    "out = net(tf.reshape(xs, (1, 2)))",
    "total = tf.constant(0.0)\nfor i in tf.range(3):\n    total += tf.cast(i, tf.float32)",
    "if tf.reduce_sum(xs) > 0:\n    ys = xs\nelse:\n    ys = -xs",
])
def test_no_false_alarms(ip, body):
    run(ip, "xs = tf.constant([1.0, 2.0])\nnet = tf.keras.Sequential([tf.keras.layers.Dense(3), "
            "tf.keras.layers.Dense(1)])")
    run(ip, "%tfretrace --watch")
    result, captured = run(ip, f"%%tfgraph --show none\n{body}")
    result2, captured2 = run(ip, f"%%tfgraph --show none\n{body}")
    run(ip, "%tfretrace --off")
    assert result.success and result2.success
    notices = output_text(captured)
    if "tf.range" in body:  # the one true difference from a plain cell: the loop's own names stay in the graph
        assert notices.count("%%tfgraph:") == 1 and "i is not written back: bound inside a graph loop" in notices
    else:
        assert notices == ""
    assert output_text(captured2) == ""

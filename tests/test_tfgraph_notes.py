"""%%tfgraph's notes about a cell: one per kind listing its lines, a pruned call that a plain cell would see fail,
and no warning that only tfmagic's own tracing causes."""

import logging

import pytest

from .shellutil import run

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


def _notes(captured):
    return [o.data["text/plain"] for o in captured.outputs if o.data.get("text/plain", "").startswith("%%tfgraph:")]


def test_several_prints_are_one_note_listing_their_lines(ns):
    cell = ('print("start")\ny = x * 2\nprint("y")\nz = y + 1\nprint("z")\nprint("again")\nprint("more")\n'
            'w = z - 1\ntf.reduce_sum(w)')
    plain, plain_out = run(ns, cell)
    result, captured = run(ns, "%%tfgraph --show none\n" + cell)
    assert result.success and float(result.result) == float(plain.result) == 6.0
    assert captured.stdout == plain_out.stdout  # the prints ran once, as the plain cell's did
    notes = _notes(captured)
    assert len(notes) == 1, notes
    assert notes[0].startswith("%%tfgraph: lines 1, 3, 5-7:\n  print() runs only while TensorFlow traces")


def test_a_pruned_concrete_call_with_a_wrong_dtype_is_said_at_its_line(ns):
    plain, plain_out = run(ns, "double_s(tf.constant(1))\nr = 1")
    assert type(plain.error_in_exec).__name__ == "InvalidArgumentError"
    result, captured = run(ns, "%%tfgraph --show none\ndouble_s(tf.constant(1))\nr = 1")
    assert result.success  # the graph prunes the call: this is where tfmagic cannot give the plain outcome...
    notes = "\n".join(_notes(captured))  # ...so it says so, at the line
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

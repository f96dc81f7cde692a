"""trace_cell without IPython: values, reuse, retraces, failures."""

import numpy as np
import pytest
import tensorflow as tf

from tfmagic.requests import FunctionOptions
from tfmagic.tracing import CellCache, trace_cell


@pytest.fixture
def namespace():
    return {"tf": tf, "np": np, "x": tf.constant([1.0, 2.0]), "n": tf.constant(4)}


def test_outputs_are_eager_tensors_and_python_values(namespace):
    run = trace_cell("k = 3\ny = x * k\ny + 1", namespace, cache=CellCache())
    assert run.outputs["k"] == 3 and isinstance(run.outputs["k"], int)
    np.testing.assert_allclose(run.outputs["y"].numpy(), [3.0, 6.0])
    np.testing.assert_allclose(run.result.numpy(), [4.0, 7.0])
    assert run.inputs == ("x",)
    assert "y" not in namespace  # the core never writes the namespace


def test_same_inputs_reuse_the_trace_new_shape_traces_again(namespace):
    cache = CellCache()
    first = trace_cell("y = x * 2", namespace, cache=cache)
    again = trace_cell("y = x * 2", namespace, cache=cache)
    assert (first.traced, again.traced, again.trace_count) == (True, False, 1)
    namespace["x"] = tf.constant([1.0, 2.0, 3.0])
    third = trace_cell("y = x * 2", namespace, cache=cache)
    assert third.retraced and third.trace_count == 2 and third.trace.number == 2
    np.testing.assert_allclose(third.outputs["y"].numpy(), [2.0, 4.0, 6.0])


def test_python_scalar_inputs_trace_per_value(namespace):
    cache = CellCache()
    namespace["k"] = 10
    assert trace_cell("y = x * k", namespace, cache=cache).trace_count == 1
    namespace["k"] = 20
    run = trace_cell("y = x * k", namespace, cache=cache)
    assert run.retraced
    np.testing.assert_allclose(run.outputs["y"].numpy(), [20.0, 40.0])


def test_python_values_follow_the_trace_that_ran(namespace):
    cache = CellCache()
    source = "label = 'len%d' % x.shape[0]\ny = x + 1"
    assert trace_cell(source, namespace, cache=cache).outputs["label"] == "len2"
    namespace["x"] = tf.constant([1.0, 2.0, 3.0])
    assert trace_cell(source, namespace, cache=cache).outputs["label"] == "len3"
    namespace["x"] = tf.constant([5.0, 6.0])
    run = trace_cell(source, namespace, cache=cache)
    assert not run.traced and run.outputs["label"] == "len2"


def test_a_new_object_is_never_a_stale_graph(namespace):
    cache = CellCache()
    namespace["scale"] = tf.Variable(2.0)
    assert trace_cell("scale * x", namespace, cache=cache).result.numpy().tolist() == [2.0, 4.0]
    namespace["scale"] = tf.Variable(5.0)
    assert trace_cell("scale * x", namespace, cache=cache).result.numpy().tolist() == [5.0, 10.0]


def test_named_cell_reuses_its_function_across_sources(namespace):
    cache = CellCache()
    a = trace_cell("y = x + 1", namespace, cache=cache, name="step")
    b = trace_cell("y = x + 1", namespace, cache=cache, name="step")
    assert a.function is b.function and not b.traced
    c = trace_cell("y = x + 2", namespace, cache=cache, name="step")
    assert c.function is not a.function  # a new body is a new function
    np.testing.assert_allclose(c.outputs["y"].numpy(), [3.0, 4.0])


def test_options_reach_tf_function(namespace):
    run = trace_cell("y = x * 2", namespace, options=FunctionOptions(jit_compile=True, reduce_retracing=True,
                                                                   autograph=False))
    fn = run.function
    assert fn._jit_compile is True and fn._autograph is False
    assert fn._reduce_retracing is True


def test_the_cell_exception_propagates_with_its_line(namespace):
    with pytest.raises(ZeroDivisionError) as info:
        trace_cell("y = x + 1\n1 / 0\n", namespace)
    frames = info.value.tfmagic_frames
    assert [(f.lineno, f.code) for f in frames] == [(2, "1 / 0")]
    rendered = "\n".join(info.value._render_traceback_())
    assert "----> 2 1 / 0" in rendered and "ZeroDivisionError: division by zero" in rendered
    assert "tensorflow" not in rendered and "tfmagic" not in rendered


def test_runtime_op_error_names_the_cell_line(namespace):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        trace_cell("y = x + 1\ntf.debugging.assert_positive(-y)\n", namespace)
    assert [f.lineno for f in info.value.tfmagic_frames] == [2]
    rendered = "\n".join(info.value._render_traceback_())
    assert "while running the cell's graph" in rendered
    assert "Condition x > 0 did not hold" in rendered
    assert "Detected at node" not in rendered

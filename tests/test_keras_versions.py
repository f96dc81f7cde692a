"""Every Keras our users have (issue 27): Keras 3, and Keras 2 (TensorFlow 2.15, or tf-keras under
``TF_USE_LEGACY_KERAS=1``), read as what they are.  Each test runs the same cells plain and under the magic on
whatever Keras this process has; CI runs this module on all three (``.ci/run``).
"""

import pytest

from .shellutil import differential, output_text, run


def test_an_unbuilt_model_called_in_a_graph_cell_gives_the_plain_value(ip):
    """Keras 2's ``variables`` property raises ValueError on an unbuilt model: the cell failed before tracing."""
    setup = ("x = tf.ones((1, 3))\nnet = tf.keras.Sequential([tf.keras.layers.Dense(3, kernel_initializer='ones'), "
             "tf.keras.layers.Dense(1, kernel_initializer='ones')])")
    differential(ip, setup, "out = net(x)", ("out",))


def test_a_layer_built_on_its_first_call_is_no_variable_the_cell_creates(ip):
    """Keras 2's weights are tf.Variables, whose ``.value`` is a method: no identity matched, so every run
    retraced as a cell creating variables, printed again, and blamed a shape change on variables."""
    run(ip, "layer = tf.keras.layers.Dense(2, kernel_initializer='ones')\nx = tf.ones((1, 3))")
    cell = "%%tfgraph --show none\ny = layer(x)\nprint('traced')"
    _, first = run(ip, cell)
    result, second = run(ip, cell)
    assert "traced" in first.stdout and result.success and "traced" not in second.stdout
    assert "creates variables" not in output_text(second, printed=True)
    run(ip, "x = tf.ones((2, 3))")
    _, third = run(ip, cell)
    text = output_text(third, printed=True)
    assert "retraced: trace 2 (against trace 1): x: float32[1,3] -> float32[2,3]" in text
    assert "creates variables" not in text
    assert ip.user_ns["y"].numpy().tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_a_metrics_update_is_the_plain_cells_value_not_a_graph_op(ip):
    """Keras 2's ``update_state`` returns its assign's op inside a function: the cell showed
    ``<tf.Operation 'AssignAddVariableOp_1'>``."""
    setup = "acc = tf.keras.metrics.Mean()\nx = tf.constant([1., 2., 6.])"
    captured = differential(ip, setup, "updated = acc.update_state(x)\nmean = acc.result()", ("mean",))
    assert "Operation" not in output_text(captured, printed=True)
    run(ip, setup)
    result, captured = run(ip, "%%tfgraph --show none\nacc.update_state(x)")
    assert result.success and "tf.Operation" not in output_text(captured, printed=True)
    assert float(ip.user_ns["acc"].result()) == 3.0
    # bound in a branch, read in the next cell: the plain cell's value too
    seen = []
    for prefix in ("", "%%tfgraph --show none\n"):
        run(ip, setup + "\nflag = True")
        result, _ = run(ip, prefix + "if flag:\n    updated = acc.update_state(x)")
        assert result.success
        result, _ = run(ip, "shown = None if updated is None else float(updated)")
        assert result.success, result.error_in_exec
        seen.append(ip.user_ns["shown"])
    assert seen[0] == seen[1]


MODEL = """\
class Net(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.d = tf.keras.layers.Dense(1, kernel_initializer='ones')

    def call(self, t):
        return self.d(t)

net2 = Net()
out2 = net2(x)
"""


def test_a_model_constructed_in_a_graph_cell_trains_in_a_later_plain_cell(ip):
    """Keras 2 makes a model's fit/evaluate/predict counters only outside a function: ``fit`` failed with
    "'Net' object has no attribute '_train_counter'"."""
    fit = ("net2.compile(tf.keras.optimizers.SGD(0.1), 'mse')\nlosses = net2.fit(x, y, epochs=2, verbose=0)"
           ".history['loss']\nafter = net2(x)")
    setup = "x = tf.ones((4, 3))\ny = tf.zeros((4, 1))"
    values = []
    for prefix in ("", "%%tfgraph --show none\n"):
        run(ip, setup)
        result, _ = run(ip, prefix + MODEL)
        assert result.success, result.error_in_exec
        result, captured = run(ip, fit)
        assert result.success, (result.error_in_exec, captured.stdout)
        values.append((ip.user_ns["losses"], ip.user_ns["after"].numpy().ravel().tolist()))
    (plain_losses, plain_after), (graph_losses, graph_after) = values
    assert graph_losses == pytest.approx(plain_losses) and graph_after == pytest.approx(plain_after)

"""%%tfgraph --profile: where the time goes, op by op and by layer, the drawing filled by each op's share; in a real
shell. (Drawn trace diffs: test_tfgraph_diff.py.)"""

import re
import signal

import pygraphviz
import pytest
import tensorflow as tf

from tfmagic.profile import share_colour

from .shellutil import output_texts, output_with, run

SETUP = """
a = tf.random.normal((768, 768), seed=1)
b = tf.random.normal((768, 768), seed=2)
steps = tf.Variable(0)
"""

#: One large matmul, then a few tiny ops that wait for it: op times add up within the wall time.
MATMUL_CELL = "c = tf.matmul(a, b)\nd = c * 2.0\nsteps.assign_add(1)\ntf.reduce_sum(d) + 1.0"


def _report(captured):
    return output_with(captured, "calls measured")


def _per_call(report: str, what: str) -> float:
    """``wall 13.2 ms`` -> microseconds."""
    value, unit = re.search(rf"{what} ([\d.]+) (us|ms|s)\b", report).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


@pytest.fixture(autouse=True)
def _setup(ip):
    run(ip, SETUP)


def test_the_matmul_ranks_first_with_the_largest_share_and_colour(ip, tmp_path):
    path = tmp_path / "p.dot"
    result, captured = run(ip, f"%%tfgraph --profile 5 -o {path}\n{MATMUL_CELL}")
    assert result.success, result.error_in_exec
    report = _report(captured)
    rows = [line for line in report.splitlines()[2:] if re.match(r"^\S+\s+\S+", line) and " CPU" in line]
    assert rows[0].split()[0] == "MatMul"
    shares = [float(s) for s in re.findall(r"([\d.]+)%  ", report.split("by layer / name scope")[0])]
    assert shares[0] == max(shares) and shares[0] > 50
    wall, ops = _per_call(report, "wall"), _per_call(report, "ops")
    assert 0 < ops <= wall
    graph = pygraphviz.AGraph(string=path.read_text())
    fills = {graph.get_node(n).attr["label"].split("\\n")[0]: graph.get_node(n).attr["fillcolor"] for n in graph.nodes()}
    def green(colour):  # the scale runs white -> yellow -> orange -> red: less green is more time
        return int(colour[3:5], 16)

    assert fills["MatMul"] != share_colour(0.0) and green(fills["MatMul"]) == min(green(c) for c in fills.values())
    assert abs(green(fills["MatMul"]) - green(share_colour(shares[0] / 100))) <= 2  # the scale of its share
    assert "fill: share of the measured op time" in graph.graph_attr["label"]
    assert int(ip.user_ns["steps"].numpy()) == 1  # the profiled calls put the variable back


def test_a_keras_training_step_groups_by_layer(ip):
    run(ip, "net = tf.keras.Sequential([tf.keras.Input((32,)), tf.keras.layers.Dense(128, name='wide'), "
            "tf.keras.layers.Dense(2, name='narrow')])\nxin = tf.random.normal((256, 32))\n"
            "sgd = tf.keras.optimizers.SGD()")
    kernel = ip.user_ns["net"].layers[0].kernel.numpy().copy()
    result, captured = run(ip, "%%tfgraph --profile 3 --show none\nwith tf.GradientTape() as tape:\n"
                               "    loss = tf.reduce_mean(net(xin) ** 2)\n"
                               "grads = tape.gradient(loss, net.trainable_variables)\n"
                               "sgd.apply_gradients(zip(grads, net.trainable_variables))\nloss")
    assert result.success, result.error_in_exec
    groups = _report(captured).split("by layer / name scope")[1]
    names = [line.split()[0] for line in groups.strip().splitlines()[1:]]
    assert any(n.endswith("/wide") for n in names) and any(n.endswith("/narrow") for n in names)  # layers' names
    assert "(backward)" in groups
    # one training step ran (the cell); the profiled ones were put back
    stepped = ip.user_ns["net"].layers[0].kernel.numpy()
    result, _ = run(ip, "%%tfgraph --show none\nwith tf.GradientTape() as tape:\n"
                        "    loss = tf.reduce_mean(net(xin) ** 2)\n"
                        "grads = tape.gradient(loss, net.trainable_variables)\n"
                        "sgd.apply_gradients(zip(grads, net.trainable_variables))\nloss")
    assert not (stepped == kernel).all()


def _profile_works_again(ip):
    result, captured = run(ip, "%%tfgraph --profile 2 --show none\ne = tf.matmul(a, b)")
    assert result.success and "calls measured" in "".join(output_texts(captured))


def test_a_failing_profiled_call_stops_the_profiler(ip):
    run(ip, "count = tf.Variable(0)")
    cell = "count.assign_add(1)\ntf.debugging.assert_less(count, 3)\nf = a * 2.0"
    result, captured = run(ip, f"%%tfgraph --profile 4 --show none\n{cell}")
    assert result.success  # the cell ran once; its third profiled call failed
    note = output_with(captured, "a profiled call failed")
    assert "InvalidArgumentError" in note and len(note.splitlines()) == 1
    assert int(ip.user_ns["count"].numpy()) == 1
    _profile_works_again(ip)


def test_an_interrupted_profiled_cell_stops_the_profiler(ip):
    def interrupt(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        result, _ = run(ip, "%%tfgraph --profile 100000 --show none\ng = tf.matmul(a, b)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    _profile_works_again(ip)


def test_a_profiler_already_running_is_one_line_and_the_result_stands(ip, tmp_path):
    tf.profiler.experimental.start(str(tmp_path))
    try:
        result, captured = run(ip, "%%tfgraph --profile 2 --show none\nh = a + 1.0\ntf.reduce_sum(h)")
    finally:
        tf.profiler.experimental.stop()
    assert result.success
    note = output_with(captured, "--profile")
    assert "profiler could not start" in note and len(note.splitlines()) == 1
    assert "h" in ip.user_ns and "tf.Tensor" in captured.stdout  # written back, and the result shown


def test_a_bad_profile_count_is_refused_before_the_cell_runs(ip):
    from IPython.core.error import UsageError

    run(ip, "ran = 0")
    for count in ("0", "-3"):
        result, _ = run(ip, f"%%tfgraph --profile {count} --show none\nran = 1")
        assert type(result.error_in_exec) is UsageError and "N must be 1 or more" in str(result.error_in_exec)
    assert ip.user_ns["ran"] == 0


def test_a_profile_where_no_op_ran_says_so(ip):
    result, captured = run(ip, "%%tfgraph --profile 2 --show none\ntf.linalg.matmul(tf.ones((20, 20)), tf.ones((20, 20)))")
    assert result.success
    assert "no op ran in the measured calls" in _report(captured)

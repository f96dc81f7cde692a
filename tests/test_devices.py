"""%tfdevice in a real shell on the CPU: pins, errors, soft placement, the placement log, strategies."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from IPython.core.error import UsageError

from .shellutil import output_text, run

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "devices_two_cpus.py"


def _hooked(ip):
    return any(getattr(getattr(cb, "__self__", None), "_before_pinned_cell", None) is not None
               and cb.__name__ in ("_before_pinned_cell", "_after_pinned_cell")
               for event in ("pre_run_cell", "post_run_cell") for cb in ip.events.callbacks[event])


def _device_stack():
    from tensorflow.python.eager import context

    return context.context().device_name


@pytest.fixture
def unpinned(ip):
    yield ip
    run(ip, "%tfdevice off")
    run(ip, "%tfdevice --strategy off")


def test_table_lists_the_cpu(unpinned):
    result, captured = run(unpinned, "%tfdevice")
    table = str(result.result)
    assert "physical  CPU   /physical_device:CPU:0" in table and "logical   CPU   /device:CPU:0" in table
    assert "no pin" in table
    assert "<table>" in result.result._repr_mimebundle_()["text/html"]


def test_pin_to_cpu_places_results_there_and_off_ends_it(unpinned):
    ip = unpinned
    before = _device_stack()
    _, captured = run(ip, "%tfdevice cpu")
    assert "following cells run on /CPU:0" in captured.stdout
    result, captured = run(ip, "pinned_y = tf.constant([1.0]) * 2\npinned_v = tf.Variable(1.0)")
    assert result.success
    assert ip.user_ns["pinned_y"].device.endswith("device:CPU:0")
    text = output_text(captured)
    assert "pinned to /CPU:0: the cell's results: pinned_y on /job:localhost/replica:0/task:0/device:CPU:0" in text
    assert "pinned_v on /job:localhost/replica:0/task:0/device:CPU:0" in text
    run(ip, "%tfdevice off")
    _, captured = run(ip, "after_off = tf.constant(1.0)")
    assert "tfdevice" not in output_text(captured)
    assert _device_stack() == before
    assert not _hooked(ip)  # off took the hooks away, once the cell that said off was over


def test_pin_survives_a_failing_cell_and_leaves_no_device_scope_behind(unpinned):
    ip = unpinned
    before = _device_stack()
    run(ip, "%tfdevice cpu:0")
    result, _ = run(ip, "1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert _device_stack() == before  # the pin is only entered while a cell runs
    _, captured = run(ip, "still = tf.constant(2.0) * 2")
    assert "pinned to /CPU:0" in output_text(captured)
    run(ip, "%tfdevice off")
    assert _device_stack() == before


def test_unknown_device_names_the_devices_and_changes_nothing(unpinned):
    ip = unpinned
    names = {k for k in ip.user_ns if not k.startswith("_")}
    result, _ = run(ip, "%tfdevice gpu:3")
    assert type(result.error_in_exec) is UsageError
    assert str(result.error_in_exec) == "%tfdevice: no device /GPU:3 here; the devices are: /device:CPU:0"
    result, _ = run(ip, "%%tfdevice tpu\nnever = 1")
    assert "no device /TPU:0 here" in str(result.error_in_exec)
    assert {k for k in ip.user_ns if not k.startswith("_")} == names
    result, _ = run(ip, "%tfdevice banana")
    assert "'banana' is not a device" in str(result.error_in_exec)


def test_soft_falls_back_and_says_where_the_cell_ran(unpinned):
    ip = unpinned
    _, captured = run(ip, "%tfdevice gpu --soft")
    assert "no device /GPU:0 here (/device:CPU:0): with --soft" in output_text(captured)
    result, captured = run(ip, "soft_y = tf.constant([1.0]) * 3")
    assert result.success
    assert "pinned to /GPU:0: the cell's results: soft_y on /job:localhost/replica:0/task:0/device:CPU:0" in \
        output_text(captured)


def test_cell_pin_holds_for_one_cell_nested_in_a_line_pin(unpinned):
    ip = unpinned
    before = _device_stack()
    result, captured = run(ip, "%%tfdevice cpu:0\ncell_y = tf.constant([1.0]) + 1\ncell_y")
    assert result.success and ip.user_ns["cell_y"].device.endswith("CPU:0")
    assert "pinned to /CPU:0" in output_text(captured)
    assert _device_stack() == before
    run(ip, "%tfdevice cpu")
    result, _ = run(ip, "%%tfdevice cpu:0\n1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    run(ip, "%tfdevice off")
    assert _device_stack() == before


def test_log_shows_where_ops_ran(unpinned):
    ip = unpinned
    result, captured = run(ip, "%%tfdevice cpu --log\n@tf.function\ndef triple(t):\n    return t * 3\n"
                               "logged = triple(tf.constant(2.0)) + 1")
    assert result.success
    text = output_text(captured)
    assert "tfdevice: where the cell's ops ran" in text
    assert "__inference_triple" in text and "AddV2" in text and "device:CPU:0" in text


def test_tfgraph_and_tape_cells_run_pinned(unpinned):
    ip = unpinned
    run(ip, "%tfdevice cpu")
    result, captured = run(ip, "%%tfgraph --show none\ng_y = tf.constant([1.0, 2.0]) * 2.0")
    assert result.success and "g_y on /job:localhost/replica:0/task:0/device:CPU:0" in output_text(captured)
    run(ip, "tw = tf.Variable(2.0)")
    result, captured = run(ip, "%%tape\ntz = tw * tw\ntz")
    assert result.success and float(ip.user_ns["grads"]["tw"]) == 4.0


def test_strategy_needing_a_tpu_is_a_clear_error(unpinned):
    result, _ = run(unpinned, "%tfdevice --strategy tpu")
    assert type(result.error_in_exec) is UsageError
    assert "no TPU to connect to" in str(result.error_in_exec)
    result, _ = run(unpinned, "%tfdevice --strategy sideways")
    assert "choose mirrored, multiworker, tpu or off" in str(result.error_in_exec)


def test_unload_removes_the_pin_hooks(ip):
    run(ip, "%tfdevice cpu")
    ip.run_line_magic("unload_ext", "tfmagic")
    try:
        _, captured = run(ip, "unloaded = 1")
        assert "pinned to" not in output_text(captured)
        assert not any(getattr(cb, "__self__", None).__class__.__name__ == "TFMagics"
                       for event in ("pre_run_cell", "post_run_cell") for cb in ip.events.callbacks[event])
    finally:
        ip.run_line_magic("load_ext", "tfmagic")


@pytest.fixture(scope="module")
def two_cpus():
    """The two-logical-CPU script's results (a fresh process: the split must precede TensorFlow's start)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_two_logical_cpus_are_listed(two_cpus):
    assert "tfdevice: logical devices: /device:CPU:0, /device:CPU:1" in two_cpus["split"]["stdout"]
    assert "logical   CPU   /device:CPU:1" in two_cpus["table_value"]


def test_mirrored_strategy_makes_mirrored_variables_and_tfgraph_runs_under_it(two_cpus):
    assert two_cpus["strategy"]["success"]
    assert "MirroredStrategy over /job:localhost/replica:0/task:0/device:CPU:0, " \
           "/job:localhost/replica:0/task:0/device:CPU:1" in two_cpus["strategy"]["stdout"]
    assert two_cpus["variable_kind"] == "MirroredVariable"
    assert [d[-5:] for d in two_cpus["variable_devices"]] == ["CPU:0", "CPU:1"]
    assert two_cpus["tfgraph_under_strategy"]["success"] and two_cpus["y"] == 2.0
    assert two_cpus["plain_kind"] == "ResourceVariable"  # --strategy off left the scope


def test_pin_to_the_second_cpu(two_cpus):
    assert two_cpus["p_device"].endswith("device:CPU:1")


def test_drawing_colours_ops_by_device(two_cpus):
    svg = two_cpus["colours"]["svgs"][0]
    assert "ops filled by device" in svg and "/device:CPU:1" in svg


def test_split_cpu_too_late_is_explained(two_cpus):
    assert "too late to split the CPU" in two_cpus["too_late"]["error"]

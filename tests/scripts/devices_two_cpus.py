"""Run in a fresh process by tests/test_devices.py: %tfdevice over two logical CPUs, printed as JSON.

--split-cpu must come before TensorFlow initialises its devices, so this cannot share the test
process, where other tests have run ops already.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402


def main():
    ip = InteractiveShell.instance()
    out = {}

    def cell(name, source):
        with capture_output() as captured:
            result = ip.run_cell(source)
        out[name] = {
            "success": result.success,
            "error": repr(result.error_in_exec) if result.error_in_exec else None,
            "stdout": captured.stdout,
            "texts": [o.data.get("text/plain", "") for o in captured.outputs],
            "svgs": [o.data["image/svg+xml"] for o in captured.outputs if "image/svg+xml" in o.data],
        }

    cell("load", "%load_ext tfmagic")
    cell("split", "%tfdevice --split-cpu 2")
    cell("import", "import tensorflow as tf")
    cell("table", "%tfdevice")
    out["table_value"] = str(ip.user_ns["_"])
    cell("strategy", "%tfdevice --strategy mirrored cpu:0 cpu:1")
    cell("variable", "v = tf.Variable(1.0)\nkind = type(v).__name__")
    out["variable_kind"] = ip.user_ns.get("kind")
    out["variable_devices"] = [x.device for x in getattr(ip.user_ns.get("v"), "values", ())]
    cell("tfgraph_under_strategy", "%%tfgraph --show none\ny = v * 2.0")
    out["y"] = float(ip.user_ns["y"].numpy()) if "y" in ip.user_ns else None
    cell("strategy_off", "%tfdevice --strategy off")
    cell("plain_variable", "w = tf.Variable(1.0)\nkind2 = type(w).__name__")
    out["plain_kind"] = ip.user_ns.get("kind2")
    cell("pin_cpu1", "%tfdevice cpu:1")
    cell("pinned", "p = tf.constant([1.0]) * 2")
    out["p_device"] = ip.user_ns["p"].device
    cell("off", "%tfdevice off")
    cell("colours", "%%tfgraph\nx0 = tf.constant([1.0, 2.0])\na = x0 * 2.0\nwith tf.device('/CPU:1'):\n    b = a + 1.0\nb")
    cell("too_late", "%tfdevice --split-cpu 3")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

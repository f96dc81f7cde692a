"""Run in a fresh process by tests/test_memory.py: what an allocator set up before TensorFlow is imported gives.

``oom``: a Jupyter kernel (nbclient) whose CPU allocator is the BFC allocator capped at 64 MiB
(``TF_CPU_ALLOCATOR_USE_BFC=1 TF_CPU_BFC_MEM_LIMIT_IN_MB=64``, TensorFlow's logs on): a ``%%tfgraph`` cell and a
plain cell that calls a ``tf.function``, each measured with ``--memory`` on a small input first, then ask for more
than that; the cells' outputs are printed as JSON.
``peak``: an IPython shell whose CPU allocator is the BFC allocator, ops run one at a time (one inter-op thread:
the same order on every call), runs the training step of tests/test_memory.py as ``%%tfgraph -n step``, calls
``step`` plainly around ``get_memory_info``, then measures it with ``%tfgraph step --memory``; the step's own
peaks are printed.
``nostats``: an IPython shell with oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``), whose CPU allocator keeps no
statistics, runs ``%%tfgraph --memory``.

These environment variables must be set before TensorFlow is imported, so they cannot share the test process.
"""

import json
import os
import sys

OOM_CELLS = (
    "%load_ext tfmagic\nimport tensorflow as tf\nx = tf.random.normal((64, 64))\nw = tf.Variable(tf.zeros((1024, 1024)))",
    "%%tfgraph --memory --show none\nbig = tf.tile(x[None], [20, 1, 1])\ntotal = tf.reduce_sum(big)",
    "x = tf.random.normal((1024, 1024))",
    "%%tfgraph\nbig = tf.tile(x[None], [20, 1, 1])\ntotal = tf.reduce_sum(big)",
    "print(big.shape, total.shape, x.shape)",
    "@tf.function\ndef spread(t):\n    return tf.reduce_sum(tf.tile(t[None], [30, 1, 1]))\n\n"
    "spread(tf.ones((64, 64)))\n%tfgraph spread --memory --show none",
    "spread(x)",
    "print(float(tf.reduce_sum(x * 0.0)))",
    "import os\nos.write(2, b'a line on fd 2\\n')\nprint('after it')",
)


def oom() -> dict:
    import nbformat
    from nbclient import NotebookClient

    os.environ.update(TF_CPU_ALLOCATOR_USE_BFC="1", TF_CPU_BFC_MEM_LIMIT_IN_MB="64", TF_CPP_MIN_LOG_LEVEL="0")
    # A kernel started under pytest leaves fd 2 alone (ipykernel's iostream.py); in Jupyter it sends fd 2 to the cell,
    # where an allocator's dump would flood it: the kernel here is Jupyter's
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in OOM_CELLS]
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    cells = []
    for cell in nb.cells:
        texts = []
        for output in cell.outputs:
            texts.append("".join(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                         + "\n".join(output.get("traceback", [])))
        cells.append({"types": [o.output_type for o in cell.outputs], "texts": texts, "count": cell.execution_count})
    return {"cells": cells}


def peak() -> dict:
    os.environ.update(TF_CPU_ALLOCATOR_USE_BFC="1", TF_CPP_MIN_LOG_LEVEL="3")
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.test_memory import SETUP, STEP

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.run_cell("import tensorflow as tf\n" + SETUP)
    ip.run_cell("%%tfgraph -n step --show none\n" + STEP)
    step, inputs = ip.user_ns["step"], [ip.user_ns["x"], ip.user_ns["y"]]
    plain = []
    for _ in range(6):  # the step's own peak, as get_memory_info sees it around a plain call
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        results = step(*inputs)
        [t.numpy() for t in tf.nest.flatten(results) if hasattr(t, "numpy")]
        plain.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - before)
        del results
    with capture_output() as captured:
        result = ip.run_cell("%tfgraph step --memory --show none")
    report = next(o.data["text/plain"] for o in captured.outputs if "--memory" in o.data.get("text/plain", ""))
    return {"success": result.success, "report": report, "plain": plain}


def nostats() -> dict:
    os.environ.pop("TF_CPU_ALLOCATOR_USE_BFC", None)  # (the suite's, where oneDNN is off by default: conftest.py)
    os.environ.update(TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.run_cell("import tensorflow as tf\nx = tf.ones((64, 64))")
    with capture_output() as captured:
        result = ip.run_cell("%%tfgraph --memory --show none\ny = tf.matmul(x, x)\ny[0, 0]")
    return {"success": result.success, "texts": [o.data.get("text/plain", "") for o in captured.outputs],
            "y": float(ip.user_ns["y"][0, 0])}


if __name__ == "__main__":
    print(json.dumps({"oom": oom, "peak": peak, "nostats": nostats}[sys.argv[1]]()))

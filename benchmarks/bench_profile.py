"""What --profile costs, and that a cell without it pays nothing for it, measured side by side in one run.

1. A profiled call against a plain call of the same tf.function (a small MLP step, and a large matmul):
   the per-call time inside ``profile.profile_calls`` (the profiler on, plus reading its trace) over the
   plain call's, and the whole ``--profile N`` (warm-up, start, N calls, stop, reading the trace) per call.
2. An unprofiled ``%%tfgraph`` cell re-run through a real shell, against a plain cell calling the same
   function by hand: the ratio bench_tfgraph.py reports, with tfmagic.profile never imported.

Usage: python benchmarks/bench_profile.py [--steps N] [--repeat R]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def per_call(call, repeat: int) -> float:
    """Median seconds of one call over ``repeat`` calls (after one warm-up)."""
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="profiled calls per --profile (default 10)")
    parser.add_argument("--repeat", type=int, default=200, help="plain calls timed (default 200)")
    args = parser.parse_args()

    import tensorflow as tf

    from tfmagic.profile import profile_calls

    mlp = tf.keras.Sequential([tf.keras.Input((64,)), tf.keras.layers.Dense(128, activation="relu"),
                               tf.keras.layers.Dense(10)])
    x = tf.random.normal((32, 64))
    a = tf.random.normal((512, 512))
    @tf.function
    def forward():
        return mlp(x)

    @tf.function
    def matmul():
        return a @ a

    cases = [("small MLP forward", forward), ("512x512 matmul", matmul)]
    print(f"{'function':20} {'plain call':>11} {'profiled call':>14} {'ratio':>6} {'--profile per call':>19} {'ratio':>6}")
    for name, fn in cases:
        fn()
        plain = per_call(fn, args.repeat)
        start = time.perf_counter()
        profile = profile_calls(fn, args.steps)
        whole = (time.perf_counter() - start) / args.steps
        inside = profile.wall_us / 1e6
        print(f"{name:20} {plain * 1e6:9.0f}us {inside * 1e6:12.0f}us {inside / plain:5.1f}x {whole * 1e6:17.0f}us "
              f"{whole / plain:5.1f}x")

    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell

    HistoryAccessor.enabled = False
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "tfmagic")
    shell.run_cell("import tensorflow as tf\nxc = tf.random.normal((32, 64))\nw = tf.Variable(tf.ones((64, 8)))")
    for module in [m for m in sys.modules if m == "tfmagic.profile"]:
        del sys.modules[module]  # the benchmark's own import above: start clean
    cell = "%%tfgraph --show none\nyc = tf.nn.relu(xc @ w)"
    shell.run_cell(cell)
    rerun = per_call(lambda: shell.run_cell(cell), args.repeat)
    shell.run_cell("@tf.function\ndef by_hand(xc):\n    return tf.nn.relu(xc @ w)")
    hand = per_call(lambda: shell.run_cell("yc = by_hand(xc)"), args.repeat)
    print(f"\nunprofiled %%tfgraph re-run {rerun * 1e6:.0f}us vs a plain cell calling its function by hand "
          f"{hand * 1e6:.0f}us: {rerun / hand:.2f}x (IPython's cell-magic dispatch included: bench_tfgraph.py "
          "splits it)")
    print(f"tfmagic.profile imported by unprofiled cells: {'tfmagic.profile' in sys.modules}")


if __name__ == "__main__":
    main()

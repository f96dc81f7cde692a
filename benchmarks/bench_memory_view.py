"""What ``--memory`` adds to a training step, and what every other cell pays for the out-of-memory report (issue 28).

Measured side by side in one run (medians of interleaved runs):
- ``%%tfgraph --memory --show none`` on an MLP training step (784-1024-1024-10, batch 512, Adam) against the
  same cell re-run without it: the ratio is what one measured view costs (a warm-up call, a profiled call, the
  replay and the report);
- what every cell pays without ``--memory``: the catch of fd 2 around a magic cell's run (``quiet.filtered_fd2``,
  which keeps an allocator's dump out of the cell) as a share of a re-run of a small ``%%tfgraph`` cell, and the
  plain cell's filter (``quiet.CellFd2Filter``: a pipe and its reader around each cell) as a share of a small
  plain cell run through IPython.

Usage: python benchmarks/bench_memory_view.py [--repeats N]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SETUP = """import tensorflow as tf
tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([tf.keras.Input((784,)), tf.keras.layers.Dense(1024, activation="relu"),
                             tf.keras.layers.Dense(1024, activation="relu"), tf.keras.layers.Dense(10)])
opt = tf.keras.optimizers.Adam()
x = tf.random.normal((512, 784))
y = tf.random.uniform((512,), 0, 10, tf.int32)
a = tf.ones((4, 4))
"""
STEP = """with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, model(x, training=True),
                                                                          from_logits=True))
grads = tape.gradient(loss, model.trainable_variables)
opt.apply_gradients(zip(grads, model.trainable_variables))
"""


def _interleaved(a, b, repeats):
    """Median times of a and b, run alternately so that machine noise hits both alike."""
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs of each side (default 10)")
    args = parser.parse_args()
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from tfmagic.quiet import is_allocator_dump
    from tfmagic.quiet import CellFd2Filter, filtered_fd2

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.run_cell(SETUP)

    def cell(source):
        def run():
            with capture_output():
                result = ip.run_cell(source)
            if not result.success:
                raise SystemExit(f"benchmark cell failed: {result.error_in_exec!r}")
        return run

    plain_step, memory_step = cell("%%tfgraph --show none\n" + STEP), cell("%%tfgraph --memory --show none\n" + STEP)
    plain_step(), memory_step()  # traced (the same cell text, so one function) and warmed up
    without, with_memory = _interleaved(plain_step, memory_step, args.repeats)
    print(f"an MLP training step: a re-run {without * 1e3:.1f} ms, with --memory {with_memory * 1e3:.1f} ms: "
          f"{with_memory / without:.1f}x")

    small = cell("%%tfgraph --show none\nb = a * 2.0 + 1.0")
    small()

    def catch():
        with filtered_fd2(is_allocator_dump):
            pass

    rerun, caught = _interleaved(small, lambda: [catch() for _ in range(100)], args.repeats * 10)
    print(f"every %%tfgraph cell: a re-run {rerun * 1e3:.2f} ms, the catch of fd 2 {caught / 100 * 1e6:.0f} us: "
          f"{caught / 100 / rerun:.1%} of a re-run")

    fd2 = CellFd2Filter(is_allocator_dump)

    def filtered():
        fd2.start()
        fd2.stop()

    plain = cell("c = a + 1.0")
    plain()
    run_plain, filter_cost = _interleaved(plain, lambda: [filtered() for _ in range(20)], args.repeats * 10)
    print(f"every plain cell: run through IPython {run_plain * 1e3:.2f} ms (its filter included), the filter alone "
          f"{filter_cost / 20 * 1e6:.0f} us: {filter_cost / 20 / run_plain:.1%}")


if __name__ == "__main__":
    main()

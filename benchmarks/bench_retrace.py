"""What retrace tracking adds to calling a tf.function that does not retrace, measured side by side.

- per call, as %%tfgraph tracks a cell: the function's tracing count read before and
  after the call, against the bare call (a small function, with a scalar and a
  float32[1000] input);
- per call, as the trace log (tracelog.py, installed by %load_ext) watches every call: the
  bare call with the log in TensorFlow's place against the bare call without it (a call that
  does not trace takes the same path: the target is 1.00x, noise aside);
- per cell, as %tfretrace --watch tracks every tf.function: a cell that calls the
  function with the watch on, against the same cell with it off, in a namespace with 20
  functions, a fitted Keras model (its step functions are found in Keras's closures) and a
  family of functions made anew; and what the two new parts of a watched cell cost on their
  own (finding functions, Keras's included, and the log's summaries).
Target (issue 3): at most 1.05x per call.

Usage: python benchmarks/bench_retrace.py [--repeats N]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _per_call(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _interleaved(a, b, repeats, n):
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_per_call(a, n))
        tb.append(_per_call(b, n))
    return statistics.median(ta), statistics.median(tb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import tensorflow as tf
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    @tf.function
    def f(x):
        return x * 2.0 + 1.0

    rows = []
    for label, x in (("scalar", tf.constant(1.0)), ("float32[1000]", tf.random.normal((1000,)))):
        f(x)
        count = f.experimental_get_tracing_count

        def tracked(x=x):
            before = count()
            out = f(x)
            if count() != before:
                raise AssertionError("the benchmark's function retraced")
            return out

        rows.append((f"call with retrace check, {label}",) + _interleaved(tracked, lambda x=x: f(x), args.repeats, 300))

    from tfmagic.tracelog import TraceLog

    log = TraceLog()
    x = tf.random.normal((1000,))
    on, off = [], []
    for _ in range(args.repeats):
        log.install()
        on.append(_per_call(lambda: f(x), 300))
        log.uninstall()
        off.append(_per_call(lambda: f(x), 300))
    rows.append(("call, trace log installed vs not", statistics.median(on), statistics.median(off)))
    jit = tf.function(lambda v: v + 1.0, jit_compile=True)
    log.install()
    jit(x)  # from here on the log also counts the shapes of calls that do not trace (XLA compiles per shape)
    on, off = [], []
    for _ in range(args.repeats):
        on.append(_per_call(lambda: f(x), 300))
        log.uninstall()
        off.append(_per_call(lambda: f(x), 300))
        log.install()
        jit(x)
    log.uninstall()
    rows.append(("call, log counting XLA shapes vs none", statistics.median(on), statistics.median(off)))

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.user_ns.update(tf=tf, f=f, x=tf.random.normal((1000,)))
    for i in range(20):  # a namespace with a few functions to scan, as a notebook has
        ip.run_cell(f"@tf.function\ndef g{i}(v):\n    return v + {i}\n_ = g{i}(tf.constant(1.0))")
    ip.run_cell("import numpy as np\nnet = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])\n"
                "net.compile(optimizer='sgd', loss='mse')\nnet.fit(np.ones((8, 4)), np.ones((8, 2)), verbose=0)\n"
                "for i in range(5):\n    made = tf.function(lambda v: v * i)\n    _ = made(tf.constant(1.0))")
    with capture_output():
        def cell():
            result = ip.run_cell("y = f(x)")
            if not result.success:
                raise SystemExit(repr(result.error_in_exec))

        watch_off = []
        watch_on = []
        for _ in range(args.repeats):
            ip.run_line_magic("tfretrace", "--off")
            watch_off.append(_per_call(cell, 30))
            ip.run_line_magic("tfretrace", "--watch")
            watch_on.append(_per_call(cell, 30))
        ip.run_line_magic("tfretrace", "--off")
    rows.append(("cell calling f, --watch on vs off", statistics.median(watch_on), statistics.median(watch_off)))
    from tfmagic.retracing import find_functions
    from tfmagic.watch import cell_summaries

    magics = ip.magics_manager.registry["TFMagics"]
    kinds = {}
    found = find_functions(ip.user_ns, kinds)
    start = time.perf_counter()
    for _ in range(100):
        find_functions(ip.user_ns, kinds)  # with the cache of kinds --watch keeps
    finding = (time.perf_counter() - start) / 100
    start = time.perf_counter()
    for _ in range(100):
        cell_summaries(found, {}, magics._log.since(magics._log.count - 5), set())
    summaries = (time.perf_counter() - start) / 100

    print(f"{'measure':40} {'tracked':>10} {'bare':>10} {'ratio':>7}  target")
    for name, tracked_time, bare_time in rows:
        target = "<= 1.05x" if name.startswith("call") else "(once per cell, not per call)"
        print(f"{name:40} {tracked_time * 1e6:8.1f}us {bare_time * 1e6:8.1f}us {tracked_time / bare_time:6.3f}x  {target}")
    on, off = rows[-1][1], rows[-1][2]
    print(f"--watch costs {(on - off) * 1e6:.0f}us once per cell (a scan of the namespace's tf.functions), "
          "nothing per call")
    print(f"of a watched cell: finding the namespace's {len(found)} functions (Keras's closures included) "
          f"{finding * 1e6:.0f}us, the log's summaries of 5 traced calls {summaries * 1e6:.0f}us")


if __name__ == "__main__":
    main()

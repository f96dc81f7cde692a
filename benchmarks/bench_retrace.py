"""What retrace tracking adds to calling a tf.function that does not retrace, measured side by side.

- per call, as %%tfgraph tracks a cell: the function's tracing count read before and
  after the call, against the bare call (a small function, with a scalar and a
  float32[1000] input);
- per cell, as %tfretrace --watch tracks every tf.function: a cell that calls the
  function with the watch on, against the same cell with it off.
Target (issue 3): at most 1.05x.

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

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.user_ns.update(tf=tf, f=f, x=tf.random.normal((1000,)))
    for i in range(20):  # a namespace with a few functions to scan, as a notebook has
        ip.run_cell(f"@tf.function\ndef g{i}(v):\n    return v + {i}\n_ = g{i}(tf.constant(1.0))")
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

    print(f"{'measure':40} {'tracked':>10} {'bare':>10} {'ratio':>7}  target")
    for name, tracked_time, bare_time in rows:
        print(f"{name:40} {tracked_time * 1e6:8.1f}us {bare_time * 1e6:8.1f}us {tracked_time / bare_time:6.3f}x  <= 1.05x")
    on, off = rows[-1][1], rows[-1][2]
    print(f"--watch costs {(on - off) * 1e6:.0f}us once per cell (a scan of the namespace's tf.functions), "
          "nothing per call")


if __name__ == "__main__":
    main()

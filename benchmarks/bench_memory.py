"""Resident memory of a long session: a %%tfgraph cell run with new shapes, and load/unload cycles.

Prints the resident-set growth per 100 runs, measured over a first and a second block of runs in one
process: the second block's growth shows whether memory is bounded (tfmagic keeps at most
MAX_TRACES_PER_FUNCTION traces per cell, and 64 cells).

Usage: python benchmarks/bench_memory.py [--runs N]
"""

import argparse
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per block (default 200)")
    args = parser.parse_args()
    import tensorflow as tf
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from tfmagic.tracing import MAX_TRACES_PER_FUNCTION

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.user_ns["tf"] = tf

    def block(start):
        for n in range(start, start + args.runs):
            ip.user_ns["x"] = tf.ones((n,))
            with capture_output():
                result = ip.run_cell("%%tfgraph --show none\ny = tf.nn.relu(x * 2.0 - 1.0)")
            if not result.success:
                raise SystemExit(repr(result.error_in_exec))
        gc.collect()
        return rss_mib()

    base = rss_mib()
    first = block(1)
    second = block(1 + args.runs)
    per = 100 / args.runs
    print(f"same cell, a new shape every run (cap: {MAX_TRACES_PER_FUNCTION} traces per cell):")
    print(f"  first {args.runs} runs: +{(first - base) * per:.1f} MiB per 100 runs (includes warm-up)")
    print(f"  next {args.runs} runs:  +{(second - first) * per:.1f} MiB per 100 runs")

    def cycles():
        for _ in range(args.runs):
            ip.run_line_magic("unload_ext", "tfmagic")
            ip.run_line_magic("load_ext", "tfmagic")
        gc.collect()
        return rss_mib()

    a = cycles()
    b = cycles()
    print("load/unload cycles:")
    print(f"  first {args.runs}: +{(a - second) * per:.1f} MiB per 100, next {args.runs}: +{(b - a) * per:.1f} MiB per 100")


if __name__ == "__main__":
    main()

"""What the write-back invariants cost (issue 26), measured side by side in one run.

Two invariants hold after every %%tfgraph cell: every name the plain cell binds is written back or noted, and
what cannot leave the graph is a stand-in that says why.  Their cost comes in two places:
- on every run: the list of names not written back, their stand-ins, and the check that the cell reads no
  stand-in; printed as a share of a re-run of the same cell (the checks alone, timed over the same runs);
- while tracing: each statement nested in a branch or loop reports what its block bound
  (``_tfmagic_bound(LINE, locals())``); printed as the first run of a new cell (a trace) with those reports
  against the same cell traced without them (a benchmark-only switch, not a user option).
Target (issue 26): a few percent of a re-run.

Usage: python benchmarks/bench_invariants.py [--repeats N]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SETUP = ("import tensorflow as tf\nmode = 'layer'\n"
         "x = tf.random.normal((8, 16), seed=1)\nw = tf.Variable(tf.ones((16, 4)))\nb = tf.Variable(tf.zeros(4))\n")
#: A cell as training code has them: a branch on a plain value, a Python loop with a branch, a graph loop.
CELL = """\
h = tf.nn.relu(tf.matmul(x, w) + b)
if mode == 'layer':
    norm = tf.reduce_mean(h, axis=-1, keepdims=True)
else:
    norm = 1.0
for i in range(24):
    if i % 2:
        h = h * 1.01
    else:
        h = h + {k}.0
for j in tf.range(3):
    h = h - 0.1
loss = tf.reduce_sum(h / (norm + 1.0))
"""


def _interleaved(a, b, repeats):
    """Median times of a and b, run alternately so that machine noise hits both alike."""
    ta, tb = [], []
    for i in range(repeats):
        for fn, times in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40, help="runs of each side (default 40)")
    args = parser.parse_args()
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from tfmagic import cell as cell_module
    from tfmagic.leaving import check_reads, not_written_back, stand_ins
    from tfmagic.tracing import prepare_cell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "tfmagic")
    ip.run_cell(SETUP)

    def run(source):
        with capture_output():
            result = ip.run_cell(source)
        if not result.success:
            raise SystemExit(f"benchmark cell failed: {result.error_in_exec!r}")

    # every run: the checks alone against a whole re-run
    rerun_cell = "%%tfgraph --show none\n" + CELL.format(k=0)
    run(rerun_cell)
    magics = ip.magics_manager.registry["TFMagics"]
    function = prepare_cell(CELL.format(k=0), ip.user_ns, cache=magics.cells)
    record = function.traces[-1]

    def checks(i):
        params_and_globals = {**{p: ip.user_ns[p] for p in function.params}, **function._globals}
        check_reads(function.code, params_and_globals)
        stand_ins(not_written_back(record, function.code), "%%tfgraph cell [1]")

    rerun, alone = _interleaved(lambda i: run(rerun_cell), checks, args.repeats * 5)
    print(f"every run: a re-run {rerun * 1e3:.2f} ms, the invariants' checks {alone * 1e6:.0f} us: "
          f"{alone / rerun:.1%} of a re-run")

    # while tracing: a new cell (a trace) with and without the reports of nested statements
    nested = cell_module._nested_statements

    def traced(i):
        run("%%tfgraph --show none\n" + CELL.format(k=i + 1))

    def untraced_reports(i):
        cell_module._nested_statements = lambda tree: []
        try:
            run("%%tfgraph --show none\n" + CELL.format(k=-(i + 1)))
        finally:
            cell_module._nested_statements = nested

    with_reports, without = _interleaved(traced, untraced_reports, max(4, args.repeats // 4))
    print(f"a trace: {with_reports * 1e3:.0f} ms with the nested statements' reports, {without * 1e3:.0f} ms "
          f"without: {with_reports / without:.2f}x")


if __name__ == "__main__":
    main()

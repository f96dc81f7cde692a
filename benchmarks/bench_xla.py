"""What --show xla costs, against XLA's own compile of the same function, measured side by side in one run.

For an MLP training step (forward, GradientTape, gradients) under jit_compile, at a few widths:
- XLA's compile: the first call of a fresh jit_compile tf.function (tracing + XLA's compile + one run),
  less a cached call;
- --show xla's report: reading the optimized HLO module (xla.xla_report: TensorFlow compiles the HLO
  again for the IR it hands out) and its tables;
- --show xla's drawing: the readable drawing with the fusion boxes (the trace's model drawn with the groups).
The ratio says how much --show xla adds to what the user's first call already paid.

Usage: python benchmarks/bench_xla.py
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    import tensorflow as tf

    from tfmagic.render import draw_model
    from tfmagic.traceview import TraceView
    from tfmagic.xla import fusion_groups, kernel_table, memory_table, parameter_names, xla_report

    print(f"{'width':>6} {'XLA compile':>12} {'report':>9} {'drawing':>9} {'(report+drawing)/compile':>25}")
    for width in (64, 256, 1024):
        model = tf.keras.Sequential([tf.keras.Input((width,)), tf.keras.layers.Dense(width, activation="relu"),
                                     tf.keras.layers.Dense(1)])
        x, y = tf.random.normal((32, width)), tf.random.normal((32, 1))

        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((model(x) - y) ** 2)
            return loss, tape.gradient(loss, model.trainable_variables)

        fn = tf.function(step, jit_compile=True)
        start = time.perf_counter()
        fn(x, y)
        first = time.perf_counter() - start
        start = time.perf_counter()
        fn(x, y)
        cached = time.perf_counter() - start
        compile_time = first - cached
        graph = fn.get_concrete_function(x, y).graph
        start = time.perf_counter()
        report = xla_report(fn, [x, y], parameter_names(graph))
        kernel_table(report, "step")._text()
        memory_table(report)._text()
        reading = time.perf_counter() - start
        start = time.perf_counter()
        draw_model(TraceView(graph).model(), "step", groups=fusion_groups(report))
        drawing = time.perf_counter() - start
        print(f"{width:6d} {compile_time * 1e3:10.0f}ms {reading * 1e3:7.0f}ms {drawing * 1e3:7.0f}ms "
              f"{(reading + drawing) / compile_time:24.2f}x")


if __name__ == "__main__":
    main()

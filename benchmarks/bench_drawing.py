"""Drawing real models: tfmagic against tfgraphviz, Graphviz alone and TensorBoard's route, in one run.

For an MLP, a small CNN and keras.applications.ResNet50(weights=None) (forward at batch 1, and a
training step under a GradientTape) this prints the op count, the drawn node count and the time to
draw tfmagic's default (collapsed) view and the view of every op, each in the readable view (the default:
readable.py) and with --ops all, side by side (the readable view must make no drawing slower); then, on
the same graphs:
- tfgraphviz (its DOT, laid out by the same in-process Graphviz engine, since no system `dot` is
  assumed), at layer level (depth 2) and with every op;
- Graphviz alone: the DOT tfgraphviz wrote for every op, laid out with no tfmagic code (the floor a
  plain converter gets), at default settings and with tfmagic's layout attributes (nslimit=1,
  splines=line);
- TensorBoard's route: tf.summary.trace_on + trace_export of one call.
Every layout runs in a child process with a time budget (--budget, default 60 s): what does not finish
is reported as such. Targets (issue 8): ResNet-50 forward default view <= 1 s; every op >= 1.5x faster
than tfgraphviz and within 1.25x of Graphviz alone with the same attributes; training step default
view <= 3 s.

Then the first views of training code (issue 25): a ResNet-50 training step and an epoch over it (a dataset
loop calling the step), drawn whole as %tfgraph draws them (the model, the readable view, the program's level,
DOT, the layout, in this process), against the first view before it (collapsed by name scope: the same pipeline
with the program's level off), in one run. Target: each first view under a second.

The tfgraphviz and Graphviz-alone columns need `pip install tfgraphviz` (not one of tfmagic's
dependencies); without it the script says so once and prints "-" there.

Usage: python benchmarks/bench_drawing.py [--budget S] [--only NAME]
"""

import argparse
import multiprocessing
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _layout(dot_source, queue):
    from tfmagic.engine import render_dot

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # tfgraphviz's DOT makes Graphviz warn about ports: not what is measured

    start = time.perf_counter()
    render_dot(dot_source, ("svg",))
    queue.put(time.perf_counter() - start)


def timed_layout(dot_source: str, budget: float):
    """Seconds to lay out and render ``dot_source`` in a child process, or None past the budget."""
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_layout, args=(dot_source, queue))
    child.start()
    child.join(budget)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return queue.get() if not queue.empty() else None


def timed_draw(graph, budget: float, ops: str = "readable", **view):
    """tfmagic's whole drawing (model, readable view, fit, DOT, layout; the layout in a child process):
    (seconds, nodes) or (None, nodes). ``ops="all"`` is the drawing with --ops all."""
    from tfmagic.dot import DotOptions, build_dot
    from tfmagic.graph import build_graph_model
    from tfmagic.sizing import fit
    from tfmagic.readable import readable_view
    from tfmagic.engine import gc_paused

    start = time.perf_counter()
    with gc_paused():  # as a drawing's model is built (traceview.TraceView)
        model = build_graph_model(graph)
        total = model.total_ops()
        if ops == "readable":
            model, _ = readable_view(model)
        model, _ = fit(model, total=total, program=ops == "readable", **view)
        dot_source = build_dot(model, DotOptions(readable=ops == "readable"))
    prepare = time.perf_counter() - start
    layout = timed_layout(dot_source, budget)
    return (None if layout is None else prepare + layout), len(model.ops)


def models():
    import tensorflow as tf

    keras = tf.keras
    mlp = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                            keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)], name="mlp")
    cnn = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, activation="relu"),
                            keras.layers.MaxPooling2D(), keras.layers.Conv2D(32, 3, activation="relu"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)], name="cnn")
    resnet = keras.applications.ResNet50(weights=None)
    return [("MLP", mlp, (1, 784)), ("small CNN", cnn, (1, 32, 32, 3)), ("ResNet-50", resnet, (1, 224, 224, 3))]


def graphs(model, shape):
    import tensorflow as tf

    x = tf.zeros(shape)
    forward = tf.function(lambda t: model(t, training=False)).get_concrete_function(tf.TensorSpec(shape))
    optimizer = tf.keras.optimizers.SGD()

    @tf.function
    def train_step(t):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(t, training=True) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step = train_step.get_concrete_function(tf.TensorSpec(shape))
    return [("forward", forward, lambda: model(x, training=False)), ("training step", step, lambda: train_step(x))]


def first_view(graph, function, program=True):
    """Seconds to draw a trace's first view as %tfgraph does (labels, model, readable view, the program's level or
    the collapse by scope before it, DOT, the layout, in this process), and the note under it."""
    from tfmagic.dot import DotOptions, build_dot
    from tfmagic.engine import gc_paused, render_dot
    from tfmagic.graph import build_graph_model, layer_names
    from tfmagic.naming import trace_labels
    from tfmagic.readable import readable_view
    from tfmagic.sizing import fit

    start = time.perf_counter()
    with gc_paused():
        model = build_graph_model(graph, labels=trace_labels(graph, function))
        total = model.total_ops()
        readable, _ = readable_view(model)
        view, note = fit(readable, total=total, program=program)
        dot_source = build_dot(view, DotOptions(readable=True, title=note, layers=layer_names(readable)))
    render_dot(dot_source, ("svg",))
    return time.perf_counter() - start, note


def training_functions():
    """A ResNet-50 training step (SGD) and an epoch over it: the step called in a loop over a dataset."""
    import tensorflow as tf

    resnet = tf.keras.applications.ResNet50(weights=None)
    optimizer = tf.keras.optimizers.SGD()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, resnet(x, training=True)))
        grads = tape.gradient(loss, resnet.trainable_variables)
        optimizer.apply_gradients(zip(grads, resnet.trainable_variables))
        return loss

    @tf.function
    def epoch(ds):
        loss = tf.constant(0.0)
        for x, y in ds:
            loss = train_step(x, y)
        return loss

    ds = tf.data.Dataset.from_tensor_slices((tf.zeros((4, 224, 224, 3)), tf.zeros((4,), tf.int32))).batch(2)
    step = train_step.get_concrete_function(tf.TensorSpec((2, 224, 224, 3)), tf.TensorSpec((2,), tf.int32))
    return [("ResNet-50 training step", step.graph, train_step), ("an epoch over it", epoch.get_concrete_function(ds)
                                                                  .graph, epoch)]


def first_views():
    print("\nfirst views of training code (issue 25): the program's level against the collapse by scope before it")
    print(f"{'graph':26} {'ops':>6} {'first view':>10} {'before':>9} {'ratio':>7}  under 1 s  what it draws")
    for label, graph, function in training_functions():
        first_view(graph, function)  # once to warm the engine and TensorFlow's op registry
        now, note = first_view(graph, function)
        before, _ = first_view(graph, function, program=False)
        print(f"{label:26} {len(graph.get_operations()):6d} {fmt(now):>10} {fmt(before):>9} {ratio(now, before):>7}  "
              f"{'yes' if now < 1.0 else 'NO':>9}  {note.split(';')[0]}")


def tfgraphviz_dot(graph, depth):
    import tfgraphviz

    start = time.perf_counter()
    digraph = tfgraphviz.board(graph, depth=depth)
    return digraph.source, time.perf_counter() - start


def tensorboard_route(call):
    import tensorflow as tf

    logdir = tempfile.mkdtemp()
    writer = tf.summary.create_file_writer(logdir)
    start = time.perf_counter()
    tf.summary.trace_on(graph=True)
    call()
    with writer.as_default():
        tf.summary.trace_export("trace", step=0)
    writer.flush()
    return time.perf_counter() - start


#: A column left out (tfgraphviz not installed).
SKIPPED = "skipped"


def fmt(seconds):
    if seconds is SKIPPED:
        return "-"
    return "timeout" if seconds is None else f"{seconds:7.2f}s"


def ratio(a, b):
    return "   -  " if a is None or b is None or SKIPPED in (a, b) or b == 0 else f"{a / b:5.2f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per layout before giving up")
    parser.add_argument("--only", help="only this model (MLP, 'small CNN', ResNet-50), or 'first' for the first "
                                       "views of training code alone")
    args = parser.parse_args()
    if args.only == "first":
        first_views()
        return
    try:
        import tfgraphviz  # noqa: F401
        have_tfgraphviz = True
    except ImportError:
        have_tfgraphviz = False
        print("tfgraphviz is not installed (pip install tfgraphviz): its columns and Graphviz alone's are left out")
    print("default / every op: tfmagic's readable view (the default); 'ops all': the same with --ops all")
    print(f"{'graph':28} {'ops':>6} {'default':>9} {'nodes':>6} {'ops all':>9} {'nodes':>6} {'read/all':>8} "
          f"{'every op':>9} {'nodes':>6} {'ops all':>9} {'nodes':>6} {'read/all':>8} "
          f"{'tfgv layer':>10} {'tfgv all':>9} {'gv alone':>9} {'gv+attrs':>9} {'TB route':>9}  "
          f"every/tfgv  every/gv+attrs")
    fallbacks = []
    for name, model, shape in models():
        if args.only and args.only != name:
            continue
        for kind, concrete, call in graphs(model, shape):
            graph = concrete.graph
            ops = len(graph.get_operations())
            default, default_nodes = timed_draw(graph, args.budget)
            default_all, default_all_nodes = timed_draw(graph, args.budget, "all")
            every, every_nodes = timed_draw(graph, args.budget, max_nodes=10**6, depth=99)
            every_all, every_all_nodes = timed_draw(graph, args.budget, "all", max_nodes=10**6, depth=99)
            tfgv_layer = tfgv_all = alone = with_attrs = SKIPPED
            if have_tfgraphviz:
                layer_dot, layer_build = tfgraphviz_dot(graph, 2)
                layer_layout = timed_layout(layer_dot, args.budget)
                all_dot, all_build = tfgraphviz_dot(graph, 99)
                all_layout = timed_layout(all_dot, args.budget)
                tfgv_layer = None if layer_layout is None else layer_build + layer_layout
                tfgv_all = None if all_layout is None else all_build + all_layout
                alone = all_layout
                attrs_dot = all_dot.replace("digraph G {", "digraph G {\n\tgraph [nslimit=1 splines=line]", 1)
                with_attrs = timed_layout(attrs_dot, args.budget)
            board = tensorboard_route(call)
            print(f"{name + ' ' + kind:28} {ops:6d} {fmt(default):>9} {default_nodes:6d} {fmt(default_all):>9} "
                  f"{default_all_nodes:6d} {ratio(default, default_all):>8} {fmt(every):>9} {every_nodes:6d} "
                  f"{fmt(every_all):>9} {every_all_nodes:6d} {ratio(every, every_all):>8} "
                  f"{fmt(tfgv_layer):>10} {fmt(tfgv_all):>9} {fmt(alone):>9} "
                  f"{fmt(with_attrs):>9} {fmt(board):>9}  {ratio(every, tfgv_all):>8}  {ratio(every, with_attrs):>8}")
            if every is None:
                fallbacks.append((f"{name} {kind}", graph))
    from tfmagic.render import draw_model
    from tfmagic.requests import DrawOptions
    from tfmagic.traceview import TraceView

    if not args.only:
        first_views()
    for label, graph in fallbacks:  # what %%tfgraph --depth 99 --max-nodes 1000000 does with them
        start = time.perf_counter()
        report, _ = draw_model(TraceView(graph).model(), label, DrawOptions(max_nodes=10**6, depth=99,
                                                                            budget=args.budget))
        print(f"{label}, every op asked for: drawn in {time.perf_counter() - start:.1f} s with the layout budget "
              f"of {args.budget:g} s: {report.notes[0] if report.notes else ''}")


if __name__ == "__main__":
    main()

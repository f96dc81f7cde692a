"""%tfretrace and --watch on the retraces research code hits: functions and objects made anew, training loops
over batches, Python values in loops, Keras's own functions, dtype and object changes (issue 17).

Each pattern runs in a real shell with the watch on; the values are compared with the same cell run plain,
and each suggested fix is pasted back and run: the function then has one trace.
"""

import logging

from .shellutil import keras2, output_text, output_texts, run


def _shown(ip, line):
    """What a line magic returned, as a terminal shows it."""
    result, _ = run(ip, line)
    assert result.success, result.error_in_exec
    return repr(result.result)


def _watched(ip, source):
    """Run a cell with --watch on and again with it off: (the watch's messages, the two namespaces' values)."""
    for name in [k for k in ip.user_ns if k.startswith("out")]:
        del ip.user_ns[name]
    run(ip, "%tfretrace --watch")
    result, captured = run(ip, source)
    assert result.success, result.error_in_exec
    watched = {k: v for k, v in ip.user_ns.items() if k.startswith("out")}
    run(ip, "%tfretrace --off")
    result, _ = run(ip, source)
    assert result.success, result.error_in_exec
    plain = {k: v for k, v in ip.user_ns.items() if k.startswith("out")}
    return "\n".join(output_texts(captured)), watched, plain


def _same(a, b):
    import numpy as np
    import tensorflow as tf

    assert a.keys() == b.keys()
    for key in a:
        assert np.allclose(tf.nest.flatten(a[key]), tf.nest.flatten(b[key])), key


class _TFWarnings(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_function_defined_in_a_loop_is_one_family(ip):
    cell = ("outs = []\nfor i in range(3):\n    @tf.function\n    def scaled(x):\n        return x * i\n"
            "    outs.append(scaled(tf.constant(2.0)))\nout_loop = outs")
    text, watched, plain = _watched(ip, cell)
    _same(watched, plain)
    assert "scaled: 3 tf.functions were made from the same code (line 3 of its cell) in this cell, each traced once" \
        in text
    assert "fix: make the tf.function once (define scaled outside the loop" in text
    assert "scaled (made 6 times)" in _shown(ip, "%tfretrace")  # the plain re-run made three more
    assert "6 tf.functions made from the same code" in _shown(ip, "%tfretrace scaled")


def test_tf_function_of_one_python_function_written_twice(ip):
    cell = "def plus(x):\n    return x + 1\nout_a = tf.function(plus)(tf.constant(1.0))\nout_b = tf.function(plus)(tf.constant(2.0))"
    text, watched, plain = _watched(ip, cell)
    _same(watched, plain)
    assert "plus: 2 tf.functions were made from the same code" in text
    assert "call tf.function(plus) once and keep what it returns" in text


def test_a_method_traced_once_per_object(ip):
    cell = ("class Scaler:\n    def __init__(self, s):\n        self.s = s\n    @tf.function\n"
            "    def __call__(self, x):\n        return x * self.s\n"
            "out_scaled = [Scaler(s)(tf.constant(2.0)) for s in range(4)]")
    text, watched, plain = _watched(ip, cell)
    _same(watched, plain)
    assert "tfretrace Scaler.__call__: a @tf.function method is a new tf.function for each object: 4 Scaler " \
           "objects were made and traced in this cell" in text
    assert "fix: reuse one Scaler for the calls" in text


_TRAIN = """
model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(4), tf.keras.layers.Dense(1)])
opt = tf.keras.optimizers.SGD(0.01)
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss
data = tf.data.Dataset.from_tensor_slices((tf.ones([70, 8]), tf.ones([70, 1])))
"""


def test_a_training_loop_whose_last_batch_is_smaller(ip):
    run(ip, _TRAIN)
    run(ip, "%tfretrace --watch")
    result, captured = run(ip, "step = tf.function(train_step)\nfor x, y in data.batch(32):\n    out_loss = step(x, y)")
    run(ip, "%tfretrace --off")
    assert result.success, result.error_in_exec
    text = "\n".join(output_texts(captured))
    assert "step: retraced: trace 2 (against trace 1): x: float32[32,8] -> float32[6,8]; y: float32[32,1] -> " \
           "float32[6,1]" in text
    assert "graph: the same ops, " in text and "sgd_1" not in text and "Identity" not in text
    fixes = [line for line in text.splitlines() if line.strip().startswith("fix:")]
    assert len(fixes) == len(set(fixes)) == 2
    signature = next(f for f in fixes if "input_signature=" in f)
    signature = signature.split("input_signature=", 1)[1].split("), or", 1)[0]
    assert signature == "[tf.TensorSpec([None,8], tf.float32), tf.TensorSpec([None,1], tf.float32)]"
    # both fixes, pasted: one trace
    result, _ = run(ip, f"fixed = tf.function(train_step, input_signature={signature})\n"
                        "for x, y in data.batch(32):\n    fixed(x, y)\nn_fixed = fixed.experimental_get_tracing_count()")
    assert result.success and ip.user_ns["n_fixed"] == 1
    assert "drop_remainder=True" in text
    result, _ = run(ip, "dropped = tf.function(train_step)\nfor x, y in data.batch(32, drop_remainder=True):\n"
                        "    dropped(x, y)\nn_dropped = dropped.experimental_get_tracing_count()")
    assert result.success and ip.user_ns["n_dropped"] == 1


def test_a_python_int_in_a_loop_is_one_short_summary_and_tensorflows_warning_is_left_out(ip):
    handler = _TFWarnings()
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        run(ip, "@tf.function\ndef times(x, k):\n    return x * k")
        cell = "out_times = [times(tf.constant(1.0), k) for k in range(12)]"
        text, watched, plain = _watched(ip, "@tf.function\ndef times(x, k):\n    return x * k\n" + cell)
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    _same(watched, plain)
    assert len(text.splitlines()) <= 4, text
    assert "times: 11 retraces in this cell (12 traces now): k: Python int 0 -> 1 -> 2 -> ... -> 11" in text
    assert text.count("fix:") == 1 and "tf.constant(k, tf.float32)" in text  # the dtype x * k makes of k
    assert "the same ops" in text
    retrace_warnings = [m for m in handler.messages if "triggered tf.function retracing" in m]
    assert len(retrace_warnings) == 2  # the plain run (watch off) has TensorFlow's own two; the watched run none
    result, _ = run(ip, "fixed_times = tf.function(lambda x, k: x * k)\n"
                        "_ = [fixed_times(tf.constant(1.0), tf.constant(k, tf.float32)) for k in range(12)]\n"
                        "n_times = fixed_times.experimental_get_tracing_count()")
    assert result.success and ip.user_ns["n_times"] == 1


def test_a_dtype_change_suggests_the_wider_dtype_and_never_casts_strings(ip):
    run(ip, "%tfretrace --watch")
    result, captured = run(ip, "@tf.function\ndef twice(a):\n    return a + a\nout_i = twice(tf.constant(1))\n"
                               "out_f = twice(tf.constant(1.5))")
    text = "\n".join(output_texts(captured))
    assert "a: int32 -> float32" in text and "tf.cast(a, tf.float32)" in text and "tf.int32" not in text
    result, captured = run(ip, "out_s = twice(tf.constant('s'))")
    run(ip, "%tfretrace --off")
    text = "\n".join(output_texts(captured))
    assert "a: float32 -> string" in text and "tf.cast(a" not in text and "tf.strings.as_string" in text
    result, _ = run(ip, "twice2 = tf.function(lambda a: a + a)\n_ = twice2(tf.cast(tf.constant(1), tf.float32))\n"
                        "_ = twice2(tf.cast(tf.constant(1.5), tf.float32))\nn_twice = twice2.experimental_get_tracing_count()")
    assert result.success and ip.user_ns["n_twice"] == 1


def test_an_object_argument_is_named_by_its_type_and_what_it_holds(ip):
    run(ip, "class Apple:\n    flavor = tf.constant([1, 2])\nclass Mango:\n    flavor = tf.constant([3, 4])\n"
            "@tf.function\ndef taste(fruit):\n    return fruit.flavor * 2")
    run(ip, "%tfretrace --watch")
    result, captured = run(ip, "out_apple = taste(Apple())\nout_mango = taste(Mango())")
    run(ip, "%tfretrace --off")
    assert result.success
    text = "\n".join(output_texts(captured))
    assert "fruit: a different object (Apple(flavor=int32[2]) -> Mango(flavor=int32[2]))" in text
    assert "reuse one object, or pass the data it holds as tensors" in text and "__tf_tracing_type__" in text


def test_keras_fit_evaluate_predict_are_listed_under_the_model(ip):
    run(ip, "import numpy as np\nnet = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])\n"
            "net.compile(optimizer='sgd', loss='mse')\n"
            "net.fit(np.ones((10, 4)), np.ones((10, 2)), batch_size=4, verbose=0)\n"
            "net.evaluate(np.ones((10, 4)), np.ones((10, 2)), verbose=0)\nout_pred = net.predict(np.ones((3, 4)), verbose=0)")
    table = _shown(ip, "%tfretrace")
    for name in ("net.train_function", "net.test_function", "net.predict_function"):
        assert name in table
    report = _shown(ip, "%tfretrace net.train_function")
    assert "net.train_function:" in report and "reduce_retracing=True" in report


def test_one_function_in_full_and_bad_names(ip):
    from IPython.core.error import UsageError

    run(ip, "@tf.function\ndef sq(x):\n    return x * x\nsq(tf.constant(1.0)); sq(tf.constant([1.0, 2.0]))")
    report = _shown(ip, "%tfretrace sq")
    assert "sq: 2 traces (jit_compile=False, reduce_retracing=False)" in report
    assert "x: float32 -> float32[2]" in report and "(against trace 1)" in report
    for line, message in (("%tfretrace nothing_here", "no tf.function or family"),
                          ("%tfretrace sq --watch", "take no name")):
        result, _ = run(ip, line)
        assert type(result.error_in_exec) is UsageError and message in str(result.error_in_exec)


def test_a_graph_that_only_got_new_names_is_the_same_ops(ip):
    """Words and drawing come from one diff: a retrace of a branch (cond_true_N renamed) adds no op."""
    from tfmagic.graph import build_graph_model
    from tfmagic.retracing import graph_diff, trace_history
    from tfmagic.tracediff import diff_models

    run(ip, "@tf.function\ndef branchy(x, flag):\n    if x > 0:\n        x = x * 2.0\n    return x\n"
            "branchy(tf.constant(1.0), 0); branchy(tf.constant(1.0), 1)")
    traces = trace_history(ip.user_ns["branchy"]).traces
    old, new = traces[0].concrete.graph, traces[1].concrete.graph
    assert graph_diff(old, new).text == "the same ops and shapes"
    _, counts = diff_models(build_graph_model(old), build_graph_model(new))
    assert (counts.added, counts.removed) == (0, 0)


def test_a_function_no_name_holds_is_summarised_too(ip):
    run(ip, "def sweep():\n    scale = tf.function(lambda x, k: x * k)\n    return [scale(tf.constant(1.0), k) for k in range(6)]")
    text, watched, plain = _watched(ip, "out_sweep = sweep()")
    _same(watched, plain)
    assert "tfretrace sweep.<lambda> (a tf.function no name holds, line 2 of its cell): 5 retraces in this cell" in text
    assert "k: Python int 0 -> 1 -> 2 -> ... -> 5" in text and text.count("fix:") == 1
    assert "tf.constant(k, tf.float32) where it meets float32 tensors" in text  # no graph left to read k's dtype


def test_a_rebuilt_cells_diff_reads_an_earlier_trace_whose_variables_are_gone(ip):
    import gc

    run(ip, "xv = tf.ones([1, 3])\ndv = tf.keras.layers.Dense(2)")
    first, _ = run(ip, "%%tfgraph --show none\nyv = dv(xv)")
    run(ip, "dv = tf.keras.layers.Dense(2)")
    gc.collect()  # the first layer's variables go
    second, captured = run(ip, "%%tfgraph --show none\nyv = dv(xv)")
    assert first.success and second.success, second.error_in_exec
    text = "\n".join(output_texts(captured))
    assert "dv: a new object is captured" in text and "graph: the same ops" in text


def test_what_public_code_hit_a_tf_function_of_a_tf_function_and_keras_first_steps(ip):
    """From the TensorFlow guide and Keras's guides, run through --watch: no crash, no false retrace."""
    run(ip, "%tfretrace --watch")
    try:
        result, captured = run(ip, "@tf.function\ndef twice_g(x):\n    return x * 2\nh_of_g = tf.function(twice_g)\n"
                                   "out_h = h_of_g(tf.constant(1.))")
        assert result.success and not any("Traceback" in t for t in output_texts(captured))
        result, captured = run(ip, "import numpy as np\nnet_r = tf.keras.Sequential([tf.keras.Input((4,)), "
                                   "tf.keras.layers.Dense(1, name='r_out')], name='net_r')\nnet_r.compile('rmsprop', 'mse')\n"
                                   "_ = net_r.fit(np.ones((64, 4), 'float32'), np.ones((64, 1), 'float32'), "
                                   "batch_size=32, verbose=0)")
        assert result.success
        assert not any("retraced" in t for t in output_texts(captured))  # RMSprop's variables: a 2nd trace, not a retrace
    finally:
        run(ip, "%tfretrace --off")
    # Keras 3 keeps the one-batch step inside train_function; Keras 2's train_function is the tf.function itself
    assert ("net_r.train_function" if keras2() else "net_r.train_function.one_step") in _shown(ip, "%tfretrace")


def test_a_shape_fix_warns_where_the_function_reads_the_static_shape(ip):
    run(ip, "%tfretrace --watch")
    _, captured = run(ip, "@tf.function\ndef zeros_like_rows(x):\n    return tf.zeros((x.shape[0], 1))\n"
                          "_ = zeros_like_rows(tf.ones((3, 2)))\n_ = zeros_like_rows(tf.ones((5, 2)))")
    run(ip, "%tfretrace --off")
    text = "\n".join(output_texts(captured))
    assert "the function reads x.shape" in text and "tf.shape(x)[0]" in text
    result, _ = run(ip, "@tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])\n"
                        "def rows_fixed(x):\n    return tf.zeros((tf.shape(x)[0], 1))\n"
                        "_ = rows_fixed(tf.ones((3, 2)))\n_ = rows_fixed(tf.ones((5, 2)))\n"
                        "n_rows = rows_fixed.experimental_get_tracing_count()")
    assert result.success and ip.user_ns["n_rows"] == 1


def test_a_python_value_that_became_a_tensor_is_a_note_and_the_diff_names_the_constant_it_replaced(ip):
    run(ip, "%tfretrace --watch")
    _, captured = run(ip, "@tf.function\ndef summed(num_steps):\n    total = tf.constant(0)\n"
                          "    for i in tf.range(num_steps):\n        total += i\n    return total\n"
                          "_ = summed(num_steps=20)\n_ = summed(num_steps=tf.constant(20))")
    run(ip, "%tfretrace --off")
    text = "\n".join(output_texts(captured))
    assert "num_steps: Python int 20 -> int32 tensor" in text
    assert "+1 op (Placeholder num_steps), -1 op (Const range/limit)" in text and "constants changed" not in text
    assert "note: num_steps is a tensor now" in text and "fix:" not in text


def test_a_retrace_is_compared_with_the_trace_of_its_kind(ip):
    run(ip, "@tf.function\ndef fr(x):\n    return x * 2")
    run(ip, "%tfretrace --watch")
    try:
        _, captured = run(ip, "fr(tf.constant(2.)); fr(2); fr(tf.constant([[1., 2.]]))")
    finally:
        run(ip, "%tfretrace --off")
    text = output_text(captured, drawings=False)
    assert "tfretrace fr: 2 retraces in this cell (3 traces now):" in text  # one summary for the cell
    third = next(line for line in text.splitlines() if line.strip().startswith("trace 3"))
    assert third.strip() == "trace 3 (against trace 1): x: float32 -> float32[1,2]"


def test_keras_predict_retracing_is_said_to_be_keras_once(ip):
    run(ip, "km = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])")
    run(ip, "%tfretrace --watch")
    try:
        texts = [output_text(run(ip, f"pk = km.predict(np.ones(({b}, 3)), verbose=0)")[1], drawings=False)
                 for b in (4, 7, 9, 11)]
    finally:
        run(ip, "%tfretrace --off")
    joined = "\n".join(texts)
    assert "retraced: trace" not in joined
    if keras2():  # Keras 2's predict step takes an iterator: a new batch size does not retrace it
        assert "Keras's own predict step" not in joined and "retrace" not in joined
        assert ip.user_ns["km"].predict_function.experimental_get_tracing_count() == 1
    else:
        assert joined.count("Keras's own predict step") == 1 and "nothing to change in your code" in joined

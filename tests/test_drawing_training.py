"""Drawings of training code as people write it (issue 25): a model, a training step, an epoch, a GAN's step, a
distributed step, Keras's own steps.  Each fits a notebook at full size (no scaling) and reads as the code: a model
as its layers in the order the data flows, stacked; one node for the gradient, one for the optimizer's update;
the step in the epoch's loop as one call that holds the variables it reads.

Each test draws in a real shell and reads the drawing's own texts (its DOT, read back by Graphviz) and the
inline SVG (its width, and where its nodes sit).
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pygraphviz
import pytest

from .shellutil import NOTEBOOK_WIDTH, drawing_data, run, svg_width

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "distributed_step.py"

#: The models and steps of the tutorials (tensorflow/docs' CNN, quickstart and DCGAN pages), named so the drawing's
#: words can be checked.
SETUP = '''
tf.keras.utils.set_random_seed(0)
images = tf.random.normal((8, 32, 32, 3))
labels = tf.constant([1, 2, 3, 4, 5, 6, 7, 8])
cnn = tf.keras.Sequential([
    tf.keras.Input((32, 32, 3)),
    tf.keras.layers.Conv2D(32, 3, activation="relu", name="conv_a"),
    tf.keras.layers.MaxPooling2D(name="pool_a"),
    tf.keras.layers.Conv2D(64, 3, activation="relu", name="conv_b"),
    tf.keras.layers.Flatten(name="flat"),
    tf.keras.layers.Dense(64, activation="relu", name="hidden"),
    tf.keras.layers.Dense(10, name="scores"),
], name="cnn")
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = tf.keras.optimizers.Adam(1e-3, name="adam")

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = cnn(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, cnn.trainable_variables)
    optimizer.apply_gradients(zip(grads, cnn.trainable_variables))
    return loss

ds = tf.data.Dataset.from_tensor_slices((tf.random.normal((32, 32, 32, 3)), tf.range(32) % 10)).batch(8)
_ = train_step(images, labels)
'''

LAYERS = ["conv_a", "pool_a", "conv_b", "flat", "hidden", "scores"]

STEP = """with tf.GradientTape() as tape:
    logits = cnn(images, training=True)
    loss = loss_fn(labels, logits)
grads = tape.gradient(loss, cnn.trainable_variables)
optimizer.apply_gradients(zip(grads, cnn.trainable_variables))"""


@pytest.fixture(scope="module", autouse=True)
def _setup(ip):
    result, _ = run(ip, SETUP)
    assert result.success, result.error_in_exec


def _draw(ip, tmp_path, source):
    """Draw (a ``%tfgraph`` line, or a ``%%tfgraph`` / ``%%tape`` cell) and return (the node labels, the DOT as
    Graphviz reads it, the inline SVG, the drawing's text)."""
    path = tmp_path / "drawing.dot"
    head, _, body = source.partition("\n")
    result, captured = run(ip, f"{head} -o {path}\n{body}" if body else f"{head} -o {path}")
    assert result.success, result.error_in_exec
    graph = pygraphviz.AGraph(string=path.read_text())
    labels = [graph.get_node(n).attr["label"].replace("\\n", "\n") for n in graph.nodes()]
    data = drawing_data(captured)
    return labels, graph, data["image/svg+xml"], data["text/plain"]


def _fits(svg, text):
    """The drawing is at most a notebook's width at full size: not shown scaled."""
    return svg_width(svg) <= NOTEBOOK_WIDTH and "to fit a notebook's width" not in text


def _label(labels, first_line):
    """The label whose first line is ``first_line``."""
    return next(label for label in labels if label.split("\n")[0] == first_line)


def _centres(svg) -> dict[str, tuple[float, float]]:
    """Each drawn node's first line -> where it sits (x, y of that line, in the SVG's coordinates)."""
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    found = {}
    for g in root.iter(f"{ns}g"):
        if g.get("class") == "node":
            text = next(g.iter(f"{ns}text"), None)
            if text is not None:
                found.setdefault(text.text, (float(text.get("x")), float(text.get("y"))))
    return found


def _stacked(svg, names):
    """The nodes ``names`` sit one below the other in this order, in one column (no staircase)."""
    centres = _centres(svg)
    xs, ys = [centres[n][0] for n in names], [centres[n][1] for n in names]
    return ys == sorted(ys) and len(set(ys)) == len(ys) and max(xs) - min(xs) < 40


def test_a_sequential_cnn_is_its_layers_in_order_stacked_with_their_weights(ip, tmp_path):
    labels, graph, svg, text = _draw(ip, tmp_path, "%%tfgraph\nlogits = cnn(images)")
    assert _fits(svg, text)
    assert _stacked(svg, LAYERS)  # one node per layer, in the order the data flows, one below the other
    assert _label(labels, "conv_a") == "conv_a\nConv2D, BiasAdd, Relu\nkernel float32[3,3,3,32], bias float32[32]"
    assert _label(labels, "scores").endswith("kernel float32[64,10], bias float32[10]")
    assert not any(graph.get_node(n).attr["shape"] == "cylinder" for n in graph.nodes())  # no row of variables
    assert re.search(r"\d+ ops drawn as 8 nodes: cnn as its 6 layers; --expand NAME opens a layer, model or call", text)
    labels, _, svg, text = _draw(ip, tmp_path, "%%tfgraph --expand conv_a\nlogits = cnn(images)")
    assert {"Conv2D", "BiasAdd", "Relu"} <= {label.split("\n")[0] for label in labels}  # the layer opened
    assert "pool_a" in {label.split("\n")[0] for label in labels} and _fits(svg, text)


@pytest.mark.parametrize("form", ["cell", "function"])
def test_a_training_step_is_the_model_the_loss_one_gradient_and_one_update(ip, tmp_path, form):
    source = f"%%tfgraph\n{STEP}" if form == "cell" else "%tfgraph train_step"
    labels, graph, svg, text = _draw(ip, tmp_path, source)
    assert _fits(svg, text)
    assert _stacked(svg, LAYERS)
    gradient = _label(labels, "gradient(loss, cnn.trainable_variables)")
    assert re.fullmatch(r"gradient\(loss, cnn.trainable_variables\)\n8 gradients · \d+ ops", gradient)
    # its slots, as the user's Keras names them (Keras 3: momentum, velocity; Keras 2: m, v)
    assert re.fullmatch(r"adam\nupdates 8 variables\n(learning_rate, iteration|iteration, learning_rate), "
                        r"(momentum ×8, velocity ×8|m ×8, v ×8)", _label(labels, "adam"))
    assert _label(labels, "sparse_categorical_crossentropy")
    first = {label.split("\n")[0] for label in labels}
    assert not first & {"AssignVariableOp", "AddV2", "Cast"}  # adam's step count is in adam's node
    edges = {(graph.get_node(a).attr["label"].split("\\n")[0], graph.get_node(b).attr["label"].split("\\n")[0])
             for a, b in graph.edges()}
    assert ("gradient(loss, cnn.trainable_variables)", "adam") in edges
    assert "forward tensors gradient calls reuse (their edges)" in text  # what the drawing leaves out, counted


def test_an_epoch_draws_the_step_as_one_call_in_its_loop_holding_the_variables(ip, tmp_path):
    labels, graph, svg, text = _draw(ip, tmp_path, "%%tfgraph\nfor xb, yb in ds:\n    loss = train_step(xb, yb)")
    assert _fits(svg, text)
    assert _label(labels, "for xb, yb in ds")  # the loop as the code writes it, over the notebook's dataset
    call = _label(labels, "call train_step")
    assert "reads 26 variables: " in call and re.search(r"\n\d+ ops$", call)  # counted by owner (Keras 3: cnn 8)
    assert not any(graph.get_node(n).attr["shape"] == "cylinder" for n in graph.nodes())
    assert re.search(r"\d+ variables shown in the calls or loops that read them", text)
    labels, graph, svg, text = _draw(ip, tmp_path, "%%tfgraph --expand train_step\nfor xb, yb in ds:\n"
                                                   "    loss = train_step(xb, yb)")
    assert _fits(svg, text) and "no scope or call matches" not in text
    assert _stacked(svg, LAYERS) and _label(labels, "adam")  # the step opened, inside the loop's body


def test_ten_calls_a_python_loop_made_are_one_call_marked_x10(ip, tmp_path):
    labels, graph, svg, text = _draw(ip, tmp_path,
                                     "%%tfgraph\nfor _ in range(10):\n    loss = train_step(images, labels)")
    assert _fits(svg, text)
    assert sum(label.startswith("call train_step") for label in labels) == 1
    assert _label(labels, "call train_step ×10")
    assert "9 repeated calls drawn as one (xN)" in text
    assert _label(labels, "loss").startswith("loss\nfloat32[]")  # what the last call returned, bound by the loop


def test_a_residual_block_stacks_its_conv_batch_norm_pairs_and_keeps_the_skip(ip, tmp_path):
    run(ip, '''
class ResBlock(tf.keras.Model):
    def __init__(self, filters):
        super().__init__(name="resblock")
        self.convs = [tf.keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}") for i in range(3)]
        self.norms = [tf.keras.layers.BatchNormalization(name=f"bn{i}") for i in range(3)]
    def call(self, x, training=False):
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = norm(conv(h), training=training)
            h = tf.nn.relu(h) if i < 2 else h
        return tf.nn.relu(h + x)
block = ResBlock(3)''')
    for training in ("False", "True"):
        labels, graph, svg, text = _draw(ip, tmp_path, f"%%tfgraph\nout = block(images, training={training})")
        assert _fits(svg, text)
        assert _stacked(svg, ["conv0", "bn0", "conv1", "bn1", "conv2", "bn2"])
        assert _label(labels, "bn0").endswith("gamma float32[3], beta float32[3]") or "moving_mean" in _label(
            labels, "bn0")
        skip = [n for n in graph.nodes() if graph.get_node(n).attr["label"].startswith("AddV2")]
        assert len(skip) == 1 and "images" in {graph.get_node(a).attr["label"].split("\\n")[0]
                                               for a, _ in graph.in_edges(skip[0])}  # the skip from the input


def test_a_gan_step_has_two_models_two_gradients_and_two_updates(ip, tmp_path):
    run(ip, '''
generator = tf.keras.Sequential([tf.keras.Input((16,)), tf.keras.layers.Dense(7 * 7 * 8, use_bias=False, name="g_dense"),
    tf.keras.layers.BatchNormalization(name="g_bn"), tf.keras.layers.LeakyReLU(name="g_relu"),
    tf.keras.layers.Reshape((7, 7, 8), name="g_reshape"),
    tf.keras.layers.Conv2DTranspose(1, 5, strides=4, padding="same", activation="tanh", name="g_up")], name="generator")
discriminator = tf.keras.Sequential([tf.keras.Input((28, 28, 1)), tf.keras.layers.Conv2D(8, 5, strides=2, name="d_conv"),
    tf.keras.layers.LeakyReLU(name="d_relu"), tf.keras.layers.Dropout(0.3, name="d_drop"),
    tf.keras.layers.Flatten(name="d_flat"), tf.keras.layers.Dense(1, name="d_out")], name="discriminator")
cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)
generator_optimizer = tf.keras.optimizers.Adam(1e-4, name="gen_adam")
discriminator_optimizer = tf.keras.optimizers.Adam(1e-4, name="disc_adam")
real = tf.random.normal((4, 28, 28, 1))

@tf.function
def gan_step(images):
    noise = tf.random.normal([4, 16])
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        generated_images = generator(noise, training=True)
        real_output = discriminator(images, training=True)
        fake_output = discriminator(generated_images, training=True)
        gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
        disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                     + cross_entropy(tf.zeros_like(fake_output), fake_output))
    gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
    gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
    generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
    discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
    return gen_loss, disc_loss

_ = gan_step(real)''')
    labels, graph, svg, text = _draw(ip, tmp_path, "%tfgraph gan_step")
    assert _fits(svg, text)
    assert _stacked(svg, ["g_dense", "g_bn", "g_relu", "g_reshape", "g_up"])
    assert re.fullmatch(r"gradient\(gen_loss, generator.trainable_variables\)\n5 gradients · \d+ ops",
                        _label(labels, "gradient(gen_loss, generator.trainable_variables)"))
    assert _label(labels, "gradient(disc_loss, discriminator.trainable_variables)")
    assert _label(labels, "gen_adam").startswith("gen_adam\nupdates 5 variables")  # no g_dense bias: use_bias=False
    assert _label(labels, "disc_adam").startswith("disc_adam\nupdates 4 variables")
    boxes = [sub.graph_attr["label"] for sub in graph.subgraphs() if (sub.name or "").startswith("cluster")]
    assert boxes.count("discriminator") >= 1 and "generator" in boxes  # the models as boxes of their layers


def test_keras_steps_are_drawn_by_the_names_tfretrace_lists(ip, tmp_path):
    run(ip, 'cnn.compile(optimizer=tf.keras.optimizers.Adam(name="fit_adam"), metrics=["accuracy"], '
            'loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n'
            '_ = cnn.fit(ds, epochs=1, verbose=0)\n_ = cnn.evaluate(ds, verbose=0)\n_ = cnn.predict(images, verbose=0)')
    _, captured = run(ip, "%tfretrace")
    listed = set(re.findall(r"\bcnn\.[\w.]+", "\n".join([captured.stdout] + [o.data.get("text/plain", "")
                                                                           for o in captured.outputs])))
    # Keras 3 keeps fit's steps in closures, the one-batch step apart; Keras 2's train_function is the step itself
    assert {"cnn.train_function", "cnn.test_function", "cnn.predict_function"} <= listed
    for name in sorted(listed):
        labels, graph, svg, text = _draw(ip, tmp_path, f"%tfgraph {name}")
        assert _fits(svg, text), name
    step = "cnn.train_function.one_step" if "cnn.train_function.one_step" in listed else "cnn.train_function"
    labels, graph, svg, text = _draw(ip, tmp_path, f"%tfgraph {step}")
    assert _stacked(svg, LAYERS)
    gradient = next(label for label in labels if label.startswith("gradient(loss, "))  # Keras's own line
    assert re.fullmatch(r"gradient\(loss, (trainable_weights|var_list)\)\n8 gradients · \d+ ops", gradient)
    assert _label(labels, "fit_adam").startswith("fit_adam\nupdates 8 variables")
    assert _label(labels, "accuracy") and "result['accuracy']" in {label.split("\n")[0] for label in labels}
    if step != "cnn.train_function":
        labels, *_ = _draw(ip, tmp_path, "%tfgraph cnn.train_function")
        assert _label(labels, "call one_step_on_data")  # fit's function calls the one-batch step


def test_a_function_that_only_wraps_tf_functions_says_which_to_draw(ip):
    run(ip, "def wrapper(x):\n    return train_step(x, labels)")
    result, _ = run(ip, "%tfgraph wrapper")
    assert type(result.error_in_exec).__name__ == "UsageError"
    assert str(result.error_in_exec) == ("%tfgraph wrapper: a Python function that calls the tf.function "
                                         "train_step; draw one of them")


def test_a_distributed_step_fits_with_the_second_replica_as_one_node(tmp_path):
    drawing = tmp_path / "distributed.dot"
    env = dict(os.environ, DRAWING=str(drawing))
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["step"]["success"] and out["draw"]["success"], (out["step"]["error"], out["draw"]["error"])
    assert len(out["losses"]) == 2 and all(loss == loss for loss in out["losses"])  # the plain run trained
    svg, text = out["draw"]["svgs"][0], "\n".join(out["draw"]["texts"])
    assert _fits(svg, text)
    graph = pygraphviz.AGraph(string=drawing.read_text())
    labels = [graph.get_node(n).attr["label"].replace("\\n", "\n") for n in graph.nodes()]
    assert _label(labels, "replica_1").startswith("replica_1\nthe step again, on another replica's device")
    assert _stacked(svg, ["c1", "pool", "flat", "logits"])
    assert _label(labels, "adam").startswith("adam\nupdates 4 variables")  # the mirrored variables, once each
    assert any(label.startswith("gradient(loss, model.trainable_variables)") for label in labels)
    assert not any(graph.get_node(n).attr["shape"] == "cylinder" for n in graph.nodes())

"""Run in a fresh process by tests/test_drawing_training.py: the distributed custom-training tutorial's step
(MirroredStrategy over two logical CPUs, strategy.run) drawn by %tfgraph, printed as JSON.

--split-cpu must come before TensorFlow initialises its devices, so this cannot share the test process.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

#: The step as tensorflow/docs' distribute/custom_training tutorial writes it, on a small CNN.
STEP = """
import tensorflow as tf
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
GLOBAL_BATCH_SIZE = 8
with strategy.scope():
    model = tf.keras.Sequential([tf.keras.Input((28, 28, 1)), tf.keras.layers.Conv2D(8, 3, activation="relu", name="c1"),
                                 tf.keras.layers.MaxPooling2D(name="pool"), tf.keras.layers.Flatten(name="flat"),
                                 tf.keras.layers.Dense(10, name="logits")], name="cnn")
    optimizer = tf.keras.optimizers.Adam(name="adam")
    optimizer.build(model.trainable_variables)
    loss_object = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

def compute_loss(labels, predictions):
    per_example_loss = loss_object(labels, predictions)
    return tf.nn.compute_average_loss(per_example_loss, global_batch_size=GLOBAL_BATCH_SIZE)

def train_step(inputs):
    images, labels = inputs
    with tf.GradientTape() as tape:
        predictions = model(images, training=True)
        loss = compute_loss(labels, predictions)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss

@tf.function
def distributed_train_step(dataset_inputs):
    per_replica_losses = strategy.run(train_step, args=(dataset_inputs,))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_losses, axis=None)

ds = tf.data.Dataset.from_tensor_slices((tf.random.normal((16, 28, 28, 1)), tf.range(16) % 10)).batch(8)
losses = [float(distributed_train_step(batch)) for batch in strategy.experimental_distribute_dataset(ds)]
"""


def main():
    ip = InteractiveShell.instance()
    out = {}
    for name, source in (("load", "%load_ext tfmagic"), ("split", "%tfdevice --split-cpu 2"), ("step", STEP),
                         ("draw", f"%tfgraph distributed_train_step -o {os.environ['DRAWING']}")):
        with capture_output() as captured:
            result = ip.run_cell(source)
        out[name] = {"success": result.success, "error": repr(result.error_in_exec) if result.error_in_exec else None,
                     "texts": [o.data.get("text/plain", "") for o in captured.outputs],
                     "svgs": [o.data["image/svg+xml"] for o in captured.outputs if "image/svg+xml" in o.data]}
    out["losses"] = ip.user_ns.get("losses")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Drawings of code written in the styles public tutorials use speak the code's names (issue 19): calls by the
Python function's name, inputs by their parameters (a list's parts as vs[0]), what a loop reads by the name
the code binds, every branch of nested ifs inside a loop, and what each tf.print prints.

Each test draws in a real shell and reads the drawing's own texts (its DOT, read back by Graphviz) and the
inline SVG's width at full scale.
"""

import re

import pygraphviz

from .shellutil import NOTEBOOK_WIDTH, drawing_svg, run, svg_width

FUNCTIONS = '''
@tf.function
def inner_function(x, y, b):
    return tf.matmul(x, y) + b

@tf.function
def outer_function(x):
    y = tf.constant([[2.0], [3.0]])
    b = tf.constant(4.0)
    return inner_function(x, y, b)

@tf.function
def weighted(x, vs):
    return x * vs[0] + vs[1]

rnn_cell = lambda x, s: tf.tanh(x + s)

@tf.function
def dynamic_rnn(rnn_cell, input_data, initial_state):
    input_data = tf.transpose(input_data, [1, 0, 2])
    max_seq_len = input_data.shape[0]
    states = tf.TensorArray(tf.float32, size=max_seq_len)
    state = initial_state
    for i in tf.range(max_seq_len):
        state = rnn_cell(input_data[i], state)
        states = states.write(i, state)
    return tf.transpose(states.stack(), [1, 0, 2])

@tf.function
def fizzbuzz(n):
    for i in tf.range(1, n + 1):
        if i % 15 == 0:
            tf.print('FizzBuzz')
        elif i % 3 == 0:
            tf.print('Fizz')
        elif i % 5 == 0:
            tf.print('Buzz')
        else:
            tf.print(i)
'''


def _drawing(ip, tmp_path, line_or_cell):
    """Draw (a %tfgraph line, or a %%tfgraph cell) and return (the labels of every node and box, the SVG)."""
    path = tmp_path / "drawing.dot"
    if line_or_cell.startswith("%%"):
        head, _, body = line_or_cell.partition("\n")
        source = f"{head} -o {path}\n{body}"
    else:
        source = f"{line_or_cell} -o {path}"
    result, captured = run(ip, source)
    assert result.success, result.error_in_exec
    graph = pygraphviz.AGraph(string=path.read_text())
    labels = [graph.get_node(n).attr["label"].replace("\\n", "\n") for n in graph.nodes()]
    labels += [sub.graph_attr.get("label", "") for sub in _clusters(graph)]
    svg = drawing_svg(captured)
    return labels, svg


def _clusters(graph):
    for sub in graph.subgraphs():
        yield sub
        yield from _clusters(sub)


def test_a_call_is_named_by_the_function_and_its_inputs_by_its_parameters(ip, tmp_path):
    run(ip, FUNCTIONS)
    run(ip, "outer_function(tf.constant([[1.0, 2.0]]))")
    labels, svg = _drawing(ip, tmp_path, "%tfgraph outer_function")
    text = "\n".join(labels)
    assert "call inner_function" in labels and "inner_function" in labels  # the node and its body's box
    assert "PartitionedCall" not in text
    inputs = {label.split("\n")[0] for label in labels}
    assert {"x", "y = [2.0, 3.0]", "b = 4.0"} <= inputs  # the parameters, with the values they were called with
    assert svg_width(svg) <= NOTEBOOK_WIDTH


def test_a_list_arguments_parts_are_named_by_index(ip, tmp_path):
    run(ip, FUNCTIONS)
    run(ip, "weighted(tf.constant(1.0), [tf.constant(2.0), tf.constant(3.0)])")
    labels, _ = _drawing(ip, tmp_path, "%tfgraph weighted")
    inputs = {label.split("\n")[0] for label in labels}
    assert {"x", "vs[0]", "vs[1]"} <= inputs and "vs_1" not in inputs


def test_what_a_loop_reads_is_named_as_the_code_binds_it(ip, tmp_path):
    run(ip, FUNCTIONS)
    run(ip, "dynamic_rnn(rnn_cell, tf.random.uniform([2, 5, 3]), tf.zeros([2, 3]))")
    labels, svg = _drawing(ip, tmp_path, "%tfgraph dynamic_rnn")
    text = "\n".join(labels)
    assert "while/" not in text and "strided_slice/transpose" not in text
    assert "input_data\nfloat32[5,2,3]" in labels  # the transposed input, inside the loop body
    assert "state\nfloat32[2,3]" in labels and "next state\nfloat32[2,3]" in labels
    assert svg_width(svg) <= NOTEBOOK_WIDTH


def test_every_branch_of_fizzbuzz_is_drawn_with_what_it_prints(ip, tmp_path):
    run(ip, FUNCTIONS)
    labels, svg = _drawing(ip, tmp_path, "%%tfgraph\nfizzbuzz(tf.constant(15))")  # a cell calling it: one level more
    for printed in ("print 'FizzBuzz'", "print 'Fizz'", "print 'Buzz'", "print i"):
        assert printed in labels, printed
    assert "call fizzbuzz" in labels and not any(label.startswith(("StringFormat", "PrintV2")) for label in labels)
    assert svg_width(svg) <= NOTEBOOK_WIDTH


def test_a_jacobian_is_one_node_and_the_forward_pass_is_what_one_sees(ip, tmp_path):
    run(ip, "dense = tf.keras.layers.Dense(2, name='dense')\nxj = tf.random.normal([3, 4])\n_ = dense(xj)")
    cell = "%%tfgraph\nwith tf.GradientTape() as tape:\n    yj = dense(xj)\nj = tape.jacobian(yj, dense.kernel)"
    labels, svg = _drawing(ip, tmp_path, cell)
    call = next(label for label in labels if label.startswith("jacobian(yj, dense.kernel)"))
    assert re.search(r"\n1 jacobian · 1\d\d ops$", call)  # the backward pass and pfor's plumbing, counted in the node
    assert "MatMul" in labels and "BiasAdd" in labels  # the forward pass, op by op
    assert not any("pfor" in label or "gradient_tape" in label for label in labels)
    assert len(labels) < 20 and svg_width(svg) <= NOTEBOOK_WIDTH
    labels_all, _ = _drawing(ip, tmp_path, cell.replace("%%tfgraph", "%%tfgraph --ops all", 1))
    assert len(labels_all) > 100  # --ops all opens it


BLOCK = '''
mha = tf.keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")
norm1 = tf.keras.layers.LayerNormalization(name="norm1")
norm2 = tf.keras.layers.LayerNormalization(name="norm2")
ffn = tf.keras.layers.Dense(16, name="ffn")

@tf.function
def block(x):
    h = norm1(x + mha(x, x))
    return norm2(h + ffn(h))

_ = block(tf.random.normal([2, 5, 16]))
'''


def test_an_attention_block_too_tall_to_read_starts_collapsed_by_layer(ip, tmp_path):
    run(ip, BLOCK)
    result, captured = run(ip, f"%tfgraph block -o {tmp_path / 'b.svg'}")
    assert result.success
    note = captured.outputs[0].data["text/plain"]
    # Keras 3's layers make it tall; Keras 2's (LayerNormalization's shape plumbing) make it wide
    assert re.search(r"111 ops drawn as \d+ nodes \(expanded, it (would be about [\d,]+ pt tall|is [\d,]+ pt wide)\): "
                     r"\d+ other layers or name scopes one node each; --expand NAME opens a layer, model or call", note)
    labels, svg = _drawing(ip, tmp_path, "%tfgraph block")
    names = {label.split("\n")[0] for label in labels}
    assert {"attention", "norm1", "norm2", "ffn"} <= names  # the layers, by the names the code gave them
    assert svg_width(svg) <= NOTEBOOK_WIDTH and float(re.search(r'height="([\d.]+)pt"', svg).group(1)) < 1000
    labels, _ = _drawing(ip, tmp_path, "%tfgraph block --expand attention")
    assert any("Softmax" in label for label in labels)  # --expand opens a layer (Keras 2: its softmax scope)


def test_a_gradient_call_gives_each_gradient_its_own_output(ip, tmp_path):
    run(ip, "gdense = tf.keras.layers.Dense(3, name='gdense')\ngx = tf.ones([2, 4])\n_ = gdense(gx)")
    labels, _ = _drawing(ip, tmp_path, "%%tfgraph\nwith tf.GradientTape() as tape:\n    gl = tf.reduce_sum(gdense(gx))\n"
                                        "gg = tape.gradient(gl, gdense.trainable_variables)")
    assert "gg[0]\nfloat32[4,3]" in labels and "gg[1]\nfloat32[3]" in labels  # not merged into one node
    assert any(label.startswith("gradient(gl, gdense.trainable_variables)") for label in labels)

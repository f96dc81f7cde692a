"""The cells of the differential corpus (tests/test_corpus.py): what people write in notebook cells.

Each :class:`Case` is a cell body.  The corpus runs it as a plain cell and under ``%%tfgraph --show none``
(and ``%%tape`` where it has a target) and asserts the same values and namespace, or, where a graph
differs from eager code, a ``%%tfgraph`` message at the given line with the given words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One cell of the corpus.

    Attributes:
        construct: what it exercises (the tallies are by construct).
        source: the cell's body.
        explained: ``(line, word, ...)``: the graph differs from eager code, and %%tfgraph says so at that
            line with those words (case-insensitive).
        probe: an expression run in a plain cell afterwards: what the cell bound must work eagerly.
        tape: ``%%tape`` TARGET ('' for the last expression), when the cell has a target.
        once: run the cell once (not twice).
    """

    construct: str
    source: str
    explained: tuple = ()
    probe: str = ""
    tape: str | None = None
    once: bool = False


def C(construct, *lines, explained=(), probe="", tape=None, once=False):
    return Case(construct, "\n".join(lines) + "\n", tuple(explained), probe, tape, once)


#: Run before every variant: the notebook's state the cells read.
SETUP = """\
import math
x = tf.constant([1., 2., 3.])
x6 = tf.constant([1., 2., 3., 4., 5., 6.])
m = tf.constant([[1., 2.], [3., 4.]])
i3 = tf.constant([1, 2, 3])
s = tf.constant(["a", "bc", "def"])
n = 3
items = [1, 2, 3]
cfg = {"a": 1.0, "b": 2.0}
seen = []
v = tf.Variable([1., 2., 3.])
w = tf.Variable(2.)
M = tf.Variable([[1., 2., 3.], [4., 5., 6.]])
rg = tf.ragged.constant([[1, 2], [3]])
sp = tf.sparse.SparseTensor(indices=[[0, 0], [1, 2]], values=[1., 2.], dense_shape=[2, 3])
layer = tf.keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros", name="dense")
model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, kernel_initializer="ones",
                             bias_initializer="zeros", name="d1")], name="net")
ds = tf.data.Dataset.range(4)
sgd = tf.keras.optimizers.SGD(0.1, name="sgd")
adam = tf.keras.optimizers.Adam(0.1, name="adam")
mean = tf.keras.metrics.Mean(name="mean")
_ = layer(tf.ones((1, 3)))
def helper(t):
    return t * 2
class Box:
    pass
obj = Box()
with tf.GradientTape(persistent=True) as tape0:
    tape0.watch(x)
    tape0.watch(m)
    yt = x * x * w
    lt = tf.reduce_sum(yt)
    ym = m * m * w
dbl_s = tf.function(lambda t: t + t).get_concrete_function(tf.TensorSpec(None, tf.string))
tf.random.set_seed(0)
"""

#: Names whose state (not identity) every variant compares.
STATE = ("v", "w", "M", "layer", "model", "seen", "cfg", "obj", "items", "mean")

CASES = [
    # -- comprehensions -------------------------------------------------------
    C("comprehension", "n2 = [i * 2 for i in range(3)]", "n2"),
    C("comprehension", "sq = {i: i ** 2 for i in range(n)}"),
    C("comprehension", "st = {i % 2 for i in items}"),
    C("comprehension", "tot = sum(i for i in range(5))"),
    C("comprehension", "ts = [x * k for k in range(3)]", "ts[-1] + 1"),
    C("comprehension", "nested = [[i * j for j in range(i)] for i in range(4)]"),
    C("comprehension", "ev = [i for i in range(10) if i % 2 == 0 if i > 2]"),
    C("comprehension", "pairs = [(k, val) for k, val in cfg.items()]"),
    C("comprehension", "scaled = {k: val * x for k, val in cfg.items()}", probe="scaled['a'] + 1"),
    C("comprehension", "stacked = tf.stack([tf.reduce_sum(x) * i for i in range(3)])"),
    C("comprehension", "i = 100\nlst = [i for i in range(3)]\ni"),
    C("comprehension", "gen = (i * 2 for i in range(3))", explained=(1, "gen is not written back", "generator")),
    C("comprehension", "big = max(len(t) for t in ['a', 'bcd', 'ef'])"),
    C("comprehension", "el = [e * 2 for e in x]", explained=(1, "AutoGraph", "comprehensions")),
    C("comprehension", "parts = tf.concat([x[k:k + 1] for k in range(2)], axis=0)"),
    # -- lambdas --------------------------------------------------------------
    C("lambda", "f = lambda a: a * 2\ny = f(x)", probe="f(tf.constant(5.))"),
    C("lambda", "k = x + 1\ng = lambda a: a + k\ny = g(1.)", probe="g(10.)"),
    C("lambda", "y = (lambda a, b=3: a * b)(x)"),
    C("lambda", "order = sorted(items, key=lambda t: -t)"),
    C("lambda", "mapped = list(map(lambda t: t + 1, items))"),
    C("lambda", "h = lambda *args, **kw: len(args) + len(kw)\ncount = h(1, 2, z=3)", probe="h(1)"),
    C("lambda", "y = tf.map_fn(lambda t: t * t, x)"),
    # -- nested functions ---------------------------------------------------------
    C("nested function", "def sq(t):\n    return t * t\ny = sq(x)", probe="sq(tf.constant(4.))"),
    C("nested function", "def add(a, b=1.0, *, c=2.0):\n    return a + b + c\ny = add(x, c=3.0)",
      probe="add(1.0)"),
    C("nested function", "def fact(k):\n    return 1 if k <= 1 else k * fact(k - 1)\nf5 = fact(5)", probe="fact(4)"),
    C("nested function", "def deco(fn):\n    def wrapped(t):\n        return fn(t) + 1\n    return wrapped\n"
      "@deco\ndef base(t):\n    return t * 3\ny = base(x)", probe="base(tf.constant(1.))"),
    C("nested function", "def stats(t):\n    return tf.reduce_mean(t), tf.reduce_max(t)\nmu, mx = stats(x)"),
    C("nested function", "import functools\ndef deco2(fn):\n    @functools.wraps(fn)\n    def wrapped(t):\n"
      "        return fn(t) * 10\n    return wrapped\nk = x + 1\n@deco2\ndef plus(t):\n    return t + k\ny = plus(x)",
      probe="plus(tf.constant(1.))"),
    C("nested function", "def varargs(*ts):\n    return tf.add_n(list(ts))\ny = varargs(x, x, x)"),
    C("nested function", "y = helper(x) + helper(1.0)"),
    C("nested function", "def uses_n(t):\n    return t * n\ny = uses_n(x)", probe="uses_n(tf.constant(1.))"),
    # -- closures -------------------------------------------------------------
    C("closure", "def make(k):\n    def inner(t):\n        return t * k\n    return inner\ntriple = make(3.0)\ny = triple(x)",
      probe="triple(tf.constant(2.))"),
    C("closure", "scale = tf.reduce_max(x)\ndef by_scale(t):\n    return t / scale\ny = by_scale(x)",
      probe="by_scale(tf.constant(6.))"),
    C("closure", "def counter():\n    c = [0]\n    def bump():\n        c[0] += 1\n        return c[0]\n    return bump\n"
      "b = counter()\nb()\nlast = b()", probe="b()"),
    C("closure", "fns = [lambda t, k=k: t * k for k in range(3)]\nys = [fn(x) for fn in fns]", probe="fns[2](1.)"),
    C("closure", "base_t = x * 10\nclass Scaler:\n    def __call__(self, t):\n        return t + base_t\n"
      "sc = Scaler()\ny = sc(x)", probe="Scaler()(tf.constant(1.))"),
    # -- unpacking ---------------------------------------------------------------
    C("unpacking", "a, b = x[0], x[1]"),
    C("unpacking", "first, *rest = items"),
    C("unpacking", "(p, q), r = (x, m), i3"),
    C("unpacking", "a1, a2, a3 = tf.unstack(x)"),
    C("unpacking", "u, w2 = 1, 2\nu, w2 = w2, u"),
    C("unpacking", "head, *mid, tail = range(5)"),
    C("unpacking", "for k, val in zip(items, [x, x * 2, x * 3]):\n    last = val * k"),
    C("unpacking", "for idx, val in enumerate(items):\n    acc = idx * val"),
    C("unpacking", "d2 = {**cfg, 'c': 3.0}\nl2 = [*items, 4]"),
    C("unpacking", "q, r2 = divmod(17, 5)"),
    # -- augmented assignment --------------------------------------------------------
    C("augmented assignment", "y = x\ny += 1.\ny *= 2.\ny -= 0.5\ny /= 4."),
    C("augmented assignment", "k = n\nk += 2\nk **= 2\nk //= 3\nk %= 4"),
    C("augmented assignment", "mm = m\nmm @= m"),
    C("augmented assignment", "items2 = list(items)\nitems2 += [4, 5]"),
    C("augmented assignment", "items += [4]", explained=(1, "while tracing only")),
    C("augmented assignment", "t = tf.constant(0)\nfor j in tf.range(5):\n    t += j", explained=(2, "j is not written back")),
    C("augmented assignment", "z = i3\nz <<= 1\nz |= 1", explained=()),
    C("augmented assignment", "n += 1"),
    C("augmented assignment", "txt = 'ab'\ntxt *= 3"),
    # -- subscript assignment ------------------------------------------------------
    C("subscript assignment", "lst = [0, 0, 0]\nlst[1] = x\nlst[0] = 5"),
    C("subscript assignment", "dd = {}\ndd['sum'] = tf.reduce_sum(x)\ndd['n'] = 3"),
    C("subscript assignment", "cfg['c'] = x * 2", probe="cfg['c'] + 1"),
    C("subscript assignment", "seen.append(x * 2)", explained=(1, "appends to a Python list while tracing only")),
    C("subscript assignment", "obj.t = x - 1", probe="obj.t * 2"),
    C("subscript assignment", "x[0] = 5.", once=True),
    C("subscript assignment", "grid = [[0] * 2 for _ in range(2)]\ngrid[1][0] = 7"),
    C("subscript assignment", "arr = np.zeros(3)\narr[1] = 2.0"),
    # -- slicing -----------------------------------------------------------------
    C("slicing", "y = x[1:]"),
    C("slicing", "y = x[::-1]"),
    C("slicing", "col = m[:, 0]\nrow = m[1]"),
    C("slicing", "y = m[..., 1]"),
    C("slicing", "y = x[None, :]\nz = x[:, tf.newaxis]"),
    C("slicing", "y = x6[1:5:2]\nz = x6[-2:]"),
    C("slicing", "sub = items[1:]\nrev = items[::-1]"),
    C("slicing", "y = tf.gather(x, [2, 0])"),
    C("slicing", "k = tf.constant(1)\ny = x[k]"),
    C("slicing", "y = s[1:]"),
    C("slicing", "y = v[1:]"),
    C("slicing", "y = x[tf.constant([True, False, True])]"),
    # -- del ---------------------------------------------------------------------
    C("del", "tmp = x * 2\ny = tmp + 1\ndel tmp"),
    C("del", "del n", once=True),
    C("del", "lst = [1, 2, 3]\ndel lst[0]"),
    C("del", "dd = dict(cfg)\ndel dd['a']"),
    C("del", "del cfg['a']", explained=(1, "while tracing only")),
    C("del", "y = x\ndel y\ny = 3"),
    # -- try / except / finally --------------------------------------------------------
    C("try/except", "try:\n    r = 1 / 0\nexcept ZeroDivisionError:\n    r = 0.0"),
    C("try/except", "try:\n    y = x * 2\nfinally:\n    done = True"),
    C("try/except", "try:\n    y = cfg['zz']\nexcept KeyError as e:\n    y = x\nelse:\n    y = -x"),
    C("try/except", "try:\n    y = tf.gather(x, 10)\nexcept tf.errors.InvalidArgumentError:\n    y = x", once=True,
      explained=(1, "try/except tf.errors.InvalidArgumentError", "graph runs")),
    C("try/except", "try:\n    y = tf.constant(1.) + tf.constant(1)\nexcept tf.errors.InvalidArgumentError as ex:\n"
      "    print(ex)\n    y = 0.", once=True, explained=(1, "try/except", "TypeError")),
    C("try/except", "try:\n    y = x + 1\nexcept tf.errors.InvalidArgumentError as ex:\n    print(ex)",
      explained=(4, "except branch runs only if")),
    C("try/except", "raise ValueError('stop')", once=True),
    C("try/except", "y = x * 2\nz = undefined_name + 1", once=True),
    C("try/except", "assert n > 5, 'n too small'", once=True),
    C("try/except", "y = tf.constant(2.) + tf.constant(40)", once=True, explained=(1, "never converts dtypes")),
    C("try/except", "y = tf.stack([x, m])", once=True, explained=(1, "checks shapes while tracing")),
    C("try/except", "try:\n    y = tf.stack([x, m])\nexcept tf.errors.InvalidArgumentError:\n    y = x", once=True,
      explained=(1, "try/except", "while tracing")),
    # -- with ------------------------------------------------------------------------
    C("with", "with tf.name_scope('block'):\n    y = x * 2"),
    C("with", "with tf.device('/CPU:0'):\n    y = x + 1"),
    C("with", "import contextlib\nwith contextlib.suppress(ZeroDivisionError):\n    r = 1 / 0\ny = x"),
    C("with", "with tf.GradientTape() as tp:\n    tp.watch(x)\n    y = x * x\ng = tp.gradient(y, x)"),
    C("with", "with tf.name_scope('a'), tf.name_scope('b'):\n    y = x - 1"),
    C("with", "with tf.GradientTape() as tp:\n    y = tf.reduce_sum(v * v)\ngv = tp.gradient(y, v)"),
    # -- f-strings -----------------------------------------------------------------------
    C("f-string", "msg = f'n={n}, items={items!r:>12}'"),
    C("f-string", "msg = f'shape {x.shape}, dtype {x.dtype.name}'"),
    C("f-string", "msg = f'{n * 2:05d}|{3.14159:.2f}'"),
    C("f-string", "msg = f'{x}'", explained=(1, "symbolic tensor", "tf.strings.format")),
    C("f-string", "msg = 'value: ' + str(tf.reduce_sum(x))", explained=(1, "symbolic tensor")),
    C("f-string", "msg = tf.strings.format('sum {}', tf.reduce_sum(x))"),
    # -- walrus ----------------------------------------------------------------------------
    C("walrus", "(y := x * 2)\nz = y + 1"),
    C("walrus", "if (k := len(items)) > 2:\n    big = True\nelse:\n    big = False"),
    C("walrus", "vals = [sq for i in range(4) if (sq := i * i) > 1]"),
    C("walrus", "total = (t := tf.reduce_sum(x)) * 2"),
    # -- imports ---------------------------------------------------------------------------
    C("import", "import math\ny = math.sqrt(16.0)"),
    C("import", "from math import pi as PI\narea = PI * 2.0 ** 2"),
    C("import", "import numpy as np2\narr = np2.arange(3)"),
    C("import", "from tensorflow import keras\nact = keras.activations.relu(x - 2.)"),
    C("import", "import collections\nCount = collections.Counter(items)"),
    C("import", "def inner():\n    import math\n    return math.e\ne = inner()", probe="inner()"),
    # -- class definitions -------------------------------------------------------------------
    C("class", "class P:\n    k = 2\n    def f(self, t):\n        return t * self.k\np = P()\ny = p.f(x)",
      probe="P().f(tf.constant(3.))"),
    C("class", "from dataclasses import dataclass\n@dataclass\nclass Pt:\n    a: float\n    b: float = 1.0\n"
      "pt = Pt(2.0)", probe="Pt(1.0, 2.0).b"),
    C("class", "class Sq(tf.Module):\n    def __call__(self, t):\n        return t ** 2\ny = Sq()(x)"),
    C("class", "class Holder:\n    def __init__(self, t):\n        self.t = t\nhh = Holder(x * 2)",
      explained=(4, "hh is not written back")),
    C("class", "class Cnt:\n    total = 0\n    @classmethod\n    def add(cls, k):\n        cls.total += k\n"
      "        return cls.total\nc1 = Cnt.add(2)"),
    C("class", "class Ref:\n    @property\n    def dbl(self):\n        return x * 2\nrr = Ref()", probe="rr.dbl"),
    C("class", "class Lyr(tf.keras.layers.Layer):\n    def call(self, t):\n        return t * 2\ny = Lyr()(x)"),
    # -- early-return-like flows ---------------------------------------------------------------
    C("control flow", "if n > 2:\n    y = x * 2\nelse:\n    y = x"),
    C("control flow", "if tf.reduce_sum(x) > 5:\n    y = x * 10\nelse:\n    y = -x"),
    C("control flow", "y = x if n > 1 else -x"),
    C("control flow", "y = x * 2 if tf.reduce_sum(x) > 0 else x"),
    C("control flow", "flag = n > 1 and len(items) > 2"),
    C("control flow", "ok = tf.reduce_all(x > 0) and tf.reduce_any(x > 2)"),
    C("control flow", "assert tf.reduce_all(x > 0)\ny = x", explained=(1, "python bool", "assert")),
    C("control flow", "y = None\nif y is None:\n    y = x"),
    C("control flow", "if n > 2:\n    pass\ny = x"),
    C("control flow", "match n:\n    case 3:\n        label = 'three'\n    case _:\n        label = 'other'"),
    C("control flow", "y = tf.cond(tf.reduce_sum(x) > 0, lambda: x, lambda: -x)"),
    C("control flow", "y = tf.where(x > 1.5, x, 0.)"),
    C("control flow", "y = int(x[0])", explained=(1, "tf.cast", "Python int")),
    # -- loops with break / continue ---------------------------------------------------------------
    C("loop", "acc = 0\nfor k in range(10):\n    if k == 5:\n        break\n    if k % 2:\n        continue\n    acc += k"),
    C("loop", "acc = tf.constant(0)\nfor k in tf.range(10):\n    if k > 4:\n        break\n    acc += k",
      explained=(2, "k is not written back", "graph loop")),
    C("loop", "acc = tf.constant(0.)\nfor e in x:\n    acc += e * e", explained=(2, "e is not written back")),
    C("loop", "y = x\nwhile tf.reduce_max(y) < 50.:\n    y = y * 2."),
    C("loop", "k = 0\nwhile k < 5:\n    k += 1\nelse:\n    done = True"),
    C("loop", "for k in range(3):\n    pass\nelse:\n    finished = k"),
    C("loop", "acc = tf.constant(0)\nfor e in ds:\n    acc += e", explained=(3, "never converts dtypes")),
    C("loop", "acc = tf.constant(0, tf.int64)\nfor e in ds:\n    acc += e", explained=(2, "e is not written back")),
    C("loop", "outs = []\nfor k in range(3):\n    outs.append(x * k)"),
    C("loop", "acc = x\nfor _ in range(4):\n    acc = acc * 2.0", explained=(2, "unrolled")),
    C("loop", "acc = tf.constant(0.)\nfor k in tf.range(6):\n    if k % 2 == 0:\n        continue\n"
      "    acc += tf.cast(k, tf.float32)", explained=(2, "k is not written back")),
    C("loop", "found = -1\nfor k, e in enumerate(items):\n    if e == 2:\n        found = k\n        break"),
    # -- dtypes ------------------------------------------------------------------------------------
    *[C("dtype", f"t = tf.constant([1, 2], dtype=tf.{d}) * tf.constant(2, dtype=tf.{d})")
      for d in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "bfloat16",
                "float32", "float64")],
    C("dtype", "t = tf.constant([1 + 2j, 3j], dtype=tf.complex64) * 2"),
    C("dtype", "t = tf.constant([1j], dtype=tf.complex128) + 1"),
    C("dtype", "t = tf.constant([True, False]) & tf.constant([True, True])"),
    C("dtype", "t = tf.cast(x, tf.int32) + i3"),
    C("dtype", "t = tf.constant(3.0, dtype=tf.float64) * np.float64(2.0)"),
    C("dtype", "t = tf.zeros([2, 0])\nsz = tf.size(t)"),
    # -- strings ---------------------------------------------------------------------------------------
    C("string", "u = tf.strings.upper(s)\nl = tf.strings.length(s)"),
    C("string", "j = tf.strings.join([s, s], separator='-')"),
    C("string", "sp2 = tf.strings.split(s, '')"),
    C("string", "cat = s + '!'"),
    C("string", "u8 = tf.strings.unicode_decode(tf.constant('café'), 'UTF-8')"),
    C("string", "num = tf.strings.to_number(tf.constant(['1.5', '2']))"),
    C("string", "py = s.numpy()", explained=(1, ".numpy() needs a value")),
    C("string", "by = tf.constant(b'\\x00\\xff')\nln = tf.strings.length(by)"),
    # -- ragged ------------------------------------------------------------------------------------------
    C("ragged", "r2 = rg + 1"),
    C("ragged", "dense = rg.to_tensor()"),
    C("ragged", "lens = rg.row_lengths()"),
    C("ragged", "r3 = tf.ragged.constant([[1., 2.], [], [3.]])", probe="r3.to_list()"),
    C("ragged", "flat = tf.ragged.map_flat_values(tf.multiply, rg, 2)"),
    C("ragged", "first_row = rg[0]"),
    C("ragged", "words = tf.strings.split(tf.constant(['a b', 'c']))", probe="words.to_list()"),
    # -- sparse ------------------------------------------------------------------------------------------
    C("sparse", "dn = tf.sparse.to_dense(sp)"),
    C("sparse", "sp2 = sp * 2."),
    C("sparse", "sp3 = tf.sparse.add(sp, sp)"),
    C("sparse", "sp4 = tf.sparse.SparseTensor(indices=[[0, 1]], values=[5.], dense_shape=[2, 2])",
      probe="tf.sparse.to_dense(sp4)"),
    C("sparse", "tot = tf.sparse.reduce_sum(sp)"),
    C("sparse", "mm = tf.sparse.sparse_dense_matmul(sp, tf.ones([3, 1]))"),
    # -- IndexedSlices -------------------------------------------------------------------------------------
    C("IndexedSlices", "d = tf.IndexedSlices(values=[[1.]], indices=[0])", probe="d.values"),
    C("IndexedSlices", "d = tf.IndexedSlices(values=m, indices=tf.constant([1, 0]))", probe="d.values"),
    C("IndexedSlices", "d = tf.IndexedSlices(values=m * 2, indices=[1, 0])", probe="tf.convert_to_tensor(d.values)"),
    C("IndexedSlices", "with tf.GradientTape() as tp:\n    y = tf.reduce_sum(tf.gather(v, [0, 2]))\ng = tp.gradient(y, v)",
      probe="tf.convert_to_tensor(g)"),
    C("IndexedSlices", "M.scatter_update(tf.IndexedSlices(values=[[1., 2., 3.], [4., 5., 6.]], indices=[1, 0]))"),
    C("IndexedSlices", "dn = tf.convert_to_tensor(tf.IndexedSlices(m, tf.constant([0, 1]), tf.constant([2, 2])))"),
    # -- TensorArray -----------------------------------------------------------------------------------------
    C("TensorArray", "ta = tf.TensorArray(tf.float32, size=1).write(0, 1.)", probe="ta.stack()"),
    C("TensorArray", "ta = tf.TensorArray(tf.float32, size=3)\nta = ta.unstack(x)\nr = ta.read(1)",
      probe="ta.stack()", explained=(2, "clears an element when it is read")),
    C("TensorArray", "ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)\nfor k in tf.range(4):\n"
      "    ta = ta.write(k, k * k)\nsq = ta.stack()", probe="ta.size()", explained=(2, "k is not written back")),
    C("TensorArray", "ta = tf.TensorArray(tf.string, size=2)\nta = ta.write(0, 'a').write(1, 'b')",
      probe="ta.stack()"),
    C("TensorArray", "ta = tf.TensorArray(tf.float32, size=3, element_shape=[2])\nta = ta.write(0, [1., 2.])",
      probe="ta.stack()"),
    C("TensorArray", "arrs = (tf.TensorArray(tf.float32, size=1).write(0, 2.), 1)",
      explained=(1, "arrs is not written back")),
    # -- variables -------------------------------------------------------------------------------------------
    C("variable", "v.assign([4., 5., 6.])", tape=None),
    C("variable", "v.assign_add([1., 1., 1.])\nw.assign_sub(0.5)"),
    C("variable", "r = v.read_value()\nv.assign(r * 2)"),
    C("variable", "v[0].assign(10.)"),
    C("variable", "M.scatter_nd_update(indices=[[0, 0], [1, 2]], updates=[9., 8.])"),
    C("variable", "y = v * w + 1", tape="y"),
    C("variable", "loss = tf.reduce_sum(v ** 2) * w\nloss", tape=""),
    C("variable", "shape, dt = v.shape, v.dtype"),
    C("variable", "vv = tf.Variable(1.0)", probe="vv + 1"),
    C("variable", "vals = v.numpy()", explained=(1, "v.numpy() needs a value")),
    C("variable", "w.assign(w * 3)\nz = w + 0", tape="z"),
    C("variable", "vs = [v, w]\ntotal = tf.reduce_sum(vs[0]) + vs[1]", tape="total"),
    C("variable", "ru = v.assign_add([1., 0., 0.])", probe="ru + 0"),
    C("variable", "sq = [v[k] ** 2 for k in range(3)]\ntotal = tf.add_n(sq)", tape="total"),
    C("variable", "f = lambda t: t * w\nout = tf.reduce_sum(f(v))", tape="out", probe="f(1.)"),
    C("variable", "def loss_fn(a):\n    return tf.reduce_sum((a * v - 1.) ** 2)\nl = loss_fn(w)", tape="l",
      probe="loss_fn(1.)"),
    C("variable", "a, b, c = tf.unstack(v)\nz = a * b + c * w", tape="z"),
    C("variable", "z = tf.reduce_sum(v[1:] * w) + M[0, 1]", tape="z"),
    C("variable", "if tf.reduce_sum(v) > 0:\n    z = v * w\nelse:\n    z = v\nz = tf.reduce_sum(z)", tape="z"),
    C("variable", "z = tf.constant(0.)\nfor k in range(3):\n    z += v[k] * w", tape="z"),
    C("variable", "z1 = v * 2\nz2 = v * w\nz3 = w ** 2", tape="[z1, z2, z3]"),
    C("variable", "d = {'p': v * w}\nz = tf.reduce_sum(d['p'])", tape="d['p']"),
    C("variable", "z = tf.reduce_sum(tf.stop_gradient(v) * w)", tape="z"),
    C("variable", "z = tf.reduce_sum(tf.cast(tf.argmax(v), tf.float32) * w)", tape="z"),
    # -- Keras ----------------------------------------------------------------------------------------------
    C("keras", "out = layer(x[None])", tape="tf.reduce_sum(out)"),
    C("keras", "out = model(x[None])\nloss = tf.reduce_mean(out ** 2)\nloss", tape=""),
    C("keras", "act = tf.keras.activations.softmax(x[None])"),
    C("keras", "l = tf.keras.losses.MeanSquaredError()(x, x * 2)"),
    C("keras", "out = tf.keras.layers.Flatten()(m[None])"),
    C("keras", "ws = [tf.reduce_sum(t) for t in model.trainable_variables]"),
    C("keras", "out = model(tf.ones((2, 3)))\nprobs = tf.nn.softmax(out)", tape="probs[0, 0]"),
    C("keras", "for variable in model.variables:\n    pass\nloss = tf.reduce_sum(model(x[None]))", tape="loss"),
    C("keras", "with tf.GradientTape() as tp:\n    loss = tf.reduce_mean((model(x[None]) - 1.) ** 2)\n"
      "gs = tp.gradient(loss, model.trainable_variables)\nsgd.apply_gradients(zip(gs, model.trainable_variables))"),
    C("keras", "with tf.GradientTape() as tp:\n    loss = tf.reduce_mean((model(x[None]) - 1.) ** 2)\n"
      "gs = tp.gradient(loss, model.trainable_variables)\nadam.apply_gradients(zip(gs, model.trainable_variables))"),
    C("keras", "mean.update_state(x)\nr = mean.result()"),
    C("keras", "acc = tf.keras.metrics.Mean()\nacc.update_state(x)", probe="acc.result()"),
    C("keras", "def huber(y_true, y_pred):\n    err = y_true - y_pred\n    small = tf.abs(err) < 1\n"
      "    return tf.where(small, tf.square(err) / 2, tf.abs(err) - 0.5)\nh = huber(x, x * 1.5)", probe="huber(1., 3.)"),
    C("keras", "w_k = layer.kernel\nlayer.kernel.assign(tf.ones((3, 2)) * 2)\nout = layer(x[None])"),
    # -- tf.data -----------------------------------------------------------------------------------------------
    C("tf.data", "ds2 = ds.map(lambda e: e * 2)", probe="list(ds2.as_numpy_iterator())"),
    C("tf.data", "total = ds.reduce(tf.constant(0, tf.int64), lambda a, e: a + e)"),
    C("tf.data", "batched = ds.batch(2)", probe="[b.tolist() for b in batched.as_numpy_iterator()]"),
    C("tf.data", "fromt = tf.data.Dataset.from_tensor_slices(x).filter(lambda e: e > 1.)",
      probe="list(fromt.as_numpy_iterator())"),
    C("tf.data", "lst = list(ds.as_numpy_iterator())", explained=(1, "eager")),
    C("tf.data", "card = ds.cardinality()"),
    # -- random ops with seeds -----------------------------------------------------------------------------------
    C("random", "r = tf.random.stateless_uniform([3], seed=[1, 2])"),
    C("random", "r = tf.random.stateless_normal([2, 2], seed=[3, 4])"),
    C("random", "g = tf.random.Generator.from_seed(1)\nr = g.normal([2])", probe="g.normal([2])"),
    C("random", "tf.random.set_seed(42)\nr = tf.random.uniform([2])", explained=(1, "does not reseed")),
    C("random", "tf.keras.utils.set_random_seed(42)\nr = tf.random.uniform([2])", explained=(1, "does not reseed")),
    C("random", "r = tf.random.uniform([2], seed=7)", explained=(1, "stateful random op")),
    C("random", "r = tf.random.shuffle(x, seed=1)", explained=(1, "stateful random op")),
    C("random", "np.random.seed(0)\nr = np.random.rand()", explained=(1, "does not reseed")),
    # -- Python values and builtins ---------------------------------------------------------------------------------
    C("builtins", "k = len(items) + sum(items) + max(items)"),
    C("builtins", "z = list(zip(items, 'abc'))"),
    C("builtins", "isf = isinstance(x, tf.Tensor)"),
    C("builtins", "nothing = None\nyes = True"),
    C("builtins", "rr = list(range(n))"),
    C("builtins", "shp = x.shape\nrank = len(x.shape)\nfirst = x.shape[0]"),
    C("builtins", "a = abs(-3)\nb = round(2.567, 1)"),
    C("builtins", "print('hello', n)", explained=(1, "print() runs only while TensorFlow traces")),
    C("builtins", "res = helper(n)"),
    C("builtins", "y = np.sum([1.0, 2.0])", explained=()),
    C("builtins", "y = np.sum(x)", explained=(1, "NumPy needs a tensor's value")),
    C("builtins", "y = x * 2\ntf.gather(x, 10)\ny", once=True, explained=(2, "prunes")),
    C("builtins", "y = x * 2; z = y + 1"),
    C("builtins", "y = tf.reduce_sum(x)\ny"),
    C("builtins", "global gz\ngz = 1", once=True, explained=(1, "'global'")),
]

CASES += [
    C("builtins", "arr = np.ones(3) * x"),
    C("builtins", "lst = x.shape.as_list()\nrk = tf.rank(m)"),
    C("builtins", "txt = '%s-%d' % ('a', n)"),
    C("builtins", "tf.print(x)\ny = x"),
    C("builtins", "print(x)", explained=(1, "print() runs only while TensorFlow traces")),
    C("builtins", "lst = x.numpy().tolist()", explained=(1, ".numpy() needs a value")),
    C("builtins", "z = np.array([1, 2]) + 1"),
    C("control flow", "y = x\nif n > 5:\n    y = -x\nelif n > 2:\n    y = x * 2"),
    C("control flow", "y = tf.constant(0.)\nif tf.reduce_sum(x) > 100:\n    y = x\nelif tf.reduce_sum(x) > 1:\n"
      "    y = x * 2\nelse:\n    y = -x"),
    C("control flow", "y = tf.case([(tf.reduce_sum(x) > 10, lambda: x), (tf.reduce_sum(x) > 1, lambda: -x)], "
      "default=lambda: x * 0)"),
    C("loop", "y = tf.while_loop(lambda k, a: k < 3, lambda k, a: (k + 1, a * 2), (0, x))[1]"),
    C("loop", "out = tf.scan(lambda a, e: a + e, x)\nfolded = tf.foldl(lambda a, e: a * e, x)"),
    # -- what other people's notebooks do (issue 18) -----------------------------------------------
    C("tape from an earlier cell", "gw = tape0.gradient(lt, w)"),
    C("tape from an earlier cell", "[gx, gw] = tape0.gradient(lt, [x, w])"),
    C("tape from an earlier cell", "gd = tape0.gradient(lt, {'x': x, 'w': w})\ntotal = gd['x'] + gd['w']"),
    C("tape from an earlier cell", "jy = tape0.jacobian(yt, x)"),
    C("tape from an earlier cell", "jw = tape0.jacobian(yt, w)\nbj = tape0.batch_jacobian(ym, m)"),
    C("del", "del v", once=True),
    C("del", "y = layer(x[None])\ndel layer", once=True),
    C("creates variables", "vc = tf.Variable(x * 2)\nvc.assign_add(x)\ny = vc * w", probe="vc + 1"),
    C("creates variables", "lyr = tf.keras.layers.Dense(2, kernel_initializer='ones', name='lyr')\nout = lyr(x[None])",
      probe="lyr(x[None])"),
    C("creates variables", "opt = tf.keras.optimizers.SGD(0.5, name='opt')\nvo = tf.Variable([1., 2.])\n"
      "with tf.GradientTape() as tp:\n    lo = tf.reduce_sum(vo ** 2)\nopt.apply_gradients([(tp.gradient(lo, vo), vo)])",
      probe="opt.iterations + 0"),
    C("creates variables", "class Acc(tf.Module):\n    def __init__(self):\n        self.s = tf.Variable(0.)\n"
      "    def __call__(self, t):\n        self.s.assign_add(tf.reduce_sum(t))\n        return self.s + 0\n"
      "acc = Acc()\nr1 = acc(x)\nr2 = acc(x)", probe="acc(x)"),
    C("definitions", "@tf.function\ndef dbl(t):\n    return t * 2\ny = dbl(x)",
      probe="tf.autograph.to_code(dbl.python_function).splitlines()[0]"),
    C("definitions", "class K(tf.Module):\n    def __call__(self, t):\n        return t * 3\nkk = K()\ny = kk(x)",
      probe="(type(kk) is K, kk(tf.constant(1.)))"),
    C("definitions", "class Net(tf.keras.Model):\n    def __init__(self):\n        super().__init__(name='net9')\n"
      "        self.d = tf.keras.layers.Dense(1, kernel_initializer='ones', name='d9')\n    def call(self, t):\n"
      "        return self.d(t) + 1\nnet = Net()\nout = net(x[None])", probe="(isinstance(net, Net), net(x[None]))"),
    C("loop", "for dev in tf.config.list_logical_devices('CPU'):\n    pass\nkind = dev.device_type"),
    C("loop", "for dev in tf.config.list_logical_devices('CPU'):\n    kind = dev.device_type"),
    C("tape targets", "d = {'a': v * 2, 'b': {'c': w ** 2}}", tape="d"),
    C("tape targets", "pair = (tf.reduce_sum(v), w * 3)", tape="pair"),
    C("creates variables", "q = tf.Variable(1.)\nq.assign_add(w * 2)\nz = q * w", tape="z", probe="q + 0"),
    C("pruned", "caught = False\ntry:\n    dbl_s(tf.constant(1))\nexcept tf.errors.InvalidArgumentError:\n"
      "    caught = True", explained=(3, "concrete function", "passes int32", "prunes")),
]

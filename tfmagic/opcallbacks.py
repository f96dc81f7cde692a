"""Watching the ops TensorFlow runs: the base of tfmagic's op callbacks.

An :class:`OpCallback` is TensorFlow's op callback (``tensorflow/python/framework/op_callbacks.py``): it is called
with each op an eager call runs or a trace builds, between entering and leaving its ``with`` block.  Its users:
``cellvars.EagerEffects`` (variable updates that ran eagerly while a cell traced) and ``gradients.NonFiniteRecorder``
(the first NaN or Inf, and ops without a gradient).
"""

from __future__ import annotations


class OpCallback:
    """An op callback installed for the length of a ``with`` block; subclasses define ``__call__`` (TensorFlow's
    signature: ``op_type, inputs, attrs, outputs, op_name=None, graph=None``)."""

    def __call__(self, op_type, inputs, attrs, outputs, op_name=None, graph=None):
        raise NotImplementedError

    def __enter__(self):
        from tensorflow.python.framework import op_callbacks

        op_callbacks.add_op_callback(self)
        return self

    def __exit__(self, *exc):
        from tensorflow.python.framework import op_callbacks

        op_callbacks.remove_op_callback(self)
        return False

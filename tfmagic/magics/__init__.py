"""The magics: option parsing, the namespace in and out, and display; the only package that imports IPython.

One module per magic, as IPython keeps its own (``IPython/core/magics/``), each with the hooks of the
magic that owns them:

- ``tfgraph.py``: ``%%tfgraph`` and ``%tfgraph FUNC`` (drawing, explorer, Grappler, profile, diff);
- ``tape.py``: ``%%tape``;
- ``tfdevice.py``: ``%tfdevice`` / ``%%tfdevice`` and the cell hooks that keep a pin or a strategy;
- ``tfretrace.py``: ``%tfretrace`` and the cell hook of ``--watch``;
- ``session.py``: what they share (the cells' functions, the user's names, plain cells' dtype errors);
- ``display.py``: small display helpers.

Each magic parses its options, calls the core and shows what the core returns. :class:`TFMagics`
is all four together, registered once by ``%load_ext tfmagic``: they share one session's state.
"""

from __future__ import annotations

from IPython.core.magic import magics_class

from tfmagic.magics.tape import TapeMagics
from tfmagic.magics.tfdevice import DeviceMagics
from tfmagic.magics.tfgraph import TfGraphMagics
from tfmagic.magics.tfretrace import RetraceMagics

__all__ = ["TFMagics"]

_PARTS = (TfGraphMagics, TapeMagics, DeviceMagics, RetraceMagics)


@magics_class
class TFMagics(*_PARTS):
    """``%%tfgraph``, ``%tfgraph FUNC``, ``%%tape``, ``%tfdevice`` and ``%tfretrace`` over one session's state."""


# @magics_class records the magics defined in a class's own body; these are its parts'.
TFMagics.magics = {kind: {name: method for part in _PARTS for name, method in part.magics[kind].items()}
                   for kind in ("line", "cell")}

"""tfmagic: IPython magics that make TensorFlow's graphs, retracing, gradients and devices visible.

Load it in a notebook or IPython::

    %load_ext tfmagic

The core works without IPython: what a user asked for (``requests``) and TensorFlow's vocabulary
(``vocabulary``), a cell's run (``cell``, ``inputs``, ``tracing``, ``collect``, ``cellvars``, ``leaving``,
``redefine``, ``tracebacks``), its drawing (``graph``, ``traceview``, ``readable``, ``sizing``, ``dot``, ``render``,
``engine``), what the magics show (``shows``, ``reports``) and the rest (``tape``, ``gradients``, ``retracing``,
``fixes``, ``watch``, ``xla``, ``profile``, ``memory``, ``devices``); ``tfmagic.magics`` is the thin layer that
parses the magics' lines into requests and displays what the core gives back, imported only when the extension
loads.
"""

__version__ = "0.1.0"
__all__ = ["load_ipython_extension", "unload_ipython_extension", "__version__"]

_MAGICS_KEY = "TFMagics"


def load_ipython_extension(ipython):
    """Register tfmagic's magics (``%load_ext tfmagic``); a second call does nothing."""
    loaded = ipython.magics_manager.registry.get(_MAGICS_KEY)
    if loaded is not None and not loaded.closed:
        return
    from tfmagic.quiet import import_tensorflow

    import_tensorflow()  # without its start-up log lines, when the extension is what imports it
    from tfmagic.magics import TFMagics  # IPython is imported only here

    ipython.register_magics(TFMagics(ipython))


def unload_ipython_extension(ipython):
    """Undo everything the magics added (``%unload_ext tfmagic``); each magic then says it is unloaded."""
    magics = ipython.magics_manager.registry.get(_MAGICS_KEY)
    if magics is not None and not magics.closed:
        magics.close()

"""The magics: option parsing, the namespace in and out, and display.

This is the only module that imports IPython.  Each magic parses its options,
calls the core and shows what the core returns.
"""

from __future__ import annotations

import keyword

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import CellSourceError, OptionError, TfMagicError

#: How many option lines and cell texts the magics memoise.
_MAX_MEMO = 256


@magics_class
class TFMagics(Magics):
    """``%%tfgraph`` and its companions; the state of a session lives here."""

    def __init__(self, shell):
        super().__init__(shell)
        self._cells = None  # tracing.CellCache, made on first use (it imports TensorFlow)
        self._parsed_lines: dict = {}  # option line -> (args, FunctionOptions)
        self._sources: dict = {}  # cell text -> transformed source

    @property
    def cells(self):
        if self._cells is None:
            from tfmagic.tracing import CellCache

            self._cells = CellCache()
        return self._cells

    def close(self) -> None:
        """Undo what the magics added: cached functions, registered sources, the magics themselves."""
        if self._cells is not None:
            self._cells.clear()
        manager = self.shell.magics_manager
        for kind, names in self.magics.items():
            for name in names:
                manager.magics[kind].pop(name, None)

    @magic_arguments()
    @argument("-n", "--name", dest="name", metavar="NAME",
              help="keep the cell's tf.function in the namespace as NAME; re-runs under this name reuse it")
    @argument("--jit", dest="jit", action="store_true", help="compile with XLA (tf.function(jit_compile=True))")
    @argument("--reduce-retracing", dest="reduce_retracing", action="store_true",
              help="let TensorFlow generalise shapes instead of tracing per shape (reduce_retracing=True)")
    @argument("--no-autograph", dest="autograph", action="store_false",
              help="trace without AutoGraph: Python control flow is not converted")
    @argument("--show", dest="show", choices=("graph", "none"), default="graph",
              help="what to show below the result: the traced graph (default) or nothing")
    @argument("-o", "--output", dest="output", metavar="FILE",
              help="also write the drawing to FILE (.svg, .png, .pdf or .dot)")
    @no_var_expand
    @cell_magic
    def tfgraph(self, line, cell):
        """Run the cell as a tf.function and draw the graph TensorFlow traced.

        Usage::

            %%tfgraph [-n NAME] [--jit] [--reduce-retracing] [--no-autograph]
                      [--show graph|none] [-o FILE]

        The cell's body becomes a tf.function (AutoGraph converts its control flow).
        Tensors, NumPy arrays and Python scalars it reads from the namespace are the
        function's arguments, so a new shape, dtype or Python value traces again;
        variables, layers, models and functions are passed through as objects.  Names
        the cell assigns are written back (tensors as eager tensors) and a last
        expression is the cell's result.  If the cell fails, the namespace is left
        as it was.  Running the same cell again reuses its tf.function.

        Below the result comes the traced graph, drawn with Graphviz: green inputs,
        orange variables, grey constants, blue outputs, purple control flow (with the
        graphs of its functions), name scopes as dashed boxes, edges labelled with
        dtype and shape.

        Example::

            %%tfgraph -n step
            y = tf.matmul(x, w) + b
            tf.reduce_sum(y)
        """
        args, options = self._parse_tfgraph(line)
        from tfmagic.tracing import trace_cell

        source = self._transformed(cell)
        try:
            run = trace_cell(source, self.shell.user_ns, cache=self.cells, name=args.name, options=options)
        except CellSourceError as e:
            raise UsageError(f"%%tfgraph: {e}") from e
        self._write_back(run, args.name)
        if run.retraced:
            self._show_retrace(run)
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if args.show == "graph" or args.output:
            self._draw(run, args)

    # -- helpers of %%tfgraph ------------------------------------------------

    def _parse_tfgraph(self, line):
        """Parse the options (the same line parses once; ``-o`` is checked every time)."""
        parsed = self._parsed_lines.get(line)
        try:
            if parsed is None:
                args = parse_argstring(self.tfgraph, line)
                parsed = (args, self._tfgraph_options(args))
                if len(self._parsed_lines) < _MAX_MEMO:
                    self._parsed_lines[line] = parsed
            if parsed[0].output:
                from tfmagic.render import check_writable

                check_writable(parsed[0].output)
        except OptionError as e:
            raise UsageError(str(e)) from e
        return parsed

    def _transformed(self, cell: str) -> str:
        """The cell after IPython's input transforms (``!cmd``, ``%magic``), memoised by text."""
        source = self._sources.get(cell)
        if source is None:
            source = self.shell.transform_cell(cell)
            if len(self._sources) < _MAX_MEMO:
                self._sources[cell] = source
        return source

    @staticmethod
    def _tfgraph_options(args):
        from tfmagic.tracing import FunctionOptions

        if args.name is not None and (not args.name.isidentifier() or keyword.iskeyword(args.name)):
            raise OptionError(f"-n {args.name!r}: NAME must be a Python identifier")
        return FunctionOptions(jit_compile=args.jit, reduce_retracing=args.reduce_retracing,
                               autograph=args.autograph)

    def _write_back(self, run, name) -> None:
        namespace = self.shell.user_ns
        namespace.update(run.outputs)
        for deleted in run.deleted:
            if deleted not in run.outputs:
                namespace.pop(deleted, None)
        if name:
            namespace[name] = run.function

    def _show_retrace(self, run) -> None:
        from tfmagic.render import Notice

        display(Notice(f"%%tfgraph: traced again: this cell's tf.function now has {run.trace_count} traces "
                       f"(trace {run.trace.number} ran)", level="warning"))

    def _draw(self, run, args) -> None:
        from tfmagic.render import Notice, draw_graph, file_format

        title = f"%%tfgraph {'-n ' + args.name + ' ' if args.name else ''}cell, trace {run.trace.number}"
        formats = (file_format(args.output),) if args.output else ()
        try:
            report, rendered = draw_graph(run.trace.graph, title, formats)
            if args.output:
                with open(args.output, "wb") as f:
                    f.write(rendered[formats[0]])
        except (TfMagicError, OSError) as e:  # the cell's result and write-back stand
            display(Notice(f"%%tfgraph: the drawing failed: {e}", level="warning"))
            return
        if args.show == "graph":
            display(report)

"""``%%tape``: run a cell under tf.GradientTape and explain its gradients (``tape.run_tape`` does the work)."""

from __future__ import annotations

import keyword

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import CellSourceError, OptionError, TfMagicError
from tfmagic.magics.display import short_target, split_names
from tfmagic.magics.session import SessionMagics


@magics_class
class TapeMagics(SessionMagics):
    """``%%tape``."""

    @magic_arguments()
    @argument("target", nargs="*", metavar="TARGET",
              help="the name or expression to differentiate (default: the cell's last expression)")
    @argument("--wrt", dest="wrt", metavar="A,B",
              help="the sources (default: every tf.Variable the cell reads, and the watched names)")
    @argument("--watch", dest="watch", metavar="C1,C2", help="constants or tensors the tape should watch")
    @argument("--persistent", dest="persistent", action="store_true", help="make the tape persistent")
    @argument("--jacobian", dest="jacobian", action="store_true", help="also compute tape.jacobian per source")
    @argument("--hessian", dest="hessian", action="store_true", help="also compute second derivatives")
    @argument("-o", "--output", dest="output", metavar="NAME", default="grads",
              help="the name of the dict of gradients (default: grads)")
    @argument("--show", dest="show", choices=("table", "graph", "none"), default="table",
              help="show the gradient table (default), the table and the gradient graph, or nothing")
    @argument("--ops", dest="ops", choices=("readable", "all"), default="readable",
              help="the gradient graph: readable (default; plumbing folded away, with a line saying what was "
                   "hidden) or all (every op)")
    @no_var_expand
    @cell_magic
    def tape(self, line, cell):
        """Run the cell under tf.GradientTape and explain every gradient.

        Usage::

            %%tape [TARGET] [--wrt a,b] [--watch c1,c2] [--persistent] [--jacobian] [--hessian]
                   [-o NAME] [--show table|graph|none]

        The cell runs as a plain cell would (its assignments stay), recorded by a tape.
        TARGET (default: the last expression) is differentiated with respect to the
        sources: --wrt, or every tf.Variable the cell reads (Keras layers' weights
        included) and the names given to --watch.  The gradients go to the namespace
        as a dict name -> tensor (None where disconnected), under `grads` or -o NAME.

        The table shows each source's shape, dtype and gradient; a None gradient says
        why (a constant not watched, no path, tf.stop_gradient at a line, an integer
        dtype, NumPy in between, a variable rebound to a tensor, an assign, a
        non-differentiable op) and a NaN/Inf gradient names the op and line where the
        first non-finite value appeared.  --show graph also draws the gradient graph.

        Example::

            %%tape --watch x
            x = tf.constant(3.0)
            y = x ** 2
            y
        """
        from tfmagic.tape import TapeOptions, run_tape, split_target

        target, rest = split_target(line)  # the target as typed (option parsing would drop its quotes)
        args = parse_argstring(self.tape, rest)
        if not args.output.isidentifier() or keyword.iskeyword(args.output):
            raise UsageError(f"-o {args.output!r}: NAME must be a Python identifier")
        target = target or " ".join(args.target)
        options = TapeOptions(target=target or None, wrt=split_names(args.wrt), watch=split_names(args.watch) or (),
                              persistent=args.persistent, jacobian=args.jacobian, hessian=args.hessian)
        try:
            run = run_tape(self._transformed(cell), self.shell.user_ns, options, draw=args.show == "graph",
                           history=self.shell.user_ns.get("In", []))
        except (CellSourceError, OptionError) as e:
            raise UsageError(f"%%tape: {e}") from e
        self.shell.user_ns[args.output] = run.gradients
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if args.show != "none":
            import dataclasses

            from tfmagic.render import Notice, TapeReport

            nones = [pair for pair, h in run.hessians.items() if h is None]
            shown = dataclasses.replace(run, hessians={k: h for k, h in run.hessians.items() if h is not None})
            display(TapeReport(shown))
            if nones:  # as nested plain tapes give them
                display(Notice("\n".join(f"hessian d2({run.target_name})/d({a}) d({b}): None" for a, b in nones)))
        if args.show == "graph":
            self._draw_gradient(run, cell, args.ops)

    def _draw_gradient(self, run, cell: str = "", ops: str = "readable") -> None:
        from tfmagic.graph import build_graph_model, mark_gradient_path
        from tfmagic.render import Notice, draw_model

        if run.graph is None:
            display(Notice("%%tape: the gradient graph could not be drawn: the cell does not trace as a "
                           "tf.function (the table above stands)", level="warning"))
            return
        graph = run.graph.graph
        model = build_graph_model(graph, "gradient", variable_names=self.variable_names())
        outputs = [t.op.name for t in graph.outputs if t is not None]
        gradients = dict(zip(run.graph.order, outputs)) if len(outputs) == len(run.graph.order) else {}
        mark_gradient_path(model, run.graph.target, run.graph.sources, run.graph.status, gradients,
                           short_target(run.target_name, cell))
        try:
            report, _ = draw_model(model, f"%%tape: gradient of {run.target_name}", gradient=True, ops=ops)
        except TfMagicError as e:
            display(Notice(f"%%tape: the drawing failed: {e}", level="warning"))
            return
        display(report)

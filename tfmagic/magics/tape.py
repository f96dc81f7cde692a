"""``%%tape``: run a cell under tf.GradientTape and explain its gradients (``tape.run_tape`` does the work)."""

from __future__ import annotations

import dataclasses
import keyword

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import CellSourceError, OptionError
from tfmagic.magics.display import split_names
from tfmagic.magics.session import SessionMagics


@magics_class
class TapeMagics(SessionMagics):
    """``%%tape``."""

    def __init__(self, shell):
        super().__init__(shell)
        self._stores: dict[str, dict] = {}  # name -> the dict %%tape last stored under it

    @magic_arguments()
    @argument("target", nargs="*", metavar="TARGET",
              help="the name or expression to differentiate (default: the cell's last expression)")
    @argument("--wrt", dest="wrt", metavar="A,B",
              help="the sources (default: every tf.Variable the cell reads, and the watched names)")
    @argument("--watch", dest="watch", metavar="C1,C2", help="constants or tensors the tape should watch")
    @argument("--persistent", dest="persistent", action="store_true", help="make the tape persistent")
    @argument("--jacobian", dest="jacobian", action="store_true", help="also compute tape.jacobian per source")
    @argument("--hessian", dest="hessian", action="store_true", help="also compute second derivatives")
    @argument("--no-watch-accessed", dest="watch_accessed", action="store_false",
              help="watch only what --watch names (tf.GradientTape(watch_accessed_variables=False)); by default "
                   "the tape watches every trainable variable the cell reads")
    @argument("--unconnected", dest="unconnected", choices=("none", "zero"), default="none",
              help="a disconnected source's gradient: None (default) or zeros (unconnected_gradients=ZERO)")
    @argument("--store", dest="store", metavar="NAME", default="grads",
              help="the name of the dict of gradients (default: grads)")
    @argument("--store-jacobians", dest="store_jacobians", metavar="NAME", default="jacobians",
              help="the name of --jacobian's dict (default: jacobians)")
    @argument("--store-hessians", dest="store_hessians", metavar="NAME", default="hessians",
              help="the name of --hessian's dict (default: hessians)")
    @argument("-o", "--output", dest="output", metavar="FILE",
              help="also write the gradient graph to FILE (.svg, .png, .pdf or .dot), as -o does in every magic")
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

            %%tape [TARGET] [--wrt a,b] [--watch c1,c2] [--no-watch-accessed] [--unconnected none|zero]
                   [--persistent] [--jacobian] [--hessian] [--store NAME] [--store-jacobians NAME]
                   [--store-hessians NAME] [--show table|graph|none] [--ops readable|all] [-o FILE]

        The cell runs as a plain cell would (its assignments stay), recorded by a tape.
        TARGET (default: the last expression) is differentiated with respect to the
        sources: --wrt, or every tf.Variable the cell reads (Keras layers' weights
        included) and the names given to --watch (with --no-watch-accessed: those
        only).  TARGET may be a tensor or a list, tuple or dict of tensors (their
        gradients are summed, as tape.gradient does).  The gradients go to the
        namespace as a dict name -> tensor (None where disconnected; zeros with
        --unconnected zero), under `grads` or --store NAME; --jacobian stores
        `jacobians` (name -> tape.jacobian(target, source); --store-jacobians NAME),
        --hessian stores `hessians` ((name_i, name_j) -> second derivatives, None where
        nested plain tapes give None; --store-hessians NAME).  The table says when a
        store replaced a name that held something else.

        The table shows each source's shape, dtype and gradient; a None gradient says
        why (a constant not watched, no path, tf.stop_gradient at a line, an integer
        dtype, NumPy in between, a variable rebound to a tensor, an assign, a
        non-differentiable op) and a NaN/Inf gradient names the op and line where the
        first non-finite value appeared.  --show graph also draws the gradient graph
        (readable, or every op with --ops all); -o FILE writes it to a file.

        Example::

            %%tape --watch x
            x = tf.constant(3.0)
            y = x ** 2
            y
        """
        from tfmagic.tape import run_tape, split_target

        target, rest = split_target(line)  # the target as typed (option parsing would drop its quotes)
        args = parse_argstring(self.tape, rest)
        options = _request(args, target or " ".join(args.target))
        if args.output:
            self._check_drawing_file(args.output)
        from tfmagic.oom import annotate as annotate_oom
        from tfmagic.quiet import filtered_fd2, is_cell_noise

        dump: list[str] = []
        try:
            with filtered_fd2(is_cell_noise) as dump:  # an out-of-memory dump (read, not shown), logs below level
                run = run_tape(self._transformed(cell), self.shell.user_ns, options,
                               history=self.shell.user_ns.get("In", []), transform_ast=self.shell.transform_ast)
        except (CellSourceError, OptionError) as e:
            raise UsageError(f"%%tape: {e}") from e
        except BaseException as e:
            annotate_oom(e, self.shell.user_ns, dump, f"%%tape cell [{self.cell_number()}]")
            raise
        stored = {args.store: run.gradients}
        if args.jacobian:
            stored[args.store_jacobians] = dict(run.jacobians)
        if args.hessian:
            stored[args.store_hessians] = dict(run.hessians)
        said = [self._replacing(name) for name in stored]
        self.shell.user_ns.update(stored)
        self._stores.update(stored)
        if run.has_result and run.result is not None:
            self.shell.displayhook(run.result)
        if args.show != "none":
            from tfmagic.reports import TapeReport

            display(TapeReport(run, stored=tuple(said)))
        if options.draw is not None:
            from tfmagic.naming import keras_names
            from tfmagic.reports import Notice
            from tfmagic.tape import gradient_drawing

            draw = dataclasses.replace(options.draw, keras=keras_names(self.shell.user_ns))
            drawing = gradient_drawing(run, cell, draw, self.variable_names())
            if args.show == "graph" or isinstance(drawing, Notice):  # -o alone writes the file
                display(drawing)

    def _replacing(self, name: str) -> str:
        """``grads``, or ``grads (replaced the str it held)`` where the name held something %%tape did not store."""
        ns = self.shell.user_ns
        if name not in ns or ns[name] is self._stores.get(name):
            return name
        return f"{name} (replaced the {type(ns[name]).__name__} it held)"

    def _check_drawing_file(self, path: str) -> None:
        """``-o FILE`` must be a drawing file; ``-o NAME`` (the old spelling of --store) says so in one line."""
        from tfmagic.engine import check_writable

        if "." not in path.rsplit("/", 1)[-1] and path.isidentifier():
            raise UsageError(f"%%tape -o {path}: -o writes the gradient drawing to a file (.svg, .png, .pdf or "
                             f".dot), as in every magic; the gradients' dict is named with --store {path}")
        try:
            check_writable(path)
        except OptionError as e:
            raise UsageError(f"%%tape: {e}") from e


def _request(args, target: str):
    """The parsed line as a ``requests.TapeOptions``; a bad ``--store`` name is a ``UsageError``."""
    from tfmagic.requests import DrawOptions, TapeOptions

    names = {"--store": args.store}
    if args.jacobian:
        names["--store-jacobians"] = args.store_jacobians
    if args.hessian:
        names["--store-hessians"] = args.store_hessians
    for flag, name in names.items():
        if not name.isidentifier() or keyword.iskeyword(name):
            raise UsageError(f"%%tape {flag} {name!r}: NAME must be a Python identifier")
    for name in set(names.values()):
        flags = [flag for flag, n in names.items() if n == name]
        if len(flags) > 1:
            raise UsageError(f"%%tape: {' and '.join(flags)} both name {name!r}; give each dict its own NAME")
    draws = args.show == "graph" or bool(args.output)
    return TapeOptions(target=target or None, wrt=split_names(args.wrt), watch=split_names(args.watch) or (),
                       persistent=args.persistent, jacobian=args.jacobian, hessian=args.hessian,
                       watch_accessed_variables=args.watch_accessed, unconnected_zero=args.unconnected == "zero",
                       draw=DrawOptions(ops=args.ops, output=args.output) if draws else None)

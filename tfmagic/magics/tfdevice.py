"""``%tfdevice`` and ``%%tfdevice``: pin cells to a device, run them in a strategy's scope, show placement.

A pin, a strategy or the placement log holds for every following cell: the ``pre_run_cell`` and
``post_run_cell`` hooks below enter and leave them around each cell (``devices.py`` does the work).
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from tfmagic.errors import OptionError, TfMagicError
from tfmagic.magics.session import SessionMagics


@magics_class
class DeviceMagics(SessionMagics):
    """``%tfdevice`` / ``%%tfdevice`` and the cell hooks that keep a pin."""

    def __init__(self, shell):
        super().__init__(shell)
        self._pin = None  # devices.DevicePin while %tfdevice DEVICE is on
        self._strategy = None  # devices.StrategyScope while %tfdevice --strategy KIND is on
        self._log_cells = False  # %tfdevice --log: show the placement of every following cell
        self._device_hooks = False
        self._cell_state = None  # what the pre-cell hook started: (namespace ids, placement capture)

    def close(self) -> None:
        self._pin = self._strategy = None
        self._log_cells = False
        self._after_pinned_cell(report=False)
        super().close()

    @magic_arguments()
    @argument("device", nargs="?", metavar="DEVICE",
              help="cpu, gpu[:N], tpu[:N], a full device name, or off; nothing: show the devices")
    @argument("--soft", dest="soft", action="store_true",
              help="if the device is not there, let TensorFlow place ops elsewhere (soft placement), with a warning")
    @argument("--log", dest="log", action="store_true",
              help="show where each op ran (TensorFlow's placement log, caught from C++)")
    @argument("--strategy", dest="strategy", nargs="+", metavar="KIND",
              help="run the following cells in a tf.distribute strategy's scope: mirrored [DEVICES...], "
                   "multiworker, tpu, or off")
    @argument("--split-cpu", dest="split_cpu", type=int, metavar="N",
              help="make N logical CPU devices (before TensorFlow initialises its devices)")
    @no_var_expand
    @line_cell_magic
    def tfdevice(self, line, cell=None):
        """Pin cells to a CPU, GPU or TPU; distribute them with a tf.distribute strategy.

        Usage::

            %tfdevice                      # the pin now, and the visible devices
            %tfdevice cpu | gpu[:N] | tpu[:N] | /job:localhost/replica:0/task:0/device:CPU:0
            %tfdevice off
            %%tfdevice gpu:0               # this cell only
            %tfdevice --soft | --log | --strategy mirrored|multiworker|tpu|off | --split-cpu N

        A pin holds for every following cell (%%tfgraph and %%tape cells too) until
        `%tfdevice off`; after each pinned cell tfmagic says where its results live.
        A device that is not there is an error naming the devices that are; with
        --soft, TensorFlow places the ops elsewhere, and the report says where.  --log
        shows where each op ran, from TensorFlow's placement log (which C++ writes
        where a notebook does not see it).  --strategy mirrored [DEVICES] runs the
        following cells in MirroredStrategy's scope, so variables and models created
        there are mirrored; --split-cpu N makes N logical CPUs to try that on a laptop.

        Example::

            %tfdevice --split-cpu 2
            %tfdevice --strategy mirrored cpu:0 cpu:1
        """
        from tfmagic import devices

        args = parse_argstring(self.tfdevice, line)
        try:
            if cell is not None:
                return self._run_pinned_cell(args, cell)
            if args.split_cpu is not None:
                names = devices.split_cpu(args.split_cpu)
                print(f"tfdevice: logical devices: {', '.join(names)}")
            if args.strategy:
                self._set_strategy(args.strategy)
            if args.device == "off":
                self._pin, self._log_cells = None, False
                print("tfdevice: no pin; cells run where TensorFlow places them")
            elif args.device:
                self._pin = self._make_pin(args.device, args.soft, args.log)
                verb = "ask for" if args.soft else "run on"
                print(f"tfdevice: following cells {verb} {self._pin.device}"
                      + (" (soft placement)" if args.soft else "") + (" (placement log on)" if args.log else ""))
            elif args.log:
                self._log_cells = True
                print("tfdevice: the placement of every following cell is shown; %tfdevice off stops")
        except (OptionError, TfMagicError) as e:
            raise UsageError(f"%tfdevice: {e}") from e
        self._update_device_hooks()
        if not (args.device or args.strategy or args.split_cpu is not None or args.log):
            return self._device_table()
        return None

    def _make_pin(self, name: str, soft: bool, log: bool):
        from tfmagic import devices
        from tfmagic.reports import Notice

        wanted = devices.normalize_device(name)
        if devices.find_device(wanted) is None:
            if not soft:
                devices.check_device(wanted)  # raises, naming the devices that are there
            import tensorflow as tf

            tf.config.set_soft_device_placement(True)
            display(Notice(f"tfdevice: no device {wanted} here ({', '.join(devices.logical_devices())}): with "
                           "--soft, TensorFlow places the ops on a device that is there; after each cell tfdevice "
                           "says where the results are", level="warning"))
        return devices.DevicePin(wanted, soft=soft, log=log)

    def _set_strategy(self, words) -> None:
        from tfmagic import devices

        kind, names = words[0], tuple(words[1:])
        if kind == "off":
            self._strategy = None
            print("tfdevice: no strategy")
            return
        self._strategy = devices.make_strategy(kind, names)
        print(f"tfdevice: following cells run in the scope of {self._strategy.label}")

    def _device_table(self):
        from tfmagic import devices
        from tfmagic.reports import Table

        rows = [[r.kind, r.device_type, r.name, r.memory] for r in devices.device_rows()]
        notes = [f"pinned to {self._pin.device}" if self._pin else "no pin",
                 f"strategy: {self._strategy.label}" if self._strategy else "no strategy"]
        return Table("tfdevice: visible devices", ["kind", "type", "name", "memory"], rows, notes)

    def _run_pinned_cell(self, args, cell):
        """``%%tfdevice DEVICE``: the cell runs in the pin, then the pin is gone, whatever happened."""
        if not args.device or args.device == "off" or args.strategy or args.split_cpu is not None:
            raise UsageError("%%tfdevice takes a DEVICE (and --soft, --log): %%tfdevice gpu:0")
        pin = self._make_pin(args.device, args.soft, args.log)
        before = {k: id(v) for k, v in self.shell.user_ns.items()}
        capture = None
        if args.log:
            from tfmagic.devices import PlacementCapture

            capture = PlacementCapture()
            capture.start()
        pin.enter()
        try:
            result = self._exec_cell(cell)
        finally:
            pin.exit()
            log = capture.stop() if capture is not None else None
            self._report_placement(before, pin.device, log)
        return result

    def _exec_cell(self, cell):
        """Run a cell's body as a plain cell would (as %%time does), returning its last expression."""
        import ast

        source = self.shell.transform_cell(cell)
        filename = self.shell.compile.cache(source, self.shell.execution_count)  # in linecache, for AutoGraph
        tree = self.shell.transform_ast(self.shell.compile.ast_parse(source, filename))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        namespace = self.shell.user_ns
        exec(compile(tree, filename, "exec"), namespace)
        if last is not None:
            return eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        return None

    def _update_device_hooks(self) -> None:
        """Hook the cells while a pin, strategy or log is on; unhook once the cell that ended them is over."""
        wanted = bool(self._pin or self._strategy or self._log_cells)
        if wanted and not self._device_hooks:
            self.shell.events.register("pre_run_cell", self._before_pinned_cell)
            self.shell.events.register("post_run_cell", self._after_pinned_cell)
            self._device_hooks = True
        elif not wanted and self._device_hooks and self._cell_state is None:
            self.shell.events.unregister("pre_run_cell", self._before_pinned_cell)
            self.shell.events.unregister("post_run_cell", self._after_pinned_cell)
            self._device_hooks = False

    def _before_pinned_cell(self, info=None) -> None:
        if self._cell_state is not None:
            return
        capture = None
        if self._log_cells or (self._pin is not None and self._pin.log):
            from tfmagic.devices import PlacementCapture

            capture = PlacementCapture()
        before = {k: id(v) for k, v in self.shell.user_ns.items()}
        self._cell_state = (before, capture, self._strategy, self._pin)
        if self._strategy is not None:
            self._strategy.enter()
        if self._pin is not None:
            self._pin.enter()
        if capture is not None:
            capture.start()

    def _after_pinned_cell(self, result=None, report: bool = True) -> None:
        """Leave what the pre-cell hook entered (post_run_cell also fires without it: then nothing to do)."""
        state, self._cell_state = self._cell_state, None
        if state is None:
            return
        before, capture, strategy, pin = state
        log = capture.stop() if capture is not None else None
        if pin is not None:
            pin.exit()
        if strategy is not None:
            strategy.exit()
        if report:
            self._report_placement(before, pin.device if pin is not None else None, log)
        self._update_device_hooks()

    def _report_placement(self, before: dict, device, log) -> None:
        from tfmagic.devices import placement_of
        from tfmagic.reports import Notice, Table

        if log is not None and log.other:
            print("\n".join(log.other))
        changed = {k: v for k, v in self.shell.user_ns.items()
                   if not k.startswith("_") and before.get(k) != id(v)}
        placed = placement_of(changed)
        if placed:
            where = "; ".join(f"{name} on {dev}" for name, dev in placed)
            display(Notice(f"tfdevice: {'pinned to ' + device + ': ' if device else ''}the cell's results: {where}"))
        if log is not None:
            note = [] if log.ops else ["the cell ran no TensorFlow op"]
            display(Table("tfdevice: where the cell's ops ran", ["op", "type", "device"],
                          [list(row) for row in log.ops], note))

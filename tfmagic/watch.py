"""What one cell traced, said once per function: the core of ``%tfretrace --watch``.

After each cell, :func:`cell_summaries` turns what traced during it into a few messages:

- functions made anew from the same code (a ``@tf.function`` defined in a loop, ``tf.function(f)``
  written twice, a cell that defines it run again) and ``@tf.function`` methods traced once per
  object, from the :class:`~tfmagic.tracelog.TraceLog`'s families, with the fix;
- for each function that retraced: one summary, however many times it retraced (``k: Python int
  0 -> 1 -> ... -> 11, 11 retraces``), the graph's diff for the last retrace and the fixes once;
- Keras's own steps, which Keras builds with ``reduce_retracing`` and retraces once by design, once;
- ``jit_compile`` functions XLA compiled again (:func:`xla_summaries`: once per concrete shape, even for a
  generalised trace), from the shapes the trace log counts.

It also builds ``%tfretrace``'s rows for families and ``%tfretrace NAME``'s tables.  Nothing here prints:
each message is a :class:`Summary` the magic shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tfmagic import retracing
from tfmagic.fixes import fix_lines, fixes_for, static_shape_caveat, with_constant_dtype
from tfmagic.vocabulary import TFMAGIC_FILE

#: A summary lists at most this many values of a changing argument (the first ones, then the last).
MAX_VALUES = 5

#: A cell's retraces of one function up to this many are listed one a line; more are told as a sequence.
MAX_LISTED = 3


@dataclass(frozen=True)
class Summary:
    """One message after a cell: ``text`` (its first line says which function), ``level`` info or warning."""

    text: str
    level: str = "warning"


def cell_summaries(functions: dict[str, Any], new_traces: dict[str, int], events: list,
                   keras_said: set[int]) -> list[Summary]:
    """The messages for one cell.

    Args:
        functions: the namespace's tf.functions by the name to show (``retracing.find_functions``).
        new_traces: name -> how many traces each made during the cell (``retracing.TraceCounts.update``).
        events: the cell's traced calls (``TraceLog.since``), for families and functions no name holds.
        keras_said: ids of Keras step functions whose own retrace was said already (updated here).
    """
    out: list[Summary] = []
    family_functions: set[int] = set()
    for family, made, members in _families_made_anew(events):
        family_functions.update(members)
        out.append(_family_summary(family, made))
    objects = _objects_by_function(events)
    named = {id(fn) for fn in functions.values()}
    for name, new in new_traces.items():
        fn = functions[name]
        if id(fn) in family_functions:
            continue
        step = retracing.keras_step(name, fn)
        if step is not None:
            history = retracing.trace_history(fn, name)
            if id(fn) not in keras_said and len(history.traces) > 1:  # not TensorFlow's count: the first step
                keras_said.add(id(fn))  # traces twice where it makes the optimizer's variables
                out.append(Summary(keras_text(name, step, history), "info"))
            continue
        history = retracing.trace_history(fn, name)
        summary = _function_summary(f"tfretrace {name}", history.traces, history.traces[-new:],
                                    objects.get(id(fn), {}), fn)
        if summary is not None:
            out.append(summary)
    out += _unnamed_summaries(events, named | family_functions)
    return out


# ---------------------------------------------------------------------------
# Functions made anew


def _user_family(family) -> bool:
    return not family.library and not family.filename.startswith("<tfgraph-") and \
        not TFMAGIC_FILE.search(family.filename)


def _families_made_anew(events: list) -> list[tuple[Any, int, set[int]]]:
    """``(family, functions made in the cell, ids of its functions)`` for each family with more than one."""
    made: dict[int, list] = {}
    for event in events:
        if event.new_function and _user_family(event.family):
            made.setdefault(id(event.family), []).append(event)
    out = []
    for family_events in made.values():
        family = family_events[0].family
        if family.functions < 2:
            continue
        members = {id(e.function()) for e in family_events if e.function() is not None}
        out.append((family, len(family_events), members))
    return out


def where(family) -> str:
    """Where a family's code is: ``line 3 of a cell`` or ``train.py:12``."""
    name = os.path.basename(family.filename)
    if family.filename.startswith("<ipython-input-") or "ipykernel_" in family.filename:
        return f"line {family.line} of its cell"
    return f"{name}:{family.line}" if name else f"line {family.line}"


def _family_summary(family, made: int) -> Summary:
    if family.owners:
        owner, _ = family.owners.most_common(1)[0]
        method = family.name.rpartition(".")[2]
        return Summary(
            f"tfretrace {owner}.{method}: a @tf.function method is a new tf.function for each object: {made} "
            f"{owner} {'object was' if made == 1 else 'objects were'} made and traced in this cell "
            f"({family.functions} objects, {family.traces} traces so far)\n"
            f"  fix: reuse one {owner} for the calls, or pass what differs between the objects to {method} as "
            "tensor arguments")
    name = family.name.rpartition(".")[2]
    shown = "the lambda" if name == "<lambda>" else name
    if made == 1:
        head = (f"tfretrace {shown}: a new tf.function was made from the same code ({where(family)}) and traced: "
                f"{family.functions} made so far, {family.traces} traces (a cell that defines it ran again)")
        fix = f"define {shown} in a cell of its own, run once, and pass what changes as an argument"
    else:
        head = (f"tfretrace {shown}: {made} tf.functions were made from the same code ({where(family)}) in this "
                f"cell, each traced{' once' if family.traces == family.functions else ''}: a new tf.function "
                f"starts with no traces ({family.functions} made so far, {family.traces} traces)")
        fix = _family_fix(family)
    return Summary(f"{head}\n  fix: {fix}")


# ---------------------------------------------------------------------------
# One summary per function


def _objects_by_function(events: list) -> dict[int, dict[str, list[str]]]:
    """id of a function -> argument -> what the Python objects passed there were, in call order."""
    out: dict[int, dict[str, list[str]]] = {}
    for event in events:
        fn = event.function()
        if fn is None or not event.objects:
            continue
        for name, text in event.objects.items():
            out.setdefault(id(fn), {}).setdefault(name, []).append(text)
    return out


def _sequence(name: str, traces: list, first: int) -> str:
    """``k: Python int 0 -> 1 -> ... -> 11``: an argument's values over a run of traces."""
    values = []
    for trace in traces[first:]:
        if name in trace.signature:
            text = retracing.describe(trace.signature[name])
            if not values or values[-1] != text:
                values.append(text)
    if values and all(v.startswith("Python ") for v in values):  # Python int 0 -> 1 -> 2
        values = [values[0]] + [v.split(" ", 2)[-1] for v in values[1:]]
    if len(values) > MAX_VALUES:
        values = values[:MAX_VALUES - 2] + ["..."] + values[-1:]
    return f"{name}: " + " -> ".join(values)


def _function_summary(label: str, traces: list, new: list, objects: dict[str, list[str]],
                      function=None) -> Summary | None:
    retraces = [t for t in new if t.number > 1]
    if not retraces:
        return None
    if len(retraces) == 1:
        trace = retraces[0]
        changes = [_with_objects(c, objects) for c in trace.changes]
        diff = _diff(traces, trace)
        fixes = _for_xla(trace.fixes, function) + \
            [c for c in [static_shape_caveat(function, trace.changes)] if c]
        return Summary(retracing.retrace_text(label, trace.number, changes, fixes, diff, trace.nearest))
    head = f"{label}: {len(retraces)} retraces in this cell ({len(traces)} traces now)"
    if len(retraces) <= MAX_LISTED:  # a few: each on its line, against the trace it was compared with
        lines = [head + ":"]
        for trace in retraces:
            changes = "; ".join(_with_objects(c, objects).text for c in trace.changes) or \
                "a signature TensorFlow could not reuse"
            lines.append(f"  trace {trace.number} (against trace {trace.nearest}): {changes}")
    else:  # many: the sequence of each argument's values
        names = list(dict.fromkeys(c.name for t in retraces for c in t.changes))
        first = min((t.nearest or t.number) for t in retraces) - 1
        parts = [_sequence(n, traces, first) for n in names] or ["a signature TensorFlow could not reuse"]
        lines = [f"{head}: " + "; ".join(parts)]
    diff = _diff(traces, retraces[-1])
    if diff is not None:
        lines.append(f"  graph (trace {retraces[-1].number} against trace {retraces[-1].nearest}): {diff.text}")
    changes = [c for t in retraces for c in t.changes]
    fixes = fixes_for(changes, any("reduce_retracing is on" in f for t in retraces for f in t.fixes),
                                retraces[-1].signature)
    fixes = _for_xla(fixes, function) + [c for c in [static_shape_caveat(function, changes)] if c]
    lines += fix_lines(with_constant_dtype(fixes, diff))
    return Summary("\n".join(lines))


def _for_xla(fixes: list[str], function) -> list[str]:
    """The reduce_retracing note, told right for a jit_compile function: the trace is reused, XLA compiles anew."""
    if not getattr(function, "_jit_compile", False):
        return fixes
    return [f + "; but XLA still compiles it once for each new concrete shape (the watch counts them)"
            if f.startswith("reduce_retracing is on") else f for f in fixes]


def _with_objects(change, objects: dict[str, list[str]]):
    """An object argument's change, told by what the objects were where the trace types no longer can."""
    seen = objects.get(change.name)
    if change.kind != "object" or not seen:
        return change
    import dataclasses

    before = seen[-2] if len(seen) > 1 else change.before
    return dataclasses.replace(change, before=before if "(gone)" in change.before else change.before,
                               after=seen[-1] if "(gone)" in change.after else change.after)


def _diff(traces: list, trace):
    if not trace.nearest or trace.concrete is None:
        return None
    earlier = traces[trace.nearest - 1].concrete
    try:
        return retracing.graph_diff(earlier.graph, trace.concrete.graph)
    except Exception:  # a graph the model cannot read: the words go without the diff
        return None


def _unnamed_summaries(events: list, known: set[int]) -> list[Summary]:
    """Functions no name holds (made inside a function, gone after the cell) that retraced in the cell."""
    by_function: dict[int, list] = {}
    for event in events:
        if not _user_family(event.family) or event.signature is None:
            continue
        fn = event.function()
        if fn is not None and id(fn) in known:
            continue
        by_function.setdefault(id(event.function), []).append(event)
    out = []
    for calls in by_function.values():
        if len(calls) < 2 or calls[0].new_function is False:
            continue
        traces = []
        for number, event in enumerate(calls, 1):
            changes, fixes, nearest = retracing.explain(event.signature, [t.signature for t in traces])
            traces.append(retracing.Trace(number, event.signature, changes if number > 1 else [],
                                          fixes if number > 1 else [], None if number == 1 else nearest + 1))
        family = calls[0].family
        label = f"tfretrace {family.name.replace('.<locals>', '')} (a tf.function no name holds, {where(family)})"
        summary = _function_summary(label, traces, traces, {})
        if summary is not None:
            out.append(summary)
    return out


# ---------------------------------------------------------------------------
# Keras's own steps


def keras_text(name: str, step: str, history) -> str:
    """The one note for a Keras step function's own retrace, in Keras's terms."""
    last = history.traces[-1] if history.traces else None
    kinds = {c.kind for c in last.changes} if last is not None else set()
    if "dtype" in kinds:
        return (f"tfretrace {name}: Keras's own {step} step retraced for a new input dtype ({last.reason}): each "
                "dtype of the data is a graph of its own; pass the data with one dtype on every call "
                "(for example np.asarray(x, 'float32'))")
    what = ("a new batch size or input shape" if "shape" in kinds else
            "data Keras passed in another structure (as *_on_batch and fit hand it to the step)"
            if kinds & {"keys", "length", "type"} else "a new input signature")
    return (f"tfretrace {name}: Keras's own {step} step retraced for {what}: Keras builds it with "
            "reduce_retracing=True and generalises it, so nothing to change in your code (said once; a new "
            "steps_per_execution or compile() makes the step anew)")


# ---------------------------------------------------------------------------
# %tfretrace's rows and %tfretrace NAME


def _family_fix(family) -> str:
    name = family.name.rpartition(".")[2]
    if family.owners:
        owner, _ = family.owners.most_common(1)[0]
        return f"reuse one {owner} for the calls, or pass what differs between the objects to {name} as tensors"
    return (f"make the tf.function once (define {name} outside the loop or in an earlier cell; or call "
            f"tf.function({name}) once and keep what it returns) and pass what changes as an argument (a tensor)")


def family_rows(log) -> list[tuple[str, int, str, str]]:
    """``%tfretrace``'s rows for families of functions made anew: ``(name, traces, why, fix)``."""
    rows = []
    for family in log.families.values():
        if family.functions < 2 or not _user_family(family):
            continue
        if family.owners:
            owner, _ = family.owners.most_common(1)[0]
            label = f"{owner}.{family.name.rpartition('.')[2]} (one per object)"
            why = f"a method's tf.function made for {family.functions} {owner} objects ({where(family)})"
        else:
            label = f"{family.name} (made {family.functions} times)"
            why = f"{family.functions} tf.functions made from the same code ({where(family)}), each with its own traces"
        rows.append((label, family.traces, why, _family_fix(family)))
    return rows


def family_report(log, name: str):
    """``%tfretrace NAME`` for a family (by the Python function's name), or ``None`` if there is none."""
    from tfmagic.reports import Table

    for family in reversed(log.families.values()):
        if name in (family.name, family.name.rpartition(".")[2]) and _user_family(family) and family.functions > 1:
            rows = []
            for number, event in enumerate((e for e in log.events if e.family is family), 1):
                signature = ", ".join(f"{k}: {retracing.describe(v)}" for k, v in (event.signature or {}).items())
                rows.append([str(number), "a new function" if event.new_function else "a retrace",
                             event.owner or "", signature or "(not known)"])
            return Table(f"{family.name}: {family.functions} tf.functions made from the same code ({where(family)}), "
                         f"{family.traces} traces", ["call that traced", "what", "object", "signature"], rows,
                         [f"fix: {_family_fix(family)}"])
    return None


def function_report(name: str, function, log=None):
    """``%tfretrace NAME`` for one tf.function: every trace, its signature, what each retrace changed."""
    from tfmagic.reports import Table

    history = retracing.trace_history(function, name)
    rows = []
    for trace in history.traces:
        against = f" (against trace {trace.nearest})" if trace.nearest else ""
        fixes = "; ".join(trace.fixes)
        rows.append([str(trace.number), trace.signature_text(), trace.reason + against, fixes])
    options = [f"jit_compile={bool(getattr(function, '_jit_compile', False))}",
               f"reduce_retracing={bool(getattr(function, '_reduce_retracing', False))}"]
    if getattr(function, "input_signature", None) is not None:
        options.append("input_signature set")
    notes = []
    if getattr(function, "_jit_compile", False):
        compiles = xla_compiles_text(function, log) if log is not None else ""
        notes.append((compiles + ": " if compiles else "") +
                     "XLA compiles it once per concrete input shape, even where a trace is generalised")
    title = f"{name}: {len(history.traces)} {'trace' if len(history.traces) == 1 else 'traces'} ({', '.join(options)})"
    return Table(title, ["trace", "signature", "why it traced", "fix"], rows, notes)


# ---------------------------------------------------------------------------
# XLA's compiles, beside the traces


def _shape_text(shapes: tuple) -> str:
    parts = []
    for item in shapes:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], tuple):
            parts.append(f"{item[1]}[{','.join(str(d) for d in item[0])}]")
        else:
            parts.append(str(item))
    return "(" + ", ".join(parts) + ")"


def xla_compiles_text(function, log) -> str:
    """``XLA compiled it 4 times (shapes ...)``, or ``""`` for a function XLA does not compile."""
    if not getattr(function, "_jit_compile", False):
        return ""
    shapes = log.xla_shapes(function)
    if not shapes:
        return ""
    listed = ", ".join(_shape_text(s) for s in shapes[:MAX_VALUES]) + (", ..." if len(shapes) > MAX_VALUES else "")
    return f"XLA compiled it {len(shapes)} {'time' if len(shapes) == 1 else 'times'} (for {listed})"


def xla_summaries(functions: dict[str, Any], log, seen: dict[int, int]) -> list[Summary]:
    """For each jit_compile function that XLA compiled again in the cell: how often, for which shapes, the fix.

    Args:
        seen: id of a function -> how many shapes were said for it (updated here).
    """
    out = []
    for name, fn in functions.items():
        shapes = log.xla_shapes(fn) if getattr(fn, "_jit_compile", False) else []
        before = seen.get(id(fn), 0)
        seen[id(fn)] = len(shapes)
        if len(shapes) < 2 or len(shapes) == before:
            continue
        traces = len(retracing.concrete_functions(fn))
        out.append(Summary(
            f"tfretrace {name}: {xla_compiles_text(fn, log)}, where TensorFlow traced it {traces} "
            f"{'time' if traces == 1 else 'times'}: XLA compiles once per concrete input shape, even for a "
            "generalised trace (reduce_retracing, None dims)\n"
            "  fix: give it a few shapes: pad or bucket the inputs (tf.pad to a multiple of 8 or 32, "
            "dataset.bucket_by_sequence_length), or fixed shapes (drop_remainder=True)"))
    return out

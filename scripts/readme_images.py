"""Make the README's pictures from the executed tour: one drawing, and the %%tape table.

Usage: python scripts/readme_images.py [EXECUTED_TOUR] [OUT_DIR]

EXECUTED_TOUR defaults to ``out/tour.ipynb`` (what ``bash scripts/tour.sh`` writes); OUT_DIR to
``docs/images``. Writes ``tfgraph.svg`` (the drawing of the tour's Keras layer cell, as the notebook
shows it) and ``tape.svg`` (the %%tape table of the seed's stop_gradient example, as monospace text),
both small enough to keep in the repository.
"""

import html
import pathlib
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _outputs(nb, starts: str):
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(starts))
    return cell.outputs


def drawing(nb) -> str:
    """The SVG of the tour's first `-n forward` cell (a Keras layer and a variable)."""
    return next(o.data["image/svg+xml"] for o in _outputs(nb, "%%tfgraph -n forward\n")
                if "image/svg+xml" in o.get("data", {}))


def tape_table(nb) -> str:
    """The %%tape table of the stop_gradient cell, drawn as monospace text in an SVG."""
    text = next(o.data["text/plain"] for o in _outputs(nb, "%%tape --show graph\n")
                if "%%tape: gradients" in o.get("data", {}).get("text/plain", ""))
    lines = text.splitlines()
    width = 16 + 7.2 * max(len(line) for line in lines)
    height = 16 + 17 * len(lines)
    rows = "".join(f'<text x="8" y="{20 + 17 * i}" xml:space="preserve">{html.escape(line)}</text>'
                   for i, line in enumerate(lines))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
            f'viewBox="0 0 {width:.0f} {height}"><rect width="100%" height="100%" fill="#ffffff" stroke="#cccccc"/>'
            f'<g font-family="DejaVu Sans Mono,Menlo,Consolas,monospace" font-size="12" fill="#222222">{rows}</g></svg>\n')


def main(argv):
    source = pathlib.Path(argv[0]) if argv else ROOT / "out" / "tour.ipynb"
    out = pathlib.Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "images"
    nb = nbformat.read(source, as_version=4)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tfgraph.svg").write_text(drawing(nb))
    (out / "tape.svg").write_text(tape_table(nb))
    for name in ("tfgraph.svg", "tape.svg"):
        print(f"{out / name}: {(out / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

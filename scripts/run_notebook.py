"""Execute a notebook on a real Jupyter kernel and write it as HTML with its graphs inline.

Usage: python scripts/run_notebook.py notebooks/tour.ipynb [OUT_DIR]

The notebook runs with OUT_DIR (default ``out/``) as its working folder, so files its
cells write land there. Cells tagged ``raises-exception`` may fail (they show errors on
purpose); any other error stops the run. Prints the path of the HTML file.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402


def execute(path: str, workdir: str, timeout: int = 600):
    """Run every cell of the notebook at ``path`` in ``workdir``; return the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
    return nb


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    path = argv[0]
    out_dir = os.path.abspath(argv[1] if len(argv) > 1 else "out")
    os.makedirs(out_dir, exist_ok=True)
    nb = execute(path, out_dir)
    stem = os.path.splitext(os.path.basename(path))[0]
    nbformat.write(nb, os.path.join(out_dir, stem + ".ipynb"))
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path = os.path.join(out_dir, stem + ".html")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(body)
    svgs = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {}))
    print(f"{len(nb.cells)} cells run, {svgs} graphs drawn")
    print(html_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

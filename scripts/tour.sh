#!/usr/bin/env bash
# The main job: set up .venv, execute notebooks/tour.ipynb on a real kernel,
# write out/tour.html (graphs inline as SVG) and print its path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh"
cd "$root"
python scripts/run_notebook.py notebooks/tour.ipynb "${1:-out}"

#!/usr/bin/env bash
# Set up .venv and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh"
cd "$root"
python -m pytest "$@"

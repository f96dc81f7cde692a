#!/usr/bin/env bash
# Create .venv (if needed) and install tfmagic with everything its tests and tour need.
# Sourced by tour.sh and test.sh; re-installs only when pyproject.toml (or TFMAGIC_PIP) changed.
# TFMAGIC_VENV picks another venv, TFMAGIC_PIP adds pip requirements to it: CI's second and third runs
# (.ci/run) use them for TensorFlow 2.15 ("tensorflow==2.15.*") and tf-keras ("tf-keras").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TFMAGIC_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "tfmagic: creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.tfmagic-installed"
extra="${TFMAGIC_PIP:-}"
want="$( (cat "$root/pyproject.toml"; echo "$extra") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "tfmagic: installing tfmagic, TensorFlow and the test tools into $venv (a few minutes the first time)" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086  # TFMAGIC_PIP: requirements separated by spaces
  "$venv/bin/python" -m pip install --quiet -e "$root[test,notebook,browser]" $extra
  echo "$want" > "$stamp"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
export PATH="$venv/bin:$PATH"

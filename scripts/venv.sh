#!/usr/bin/env bash
# Usage: bash scripts/venv.sh PYTHON VENV
# Make the virtual environment VENV with PYTHON, unless VENV's python already runs pip. A venv
# whose python cannot run pip is half-made (Debian's python3 without python3-venv leaves one,
# and so does an interrupted make); it would make every later step fail, so it is made again.
set -u
source "$(dirname "$0")/lib.sh"
PYTHON=$1
VENV=$2

"$VENV/bin/python" -m pip --version >/dev/null 2>&1 && exit 0
if [ -e "$VENV" ] || [ -L "$VENV" ]; then
  echo "cnnlab: $VENV is half-made (its python cannot run pip); making it again"
  rm -rf "$VENV"
fi

command -v "$PYTHON" >/dev/null 2>&1 \
  || fail "cnnlab: error: $PYTHON not found; install Python 3.10 or newer (Debian: apt-get install python3 python3-venv), or run make PYTHON=/path/to/python3"
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
  || fail "cnnlab: error: $PYTHON does not run; run make PYTHON=/path/to/python3 with a working Python 3.10 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail "cnnlab: error: $PYTHON is Python $version; cnnlab needs 3.10 or newer (run make PYTHON=/path/to/python3)"

# Debian ships venv's ensurepip (which puts pip into a new venv) apart, in python3-venv.
no_venv="cnnlab: error: $PYTHON (Python $version) cannot make virtual environments: its ensurepip module is missing; install it with \`apt-get install python3-venv\` (or python$version-venv, matching this interpreter) and run make again"
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || fail "$no_venv"

echo "making $VENV with $PYTHON (Python $version)"
if ! quietly "$PYTHON" -m venv "$VENV"; then
  rm -rf "$VENV"
  # Debian's venv without python3-venv says so at length; one line says the same.
  grep -q python3-venv "$CNNLAB_LOG" && fail "$no_venv"
  show_failure "making the virtual environment $VENV"
  exit 1
fi
if ! quietly "$VENV/bin/python" -m pip --version; then
  show_failure "checking the new virtual environment $VENV"
  rm -rf "$VENV"
  exit 1
fi

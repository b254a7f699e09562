#!/usr/bin/env bash
# Usage: PYTHON=.venv/bin/python bash scripts/get_fashion_mnist.sh [--optional]
# Make Fashion-MNIST available: already there -> done; else Debian's package where apt works;
# else torchvision's download where the network allows; else say how to get it and exit 1.
# --optional (make test): a missing data set is only a warning, so that the tests run and those
# that need it skip; under CI=true those tests must run, so it stays an error.
# CNNLAB_DEBIAN_FASHION_DIR, when set, stands for /usr/share/datasets/fashion-mnist in the
# lookup (tests/test_setup.py uses it to see the script on a machine that has the package).
set -u
source "$(dirname "$0")/lib.sh"
PYTHON=${PYTHON:-python3}
optional=false
[ "${1:-}" = --optional ] && [ "${CI:-}" != true ] && optional=true

# Is the data set where cnnlab's own lookup finds it? Anything but "found" or "not found" (say,
# cnnlab not installed in PYTHON) is an error of the set-up, not a missing data set.
have_data() {
  local answer status
  answer=$("$PYTHON" - 2>&1 <<'PY'
import os, sys
from pathlib import Path
from cnnlab.data import datasets
from cnnlab.errors import CnnlabError

if os.environ.get("CNNLAB_DEBIAN_FASHION_DIR"):
    if not hasattr(datasets, "DEBIAN_FASHION_DIR"):
        sys.exit("CNNLAB_DEBIAN_FASHION_DIR is set, but cnnlab.data.datasets has no DEBIAN_FASHION_DIR to replace")
    datasets.DEBIAN_FASHION_DIR = Path(os.environ["CNNLAB_DEBIAN_FASHION_DIR"])
try:
    print(datasets.fashion_mnist_dir())
except CnnlabError:
    sys.exit(3)
PY
  )
  status=$?
  [ "$status" -eq 0 ] && return 0
  [ "$status" -eq 3 ] && return 1
  fail "cnnlab: error: cannot look for Fashion-MNIST with $PYTHON (is cnnlab installed there? make install does it): $(echo "$answer" | tail -n 1)"
}
have_data && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  :  # not Debian or Ubuntu
elif ! sudo=$(as_root); then
  echo "note: installing Debian's dataset-fashion-mnist needs root (or sudo without a password)" >&2
else
  echo "installing Fashion-MNIST from Debian (dataset-fashion-mnist)..."
  new_step
  if apt_install "$sudo" dataset-fashion-mnist; then
    have_data && exit 0
  else
    show_failure "installing Debian's dataset-fashion-mnist"
  fi
fi

echo "trying torchvision's download of Fashion-MNIST into ./data ..."
new_step
# torchvision's error names the mirrors it tried and what each answered (the log's last lines)
if quietly "$PYTHON" -c 'from torchvision.datasets import FashionMNIST as F; [F("data", train=t, download=True) for t in (True, False)]'; then
  have_data && exit 0
else
  show_failure "torchvision's download of Fashion-MNIST"
fi

how="Install Debian's dataset-fashion-mnist package, or put the four IDX .gz files in ./data/fashion-mnist (https://github.com/zalandoresearch/fashion-mnist), or set CNNLAB_DATA to a folder that holds them"
if $optional; then
  echo "cnnlab: warning: Fashion-MNIST is not available, so the tests that need it will skip (under CI=true they fail). $how." >&2
  exit 0
fi
if [ "${CI:-}" = true ] && [ "${1:-}" = --optional ]; then
  fail "cnnlab: error: Fashion-MNIST is not available and could not be fetched, and under CI=true the tests that need it must run. $how."
fi
fail "cnnlab: error: Fashion-MNIST is not available and could not be fetched. $how."

#!/usr/bin/env bash
# Make Fashion-MNIST available: already there -> done; else Debian's package where apt works;
# else torchvision's download where the network allows; else say how to get it.
set -u
PYTHON=${PYTHON:-python3}
have_data() {
  "$PYTHON" -c "from cnnlab.data.datasets import fashion_mnist_dir; fashion_mnist_dir()" >/dev/null 2>&1
}
have_data && exit 0

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    echo "installing Fashion-MNIST from Debian (dataset-fashion-mnist)..."
    $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }
    have_data && exit 0
  fi
fi

echo "trying torchvision's download of Fashion-MNIST into ./data ..."
"$PYTHON" - <<'PY' >/dev/null 2>&1
from torchvision.datasets import FashionMNIST
for train in (True, False):
    FashionMNIST("data", train=train, download=True)
PY
have_data && exit 0

echo "cnnlab: error: Fashion-MNIST is not available and could not be fetched. Install Debian's" \
     "dataset-fashion-mnist package, or put the four IDX .gz files in ./data/fashion-mnist" \
     "(https://github.com/zalandoresearch/fashion-mnist), or set CNNLAB_DATA." >&2
exit 1

#!/usr/bin/env bash
# Issue 7's repro on real Fashion-MNIST: one run straight through, one killed with SIGKILL the
# moment epoch 2's checkpoint appears and then resumed; prints both test accuracies and whether
# the metrics rows (timings aside) and the final checkpoint bytes are equal.
#   bash scripts/kill_resume_repro.sh [OUTPUT_DIR]     (about 40 s on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
cnnlab=.venv/bin/cnnlab
out=${1:-$(mktemp -d /tmp/cnnlab-kill-XXXX)}
args=(recipes/fashion_mnist.yaml train.epochs=6 data.train_limit=6000 "output_dir=$out" --quiet)
"$cnnlab" train "${args[@]}" name=straight >/dev/null
"$cnnlab" train "${args[@]}" name=killed >/dev/null &
pid=$!
until compgen -G "$out/killed-*/checkpoints/epoch-0002.safetensors" >/dev/null; do sleep 0.05; done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
killed=$(echo "$out"/killed-*)
echo "killed after epoch 2's commit; checkpoints/: $(ls -A "$killed/checkpoints" | tr '\n' ' ')"
"$cnnlab" train --resume "$killed" --quiet >/dev/null
.venv/bin/python - "$out"/straight-* "$killed" <<'PY'
import json, sys
from pathlib import Path

straight, killed = (Path(p) for p in sys.argv[1:])
for run in (straight, killed):
    summary = json.loads((run / "summary.json").read_text())
    print(f"{run.name}: test {summary['test']['acc']:.2%}, best epoch {summary['best']['epoch']}")
rows = [[{k: v for k, v in json.loads(line).items() if "time" not in k and k != "images_per_s"}
         for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (straight, killed)]
print("metrics rows equal (timings aside):", rows[0] == rows[1])
for file in sorted((straight / "checkpoints").iterdir()):
    print(f"{file.name} bytes equal:", file.read_bytes() == (killed / "checkpoints" / file.name).read_bytes())
PY

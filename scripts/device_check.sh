#!/usr/bin/env bash
# The GPU checks that issues #3 and #6 leave open, as one short script for a lent device
# machine (it runs from the repository root there; `scripts/fetch_device_wheels.sh` first,
# here, then the device tool's run with command "bash scripts/device_check.sh",
# carry [".whl"], timeout_s 540). Results land in $OUT (at most 8 files):
#   env.txt         GPU, driver, torch
#   bench.json      `medssl bench --method all`: views/s of (a) ceiling, (b) medssl's stream,
#                   (c) lightly's DataLoader; b/a (target >= 0.8), b/c (target >= 3), memory
#   demo.md         the demo benchmark's report (33 runs; its wall time is in log.txt)
#   byol-*.csv      the same BYOL pretraining in bf16-mixed and in 32-true (parity)
#   log.txt         everything printed
# A dry run of its plumbing here, on the CPU: DEVICE=cpu BENCH_STEPS=2 EPOCHS=1 DEMO=0
#   BENCH_ARGS="--warmup 1 --rounds 1 --batch-size 16 --images 64 --no-finetune"
#   PY=.venv/bin/python bash scripts/device_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/medssl-device-check}
DEVICE=${DEVICE:-cuda}
BENCH_STEPS=${BENCH_STEPS:-20}
BENCH_ARGS=${BENCH_ARGS:-}
EPOCHS=${EPOCHS:-5}
DEMO=${DEMO:-1}
PY=${PY:-python3}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
medssl() { "$PY" -m medssl.cli.main "$@"; }
work=$(mktemp -d)

{ nvidia-smi || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== bench"
medssl bench --method all --device "$DEVICE" --steps "$BENCH_STEPS" $BENCH_ARGS --json --no-save \
  > "$OUT/bench.json"

echo "== databases (demo preset)"
medssl data build --preset demo --out "$work/db" --quiet || exit 1

if [ "$DEMO" = 1 ]; then
  echo "== demo benchmark"
  start=$(date +%s)
  timeout 300 "$PY" -m medssl.cli.main benchmark --preset demo --out "$work/demo" \
    --device "$DEVICE" --no-progress
  echo "demo benchmark rc=$? in $(( $(date +%s) - start )) s"
  cp "$work/demo/report/report.md" "$OUT/demo.md" 2>/dev/null
fi

echo "== bf16 / fp32 parity (BYOL, $EPOCHS epochs on the demo US1)"
for p in bf16-mixed 32-true; do
  medssl pretrain --method byol --database "$work/db/US1" --out "$work/byol-$p" \
    --epochs "$EPOCHS" --device "$DEVICE" --set trainer.precision=$p \
    --set trainer.progress_bar=false && cp "$work/byol-$p/metrics.csv" "$OUT/byol-$p.csv"
done
rm -rf "$work"

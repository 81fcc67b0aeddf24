#!/usr/bin/env bash
# What one GPU lease runs (benchmarks/device_batch.py says why and how): install the carried
# wheels, restore the carried feature cache, run benchmarks/device_plan.txt until the deadline,
# and pack each results folder (without checkpoints) into $OUT.
# Carry: .whl (the wheels the GPU image lacks: pip download jsonargparse docstring_parser
# typeshed_client pytorch-metric-learning omegaconf soundfile cffi pycparser, see
# /work/.library/device/README.md) and .devdata (`device_batch.py pack` + commit; the plan's
# speed-perturbed jobs need `--speeds 1.0,0.9,1.1`).
set -u -o pipefail
OUT=${OUT:-/tmp/device-out}
SLOTS=${SLOTS:-4}
DEADLINE=${DEADLINE:-510}
PLAN=${PLAN:-benchmarks/device_plan.txt}
DATA=${DATA:-/data/ravdess}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" XDG_CACHE_HOME=/tmp/xdg PYTHONUNBUFFERED=1
LIGHTNING_SER_COMMIT=$(cat .devdata/commit) && export LIGHTNING_SER_COMMIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, pytorch_lightning as pl, lightning_ser.module, lightning_ser.losses, \
soundfile; print('torch', torch.__version__, 'lightning', pl.__version__, torch.cuda.get_device_name(0))" \
    | tee -a "$OUT/gpu.txt" || exit 1
python3 benchmarks/device_batch.py unpack --from .devdata --root "$DATA" || exit 1
mkdir -p /tmp/results/ablation  # Table I: finished runs are skipped by the sweep
cp -r benchmarks/results/ablation/backbone-* /tmp/results/ablation/ 2>/dev/null || true
python3 benchmarks/device_batch.py run --plan "$PLAN" --root "$DATA" \
    --out /tmp/results --slots "$SLOTS" --stop-starting $((DEADLINE - 60)) --deadline "$DEADLINE"
cd /tmp/results || exit 1
for d in */; do
    d=${d%/}
    [ "$d" = logs ] && continue
    tar czf "$OUT/$d.tgz" --exclude='*.ckpt' --exclude='report_val' --exclude='wandb' \
        $( [ "$d" = ablation ] && echo "--exclude=*.png" ) "$d"
done
tar czf "$OUT/logs.tgz" logs jobs.csv
ls -la "$OUT"

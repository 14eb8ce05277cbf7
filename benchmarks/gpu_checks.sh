#!/bin/bash
# The checks to run when a GPU is lent (../shared/GPU.md), in one go: the CUDA tests, one stream
# (`siamtrack bench --device cuda`), several targets batched, the lost-frame cost, training pairs/s.
#
#   bash benchmarks/gpu_checks.sh [SHARED]
#
# SHARED holds data/dev (Car4, David), data/training (GOT-10k layout) and peers/ (default ../shared;
# on the lent machine a copy carried with the checkout, e.g. .gpu). Without an install: PYTHONPATH=. is set
# here. DEVICE=cpu runs the same steps on a CPU (to try the script before the GPU's turn); PY picks the Python.
# The efficientnet-lite0 package (the [train] extra) is needed for the training step only.
SHARED=${1:-../shared}
export PYTHONPATH=.:$PYTHONPATH SIAMTRACK_SHARED=$SHARED MPLBACKEND=Agg
D=${DEVICE:-cuda}; PY=${PY:-python3}; STEPS=${STEPS:-400}
RUN=${RUN_DIR:-$(mktemp -d)}
step() { echo; echo "=== $(date +%T) $*"; }
BENCH="$PY -m tracker.apps.cli bench --device $D --backends torch --root $SHARED/data/dev --peers $SHARED/peers --sequences Car4 David"

step hardware
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
$PY -c "import torch, cv2; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'OpenCV', cv2.__version__)"
echo "$(nproc) CPU cores; $(uptime)"
step CUDA tests
timeout 300 $PY -m pytest -q -s -rs tests/test_cuda.py tests/test_tracker.py 2>&1 | tail -25
step one stream
timeout 300 $BENCH --models siamfc-effnet siamfc-lite siamfc-alexnet
step several targets
timeout 300 $BENCH --targets 1 4 16 64 --max-frames 40 --models siamfc-effnet
step lost frames
timeout 120 $BENCH --lost-frames --max-frames 60 --models siamfc-effnet siamfc-effnet:search_tiles=4
for B in 16 64; do  # siamfc-effnet's recipe (weights/README.md), STEPS steps, at two batch sizes
  step training, batch $B
  timeout 100 $PY -m tracker.apps.cli train --data got10k:$SHARED/data/training --model effnet-lite0 --pretrained --box-head \
    --steps 4000 --max-steps $STEPS --batch-size $B --lr 1e-2 1e-4 --warmup 200 --shift 64 --scale-jitter 0.5 \
    --negatives 0.2 --max-gap 15 --seed 0 --device $D --checkpoint-every 1e9 --out $RUN/train$B 2>&1 | tail -2
  tail -1 $RUN/train$B/log.csv  # step, loss, lr, pairs_per_s, elapsed_s
done
step done; uptime

#!/usr/bin/env bash
# The model card's ablation table: each row is one benchmarks/confidence.py run on all of
# ../shared/data/dev (dev half A chose the shipped settings, so these are selection-influenced
# dev scores, for comparing the rows with each other only). Needs the run folders named below
# (see weights/README.md for the commands that make them); SHIPPED is the shipped config.
# The table's feature-pyramid and box_size_lr rows are gone with those options (docs/experiments.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# The table was made before 2026-11-28, with the scale pyramid on every frame: scale_every 1 over the .json's 2.
SHIPPED=$($PY -c "import json;c=json.load(open('weights/siamfc-effnet.json'))['config'];c['scale_every']=1;print(json.dumps(c))")
with() { $PY -c "import json,sys;c=json.loads(sys.argv[1]);c.update(json.loads(sys.argv[2]));print(json.dumps(c))" "$SHIPPED" "$1"; }
row() { echo "== $1"; $PY benchmarks/confidence.py --weights "$2" --config "$3" 2>&1 | grep -E "^overall|demo clip"; }
# The probe: the ImageNet trunk and the identity neck, nothing trained (needs the [train] extra).
[ -f runs/probe/effnet-probe.pt ] || $PY -c "
from tracker.networks.effnet import load_imagenet; from tracker.networks.models import build_model; from tracker.networks.weights import save_weights
net = build_model('effnet-lite0'); load_imagenet(net.backbone)
save_weights(net, 'runs/probe/effnet-probe.pt', config={}, note='ImageNet trunk, identity neck, nothing trained')"
row "ImageNet trunk, nothing trained (identity neck), shipped settings" runs/probe/effnet-probe.pt "$SHIPPED"
row "trained 1,000 steps, scale jitter 0.18 (run A, stopped early)" runs/A/snapshots/effnet-lite0_0001000.pt "$SHIPPED"
row "run B (scale jitter 0.5), step 4,000" runs/B/effnet-lite0.pt "$SHIPPED"
row "shipped: run B, step 2,000; image pyramid (3 crops), 193 px" weights/siamfc-effnet.pt "$SHIPPED"
row "shipped weights, image pyramid, 257 px" weights/siamfc-effnet.pt "$(with '{"instance_sz": 257}')"
row "shipped weights, box head (1 scale, proposals; settings tuned on half A for run B's step 4,000)" weights/siamfc-effnet.pt \
    "$(with '{"box_head": true, "scale_num": 1, "scale_lr": 0.3, "window_influence": 0.21, "penalty_k": 0.1}')"

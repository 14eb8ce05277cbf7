#!/usr/bin/env bash
# The model card's ablation table: each row is one benchmarks/confidence.py run on all of
# ../shared/data/dev (dev half A chose the shipped settings, so these are selection-influenced
# dev scores, for comparing the rows with each other only). Needs the run folders named below
# (see weights/README.md for the commands that make them); SHIPPED is the shipped config.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SHIPPED=$($PY -c "import json;print(json.dumps(json.load(open('weights/siamfc-effnet.json'))['config']))")
with() { $PY -c "import json,sys;c=json.loads(sys.argv[1]);c.update(json.loads(sys.argv[2]));print(json.dumps(c))" "$SHIPPED" "$1"; }
row() { echo "== $1"; $PY benchmarks/confidence.py --weights "$2" --config "$3" 2>&1 | grep -E "^overall|demo clip"; }
row "ImageNet trunk, nothing trained (identity neck), shipped settings" runs/probe/effnet-probe.pt "$SHIPPED"
row "trained 1,000 steps, scale jitter 0.18 (run A)" runs/A/snapshots/effnet-lite0_0001000.pt "$SHIPPED"
row "shipped: trained 4,000 steps, scale jitter 0.5 (run B), feature pyramid, 193 px" weights/siamfc-effnet.pt "$SHIPPED"
row "run B, image pyramid (3 crops), 193 px" weights/siamfc-effnet.pt "$(with '{"feature_pyramid": false}')"
row "run B, image pyramid (3 crops), 257 px" weights/siamfc-effnet.pt "$(with '{"feature_pyramid": false, "instance_sz": 257}')"
row "run B, feature pyramid, 257 px" weights/siamfc-effnet.pt "$(with '{"instance_sz": 257}')"
row "run B, box head (1 scale, proposals), settings chosen on half A" weights/siamfc-effnet.pt \
    "$(with '{"box_head": true, "feature_pyramid": false, "scale_num": 1, "scale_lr": 0.3, "window_influence": 0.21, "penalty_k": 0.1}')"
row "run B, feature pyramid + box-head sizes (box_size_lr 0.1)" weights/siamfc-effnet.pt "$(with '{"box_size_lr": 0.1}')"

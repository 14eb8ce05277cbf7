#!/usr/bin/env bash
# Side by side on the selection data and dev: training + training-extra (GOT-10k AO; NanoTrack's weights never
# trained on them, siamfc-effnet did: its AO there is a training figure) and dev (OTB success AUC), then the table with dev half A / half B and the
# selection score (eval/selection.py). Results go to eval/results/{training,training-extra,dev}/; a re-run
# skips finished sequences.
#
#   eval/run_compare.sh                                   # the trackers below, 1 process
#   TRACKERS="nanotrack-v2@onnxruntime nano" eval/run_compare.sh --workers 2
#
# Extra arguments are passed to every `siamtrack eval` call.
set -euo pipefail
cd "$(dirname "$0")/.."
TRACKERS=${TRACKERS:-"nanotrack-v2@onnxruntime fast=nanotrack-v2@onnxruntime:preset=fast \
wide=nanotrack-v2@onnxruntime:preset=wide accurate=nanotrack-v2@onnxruntime:preset=accurate nanotrack-v3@onnxruntime siamfc-effnet@onnxruntime nano vit csrt"}
SHARED=${SIAMTRACK_SHARED:-../shared}
PEERS=${SIAMTRACK_PEERS:-$SHARED/peers}
for set in training training-extra; do
  siamtrack eval got10k --split train --root "$SHARED/data/$set" --peers "$PEERS" --trackers $TRACKERS \
      --out "eval/results/$set" --no-progress "$@"
done
siamtrack eval otb --root "$SHARED/data/dev" --peers "$PEERS" --trackers $TRACKERS --out eval/results/dev \
    --no-progress "$@"
labels=$(python3 -c "import sys; from tracker.eval.trackers import label_of; print(' '.join(label_of(s) for s in sys.argv[1:]))" $TRACKERS)
exec python3 eval/selection.py --shared "$SHARED" --results eval/results --trackers $labels

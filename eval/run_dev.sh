#!/usr/bin/env bash
# Full comparison on the development benchmark (../shared/data/dev, OTB one-pass protocol):
# our tracker(s) and OpenCV's peers in one run. Results, table and plots go to eval/results/dev/.
#
#   eval/run_dev.sh                       # default trackers (below), 1 process
#   TRACKERS="siamfc-effnet csrt" eval/run_dev.sh --workers 2 --device cuda
#
# Extra arguments are passed to `siamtrack eval otb`. A re-run skips finished sequences;
# delete eval/results/dev/results/<tracker>/ to re-run one tracker (e.g. after new weights).
set -euo pipefail
cd "$(dirname "$0")/.."
TRACKERS=${TRACKERS:-"nanotrack-v2 siamfc-effnet csrt kcf mil nano vit"}
SHARED=${SIAMTRACK_SHARED:-../shared}
exec siamtrack eval otb --root "$SHARED/data/dev" --peers "${SIAMTRACK_PEERS:-$SHARED/peers}" \
    --trackers $TRACKERS --out eval/results/dev "$@"

#!/usr/bin/env bash
# Reproduce the shipped STARK-lite0 model (stark_ros/model/weights/): stage 1 and stage 2 on the real
# hand-labelled sequences of ../shared/train_real (training split; checkpoints chosen on the validation split),
# write the inference checkpoint and its logs into the package.
#
#   bash scripts/train_own_model.sh [WORK_DIR] [SHARED_DIR]   # defaults: ../own_model, ../shared (beside the repo)
#
# About 1.5 h on an idle 2-core CPU (feature cache ~10 min, stage 1 ~56 min at ~60 samples/s, stage 2 ~10 min).
# Every step resumes: re-running the script after an interruption continues the unfinished stage from its newest
# checkpoint (the samples of an epoch depend only on the seed and the epoch). Needs scripts/setup.sh first (.venv).
# ../shared/eval is never read here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mkdir -p "${1:-$ROOT/../own_model}" && cd "${1:-$ROOT/../own_model}" && pwd)"
SHARED="$(cd "${2:-$ROOT/../shared}" && pwd)"
PY="$ROOT/.venv/bin/python"
WEIGHTS="$ROOT/stark_ros/model/weights"
# the stage-1 epoch with the best success AUC on the validation split (eval rows of s1/log.csv; 2026-12-05: 9)
S1_EPOCH="${S1_EPOCH:-9}"
S2_EPOCH="${S2_EPOCH:-2}"
cd "$WORK"

"$PY" -m stark_ros.train lite0_real_stage1 --out "$WORK/s1" --threads 2 --no-progress \
    --set data.root="$SHARED" data.feature_cache.folder="$WORK/feature_cache"
"$PY" -m stark_ros.train lite0_real_stage2 --out "$WORK/s2" --threads 2 --no-progress \
    --set data.root="$SHARED" data.feature_cache.folder="$WORK/feature_cache" \
    --stage2-from "$WORK/s1/checkpoints/$(printf 'STARKLITE0_ep%04d.pth.tar' "$S1_EPOCH")"
"$PY" -m stark_ros.training.release "$WORK/s2/checkpoints/$(printf 'STARKLITE0_ep%04d.pth.tar' "$S2_EPOCH")" \
    --output "$WEIGHTS/stark_lite0_own.pth.tar"
cp "$WORK/s1/config.yaml" "$WEIGHTS/stage1.yaml"
cp "$WORK/s2/config.yaml" "$WEIGHTS/stage2.yaml"
cp "$WORK/s1/log.csv" "$WEIGHTS/stage1_log.csv"
cp "$WORK/s2/log.csv" "$WEIGHTS/stage2_log.csv"

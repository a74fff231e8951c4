#!/usr/bin/env bash
# Reproduce the shipped STARK-lite0 model (stark_ros/model/weights/): build the own data, train stage 1 and
# stage 2, write the inference checkpoint and its logs into the package, and score it on ../shared/eval.
#
#   bash scripts/train_own_model.sh [WORK_DIR]      # default WORK_DIR: ../own_model (beside the repository)
#
# About 3 h on a 2-core CPU (data ~11 min, stage 1 ~2.4 h, stage 2 ~18 min). Every step resumes: re-running the
# script after an interruption continues the unfinished stage from its newest checkpoint. Needs scripts/setup.sh
# first (the .venv), and apt-get download + dpkg-deb for the Debian sources of the data.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mkdir -p "${1:-$ROOT/../own_model}" && cd "${1:-$ROOT/../own_model}" && pwd)"
PY="$ROOT/.venv/bin/python"
WEIGHTS="$ROOT/stark_ros/model/weights"
cd "$ROOT"

if [ ! -f "$WORK/data/manifest.json" ]; then
    "$PY" -m stark_ros.training.own_data --output "$WORK/data" --cache "$WORK/cache"
fi
"$PY" -m stark_ros.train lite0_stage1 --out "$WORK/s1" --threads 2 --no-progress --set data.root="$WORK/data"
"$PY" -m stark_ros.train lite0_stage2 --out "$WORK/s2" --threads 2 --no-progress --set data.root="$WORK/data" \
    --stage2-from "$WORK/s1/checkpoints/STARKLITE0_ep0022.pth.tar"
"$PY" -m stark_ros.training.release "$WORK/s2/checkpoints/STARKLITE0_ep0005.pth.tar" \
    --output "$WEIGHTS/stark_lite0_own.pth.tar"
cp "$WORK/s1/config.yaml" "$WEIGHTS/stage1.yaml"
cp "$WORK/s2/config.yaml" "$WEIGHTS/stage2.yaml"
cp "$WORK/s1/log.csv" "$WEIGHTS/stage1_log.csv"
cp "$WORK/s2/log.csv" "$WEIGHTS/stage2_log.csv"
if [ -d "$ROOT/../shared/eval" ]; then
    "$PY" -m stark_ros.evaluate --dataset "$ROOT/../shared/eval" --trackers csrt,kcf,stark,stark-bf16=stark:backend=openvino:precision=bf16 \
        --output "$WORK/eval" --threads 2
fi

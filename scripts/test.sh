#!/usr/bin/env bash
# Run stark_ros's test suite in .venv:   bash scripts/test.sh [pytest arguments...]
# Without arguments it runs everything under test/; with arguments they replace that
# (e.g. `bash scripts/test.sh test/test_packaging.py -x`).
# ROS_DISTRO=jazzy runs them in .venv-jazzy (ROS 2 Jazzy), set up by `ROS_DISTRO=jazzy bash scripts/setup.sh`.
# Brings the environment up to date first (scripts/setup.sh --no-demo: a no-op taking well under a
# second when nothing changed; it reinstalls stark_ros into .venv when its sources changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh --no-demo
case "${ROS_DISTRO:-kilted}" in
    jazzy) VENV=.venv-jazzy ;;
    *) VENV=.venv ;;
esac

# DDS on this machine only: loopback discovery plus the shared-memory profile (large images).
# test/conftest.py additionally picks a unique ROS_DOMAIN_ID per run.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$ROOT/config/fastdds_localhost.xml}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"

# -ra: say why tests were skipped/xfailed; --timeout: a hung ROS test fails instead of eating CI time.
# pytest's exit status is returned as is (5 = no test collected counts as a failure).
PYTEST=("$VENV/bin/python" -m pytest -q -ra --durations=10 --timeout=900 -p no:cacheprovider)
if [ "$#" -gt 0 ]; then exec "${PYTEST[@]}" "$@"; fi
# Without arguments: the training tests run in a second pytest process. In one process with everything else (after
# the ROS, openvino and browser tests have loaded their libraries and threads) the interpreter died with SIGSEGV in
# test_training_loop.py (twice, 2026-12-06; each of those tests passes on its own and with the tracker tests).
# Root cause not found yet; both processes must pass.
status=0
"${PYTEST[@]}" test --ignore-glob='test/test_training_*.py' || status=$?
"${PYTEST[@]}" test/test_training_*.py || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
exit "$status"

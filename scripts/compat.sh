#!/usr/bin/env bash
# make compat: check datasets written by the project's writer against LeRobot itself, offline.
#   1. lerobot==0.3.3 (last release that reads v2.1) in .venv-compat-033 loads each dataset and
#      iterates every frame (tests/compat/check_v21_load.py);
#   2. the same frames written by lerobot 0.3.3's own writer give the same files (check_writer_parity.py);
#   3. lerobot 0.4.x in .venv-compat-04x refuses the v2.1 original, converts it with LeRobot's own
#      v2.1 -> v3.0 converter (--push-to-hub=false) and loads the result (check_v30_convert.py).
# The datasets are written with `evo1 dataset synth` (the real writer) and read back once with the
# project's reader as the reference (tests/compat/dump_reference.py). Not part of `make test`.
#
# Both LeRobot releases pin an older torch (0.3.3: torch<2.8, 0.4.4: torch<2.11) that only exists as a
# CUDA build on PyPI, so each venv gets the project's CPU torch first and LeRobot with --no-deps plus
# the few packages its dataset code imports; every pip step is dry-run first and refused if it would
# pull a CUDA torch, nvidia-* or triton. See tests/compat/README.md.
#
# Environment:
#   VENV            project venv with `evo1` (default .venv; `make setup` creates it)
#   PYTHON          interpreter for the compat venvs (default python3)
#   TORCH_INDEX     pip index for the CPU torch when no local wheel is configured, e.g.
#                   https://download.pytorch.org/whl/cpu
#   COMPAT_WORK     scratch folder (default build/compat; wiped at start)
#   COMPAT_QUICK=1  skip the 1001-episode (two chunk folders) dataset
#   FORCE=1         reinstall the compat venvs even when their stamp matches
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
WORK=${COMPAT_WORK:-build/compat}
TORCH_VERSION=2.13.0
# torchvision: LeRobot's PyAV backend decodes through torchvision.io.VideoReader, which newer
# torchvision releases removed; 0.22.1 still has it and satisfies both LeRobot pins (0.3.3: <0.23).
TORCHVISION_VERSION=0.22.1
LEROBOT_V21=0.3.3
LEROBOT_V30=0.4.4
DEPS_033=("datasets==3.6.0" "huggingface-hub>=0.34.2,<0.36" "jsonlines>=4" "av>=14.2,<16" "pandas<3"
          "pillow" "numpy" "packaging")
DEPS_04X=("datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" "jsonlines>=4" "av>=15,<16" "pandas<3"
          "accelerate>=1.10,<2" "pillow" "numpy" "packaging<26")

say() { printf '[compat] %s\n' "$*"; }
die() { printf '[compat] error: %s\n' "$*" >&2; exit 1; }

[ -x "$VENV/bin/evo1" ] || die "$VENV/bin/evo1 not found: run 'make setup' first"

# pip install "$@" into venv $1, after a dry run whose report must not contain a CUDA torch,
# nvidia-*/triton packages, or (unless allowed in $ALLOW_TORCH_PKGS) any torch* package at all.
guarded_install() {
  local venv=$1; shift
  local report
  report=$(mktemp)
  "$venv/bin/python" -m pip -q --disable-pip-version-check install --dry-run --report "$report" "$@" \
    2> >(grep -v "^WARNING: Location" >&2) || { rm -f "$report"; die "pip dry run failed: $*"; }
  ALLOW="${ALLOW_TORCH_PKGS:-}" "$venv/bin/python" - "$report" <<'PY' || { rm -f "$report"; die "refusing to install: $*"; }
import json, os, sys
allow = set(os.environ["ALLOW"].split())
bad = []
for item in json.load(open(sys.argv[1])).get("install", []):
    name = item["metadata"]["name"].lower().replace("_", "-")
    version = item["metadata"]["version"]
    if name.startswith(("nvidia-", "triton")):
        bad.append(f"{name} {version} (CUDA runtime)")
    elif name in ("torch", "torchvision", "torchaudio", "torchcodec") and name not in allow:
        bad.append(f"{name} {version} (would replace the pinned torch stack)")
    elif name == "torch" and not version.endswith("+cpu"):
        bad.append(f"torch {version} is not a CPU build (set TORCH_INDEX=https://download.pytorch.org/whl/cpu)")
for b in bad:
    print(f"[compat]   {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  rm -f "$report"
  # pip's closing "lerobot requires X, which is not installed / but you have torch 2.13" lines are
  # expected here (LeRobot's own pins are bypassed on purpose): drop them.
  "$venv/bin/python" -m pip -q --disable-pip-version-check install "$@" \
    2> >(grep -v -E "^WARNING: Location|which is not installed|which is incompatible|dependency resolver does not" >&2)
}

# make_venv DIR LEROBOT_VERSION DEP...: idempotent (stamp of everything that decides the install).
make_venv() {
  local dir=$1 lerobot=$2; shift 2
  local stamp="$dir/.evo1_compat_stamp" want
  want=$(printf '%s\n' "$TORCH_VERSION" "${TORCH_INDEX:-}" "$TORCHVISION_VERSION" "$lerobot" "$@" | sha256sum | cut -c1-32)
  if [ "${FORCE:-0}" != 1 ] && [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "$dir up to date (lerobot $lerobot)"
    return
  fi
  local t0
  t0=$(date +%s)
  [ -x "$dir/bin/python" ] || { say "creating $dir"; "$PYTHON" -m venv "$dir"; }
  if ! "$dir/bin/python" -c "import torch, sys; sys.exit(torch.__version__ != '$TORCH_VERSION+cpu')" 2>/dev/null; then
    say "$dir: torch==$TORCH_VERSION (CPU) first"
    local idx=()
    [ -n "${TORCH_INDEX:-}" ] && idx=(--index-url "$TORCH_INDEX")
    ALLOW_TORCH_PKGS=torch guarded_install "$dir" "torch==$TORCH_VERSION" "${idx[@]}"
  fi
  say "$dir: lerobot==$lerobot and torchvision==$TORCHVISION_VERSION with --no-deps (their torch pins need a CUDA build)"
  ALLOW_TORCH_PKGS="torchvision" guarded_install "$dir" --no-deps "torchvision==$TORCHVISION_VERSION" "lerobot==$lerobot"
  say "$dir: what LeRobot's dataset code imports: $*"
  guarded_install "$dir" "$@"
  (cd tests/compat && HF_HUB_OFFLINE=1 "$ROOT/$dir/bin/python" -c \
    "from compat_common import install_torchvision_shim as s; s(); import lerobot.datasets.lerobot_dataset") \
    || die "$dir: importing lerobot.datasets.lerobot_dataset failed (FORCE=1 to reinstall)"
  echo "$want" >"$stamp"
  say "$dir ready in $(( $(date +%s) - t0 )) s ($(du -sh "$dir" | cut -f1))"
}

make_venv .venv-compat-033 "$LEROBOT_V21" "${DEPS_033[@]}"
make_venv .venv-compat-04x "$LEROBOT_V30" "${DEPS_04X[@]}"

# Never touch the Hub; keep every cache inside the scratch folder.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export HF_HOME="$ROOT/$WORK/hf_home" HF_LEROBOT_HOME="$ROOT/$WORK/lerobot_home"
export PYTHONDONTWRITEBYTECODE=1
rm -rf "$WORK"
mkdir -p "$WORK/logs"
EVO1=("$VENV/bin/evo1" dataset)

failed=()
# run_step NAME LOG CMD...: output to LOG; one summary line, or the log tail on failure.
run_step() {
  local name=$1 log=$2; shift 2
  if "$@" >"$log" 2>&1; then
    printf '[compat]   ok    %-22s %s\n' "$name" "$(grep -E '\] OK:|^OK:|^wrote|^reference:' "$log" | tail -1)"
  else
    printf '[compat]   FAIL  %-22s (log: %s)\n' "$name" "$log"
    grep -v -E 'examples/s|files/s|ba/s|it/s\]|^Svt\[' "$log" | tail -40 | sed 's/^/[compat]         /'
    failed+=("$name")
    return 1
  fi
}

# check_dataset NAME: the project's validator, the reference dump, then the LeRobot checks.
check_dataset() {
  local name=$1 ds="$WORK/$1" ref="$WORK/$1.reference.npz" L="$WORK/logs/$1"
  run_step "$name: evo1 validate" "$L.validate.log" "${EVO1[@]}" validate "$ds" || return 0
  run_step "$name: reference" "$L.reference.log" "$VENV/bin/python" tests/compat/dump_reference.py "$ds" "$ref" \
    || return 0
  run_step "$name: lerobot $LEROBOT_V21 v2.1" "$L.v21.log" \
    .venv-compat-033/bin/python tests/compat/check_v21_load.py "$ds" "$ref" || true
  run_step "$name: lerobot $LEROBOT_V21 writer" "$L.parity.log" \
    .venv-compat-033/bin/python tests/compat/check_writer_parity.py "$ds" "$ref" "$WORK/lerobot_written_$name" \
    || true
  run_step "$name: lerobot $LEROBOT_V30 v3.0" "$L.v30.log" \
    .venv-compat-04x/bin/python tests/compat/check_v30_convert.py "$ds" "$ref" "$WORK/v30_$name" || true
}

synth() {  # synth NAME STEP ARGS...: write (or with --append extend) dataset NAME
  local name=$1 step=$2; shift 2
  run_step "$name: $step" "$WORK/logs/$name.$step.log" "${EVO1[@]}" synth "$WORK/$name" "$@"
}

t0=$(date +%s)
say "datasets in $WORK (writer: $VENV/bin/evo1 dataset synth)"

# H.264, two small cameras of different sizes, two tasks (one non-ASCII), 10 fps.
if synth h264 synth --episodes 3 --frames 25 --fps 10 --cameras base:64x48,wrist:96x72 --codec libx264 \
     --task "pick the can" --task "put the café cup on the plate"; then
  check_dataset h264
fi

# AV1 (LeRobot's own default codec) at the real config: 640x480 cameras, 30 fps, plus an int64
# extra column; written in two sessions (--append) like a recording resumed later.
if "$VENV/bin/python" -c "import av, sys; sys.exit('libsvtav1' not in av.codecs_available)" \
   && .venv-compat-033/bin/python -c "import av, sys; sys.exit(not {'libdav1d', 'av1'} & set(av.codecs_available))"; then
  sed 's/^extra: {}.*/extra:\n  stamp_ns: {dtype: int64, shape: [1]}/' config/dataset_features.yaml >"$WORK/features_extra.yaml"
  grep -q "stamp_ns" "$WORK/features_extra.yaml" || die "could not add the extra column to the features config"
  if synth av1 synth --features "$WORK/features_extra.yaml" --codec libsvtav1 --episodes 2 --frames 12 \
       --task "pick the can" \
     && synth av1 append --features "$WORK/features_extra.yaml" --codec libsvtav1 --episodes 1 --frames 14 \
       --append --task "place the can"; then
    check_dataset av1
  fi
else
  say "SKIP av1: the project's PyAV cannot encode libsvtav1 or LeRobot's PyAV cannot decode AV1"
fi

# Single-frame episodes (shortest possible video and stats over one sample).
if synth one_frame synth --episodes 2 --frames 1 --fps 15 --cameras cam:64x48 --codec libx264; then
  check_dataset one_frame
fi

# 1001 episodes: the second chunk folder (chunk-001) and total_chunks = 2; no cameras.
if [ "${COMPAT_QUICK:-0}" != 1 ]; then
  if synth chunks synth --episodes 1001 --frames 1 --fps 10 --cameras none; then
    check_dataset chunks
  fi
fi

say "done in $(( $(date +%s) - t0 )) s; logs in $WORK/logs"
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all LeRobot compatibility checks passed"

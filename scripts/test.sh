#!/usr/bin/env bash
# Run the pytest suite in the project venv with the ROS test environment (loopback-only discovery,
# temp log dir). Each test still gets its own ROS_DOMAIN_ID from tests/fixtures/ros.py. Two xdist
# workers by default (the machine has 2 cores); PYTEST_WORKERS=0 runs serially.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR=${ROS_LOG_DIR:-$(mktemp -d -t evo1_ros_log.XXXXXX)}
export AMENT_PREFIX_PATH="$(cd "$VENV" && pwd)${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export FASTDDS_DEFAULT_PROFILES_FILE="$PWD/config/fastdds_shm.xml"
export PYTHONDONTWRITEBYTECODE=1
workers=${PYTEST_WORKERS:-2}
xdist=()
[ "$workers" != 0 ] && xdist=(-n "$workers" --dist loadfile)
rc=0
"$VENV/bin/python" -m pytest "${xdist[@]}" "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  # pytest's "no tests collected": a suite that silently runs nothing must not pass.
  echo "pytest collected no tests; treating as failure" >&2
  exit 1
fi
exit "$rc"

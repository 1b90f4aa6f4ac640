"""The `xarm_loopback_controller` executable and the YAML configuration."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_config import config_from_dict, load_config
from evo1_ros.sim.loopback_host import free_loopback_host
from evo1_ros.sim.loopback_main import build_parser, config_from_args

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "xarm_loopback_controller.yaml"


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evo1_ros.sim.loopback_main", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_help_has_an_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "evo1_ros.sim.loopback_main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--host 127.0.0.2" in out and "--reply-delay" in out and "--collision-after" in out


def test_refuses_non_loopback_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "evo1_ros.sim.loopback_main", "--host", "192.168.1.20"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "only binds 127.0.0.0/8" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_the_sdk_and_stops_cleanly_on_signal(sig: signal.Signals, connect) -> None:
    host = free_loopback_host()
    proc = _spawn("--host", host, "--config", str(CONFIG), "--initial-joints", "0.1", "0", "0", "0", "0", "0")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "ready on" in line:
                break
        else:
            pytest.fail(f"controller did not start (rc={proc.wait()})")
        arm = connect(host)
        assert arm.connected and arm.version.endswith("v1.12.10")
        code, angles = arm.get_servo_angle()
        assert code == 0 and abs(angles[0] - 0.1) < 1e-6
        arm.disconnect()
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_yaml_config_loads_and_cli_overrides() -> None:
    cfg = load_config(CONFIG)
    assert cfg.report_rates_hz == {"normal": 5.0, "rich": 5.0, "real": 100.0}
    assert cfg.gripper.tool_baud_index == 11 and cfg.faults.reply_delay_s == 0.0
    args = build_parser().parse_args(
        [
            "--config",
            str(CONFIG),
            "--host",
            "127.0.0.9",
            "--reply-delay",
            "0.25",
            "--c24-speed-limit",
            "2.0",
            "--tool-baud-index",
            "9",
            "--drop-after",
            "3",
            "--tool-bus-delay",
            "0.015",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.host == "127.0.0.9" and cfg.faults.reply_delay_s == 0.25 and cfg.faults.c24_speed_limit == 2.0
    assert cfg.gripper.tool_baud_index == 9 and cfg.faults.drop_connections_after_s == 3.0
    assert cfg.faults.tool_bus_delay_s == 0.015


def test_config_rejects_typos_and_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict({"xarm_loopback_controller": {"ros__parameters": {"reply_dealy": 1}}})
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict({"faults": {"collision_after": 1}})
    with pytest.raises(ValueError):
        config_from_dict({"initial_joints": [0, 0, 0]})
    with pytest.raises(ValueError):
        config_from_dict({"collision_sensitivity": 7})
    assert config_from_dict({"faults": {"reply_delay_s": 0.5}}).faults.reply_delay_s == 0.5


def test_c24_limit_is_configurable(make_controller, connect) -> None:
    from fixtures.xarm import bring_up

    cfg = config_from_dict({"faults": {"c24_speed_limit": 0.5}})  # 0.05 rad per 0.1 s
    ctrl = make_controller(cfg)
    arm = connect(ctrl.host)
    bring_up(arm, 1)
    assert arm.set_servo_angle_j([0.04, 0, 0, 0, 0, 0]) == 0
    assert arm.set_servo_angle_j([0.1, 0, 0, 0, 0, 0]) == 1
    assert wait_until(lambda: arm.error_code == 24, 2.0)

"""`evo1 launch` with real nodes: messages flow, SIGINT stops everything, a failing required node fails the launch."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from evo1_ros.launcher.description import LaunchError, load_description, parse_cli_arguments, resolve
from evo1_ros.launcher.runner import build_processes
from evo1_ros.polling import wait_until

NODES = Path(__file__).with_name("nodes")


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ros_env) -> Path:
    """A ROS-style install prefix holding package `launch_test_nodes` (lib/<pkg>/<exe>)."""
    root = tmp_path / "prefix"
    lib = root / "lib" / "launch_test_nodes"
    lib.mkdir(parents=True)
    for name in ("talker", "listener"):
        exe = lib / name
        exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{NODES / (name + ".py")}" "$@"\n')
        exe.chmod(0o755)
    ament = f"{root}{os.pathsep}{ros_env['AMENT_PREFIX_PATH']}"
    monkeypatch.setenv("AMENT_PREFIX_PATH", ament)
    ros_env["AMENT_PREFIX_PATH"] = ament  # what spawned processes get
    return root


def write_description(tmp_path: Path, listener_params: str = "{}") -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            description: talker + listener
            arguments:
              - {{name: rate, default: "20.0", description: talker rate (Hz)}}
              - {{name: ns, default: /demo, description: namespace of both nodes}}
            nodes:
              - name: talker
                package: launch_test_nodes
                executable: talker
                namespace: $(var ns)
                parameters: [{{rate: "$(var rate)", prefix: hi}}]
              - name: listener
                package: launch_test_nodes
                executable: listener
                namespace: $(var ns)
                required: true
                parameters: [{listener_params}]
            """
        )
    )
    return path


def start_launch(spawn, path: Path, *args: str):
    return spawn([sys.executable, "-m", "evo1_ros.cli.main", "launch", str(path), *args], name="launch")


def test_two_nodes_exchange_messages_and_stop_on_sigint(spawn, prefix, tmp_path):
    proc = start_launch(spawn, write_description(tmp_path), "rate:=50.0")
    assert proc.wait_for_output(r"\[listener\] heard: hi \d+", timeout=30), proc.output()
    out = proc.output()
    assert "__ns:=/demo" in out  # namespace applied on the command line
    proc.send_signal(signal.SIGINT)
    assert wait_until(lambda: proc.proc.poll() is not None, 20), proc.output()
    out = proc.output()
    assert proc.proc.returncode == 0, out
    assert "talker: clean shutdown" in out and "listener: clean shutdown" in out
    # No node of this test is left running.
    survivors = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, str(NODES))]
    assert survivors == []


def _cmdline_has(proc_dir: Path, needle: str) -> bool:
    try:
        return needle in (proc_dir / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def test_required_node_failure_stops_launch_with_error(spawn, prefix, tmp_path):
    path = write_description(tmp_path, "{exit_after: 3, exit_code: 3}")
    proc = start_launch(spawn, path)
    assert wait_until(lambda: proc.proc.poll() is not None, 40), proc.output()
    out = proc.output()
    assert proc.proc.returncode == 1, out
    assert "listener exited with code 3" in out
    assert "listener is required: stopping everything" in out
    assert "talker: clean shutdown" in out
    assert "failed: listener" in out


def test_bad_arguments_are_rejected(prefix, tmp_path):
    spec = load_description(write_description(tmp_path))
    with pytest.raises(LaunchError, match="has no argument 'speed'"):
        parse_cli_arguments(spec, ["speed:=3"])
    with pytest.raises(LaunchError, match="name:=value"):
        parse_cli_arguments(spec, ["rate=3"])
    values = parse_cli_arguments(spec, ["rate:=5.5"])
    assert values == {"rate": "5.5", "ns": "/demo"}
    nodes = resolve(spec, values)
    assert nodes[0].params == {"rate": 5.5, "prefix": "hi"}  # substituted values parsed as YAML
    procs = build_processes(nodes, tmp_path)
    argv = procs[0].argv
    assert argv[0].endswith("lib/launch_test_nodes/talker")
    assert argv[1:5] == ["--ros-args", "-r", "__node:=talker", "-r"]
    assert "__ns:=/demo" in argv
    params_file = argv[argv.index("--params-file") + 1]
    assert "rate: 5.5" in Path(params_file).read_text()


def test_description_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  - {package: p, executable: e, colour: red}\n")
    with pytest.raises(LaunchError, match="unknown keys \\['colour'\\]"):
        load_description(bad)
    bad.write_text("nodes:\n  - {package: p, executable: e, namespace: $(var ns)}\n")
    with pytest.raises(LaunchError, match="no argument 'ns' is declared"):
        load_description(bad)
    bad.write_text("nodes: []\n")
    with pytest.raises(LaunchError, match="non-empty 'nodes'"):
        load_description(bad)
    with pytest.raises(LaunchError, match="no launch description"):
        load_description("does_not_exist")

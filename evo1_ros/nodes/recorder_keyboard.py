"""`recorder_keyboard`: start / save / discard recorder episodes from a terminal.

Keys: ``s`` start (task from ``--task``, else the recorder's default), Enter or ``w`` save, ``d``
discard, ``q`` quit. On a TTY single key presses act immediately (termios cbreak mode); when stdin is
not a TTY (a pipe, a script, a test) it reads lines instead, where ``s <task text>`` starts an
episode of that task. The recorder's status is printed whenever its state changes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.utilities import remove_ros_args
from std_srvs.srv import Trigger

from evo1_msgs.msg import RecorderStatus
from evo1_msgs.srv import StartEpisode
from evo1_ros.ros.node_runner import release_signal_handlers, spin_until_shutdown
from evo1_ros.ros.qos import STATUS

STATE_NAMES = {0: "IDLE", 1: "RECORDING", 2: "SAVING", 3: "RESETTING", 4: "ERROR"}
HELP = (
    "keys: s = start episode, Enter/w = save, d = discard, q = quit  (lines: 's <task>' starts with a task)"
)


@dataclass(frozen=True)
class Command:
    """What the operator asked for: start (with optional task), save, discard, quit, help."""

    kind: str
    task: str = ""


def parse_command(text: str) -> Command:
    """Map one key or line to a command; unknown input asks for help."""
    raw = text.strip()
    head, _, rest = raw.partition(" ")
    head = head.lower()
    if raw == "" or head in ("w", "save"):
        return Command("save")
    if head in ("s", "start"):
        return Command("start", rest.strip())
    if head in ("d", "discard"):
        return Command("discard")
    if head in ("q", "quit", "exit"):
        return Command("quit")
    return Command("help")


def key_command(ch: str) -> Command | None:
    """Map one raw key press (TTY mode); None for keys that do nothing."""
    if ch in ("\n", "\r"):
        return Command("save")
    return {
        "s": Command("start"),
        "w": Command("save"),
        "d": Command("discard"),
        "q": Command("quit"),
        "\x04": Command("quit"),
        "?": Command("help"),
        "h": Command("help"),
    }.get(ch.lower())


def format_status(msg: RecorderStatus) -> str:
    """One line with what an operator needs: state, episode, frames, time, error."""
    state = STATE_NAMES.get(msg.state, str(msg.state))
    limit = f"/{msg.episode_time_limit:.0f}" if msg.episode_time_limit > 0 else ""
    text = (
        f"[{state}] episode {msg.episode_index} ({msg.episodes_saved} saved) task {msg.task!r} "
        f"frames {msg.frames_recorded} dropped {msg.frames_dropped} time {msg.episode_duration:.1f}{limit} s"
    )
    ages = list(zip(msg.stream_names, msg.stream_ages))
    stale = [n for n, a in ages if a == -1.0]  # -1: nothing received yet
    future = [n for n, a in ages if a < 0 and a != -1.0]  # stamped ahead of the recorder's clock
    if stale:
        text += f" | no data yet: {', '.join(stale)}"
    if future:
        text += f" | clock problem (stamped in the future): {', '.join(future)}"
    if msg.error:
        text += f" | error: {msg.error}"
    return text


class KeyboardClient(Node):
    """Service clients and a status subscription for one recorder."""

    def __init__(self, recorder: str, **kwargs: Any) -> None:
        super().__init__("recorder_keyboard", **kwargs)
        base = recorder.rstrip("/")
        self.start_cli = self.create_client(StartEpisode, f"{base}/start_episode")
        self.save_cli = self.create_client(Trigger, f"{base}/save_episode")
        self.discard_cli = self.create_client(Trigger, f"{base}/discard_episode")
        self.status: RecorderStatus | None = None
        self._status_lock = threading.Lock()
        self.create_subscription(RecorderStatus, f"{base}/status", self._on_status, STATUS)

    def _on_status(self, msg: RecorderStatus) -> None:
        with self._status_lock:
            self.status = msg

    def latest_status(self) -> RecorderStatus | None:
        with self._status_lock:
            return self.status

    def call(self, client: Any, request: Any, timeout: float) -> tuple[bool, str]:
        """Call and wait (the node is spun by another thread); (success, message)."""
        if not client.wait_for_service(timeout_sec=min(timeout, 5.0)):
            return False, f"service {client.srv_name} is not available (is the recorder running?)"
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not future.done():
            client.remove_pending_request(future)
            return False, f"no answer from {client.srv_name} within {timeout:.0f} s"
        res = future.result()
        return bool(res.success), str(res.message)

    def run(self, cmd: Command, default_task: str, timeout: float) -> tuple[bool, str]:
        if cmd.kind == "start":
            return self.call(self.start_cli, StartEpisode.Request(task=cmd.task or default_task), timeout)
        if cmd.kind == "save":
            return self.call(self.save_cli, Trigger.Request(), timeout)
        if cmd.kind == "discard":
            return self.call(self.discard_cli, Trigger.Request(), timeout)
        return True, HELP


class _Printer:
    """Prints results, and the status whenever its state/episode changes (or on request)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._last_key: tuple[int, int] | None = None

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def status(self, msg: RecorderStatus | None, force: bool = False) -> None:
        if msg is None:
            return
        key = (msg.state, msg.episode_index)
        if force or key != self._last_key:
            self._last_key = key
            self.line(format_status(msg))


def _loop_lines(client: KeyboardClient, args: argparse.Namespace, printer: _Printer, stdin: TextIO) -> None:
    for line in stdin:
        printer.status(client.latest_status())
        cmd = parse_command(line)
        if cmd.kind == "quit":
            break
        ok, message = client.run(cmd, args.task, args.timeout)
        printer.line(f"{'OK' if ok else 'FAILED'}: {message}")
        time.sleep(0.3)  # let the status catch up before printing it
        printer.status(client.latest_status(), force=True)


def _loop_tty(client: KeyboardClient, args: argparse.Namespace, printer: _Printer) -> None:
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            printer.status(client.latest_status())
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            ch = os.read(fd, 1).decode(errors="ignore")
            cmd = key_command(ch)
            if cmd is None:
                continue
            if cmd.kind == "quit":
                break
            ok, message = client.run(cmd, args.task, args.timeout)
            printer.line(f"{'OK' if ok else 'FAILED'}: {message}")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    ros_argv = argv
    user = remove_ros_args(argv)[1:]
    parser = argparse.ArgumentParser(
        prog="recorder_keyboard",
        description="Start/save/discard recorder episodes from the terminal. " + HELP,
        epilog="example: recorder_keyboard --task pick_place_can   (or: echo -e 's\\nw\\nq' | recorder_keyboard)",
    )
    parser.add_argument("--recorder", default="/recorder", help="recorder node name (services under it)")
    parser.add_argument(
        "--task", default="", help="task for 's' (catalogue id or text); '' = recorder default"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a service answer")
    args = parser.parse_args(user)

    rclpy.init(args=ros_argv)
    client = KeyboardClient(args.recorder)
    executor = SingleThreadedExecutor()
    executor.add_node(client)
    spin = threading.Thread(target=_spin, args=(executor,), daemon=True)
    spin.start()
    printer = _Printer(sys.stdout)
    printer.line(HELP)
    if not client.start_cli.wait_for_service(timeout_sec=10.0):
        printer.line(f"warning: {client.start_cli.srv_name} not available yet (is the recorder running?)")
    try:
        if sys.stdin.isatty():
            _loop_tty(client, args, printer)
        else:
            _loop_lines(client, args, printer, sys.stdin)
    except KeyboardInterrupt:
        pass
    finally:
        release_signal_handlers()
        # shut the context down first: that wakes the spinning thread, which then ends cleanly
        rclpy.try_shutdown()
        spin.join(timeout=5.0)
        executor.shutdown(timeout_sec=1.0)
        client.destroy_node()
    return 0


def _spin(executor: Any) -> None:
    with contextlib.suppress(rclpy.executors.ShutdownException):
        spin_until_shutdown(executor)


if __name__ == "__main__":
    sys.exit(main())

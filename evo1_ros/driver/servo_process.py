"""The servo stream in its own process: no GIL shared with ROS, its own SDK command connection.

`ArmDriver` (``streamer: process``) keeps supervision, bring-up, error polling, reports and the
gripper in the ROS process and hands the mode-1 stream to a child process started with
``python -m evo1_ros.driver.servo_process``. The child owns a command-only SDK connection
(`set_servo_angle_j`), runs the same `ServoStreamer` (caps, braking room, limits, time scaling) on
absolute monotonic deadlines with a short spin, optionally SCHED_FIFO / mlockall / pinned, and
caps a late cycle's step to `max_step_periods` periods exactly like the in-process loop.

Channel, parent -> child: length-framed binary messages over a socketpair (``struct`` headers and
float64 arrays, never pickle); the child re-validates every trajectory against its limits before
it can move anything. Child -> parent: log lines, send failures and activation results on the same
socket, and per-cycle state in a shared-memory block (a memfd): a seqlock-protected header
(counters, applied message number, moving/busy, last command) and a ring of (time, period, step,
command) entries that the parent turns into listener calls, periods and status out of the loop.

Every parent request carries a sequence number; the child reports the last one it applied, so
"the command is at rest after this hold" and "the child stopped sending" are exact handshakes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.servo_stream import ServoStreamer
from evo1_ros.control.trajectory import Trajectory, validate
from evo1_ros.driver.realtime import RealtimeConfig, apply_realtime, sleep_until

# -- shared-memory layout (float64 slots) -----------------------------------------------------------
SEQLOCK, APPLIED, CYCLES, SENT, FAILURES, LATE, MOVING, BUSY, CONN_OK, RING_HEAD, EPOCH, LAST_CODE = range(12)
READY_FLAG, HEARTBEAT = 12, 13
HEADER = 32  # slots before the last command vector
RING_SLOTS = 4096  # ring entries (16 s at 250 Hz)
ENTRY_EXTRA = 4  # now, period (real), step_dt (capped), send (s the SDK call took; 0 = none sent)

MAX_MESSAGE = 1 << 22  # bytes; a trajectory larger than this is refused by the channel
_SEQ = struct.Struct("<I")
_TRAJ = struct.Struct("<IddIII")  # seq, start, now, points, joints, has_velocities
_ACT = struct.Struct("<IIQ")  # seq, epoch, connection generation
_FAIL = struct.Struct("<Ii")  # epoch, code
_CONN = struct.Struct("<IB")  # seq, ok


def shm_slots(n_joints: int) -> int:
    return HEADER + n_joints + RING_SLOTS * (ENTRY_EXTRA + n_joints)


class ChannelError(ValueError):
    """A message on the streamer channel that does not decode (dropped, never executed)."""


def encode_trajectory(seq: int, traj: Trajectory, start: float, now: float) -> bytes:
    n, k = traj.positions.shape
    has_v = traj.velocities is not None
    parts = [
        b"T",
        _TRAJ.pack(seq, start, now, n, k, int(has_v)),
        np.ascontiguousarray(traj.indices, dtype="<i4").tobytes(),
        np.ascontiguousarray(traj.times, dtype="<f8").tobytes(),
        np.ascontiguousarray(traj.positions, dtype="<f8").tobytes(),
    ]
    if has_v:
        parts.append(np.ascontiguousarray(traj.velocities, dtype="<f8").tobytes())
    return b"".join(parts)


def decode_trajectory(body: bytes, limits: JointLimits) -> tuple[int, Trajectory, float, float]:
    """Bytes -> (seq, re-validated Trajectory, start, now); raises ChannelError / TrajectoryError."""
    if len(body) < _TRAJ.size:
        raise ChannelError("short trajectory header")
    seq, start, now, n, k, has_v = _TRAJ.unpack_from(body)
    if not (1 <= k <= limits.size and n <= 100_000 and has_v in (0, 1)):
        raise ChannelError(f"bad trajectory shape ({n} points, {k} joints)")
    expected = _TRAJ.size + 4 * k + 8 * n + 8 * n * k * (1 + has_v)
    if len(body) != expected:
        raise ChannelError(f"trajectory message is {len(body)} bytes, expected {expected}")
    off = _TRAJ.size
    idx = np.frombuffer(body, "<i4", k, off)
    off += 4 * k
    times = np.frombuffer(body, "<f8", n, off)
    off += 8 * n
    pos = np.frombuffer(body, "<f8", n * k, off).reshape(n, k)
    off += 8 * n * k
    vel = np.frombuffer(body, "<f8", n * k, off).reshape(n, k) if has_v else None
    if np.any(idx < 0) or np.any(idx >= limits.size):
        raise ChannelError(f"joint index out of range: {idx.tolist()}")
    names = [limits.names[i] for i in idx]
    if not (math.isfinite(start) and math.isfinite(now)):
        raise ChannelError("non-finite start time")
    # the child never trusts the bytes: the same checks as the driver's, against its own limits
    traj = validate(names, times, pos, limits, vel, required=())
    return seq, traj, start, now


# =====================================================================================================
# child
# =====================================================================================================
class _Child:
    """The streaming loop. Runs alone in its process; everything it needs is bound up front."""

    def __init__(self, conn: Connection, shm: np.ndarray, cfg: dict) -> None:
        self.conn = conn
        self.shm = shm
        lim = cfg["limits"]
        self.limits = JointLimits(
            names=tuple(lim["names"]),
            lower=np.array(lim["lower"]),
            upper=np.array(lim["upper"]),
            max_velocity=np.array(lim["max_velocity"]),
            max_acceleration=np.array(lim["max_acceleration"]),
            velocity_limit=np.array(lim["velocity_limit"]),
        )
        self.n = self.limits.size
        self.host = str(cfg["host"])
        self.rate = float(cfg["servo_rate"])
        self.max_step = float(cfg["max_step_periods"]) / self.rate
        self.keepalive = float(cfg["keepalive_period"])
        rt = cfg["realtime"]
        self.rt = RealtimeConfig(
            int(rt["priority"]), bool(rt["lock_memory"]), tuple(rt["cpus"]), float(rt["spin"])
        )
        self.streamer: ServoStreamer | None = None
        self.api = None
        self.generation = -1
        self.epoch = 0
        self.active = False
        self.quit = False
        self.resync = False
        self.pos = shm[HEADER : HEADER + self.n]
        width = ENTRY_EXTRA + self.n
        self.ring = shm[HEADER + self.n : HEADER + self.n + RING_SLOTS * width].reshape(RING_SLOTS, width)

    # -- channel ------------------------------------------------------------------------------------
    def event(self, payload: bytes) -> None:
        with contextlib.suppress(OSError):
            self.conn.send_bytes(payload)

    def log(self, level: str, text: str) -> None:
        self.event(b"L" + level[:1].encode() + text.encode("utf-8", "replace"))

    def handle(self, msg: bytes) -> None:
        kind, body = msg[:1], msg[1:]
        if len(body) < _SEQ.size:
            self.log("e", f"servo streamer dropped a request without a sequence number ({kind!r})")
            return
        (seq,) = _SEQ.unpack_from(body)
        try:
            if kind == b"T":
                _, traj, start, now = decode_trajectory(body, self.limits)
                if self.streamer is not None:
                    self.streamer.set_trajectory(traj, start, now)
            elif kind in (b"H", b"P", b"Q"):
                if kind == b"H" and self.streamer is not None:
                    self.streamer.hold()
                elif kind == b"P":
                    self.active, self.epoch = False, 0
                elif kind == b"Q":
                    self.quit = True
            elif kind == b"R":
                q = np.frombuffer(body, "<f8", offset=_SEQ.size)
                if self.streamer is None:
                    self.streamer = ServoStreamer(self.limits, q)
                else:
                    self.streamer.reset(q)  # ValueError on a bad vector: nothing changes
                self.pos[:] = q
            elif kind == b"A":
                _, epoch, generation = _ACT.unpack(body)
                ok, text = self.connect(generation)
                self.resync = True
                if ok and self.streamer is not None:
                    self.active, self.epoch = True, epoch
                elif ok:
                    ok, text = False, "activate before reset"
                self.event(b"C" + _CONN.pack(seq, int(ok)) + text.encode("utf-8", "replace"))
            else:
                raise ChannelError(f"unknown message type {kind!r}")
        except (ValueError, struct.error) as exc:  # TrajectoryError is a ValueError
            self.log("e", f"servo streamer dropped a request: {exc}")
        self.shm[APPLIED] = seq  # applied or dropped: either way nothing of it is pending

    def connect(self, generation: int) -> tuple[bool, str]:
        """(Re)open the command connection when the driver reconnected (a new generation)."""
        if self.api is not None and generation == self.generation and self.api.connected:
            return True, ""
        self.close_api()
        from xarm.wrapper import XArmAPI

        try:
            api = XArmAPI(self.host, is_radian=True, enable_report=False, check_joint_limit=True)
        except Exception as exc:  # the SDK raises plain Exceptions on socket errors
            return False, f"servo streamer cannot connect to xArm at {self.host}: {exc}"
        if not api.connected:
            return False, f"servo streamer cannot connect to xArm at {self.host}"
        # Without a report socket the SDK does not know the mode and would warn on every command
        # (the controller checks the mode itself and refuses a servo target in another one).
        inner = getattr(api, "_arm", api)
        with contextlib.suppress(AttributeError):
            inner._mode = 1
        self.api, self.generation = api, generation
        self.shm[CONN_OK] = 1.0
        return True, ""

    def close_api(self) -> None:
        api, self.api = self.api, None
        if api is not None:  # the SDK's disconnect can block (see XArmSession.close): not here
            threading.Thread(target=api.disconnect, daemon=True).start()

    # -- loop ---------------------------------------------------------------------------------------
    def run(self) -> None:
        import logging

        from xarm.core.utils.log import logger as sdk_logger

        sdk_logger.setLevel(logging.ERROR)  # SDK chatter on stdout would cost the loop time
        for level, text in apply_realtime(self.rt):
            self.log(level, text)
        shm, ring, pos, conn = self.shm, self.ring, self.pos, self.conn
        period = 1.0 / self.rate
        max_step, keepalive, spin = self.max_step, self.keepalive, self.rt.spin
        clock = time.monotonic
        last_cmd = [math.nan] * 6
        last_send = 0.0
        last_warning = -1e9
        cycles = sent = failures = late = head = 0
        gc.collect()
        gc.freeze()  # everything allocated so far is never scanned again
        gc.disable()  # the loop creates no reference cycles; a collection would be a stall
        shm[READY_FLAG] = 1.0
        prev = clock()
        deadline = prev + period
        while not self.quit:
            sleep_until(deadline, spin, clock)
            now = clock()
            deadline = deadline + period if now - deadline < period else now + period  # resync if late
            dt = now - prev
            prev = now
            streamer = self.streamer
            cmd = None
            if self.active and streamer is not None:
                cycles += 1
                step_dt = dt if dt < max_step else max_step
                if step_dt < dt:
                    late += 1
                cmd = streamer.step(now, step_dt)
                c = cmd.tolist()
                arm = c[:6]
                send_s = 0.0
                if arm != last_cmd or now - last_send >= keepalive:
                    try:
                        code = self.api.set_servo_angle_j(arm, is_radian=True)
                    except Exception:  # socket torn down mid-call
                        code = -1
                    if code == 0:
                        sent += 1
                        last_cmd, last_send = arm, now
                    else:
                        failures += 1
                        self.event(b"F" + _FAIL.pack(self.epoch, int(code)))
                    shm[LAST_CODE] = code
                    send_s = clock() - now
                    if not self.api.connected:
                        shm[CONN_OK] = 0.0
                row = ring[head % RING_SLOTS]
                row[0], row[1], row[2], row[3] = now, dt, step_dt, send_s
                row[ENTRY_EXTRA:] = cmd
                head += 1
                if dt > 10 * period and now - last_warning > 5.0:
                    last_warning = now
                    self.log(
                        "w",
                        f"servo cycle took {dt * 1e3:.0f} ms (nominal {period * 1e3:.1f} ms; process"
                        f" starved?): command slowed to stay within the caps ({late} late cycle(s) so far)",
                    )
            else:
                last_cmd = [math.nan] * 6
            while conn.poll():  # requests are applied after this cycle's send (<= 1 period latency)
                try:
                    msg = conn.recv_bytes(MAX_MESSAGE)
                except (EOFError, OSError):
                    self.quit = True  # the driver is gone
                    break
                self.handle(msg)
                if self.resync:  # a (re)connect may have taken long: not a late servo cycle
                    self.resync = False
                    prev = clock()
                    deadline = prev + period
            # publish (seqlock: odd while writing)
            shm[SEQLOCK] += 1.0
            streamer = self.streamer
            if streamer is not None:
                if cmd is not None:
                    pos[:] = cmd
                shm[MOVING] = 1.0 if streamer.is_moving else 0.0
                shm[BUSY] = 1.0 if streamer.busy(now) else 0.0
            shm[CYCLES], shm[SENT], shm[FAILURES], shm[LATE] = cycles, sent, failures, late
            shm[RING_HEAD], shm[EPOCH], shm[HEARTBEAT] = head, self.epoch, now
            shm[SEQLOCK] += 1.0
        self.close_api()


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="xArm servo streamer process (started by ArmDriver)")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--shm-fd", type=int, required=True)
    args = parser.parse_args(argv)
    # No PR_SET_PDEATHSIG: it fires when the *thread* that started this process ends (a service
    # thread may restart it). A dead driver closes the channel instead, and the loop quits on EOF.
    # Ctrl-C reaches the whole process group: the driver then brakes the command to rest through
    # this process before it asks it to quit, so it must not die of the SIGINT itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(args.channel_fd)
    cfg = json.loads(conn.recv_bytes(1 << 16).decode("utf-8"))
    n = len(cfg["limits"]["names"])
    size = 8 * shm_slots(n)
    mem = mmap.mmap(args.shm_fd, size)
    shm = np.frombuffer(mem, dtype=np.float64, count=shm_slots(n))
    child = _Child(conn, shm, cfg)
    try:
        child.run()
    finally:
        del shm, child
    return 0


# =====================================================================================================
# parent
# =====================================================================================================
class StreamerProcessError(RuntimeError):
    """The streamer process could not be started, or did not answer."""


class ProcessStreamer:
    """Parent side: the `ServoStreamer` interface `ArmDriver` uses, backed by the child process.

    `position`, `is_moving` and `busy` read the child's last report (one cycle old at most);
    `hold` and `set_trajectory` send a request and return; `reset`, `activate` and `deactivate`
    wait until the child applied them. Thread-safe.
    """

    def __init__(
        self,
        limits: JointLimits,
        host: str,
        servo_rate: float,
        max_step_periods: float,
        keepalive_period: float,
        realtime: RealtimeConfig,
        on_log: Callable[[str, str], None],
    ) -> None:
        self.limits = limits
        self.n = limits.size
        self._config = {
            "host": host,
            "servo_rate": servo_rate,
            "max_step_periods": max_step_periods,
            "keepalive_period": keepalive_period,
            "realtime": {
                "priority": realtime.priority,
                "lock_memory": realtime.lock_memory,
                "cpus": list(realtime.cpus),
                "spin": realtime.spin,
            },
            "limits": {
                "names": list(limits.names),
                **{
                    f: getattr(limits, f).tolist()
                    for f in ("lower", "upper", "max_velocity", "max_acceleration", "velocity_limit")
                },
            },
        }
        self._on_log = on_log
        self._lock = threading.Lock()
        self._seq = 0
        self._epoch = 0
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._mem: mmap.mmap | None = None
        self._shm: np.ndarray | None = None
        self._tail = 0
        self._results: dict[int, tuple[bool, str]] = {}
        self._result_cv = threading.Condition()
        self.lost_entries = 0

    # -- process ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or restart) the child; returns at once (it reports ready through shared memory)."""
        self.close()
        slots = shm_slots(self.n)
        fd = os.memfd_create("evo1-servo-streamer")
        os.ftruncate(fd, 8 * slots)
        self._mem = mmap.mmap(fd, 8 * slots)
        self._shm = np.frombuffer(self._mem, dtype=np.float64, count=slots)
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "evo1_ros.driver.servo_process",
                    "--channel-fd",
                    str(theirs.fileno()),
                    "--shm-fd",
                    str(fd),
                ],
                pass_fds=(theirs.fileno(), fd),
                close_fds=True,
            )
        finally:
            theirs.close()
            os.close(fd)
        self._conn = Connection(ours.detach())
        self._conn.send_bytes(json.dumps(self._config).encode("utf-8"))
        self._tail = 0
        self._seq = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def close(self, timeout: float = 2.0) -> None:
        """Ask the child to quit; kill it after `timeout`."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(b"Q" + _SEQ.pack(0))
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if conn is not None:
            conn.close()
        self._shm = None
        if self._mem is not None:
            with contextlib.suppress(BufferError):
                self._mem.close()
            self._mem = None

    # -- requests -----------------------------------------------------------------------------------
    def _send(self, payload_of: Callable[[int], bytes]) -> int:
        with self._lock:
            if self._conn is None:
                raise StreamerProcessError("servo streamer process not running")
            self._seq += 1
            try:
                self._conn.send_bytes(payload_of(self._seq))
            except OSError as exc:
                raise StreamerProcessError(f"servo streamer process unreachable: {exc}") from exc
            return self._seq

    def _wait_applied(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shm = self._shm
            if shm is None or not self.alive:
                return False
            if shm[APPLIED] >= seq:
                return True
            time.sleep(0.0005)
        return False

    def hold(self) -> None:
        with contextlib.suppress(StreamerProcessError):
            self._send(lambda s: b"H" + _SEQ.pack(s))

    def set_trajectory(self, traj: Trajectory, start_time: float | None, now: float) -> None:
        if traj.empty:
            self.hold()
            return
        start = float(now if start_time is None else start_time)
        self._send(lambda s: encode_trajectory(s, traj, start, now))

    def reset(self, positions: np.ndarray, timeout: float = 20.0) -> None:
        """Restart at rest at `positions`; waits until the process applied it (its start-up included)."""
        q = np.asarray(positions, dtype="<f8").reshape(-1)
        if q.shape != (self.n,) or not np.all(np.isfinite(q)):
            raise ValueError(f"expected {self.n} finite positions, got {q}")
        seq = self._send(lambda s: b"R" + _SEQ.pack(s) + q.tobytes())
        if not self._wait_applied(seq, timeout):
            raise StreamerProcessError(self._why_silent("reset"))

    def activate(self, generation: int, timeout: float = 10.0) -> None:
        """Start streaming on the child's own connection (reopened when `generation` changed)."""
        with self._lock:
            self._epoch += 1
            epoch = self._epoch
        seq = self._send(lambda s: b"A" + _ACT.pack(s, epoch, generation))
        deadline = time.monotonic() + timeout
        with self._result_cv:
            while seq not in self._results and time.monotonic() < deadline and self.alive:
                self._result_cv.wait(0.05)
                self._pump_events_locked()
            result = self._results.pop(seq, None)
        if result is None:
            raise StreamerProcessError(self._why_silent("activation"))
        ok, text = result
        if not ok:
            raise StreamerProcessError(text)

    def deactivate(self, timeout: float = 0.5) -> bool:
        """Stop sending; True once the child confirmed (no servo command leaves it after that)."""
        try:
            seq = self._send(lambda s: b"P" + _SEQ.pack(s))
        except StreamerProcessError:
            return True
        if not self.ready:
            return True  # its loop has not started: the pause is applied before anything is sent
        return self._wait_applied(seq, timeout)

    def _why_silent(self, what: str) -> str:
        if not self.alive:
            return f"servo streamer process exited (code {self.exit_code}) before the {what}"
        return f"servo streamer process did not confirm the {what} in time (machine overloaded?)"

    # -- reports ------------------------------------------------------------------------------------
    def snapshot(self) -> np.ndarray | None:
        """Consistent copy of the header + last command (seqlock), or None when not running."""
        shm = self._shm
        if shm is None:
            return None
        for _ in range(1000):
            s1 = shm[SEQLOCK]
            snap = shm[: HEADER + self.n].copy()
            if s1 % 2 == 0 and shm[SEQLOCK] == s1:
                return snap
            time.sleep(0)
        return snap

    @property
    def ready(self) -> bool:
        shm = self._shm
        return shm is not None and shm[READY_FLAG] == 1.0

    @property
    def position(self) -> np.ndarray:
        snap = self.snapshot()
        return np.zeros(self.n) if snap is None else snap[HEADER : HEADER + self.n].copy()

    @property
    def is_moving(self) -> bool:
        snap = self.snapshot()
        return snap is not None and bool(snap[MOVING])

    def busy(self, now: float) -> bool:
        """Requests not yet applied, or the child reports a trajectory ahead / a moving command."""
        snap = self.snapshot()
        return snap is not None and (snap[APPLIED] < self._seq or bool(snap[BUSY]) or bool(snap[MOVING]))

    def at_rest(self, snap: np.ndarray | None = None) -> bool:
        """Every request so far applied and the command not moving (in `snap`, or now)."""
        snap = self.snapshot() if snap is None else snap
        return snap is not None and snap[APPLIED] >= self._seq and not snap[MOVING]

    def connection_lost(self) -> bool:
        snap = self.snapshot()
        return snap is not None and snap[EPOCH] != 0 and snap[CONN_OK] == 0.0

    @property
    def epoch(self) -> int:
        return self._epoch

    def drain(self) -> list[tuple[float, float, float, float, np.ndarray]]:
        """New ring entries since the last call: (time, real period, capped step, send s, command)."""
        shm = self._shm
        if shm is None:
            return []
        head = int(shm[RING_HEAD])
        if head - self._tail > RING_SLOTS - 64:  # fell behind: skip what may be overwritten
            self.lost_entries += head - self._tail - (RING_SLOTS - 64)
            self._tail = head - (RING_SLOTS - 64)
        width = ENTRY_EXTRA + self.n
        base = HEADER + self.n
        out = []
        for k in range(self._tail, head):
            row = shm[base + (k % RING_SLOTS) * width : base + (k % RING_SLOTS + 1) * width].copy()
            out.append((float(row[0]), float(row[1]), float(row[2]), float(row[3]), row[ENTRY_EXTRA:]))
        self._tail = head
        return out

    def poll_events(self) -> list[tuple[str, object]]:
        """Log lines ('log', (level, text)) and send failures ('fail', (epoch, code))."""
        with self._result_cv:
            return self._pump_events_locked()

    def _pump_events_locked(self) -> list[tuple[str, object]]:
        conn = self._conn
        out: list[tuple[str, object]] = []
        if conn is None:
            return out
        try:
            while conn.poll():
                msg = conn.recv_bytes(MAX_MESSAGE)
                kind, body = msg[:1], msg[1:]
                if kind == b"L":
                    level = {"e": "error", "w": "warning"}.get(body[:1].decode(), "info")
                    out.append(("log", (level, body[1:].decode("utf-8", "replace"))))
                elif kind == b"F":
                    out.append(("fail", _FAIL.unpack(body)))
                elif kind == b"C":
                    seq, ok = _CONN.unpack_from(body)
                    self._results[seq] = (bool(ok), body[_CONN.size :].decode("utf-8", "replace"))
                    self._result_cv.notify_all()
        except (EOFError, OSError):
            pass  # the child exited: `alive` says so
        return out


if __name__ == "__main__":
    sys.exit(child_main())

"""Real-time settings and deadline timing for the servo streamer (no ROS, Linux).

A mode-1 stream is only as smooth as its timing, so the streamer wakes at absolute deadlines on the
monotonic clock (no drift from summing sleeps), sleeps until shortly before each one and spins the
last `spin` seconds (the kernel's wake-up latency is paid inside the sleep, not after the deadline).
`SCHED_FIFO` and `mlockall` need privileges (root, CAP_SYS_NICE / CAP_IPC_LOCK or an rtprio limit);
when refused the streamer runs without them and says so, it never fails for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from evo1_ros.parameters import param, validate_fields

_MCL_CURRENT, _MCL_FUTURE = 1, 2
_PR_SET_TIMERSLACK = 29


@dataclass(frozen=True)
class RealtimeConfig:
    """How the streamer asks the kernel for timely wake-ups (the driver's streamer parameters)."""

    priority: int = param(
        50, "SCHED_FIFO priority of the streamer process (0 = none)", name="rt_priority", min=0, max=99
    )
    lock_memory: bool = param(True, "mlockall in the streamer process (no page faults in the loop)")
    cpus: tuple[int, ...] = param(
        (),
        "CPUs of the streamer process ([-1] = any)",
        name="cpu_affinity",
        to_value=lambda v: parse_cpus(v),
        to_param=lambda cpus: list(cpus) or [-1],
    )
    spin: float = param(
        0.0002, "s the streamer spins before each deadline", name="spin_time", min=0.0, max=0.002
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if any(c < 0 for c in self.cpus):
            raise ValueError(f"cpu_affinity lists CPU numbers >= 0, got {list(self.cpus)}")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def apply_realtime(config: RealtimeConfig) -> list[tuple[str, str]]:
    """Apply `config` to the calling process; return (level, text) lines saying what took effect.

    Each setting is tried on its own: a refused SCHED_FIFO still leaves the affinity and the
    timer slack applied. Timer slack is set to 1 ns (the default 50 us delays every wake-up).
    """
    lines: list[tuple[str, str]] = []
    libc = _libc()
    libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    if config.cpus:
        try:
            os.sched_setaffinity(0, set(config.cpus))
            lines.append(("info", f"streamer pinned to CPU(s) {sorted(config.cpus)}"))
        except OSError as exc:
            lines.append(("warning", f"cpu_affinity {list(config.cpus)} refused ({exc}); running on any CPU"))
    if config.lock_memory:
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0:
            lines.append(("info", "streamer memory locked (mlockall)"))
        else:
            err = ctypes.get_errno()
            lines.append(
                (
                    "warning",
                    f"mlockall refused ({os.strerror(err)}): page faults may delay servo cycles"
                    " (needs CAP_IPC_LOCK or a memlock limit)",
                )
            )
    if config.priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(config.priority))
            lines.append(("info", f"streamer runs SCHED_FIFO priority {config.priority}"))
        except OSError as exc:
            lines.append(
                (
                    "warning",
                    f"SCHED_FIFO priority {config.priority} refused ({exc}): the streamer runs at normal"
                    " priority, so a loaded machine delays its cycles (grant CAP_SYS_NICE or an rtprio"
                    " limit, e.g. `ulimit -r 99`)",
                )
            )
    else:
        lines.append(("info", "streamer runs at normal priority (rt_priority 0)"))
    return lines


def sleep_until(deadline: float, spin: float, clock=time.monotonic) -> None:
    """Sleep until `spin` s before `deadline` (monotonic clock), then spin until it."""
    delay = deadline - spin - clock()
    if delay > 0.0:
        time.sleep(delay)
    while clock() < deadline:
        pass


def parse_cpus(values: Sequence[int]) -> tuple[int, ...]:
    """CPU list from a ROS integer-array parameter ([] or [-1] = any CPU)."""
    cpus = tuple(int(v) for v in values if int(v) >= 0)
    return cpus

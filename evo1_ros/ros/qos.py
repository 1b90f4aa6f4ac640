"""QoS presets used across the stack, so every publisher/subscriber pair is compatible by construction.

* `SENSOR`: camera images and joint states — best effort, keep last, shallow: the newest sample is
  what matters and a late one is worthless. Needs the Fast DDS SHM profile for large images.
* `COMMAND`: trajectories to the arm — reliable, keep last 1: a dropped command must not go
  unnoticed, and only the newest one is meaningful.
* `STATUS`: status/diagnostics — reliable, keep last 10.
* `LATCHED`: configuration-like topics (task) — reliable + transient local, late joiners get the last.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

SENSOR = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

# Joint states are small and consumers (recorder, policy) want every one; reliable subscribers cannot
# connect to best-effort publishers, so publishers use RELIABLE and subscribers may use either.
STATE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

COMMAND = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

STATUS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)

PRESETS: dict[str, QoSProfile] = {
    "sensor": SENSOR,
    "state": STATE,
    "command": COMMAND,
    "status": STATUS,
    "latched": LATCHED,
}


def qos_preset(name: str) -> QoSProfile:
    """Preset by name (for a `qos` parameter); raises with the valid names on a typo."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown QoS preset '{name}'; choose one of {sorted(PRESETS)}") from None

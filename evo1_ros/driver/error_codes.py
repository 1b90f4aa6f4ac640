"""xArm controller error/warning codes and SDK return codes in words (docs/xarm_protocol.md §3), for logs and diagnostics."""

from __future__ import annotations

CONTROLLER_ERRORS: dict[int, str] = {
    1: "emergency stop button pressed",
    2: "emergency IO of the control box triggered",
    3: "emergency stop of the three-state switch",
    10: "servo motor error (no joint named; joint n reports code 10 + n)",
    11: "servo error (joint 1)",
    12: "servo error (joint 2)",
    13: "servo error (joint 3)",
    14: "servo error (joint 4)",
    15: "servo error (joint 5)",
    16: "servo error (joint 6)",
    17: "servo error (joint 7)",
    19: "end-module (tool RS-485) communication error",
    21: "kinematic error",
    22: "self-collision",
    23: "joint angle exceeds limit",
    24: "speed exceeds limit",
    25: "planning error",
    28: "end-module (tool RS-485) communication error",
    30: "feedback speed exceeds limit",
    31: "collision caused abnormal current",
    35: "safety boundary limit",
    38: "abnormal joint angle",
    40: "no inverse kinematics solution",
    60: "servo-mode linear speed exceeds limit (1200 mm/s)",
}

CONTROLLER_WARNINGS: dict[int, str] = {
    11: "command queue full",
    12: "parameter error",
    13: "instruction does not exist",
    14: "command has no solution",
}

SDK_CODES: dict[int, str] = {
    0: "ok",
    -1: "not connected",
    -2: "not ready",
    -4: "command does not exist",
    -6: "TCP limit",
    -7: "joint limit",
    -8: "out of range (SDK pre-check)",
    -9: "emergency stop",
    1: "uncleared controller error",
    2: "uncleared controller warning",
    3: "reply timeout",
    8: "send failed",
    9: "state not ready (not enabled or stopped)",
    10: "invalid",
    12: "parameter error",
    100: "wait timeout",
}


def error_text(code: int) -> str:
    """'C31 collision caused abnormal current' style text; 'none' for 0."""
    if code == 0:
        return "none"
    return f"C{code} {CONTROLLER_ERRORS.get(code, 'controller error (see the xArm manual)')}"


def warn_text(code: int) -> str:
    if code == 0:
        return "none"
    return f"W{code} {CONTROLLER_WARNINGS.get(code, 'controller warning')}"


def sdk_text(code: int) -> str:
    return f"{code} ({SDK_CODES.get(code, 'unknown SDK code')})"

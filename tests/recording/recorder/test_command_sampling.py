"""The recorder samples commands with the driver's own interpolation (issue 13 item 12) and treats a
stream stamped in the future as stale, a clock problem (item 8)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from evo1_ros.control.limits import JointLimits
from evo1_ros.control.servo_stream import ServoStreamer
from evo1_ros.control.trajectory import validate
from recording.recorder.command_tracker import CommandTracker
from recording.recorder.stream_sampling import FrameSampler, LatestStream

DT = 0.01


def _loose() -> JointLimits:
    """Caps far above the motion: the driver's streamer then follows its trajectories exactly."""
    return JointLimits.create(["a", "b"], [-5.0, -5.0], [5.0, 5.0], [1e3, 1e3], [1e7, 1e7])


def test_hermite_trajectory_is_sampled_like_the_driver_streams_it() -> None:
    """With velocities the driver interpolates cubic Hermite; the recorded action must be the same."""
    lim = _loose()
    times = [0.3, 0.6, 1.0]
    pos = [[0.2, -0.1], [0.5, 0.3], [0.4, 0.8]]
    vel = [[1.0, 0.5], [0.2, 1.5], [0.0, 0.0]]
    streamer = ServoStreamer(lim, [0.0, 0.0])
    start = 10.0
    streamer.set_trajectory(validate(["a", "b"], times, pos, lim, vel), start, start)
    tracker = CommandTracker(["a", "b"])
    tracker.add(
        ["a", "b"], start, times, pos, velocities=vel, received_at=start, measured={"a": 0.0, "b": 0.0}
    )
    # a replacement without velocities (linear) half-way, with joint order swapped
    swap_start = start + 0.75
    for k in range(1, 160):
        t = start + k * DT
        if abs(t - swap_start) < DT / 2:
            streamer.set_trajectory(validate(["b", "a"], [0.4], [[-0.2, 0.1]], lim), swap_start, t)
            tracker.add(["b", "a"], swap_start, [0.4], [[-0.2, 0.1]], received_at=t)
        expected = streamer.step(t, DT)
        # exact up to the hand-over; after it the streamer starts from its last command carried
        # forward one cycle at its velocity (a 2e-4 rad difference here), the tracker from the target
        tol = 1e-9 if t < swap_start - DT / 2 else 1e-3
        np.testing.assert_allclose(tracker.sample(t), expected, atol=tol, err_msg=f"t={t - start:.2f}")
    # between knots the Hermite curve is not the straight line: the old linear tracker was off here
    mid = validate(["a", "b"], times, pos, lim, vel).sample(0.45, np.zeros(2))
    assert np.max(np.abs(mid - 0.5 * (np.array(pos[0]) + np.array(pos[1])))) > 0.01, mid


def test_stop_and_partial_commands_hold_like_the_driver() -> None:
    """A one-point stop at the rest position (what the driver publishes) holds everything from its start."""
    tracker = CommandTracker(["a", "b"])
    tracker.add(["a", "b"], 5.0, [1.0], [[1.0, 2.0]], received_at=5.0, measured={"a": 0.0, "b": 0.0})
    tracker.add(["a", "b"], 5.5, [0.0], [[0.45, 0.9]], received_at=5.5)
    np.testing.assert_allclose(tracker.sample(5.25), [0.25, 0.5])
    np.testing.assert_allclose(tracker.sample(6.0), [0.45, 0.9])
    tracker.add(["a"], 7.0, [0.5], [[0.0]], received_at=7.0)  # only a: b holds where it was
    np.testing.assert_allclose(tracker.sample(7.25), [0.225, 0.9])
    np.testing.assert_allclose(tracker.sample(9.0), [0.0, 0.9])


def test_stream_stamped_in_the_future_is_stale_and_a_clock_problem() -> None:
    cam, js = LatestStream("cam", 0.2), LatestStream("js", 0.0)
    sampler = FrameSampler([cam, js])
    cam.update("img", 160.0)  # 60 s ahead of the sampler's clock
    js.update("q", 99.9)
    assert cam.age(100.0) == -60.0 and not cam.is_fresh(100.0) and cam.from_future(100.0)
    s = sampler.sample(100.0)
    assert s.stale == ["cam"] and s.future == ["cam"] and "js" in s.values
    assert sampler.drops_by_stream == {"cam": 1, "js": 0}
    js.update("q", 101.0)  # max_age 0 (no limit) does not excuse the future either
    assert not js.is_fresh(100.0)


def test_recording_imports_no_torch_or_rclpy() -> None:
    """The tracker uses evo1_ros.control, which must not drag torch or rclpy onto a recording PC."""
    code = (
        "import sys, recording.recorder.command_tracker, recording.recorder.stream_sampling; "
        "bad = [m for m in ('torch', 'rclpy') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

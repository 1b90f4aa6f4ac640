"""Observation assembly (no ROS): views and masks, state vector, ages, encodings, unit conversion."""

from __future__ import annotations

import numpy as np
import pytest

from evo1_ros.control.observation import Frame, ObservationAssembler, ObservationConfig, ObservationError

JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "drive_joint")


def assembler(**kw) -> ObservationAssembler:
    base = dict(cameras=("base", "wrist"), view_map=("base", "", "wrist"), joint_names=JOINTS)
    return ObservationAssembler(ObservationConfig(**{**base, **kw}))


def frames(stamp: float = 10.0, encoding: str = "rgb8", size=(48, 64)) -> dict[str, Frame]:
    return {
        c: Frame(np.full((*size, 3), i, np.uint8), encoding, stamp) for i, c in enumerate(("base", "wrist"))
    }


def test_views_follow_the_view_map_and_unmapped_views_are_masked():
    a = assembler()
    obs = a.assemble(frames(), np.zeros(7), 10.0, now=10.1)
    assert obs.image_mask == [True, False, True]
    assert obs.images[1] is None and obs.images[0][0, 0, 0] == 0 and obs.images[2][0, 0, 0] == 1
    assert obs.stamp == 10.0


def test_state_vector_in_configured_order_and_missing_joint_is_an_error():
    a = assembler()
    names = ["drive_joint", *reversed(JOINTS[:6]), "extra"]
    pos = [0.4, 6, 5, 4, 3, 2, 1, 99]
    np.testing.assert_array_equal(a.state_vector(names, pos), [1, 2, 3, 4, 5, 6, 0.4])
    with pytest.raises(ObservationError, match=r"\['drive_joint'\] are not in the joint state") as exc:
        a.state_vector(JOINTS[:6], [0] * 6)
    assert exc.value.stream == "joint_states"
    with pytest.raises(ObservationError, match="NaN"):
        a.state_vector(JOINTS, [0, 0, 0, np.nan, 0, 0, 0])


def test_stale_streams_are_named():
    a = assembler(max_obs_age=0.5, max_state_age=0.2)
    f = frames(stamp=10.0)
    with pytest.raises(ObservationError, match=r"base: newest image is 0\.600 s old") as exc:
        a.assemble(f, np.zeros(7), 10.5, now=10.6)
    assert exc.value.stream == "base"
    with pytest.raises(ObservationError, match=r"joint_states: newest joint state is 0\.300 s old"):
        a.assemble(frames(stamp=10.5), np.zeros(7), 10.3, now=10.6)
    with pytest.raises(ObservationError, match="wrist: no image received yet"):
        a.check_ages({"base": 10.0}, 10.0, now=10.1)


def test_encoding_and_size_are_checked():
    a = assembler(image_height=48, image_width=64, encodings=("rgb8",))
    with pytest.raises(ObservationError, match="encoding 'bgr8' is not accepted"):
        a.assemble(frames(encoding="bgr8"), np.zeros(7), 10.0, now=10.0)
    with pytest.raises(ObservationError, match="image is 32x64, expected 48x64"):
        a.assemble(frames(size=(32, 64)), np.zeros(7), 10.0, now=10.0)


def test_official_units_convert_the_state():
    a = assembler(units="official_xarm6")
    rad = np.array([np.pi / 2, 0, 0, 0, 0, -np.pi, 0.85])
    obs = a.assemble(frames(), rad, 10.0, now=10.0)
    np.testing.assert_allclose(obs.state, [90, 0, 0, 0, 0, -180, 0.0], atol=1e-9)
    np.testing.assert_array_equal(obs.state_rep103, rad)


def test_config_errors_say_what_to_fix():
    with pytest.raises(ValueError, match="not in cameras"):
        ObservationConfig(cameras=("base",), view_map=("front",), joint_names=JOINTS)
    with pytest.raises(ValueError, match="maps no camera"):
        ObservationConfig(cameras=("base",), view_map=("", ""), joint_names=JOINTS)
    with pytest.raises(ValueError, match="allowed: rep103, official_xarm6"):
        ObservationConfig(cameras=("base",), view_map=("base",), joint_names=JOINTS, units="degrees")
    # built directly, the config is held to the node parameters' declared ranges
    with pytest.raises(ValueError, match=r"'max_obs_age'=100\.0 is above its maximum 60\.0"):
        ObservationConfig(cameras=("base",), view_map=("base",), joint_names=JOINTS, max_obs_age=100.0)
    with pytest.raises(ValueError, match="'image_width'=-1 is below its minimum 0"):
        ObservationConfig(cameras=("base",), view_map=("base",), joint_names=JOINTS, image_width=-1)

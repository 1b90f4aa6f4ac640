"""Frames the SDK would never send must not hurt the controller: it answers with an error or closes
that one connection, and keeps serving every other client."""

from __future__ import annotations

import random
import struct

from evo1_ros.polling import wait_until
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.xarm_protocol import Reg, Status, encode_request
from fixtures.xarm import connection_closed, raw_connect, read_reply


def _still_serves(ctrl, arm) -> None:
    """A healthy SDK client on another connection keeps getting answers."""
    assert arm.get_state() == (0, ctrl.state)
    sock = raw_connect(ctrl.host)
    try:
        sock.sendall(encode_request(7, 2, Reg.GET_STATE))
        reply = read_reply(sock)
        assert reply[:2] == b"\x00\x07" and reply[6] == Reg.GET_STATE and reply[8] == ctrl.state
    finally:
        sock.close()


def test_garbage_bytes_close_only_that_connection(controller, connect) -> None:
    arm = connect(controller.host)
    sock = raw_connect(controller.host)
    sock.sendall(b"\xde\xad\xbe\xef" * 16)
    assert connection_closed(sock)
    sock.close()
    assert controller.closed_for_malformed == 1
    _still_serves(controller, arm)
    assert arm.connected


def test_bad_lengths_close_the_connection(controller, connect) -> None:
    arm = connect(controller.host)
    for frame in (struct.pack(">HHH", 1, 2, 0), struct.pack(">HHH", 1, 2, 5000) + b"\x01"):
        sock = raw_connect(controller.host)
        sock.sendall(frame)
        assert connection_closed(sock)
        sock.close()
    _still_serves(controller, arm)


def test_truncated_frame_times_out(make_controller, connect) -> None:
    config = LoopbackConfig()
    config.faults.partial_frame_timeout_s = 0.3
    ctrl = make_controller(config)
    arm = connect(ctrl.host)
    sock = raw_connect(ctrl.host)
    full = encode_request(3, 2, Reg.MOVE_SERVOJ, bytes(40))
    sock.sendall(full[:15])  # header promises 41 bytes, only part of them ever arrives
    assert connection_closed(sock, timeout=5.0)
    sock.close()
    assert ctrl.counters()["servoj_received"] == 0
    _still_serves(ctrl, arm)


def test_unknown_register_and_bad_parameters_get_error_replies(controller, connect) -> None:
    arm = connect(controller.host)
    sock = raw_connect(controller.host)
    try:
        sock.sendall(encode_request(11, 2, 200, b"\x01\x02"))
        reply = read_reply(sock)
        assert reply[:2] == b"\x00\x0b" and reply[6] == 200 and reply[7] & Status.INVALID
        sock.sendall(encode_request(30, 2, Reg.GET_STATE))
        assert read_reply(sock)[7] & Status.WARN  # every reply now carries the warning bit
        assert arm.get_err_warn_code() == (0, [0, 13])  # "instruction does not exist"
        assert arm.clean_warn() == 0
        sock.sendall(encode_request(12, 3, Reg.MOVE_SERVOJ, b"\x00" * 8))  # 2 of 10 floats
        reply = read_reply(sock)
        assert reply[2:4] == b"\x00\x03"  # protocol id echoed
        assert reply[6] == Reg.MOVE_SERVOJ and reply[7] & Status.INVALID
        assert arm.get_err_warn_code() == (0, [0, 12])  # "parameter error"
        sock.sendall(encode_request(13, 2, Reg.SET_MODE, b"\x09"))  # mode 9 is not supported
        assert read_reply(sock)[7] & Status.INVALID
        sock.sendall(encode_request(14, 2, Reg.MOVE_SERVOJ, struct.pack("<10f", *([float("nan")] * 10))))
        assert read_reply(sock)[7] & Status.INVALID
    finally:
        sock.close()
    assert controller.counters()["unknown_registers"] == 1
    assert controller.counters()["param_errors"] == 3
    assert controller.mode == 0
    _still_serves(controller, arm)


def test_framing_heartbeat_standard_modbus_split_and_coalesced(controller) -> None:
    sock = raw_connect(controller.host)
    try:
        heartbeat = bytes([0, 0, 0, 1, 0, 2, 0, 0])
        standard = struct.pack(">HHHBBHH", 21, 0, 6, 1, 0x03, 0, 1)  # Modbus-TCP read holding register
        two = encode_request(22, 2, Reg.GET_STATE) + encode_request(23, 2, Reg.GET_VERSION)
        payload = heartbeat + standard + two
        for i in range(len(payload)):  # one byte at a time: framing must cope with any split
            sock.sendall(payload[i : i + 1])
        reply = read_reply(sock)
        assert reply == struct.pack(">HHH", 21, 0, 3) + bytes([1, 0x83, 0x01])  # illegal function
        state = read_reply(sock)
        assert state[:2] == b"\x00\x16" and state[8] == controller.state
        version = read_reply(sock)
        assert version[:2] == b"\x00\x17" and version[8:].rstrip(b"\0").decode() == controller.config.version
    finally:
        sock.close()
    assert controller.counters()["heartbeats"] == 1


def test_random_bytes_never_kill_the_server(controller, connect) -> None:
    arm = connect(controller.host)
    rng = random.Random(1234)
    for _ in range(25):
        sock = raw_connect(controller.host)
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        sock.sendall(blob)
        sock.close()
    assert wait_until(lambda: controller.command_client_count() == 1, 5.0)
    _still_serves(controller, arm)
    assert controller.running

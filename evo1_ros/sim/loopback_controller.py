"""A loopback TCP server that the real xArm SDK (`XArmAPI`) can drive as if it were the robot.

    ctrl = LoopbackController()            # picks a free 127.x.y.z address
    ctrl.start()
    arm = XArmAPI(ctrl.host, is_radian=True)
    ...
    ctrl.inject_collision(); ctrl.drop_connections(); ctrl.stop()

Ports 502 (commands) and 30001/30002/30003 (reports) are privileged: run as root, or allow
unprivileged users to bind them once with `sysctl net.ipv4.ip_unprivileged_port_start=0`.
Only 127.0.0.0/8 addresses are accepted. Threads: one acceptor per listening port, one per command
client, one pusher per report port, and one plant stepper.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import TracebackType

import numpy as np

from evo1_ros.sim.arm_controller import ArmController
from evo1_ros.sim.loopback_config import LoopbackConfig
from evo1_ros.sim.loopback_host import free_loopback_host, validate_loopback_host
from evo1_ros.sim.plant import JointPlant
from evo1_ros.sim.tracking_plant import TrackingPlant
from evo1_ros.sim.xarm_gripper import pulses_to_rad
from evo1_ros.sim.xarm_protocol import (
    HEADER,
    MAX_FRAME_LENGTH,
    PROT_HEARTBEAT,
    PROT_PRIVATE,
    PROT_STANDARD_MODBUS,
    ErrorCode,
    Reg,
    Request,
    encode_modbus_exception,
    encode_reply,
)
from evo1_ros.sim.xarm_report import BUILDERS

log = logging.getLogger("evo1_ros.sim.loopback")

_POLL_S = 0.1  # socket timeout used to notice stop requests and stale partial frames
#: requests that travel over the tool RS-485 bus (gripper pass-through, tool board registers)
TOOL_BUS_REGISTERS = frozenset({Reg.RS485_RTU, Reg.TGPIO_W16B, Reg.TGPIO_R16B})


class LoopbackController:
    """The loopback xArm controller: protocol server + `ArmController` state machine + a plant."""

    def __init__(
        self,
        host: str | None = None,
        config: LoopbackConfig | None = None,
        plant: JointPlant | None = None,
    ) -> None:
        """`host`: a 127.x.y.z address, or None to pick a free one at `start()` (then `config.host`
        is not used; the CLI passes it explicitly). `plant`: defaults to a `TrackingPlant` built from
        the config's speed/acceleration limits. Nothing is bound until `start()`."""
        self.config = (config or LoopbackConfig()).validate()
        self._auto_host = host is None
        self._host = validate_loopback_host(host) if host is not None else ""
        if plant is None:
            plant = TrackingPlant(
                n_joints=6,
                max_velocity=self.config.max_joint_speed,
                max_acceleration=self.config.max_joint_acc,
                inertia=self.config.joint_inertia,
            )
        self.plant = plant
        self.core = ArmController(self.config, plant)
        self._reply_delay = float(self.config.faults.reply_delay_s)
        self._tool_bus_delay = float(self.config.faults.tool_bus_delay_s)
        self._tool_bus_busy = 0  # tool-bus requests being answered right now (any connection)
        self._running = threading.Event()
        self._listeners: list[socket.socket] = []
        self._clients_lock = threading.Lock()
        self._command_clients: set[socket.socket] = set()
        self._report_clients: dict[str, set[socket.socket]] = {k: set() for k in self.config.report_ports}
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self.connection_counts: dict[str, int] = {"command": 0, "normal": 0, "rich": 0, "real": 0}
        self.closed_for_malformed = 0
        self.drops = 0

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The 127.x.y.z address the controller listens on."""
        return self._host

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._running.is_set()

    def start(self) -> LoopbackController:
        """Bind all ports and start serving; raises OSError with a readable reason on failure."""
        if self.running:
            return self
        attempts = 20 if self._auto_host else 1
        for attempt in range(attempts):
            if self._auto_host:
                self._host = free_loopback_host(self._ports())
            try:
                self._bind_all()
                break
            except OSError as exc:
                self._close_listeners()
                if exc.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                    continue
                raise self._explain_bind_error(exc) from exc
        self._running.set()
        self._spawn(self._plant_loop, "plant")
        for kind, _port in self.config.report_ports.items():
            self._spawn(self._report_loop, f"report-{kind}", kind)
        for sock in self._listeners:
            self._spawn(self._accept_loop, f"accept-{sock.getsockname()[1]}", sock)
        faults = self.config.faults
        if faults.collision_after_s is not None:
            self._schedule(faults.collision_after_s, self.inject_collision)
        if faults.drop_connections_after_s is not None:
            self._schedule(faults.drop_connections_after_s, self.drop_connections)
        log.info("xArm loopback controller listening on %s (ports %s)", self._host, self._ports())
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and join the threads."""
        if not self.running:
            return
        self._running.clear()
        for timer in self._timers:
            timer.cancel()
        self._close_listeners()
        self._close_clients()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        log.info("xArm loopback controller on %s stopped", self._host)

    def __enter__(self) -> LoopbackController:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _ports(self) -> list[int]:
        return [self.config.command_port, *self.config.report_ports.values()]

    def _bind_all(self) -> None:
        for port in self._ports():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listeners.append(sock)
            sock.bind((self._host, port))
            sock.listen(8)
            sock.settimeout(_POLL_S)

    def _explain_bind_error(self, exc: OSError) -> OSError:
        if exc.errno == errno.EACCES:
            return PermissionError(
                exc.errno,
                f"cannot bind {self._host}:{self._ports()} (ports < 1024 need root; or run "
                "`sysctl net.ipv4.ip_unprivileged_port_start=0` once)",
            )
        if exc.errno == errno.EADDRINUSE:
            return OSError(
                exc.errno, f"{self._host}: an xArm port is already in use; pick another 127.x address"
            )
        return exc

    def _close_listeners(self) -> None:
        for sock in self._listeners:
            with contextlib.suppress(OSError):
                sock.close()
        self._listeners.clear()

    def _close_clients(self) -> None:
        with self._clients_lock:
            clients = list(self._command_clients)
            for group in self._report_clients.values():
                clients += list(group)
                group.clear()
            self._command_clients.clear()
        for sock in clients:
            _close(sock)

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=f"xarm-loopback-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _schedule(self, delay: float, action: Callable[[], object]) -> None:
        timer = threading.Timer(delay, lambda: self.running and action())
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # --- threads ----------------------------------------------------------------------------------
    def _plant_loop(self) -> None:
        period = 1.0 / self.config.plant_rate_hz
        last = time.monotonic()
        next_tick = last + period
        while self.running:
            now = time.monotonic()
            dt = now - last
            last = now
            while dt > 1e-9:  # sub-step long gaps (scheduler stalls) for a stable tracker
                step = min(dt, 2.0 * period)
                self.core.tick(step)
                dt -= step
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()

    def _accept_loop(self, listener: socket.socket) -> None:
        port = listener.getsockname()[1]
        kind = "command" if port == self.config.command_port else None
        if kind is None:
            kind = next(k for k, p in self.config.report_ports.items() if p == port)
        while self.running:
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connection_counts[kind] += 1
            log.info("%s client connected from %s:%s", kind, *peer)
            with self._clients_lock:
                if not self.running:
                    _close(conn)
                    break
                if kind == "command":
                    self._command_clients.add(conn)
                else:
                    self._report_clients[kind].add(conn)
            if kind == "command":
                self._spawn(self._serve_commands, f"client-{peer[1]}", conn)

    def _report_loop(self, kind: str) -> None:
        period = 1.0 / self.config.report_rates_hz[kind]
        build = BUILDERS[kind]
        next_send = time.monotonic()
        while self.running:
            with self._clients_lock:
                clients = list(self._report_clients[kind])
            if clients:
                frame = build(self.core.snapshot())
                for sock in clients:
                    try:
                        sock.settimeout(1.0)
                        sock.sendall(frame)
                    except OSError:
                        with self._clients_lock:
                            self._report_clients[kind].discard(sock)
                        _close(sock)
                        log.info("%s report client gone", kind)
            next_send += period
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_send = time.monotonic()

    def _serve_commands(self, conn: socket.socket) -> None:
        conn.settimeout(_POLL_S)
        buffer = bytearray()
        partial_since: float | None = None
        reason = "client closed"
        try:
            while self.running:
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    timeout = self.config.faults.partial_frame_timeout_s
                    if partial_since is not None and time.monotonic() - partial_since > timeout:
                        reason = f"incomplete frame for more than {timeout} s"
                        self.closed_for_malformed += 1
                        self._count("malformed_frames")
                        break
                    continue
                if not chunk:
                    break
                buffer += chunk
                pending = len(buffer)
                outcome = self._consume(conn, buffer)
                if outcome is not None:
                    reason = outcome
                    self.closed_for_malformed += 1
                    self._count("malformed_frames")
                    break
                if not buffer:
                    partial_since = None
                elif partial_since is None or len(buffer) < pending:  # new partial frame
                    partial_since = time.monotonic()
        except OSError as exc:
            reason = f"socket error: {exc}"
        finally:
            with self._clients_lock:
                self._command_clients.discard(conn)
            _close(conn)
            if self.running:
                log.info("command client closed (%s)", reason)

    def _count(self, name: str) -> None:
        with self.core.lock:
            self.core.counters[name] += 1

    def _consume(self, conn: socket.socket, buffer: bytearray) -> str | None:
        """Answer every complete frame in `buffer`; a reason string means: close this connection."""
        while len(buffer) >= HEADER.size:
            tid, prot, length = HEADER.unpack_from(buffer)
            if prot not in (PROT_STANDARD_MODBUS, PROT_HEARTBEAT, *PROT_PRIVATE):
                return f"bad protocol id {prot} (not an xArm frame)"
            if not 1 <= length <= MAX_FRAME_LENGTH:
                return f"bad frame length {length}"
            if len(buffer) < HEADER.size + length:
                return None
            body = bytes(buffer[HEADER.size : HEADER.size + length])
            del buffer[: HEADER.size + length]
            if prot == PROT_HEARTBEAT:
                self._count("heartbeats")
                continue
            if self._reply_delay > 0:
                time.sleep(self._reply_delay)
            if prot == PROT_STANDARD_MODBUS:
                # the standard Modbus-TCP register map is not modelled: "illegal function"
                self._count("standard_modbus_rejected")
                reply = encode_modbus_exception(tid, body[0], body[1] if len(body) > 1 else 0, 0x01)
            else:
                request = Request(tid, prot, body[0], body[1:])
                reply = self._answer(request)
            conn.sendall(reply)
        return None

    def _answer(self, request: Request) -> bytes:
        """Handle one private-protocol request; tool-bus requests take `tool_bus_delay` longer.

        The delay is served outside the controller lock, as on the real box, where the RS-485
        exchange only blocks the connection that asked. A servo_j handled while any tool-bus
        request is in progress is counted (`servoj_during_tool_bus`): on a single shared SDK
        connection that count stays 0, because the SDK serialises its calls.
        """
        tool = request.register in TOOL_BUS_REGISTERS
        if tool:
            with self.core.lock:
                self._tool_bus_busy += 1
        try:
            if tool and self._tool_bus_delay > 0:
                time.sleep(self._tool_bus_delay)
            status, data = self.core.handle(request.register, request.params)
            if request.register == Reg.MOVE_SERVOJ:
                with self.core.lock:
                    if self._tool_bus_busy > 0:
                        self.core.counters["servoj_during_tool_bus"] += 1
        finally:
            if tool:
                with self.core.lock:
                    self._tool_bus_busy -= 1
        return encode_reply(request, status, data)

    # --- fault injection --------------------------------------------------------------------------
    def inject_collision(self) -> bool:
        """Raise C31 (collision) unless collision detection is off (sensitivity 0); True if raised."""
        with self.core.lock:
            if self.core.collision_sensitivity == 0:
                log.info("collision injected but detection is off (sensitivity 0): ignored")
                return False
            self.core.raise_error(ErrorCode.COLLISION)
        log.warning("injected collision: C31")
        return True

    def inject_error(self, code: int) -> None:
        """Raise any controller error code (stops the arm, state 4, mode 0)."""
        if not 1 <= code <= 255:
            raise ValueError("error codes are 1..255")
        self.core.raise_error(code)
        log.warning("injected error C%d", code)

    def inject_gripper_error(self, code: int) -> None:
        """Put the gripper into fault `code` (0 clears it)."""
        with self.core.lock:
            self.core.gripper.set_error(code)

    def drop_connections(self) -> None:
        """Close every client socket at once (the listeners stay open, so clients may reconnect)."""
        self.drops += 1
        log.warning("dropping all client connections")
        self._close_clients()

    def set_reply_delay(self, seconds: float) -> None:
        """Delay every later command reply by `seconds` (0 restores normal replies)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._reply_delay = float(seconds)

    def set_tool_bus_delay(self, seconds: float) -> None:
        """Delay every later tool RS-485 reply (gripper) by `seconds` (a slow or noisy tool bus)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._tool_bus_delay = float(seconds)

    @property
    def reply_delay(self) -> float:
        """Current reply delay in seconds."""
        return self._reply_delay

    # --- scenario helpers -------------------------------------------------------------------------
    def set_joint_positions(self, q: Sequence[float]) -> None:
        """Teleport the arm to `q` at rest (test setup); the gripper stays where it is."""
        with self.core.lock:
            self.core.queue.clear()
            self.plant.reset(q, None)

    def guide_to(self, q: Sequence[float]) -> bool:
        """Free-drive (mode 2) hand guiding towards `q`; False unless mode 2 and ready."""
        return self.core.guide_to(q)

    def set_gripper_obstacle(self, pulses: float | None) -> None:
        """Place an object so the gripper stalls at `pulses` when closing (TrackingPlant only)."""
        if not isinstance(self.plant, TrackingPlant):
            raise TypeError("obstacles are a TrackingPlant feature")
        with self.core.lock:
            self.plant.set_gripper_obstacle(None if pulses is None else pulses_to_rad(pulses))

    # --- read-only state --------------------------------------------------------------------------
    @property
    def q(self) -> np.ndarray:
        """Joint positions (rad)."""
        with self.core.lock:
            return self.plant.q

    @property
    def dq(self) -> np.ndarray:
        """Joint velocities (rad/s)."""
        with self.core.lock:
            return self.plant.dq

    @property
    def effort(self) -> np.ndarray:
        """Joint efforts (N·m)."""
        with self.core.lock:
            return self.plant.effort

    @property
    def state(self) -> int:
        """Controller state (1 moving, 2 sleeping, 3 paused, 4 stopped, 5 config changed, 6 decelerating)."""
        return self.core.state

    @property
    def mode(self) -> int:
        """Controller mode."""
        return self.core.mode

    @property
    def error_code(self) -> int:
        """Current controller error code (0 = none)."""
        return self.core.error

    @property
    def warn_code(self) -> int:
        """Current controller warning code (0 = none)."""
        return self.core.warn

    @property
    def enabled(self) -> bool:
        """All joints enabled."""
        return self.core.enabled

    @property
    def collision_sensitivity(self) -> int:
        """Collision sensitivity 0..5 as last set."""
        return self.core.collision_sensitivity

    @property
    def servo_target(self) -> np.ndarray | None:
        """Last accepted servo_j target (None since the last start/stop)."""
        with self.core.lock:
            return None if self.core.servo_target is None else self.core.servo_target.copy()

    @property
    def position_target(self) -> np.ndarray | None:
        """The plant's position target (TrackingPlant only, else None)."""
        with self.core.lock:
            return self.plant.position_target if isinstance(self.plant, TrackingPlant) else None

    @property
    def velocity_command(self) -> np.ndarray:
        """Last accepted joint velocity command (zero after its duration ran out)."""
        with self.core.lock:
            return self.core.velocity_command.copy()

    @property
    def cmdnum(self) -> int:
        """Mode-0 commands queued or running."""
        return self.core.cmdnum

    @property
    def gripper_pulses(self) -> int:
        """Gripper position in pulses (850 open, 0 closed)."""
        with self.core.lock:
            return self.core.gripper.position_pulses

    @property
    def gripper_target_pulses(self) -> float:
        """Last commanded gripper target in pulses."""
        return self.core.gripper.target_pulses

    @property
    def gripper_enabled(self) -> bool:
        """Gripper enabled flag."""
        return self.core.gripper.enabled

    @property
    def gripper_speed_rpm(self) -> float:
        """Gripper speed setting (r/min)."""
        return self.core.gripper.speed_rpm

    @property
    def tool_baud_index(self) -> int:
        """Baud index of the tool RS-485 port (11 = 2 Mbit/s)."""
        return self.core.gripper.tool_baud_index

    def counters(self) -> Counter[str]:
        """Event counters (a copy; missing keys read 0): servoj_received / _accepted / _ignored /
        _overspeed, servoj_during_tool_bus, move_joint_*, velocity_*, gripper_frames, rs485_no_answer, unknown_registers,
        param_errors, malformed_frames, heartbeats, standard_modbus_rejected, requests, error_<code>."""
        with self.core.lock:
            return Counter(self.core.counters)

    def register_count(self, register: int) -> int:
        """How many requests with this register number were answered."""
        with self.core.lock:
            return self.core.register_counts[register]

    def command_client_count(self) -> int:
        """Open command-socket connections."""
        with self._clients_lock:
            return len(self._command_clients)

    def report_client_count(self, kind: str | None = None) -> int:
        """Open report connections (of one kind: normal/rich/real, or all)."""
        with self._clients_lock:
            if kind is not None:
                return len(self._report_clients[kind])
            return sum(len(group) for group in self._report_clients.values())


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

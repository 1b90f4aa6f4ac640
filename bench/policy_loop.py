"""Closed policy loop without ROS: chunk scheduler + safety filter driving the real ArmDriver.

The loopback xArm controller runs in its own process; this process runs the real `ArmDriver`
(servo streaming over the real xArm SDK), a control thread at `--control-rate` (reads the plan,
asks for chunks at the threshold, like the policy node's timer) and an inference thread (the
node's worker) with a stand-in model:

* `--model standin` (default): sleeps `--latency` seconds, then returns a (50, 7) chunk that is a
  smooth deterministic function of the measured state and the observation time (follow a slow
  reference from where the arm is, plus a smooth "model error" that changes from chunk to chunk, so
  consecutive chunks disagree as a real policy's do);
* `--model tiny`: a tiny random-weight Evo1Policy (byte-level tokenizer built on the fly, two
  random 224x224 views, norm stats a few hundredths of a rad around the start pose); its own
  compute time is the latency.

Every accepted chunk goes scheduler -> plan -> safety filter -> `ArmDriver.submit` (one trajectory
with time_from_start per step, as the node publishes it). For each blend mode the loop reports the
obs -> command latency (observation taken -> filtered trajectory accepted by the driver) p50/p99,
the part of it that is not model time, and what each chunk switch does to the command sequence
(step values at the control rate: the steps already executed from the old plan, then the new plan):

* switch jump: |first new step - the old plan's step at the same time| (the held action if the old
  plan had run out), max over the arm joints: how far the command leaps off its previous course;
* kink: the largest |second difference| (rad/step^2) of that sequence from the switch to the end of
  the new plan: the velocity change per step at the switch and at the end of a blended overlap;
  next to it the largest |second difference| inside the raw chunks (the model's own curvature);
* hold ticks: control ticks with nothing planned (includes the wait for the very first chunk);
  clamped / faults: what the safety filter did.

    .venv/bin/python bench/policy_loop.py [--latencies 0.1 0.4] [--seconds 8] [--model standin|tiny]

Prints a table and writes bench/results/policy_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evo1_ros.control.chunk_scheduler import BlendMode, ChunkScheduler, SchedulerConfig  # noqa: E402
from evo1_ros.control.limits import GripperPulseMap, JointLimits  # noqa: E402
from evo1_ros.control.safety_filter import SafetyConfig, SafetyFilter  # noqa: E402
from evo1_ros.driver.arm_driver import ArmDriver, DriverConfig, DriverState  # noqa: E402
from evo1_ros.driver.xarm_session import SessionConfig  # noqa: E402
from evo1_ros.polling import wait_until  # noqa: E402

RESULTS = REPO / "bench" / "results" / "policy_loop.json"
HOME = np.array([0.0, -0.3, -0.8, 0.0, 1.0, 0.0, 0.3])  # arm joints + drive_joint (rad)
HORIZON = 50
TASK = "pick up the red block"

Model = Callable[[np.ndarray, float], np.ndarray]  # (measured state, obs time) -> (H, 7) chunk


# -- stand-in models ------------------------------------------------------------------------------------
def standin_model(control_rate: float, latency: float, t_origin: float, error: float) -> Model:
    """Deterministic smooth policy: track a slow reference from the measured state, plus model error."""
    amp = np.array([0.25, 0.15, 0.2, 0.25, 0.2, 0.3])
    freq = np.array([0.11, 0.07, 0.09, 0.13, 0.1, 0.12])  # Hz: <= 0.2 rad/s, well inside the caps
    phase = np.arange(6) * 0.7
    k = np.arange(HORIZON)

    def reference(t: np.ndarray) -> np.ndarray:
        arm = HOME[:6] + amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
        grip = 0.4 + 0.2 * np.sin(2 * np.pi * 0.08 * t)[:, None]
        return np.concatenate([arm, grip], axis=1)

    def predict(state: np.ndarray, obs_time: float) -> np.ndarray:
        time.sleep(latency)
        t = obs_time - t_origin
        times = t + k / control_rate
        ref = reference(times)
        # Start where the arm is, converge onto the reference within ~0.5 s.
        pull = 1.0 - np.exp(-k / (0.5 * control_rate))
        chunk = state + (ref - ref[0]) + pull[:, None] * (ref[0] - state)
        # A smooth error growing along the chunk; its sign and size change from one observation
        # time to the next (1.3 Hz), so consecutive chunks disagree at their overlap.
        drift = error * np.sin(2 * np.pi * 1.3 * t + np.arange(7) * 1.1) * (k / HORIZON)[:, None]
        chunk[:, 6] = ref[:, 6]  # gripper follows the reference only
        return chunk + np.concatenate([drift[:, :6], np.zeros((HORIZON, 1))], axis=1)

    return predict


def tiny_model(seed: int, threads: int) -> tuple[Model, dict[str, Any]]:
    """A tiny random Evo1Policy; norm stats put its actions within a few hundredths of a rad of HOME."""
    import torch

    from evo1_ros.model import Evo1Config, Evo1Policy, NormStats, build_model
    from evo1_ros.model.processing.tokenizer import build_byte_level_tokenizer, load_tokenizer

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = load_tokenizer(build_byte_level_tokenizer(tmp))
    config = Evo1Config.tiny().replace(
        img_context_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        device="cpu",
        dtype="float32",
        attn_implementation="sdpa",
        dropout=0.0,
    )
    torch.manual_seed(seed)
    model = build_model(config, random_init=True)
    spread = np.array([0.02] * 6 + [0.05])
    stats = NormStats(
        state_min=HOME - 1.0,
        state_max=HOME + 1.0,
        action_min=HOME - spread,
        action_max=HOME + spread,
    )
    policy = Evo1Policy(model, tokenizer, stats)
    rng = np.random.default_rng(seed)
    views = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2)]
    calls = [0]

    def predict(state: np.ndarray, obs_time: float) -> np.ndarray:
        calls[0] += 1
        return policy.predict(
            [*views, None], [True, True, False], state, TASK, generator=seed + calls[0]
        ).astype(float)

    predict(HOME, 0.0)  # warm-up
    info = {"horizon": config.horizon, "parameters": sum(p.numel() for p in model.parameters())}
    return predict, info


# -- the loop -------------------------------------------------------------------------------------------
@dataclass
class RunLog:
    ticks: list[tuple[float, np.ndarray | None]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # accepted chunk arrival times
    switch_jumps: list[float] = field(default_factory=list)
    kinks: list[float] = field(default_factory=list)
    chunk_curvature: list[float] = field(default_factory=list)
    obs_to_cmd: list[float] = field(default_factory=list)
    model_time: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)  # model done -> trajectory accepted
    faults: list[str] = field(default_factory=list)
    rejected: int = 0
    clamped: int = 0


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    if not wait_until(cond, timeout, 0.02):
        raise RuntimeError(f"timed out waiting for {what}")


def hold(driver: ArmDriver) -> None:
    """Stop where the arm is (an empty trajectory, JTC's "stop"), as the policy node does on a fault."""
    try:
        driver.submit(list(driver.joint_names), [], [], None, None)
    except ValueError as exc:  # the driver refused even "stop": it is not READY any more
        raise RuntimeError(f"driver refused to hold: {exc}") from exc


def go_home(driver: ArmDriver) -> None:
    """Move to HOME and wait until the arm rests there, so every mode starts from the same state."""
    names = list(driver.joint_names)
    driver.submit(names, [2.5], [HOME.tolist()], None, None)

    def arrived() -> bool:
        state = driver.joint_state()
        return state is not None and float(np.max(np.abs(state[0][:6] - HOME[:6]))) < 2e-3

    wait_for(arrived, 20.0, "the arm to reach the start pose")
    time.sleep(0.3)


def run_mode(
    driver: ArmDriver,
    model: Model,
    mode: BlendMode,
    args: argparse.Namespace,
) -> RunLog:
    cfg = SchedulerConfig(
        control_rate=args.control_rate,
        chunk_threshold=args.threshold,
        n_action_steps=args.n_action_steps,
        blend=mode,
    )
    sched = ChunkScheduler(cfg)
    filt = SafetyFilter(
        driver.limits,
        driver.joint_names,
        SafetyConfig(
            max_step_change=args.max_step_change,
            max_start_distance=args.max_start_distance,
            clamp_margin=args.clamp_margin,
            velocity_fraction=1.0,  # the full velocity cap, as before SafetyConfig took the node's 0.5
        ),
    )
    names = list(driver.joint_names)
    log = RunLog()
    requests: queue.Queue[tuple[float, np.ndarray] | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def infer() -> None:
        while True:
            item = requests.get()
            if item is None:
                return
            obs_time, state = item
            t_start = time.monotonic()
            try:
                chunk = model(state, obs_time)
            except Exception as exc:  # a failing model must not kill the loop: count and go on
                log.faults.append(f"model raised {exc!r}")
                sched.request_failed()
                continue
            t_done = time.monotonic()
            before = sched.plan(-np.inf) if sched.has_plan else None  # the whole running plan
            arrival = sched.add_chunk(chunk, obs_time, t_done)
            if not arrival.accepted:
                continue
            after = sched.plan(-np.inf)
            now = time.monotonic()
            times, actions = sched.plan(now)
            measured = driver.joint_state()
            if measured is None or times.size == 0:
                continue
            result = filt.filter(times, actions, measured[0])
            log.clamped += result.clamped
            if result.fault is not None:
                log.faults.append(result.fault)
                hold(driver)
                sched.reset(now, hold=measured[0])
                continue
            submit_now = time.monotonic()
            try:
                driver.submit(
                    names,
                    (times - submit_now).tolist(),
                    result.positions.tolist(),
                    result.velocities.tolist(),
                    submit_now,
                )
            except ValueError as exc:  # TrajectoryError / NotReadyError: the filter let through junk
                log.rejected += 1
                log.faults.append(f"driver rejected: {exc}")
                continue
            t_cmd = time.monotonic()
            log.arrivals.append(t_done)
            log.obs_to_cmd.append(t_cmd - obs_time)
            log.model_time.append(t_done - t_start)
            log.overhead.append(t_cmd - t_done)
            if before is not None:  # measured off the clock: not part of the command latency
                switch_metrics(log, before, after, t_done, cfg, chunk)

    worker = threading.Thread(target=infer, name="inference", daemon=True)
    worker.start()
    period = 1.0 / args.control_rate
    t_end = time.monotonic() + args.seconds
    deadline = time.monotonic()
    while not stop.is_set():
        deadline += period
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        if now > t_end:
            break
        log.ticks.append((now, sched.action_at(now)))
        if sched.should_request(now):
            state = driver.joint_state()
            if state is None:
                continue
            sched.mark_requested(now)
            requests.put((now, state[0].copy()))
    requests.put(None)
    worker.join(timeout=60)
    hold(driver)
    return log


def switch_metrics(
    log: RunLog,
    old: tuple[np.ndarray, np.ndarray],
    new: tuple[np.ndarray, np.ndarray],
    now: float,
    cfg: SchedulerConfig,
    chunk: np.ndarray,
) -> None:
    """Jump and kink of the step sequence the arm is commanded across one chunk switch (arm joints)."""
    tol = cfg.tick_tolerance * cfg.period
    old_t, old_a = old[0], old[1][:, :6]
    new_t, new_a = new[0], new[1][:, :6]
    executed = old_a[old_t <= now + tol]  # steps the old plan already ran
    upcoming = new_a[new_t > now + tol]
    if upcoming.shape[0] == 0 or executed.shape[0] == 0:
        return
    t1 = new_t[new_t > now + tol][0]
    if t1 <= old_t[-1] + tol:
        course = np.array([np.interp(t1, old_t, old_a[:, j]) for j in range(6)])
    else:
        course = old_a[-1]  # the old plan had run out: the arm holds its last step
    log.switch_jumps.append(float(np.max(np.abs(upcoming[0] - course))))
    seq = np.concatenate([executed[-2:], upcoming])
    if seq.shape[0] >= 3:
        log.kinks.append(float(np.max(np.abs(np.diff(seq, n=2, axis=0)))))
    log.chunk_curvature.append(float(np.max(np.abs(np.diff(chunk[:, :6], n=2, axis=0)))))


def summarize(log: RunLog, mode: BlendMode, latency: float | None) -> dict[str, Any]:
    times = np.array([t for t, _ in log.ticks])
    holds = sum(1 for _, a in log.ticks if a is None)
    jumps = np.array(log.switch_jumps)
    lat = np.array(log.obs_to_cmd) * 1e3
    over = np.array(log.overhead) * 1e3
    return {
        "blend": mode.value,
        "stand_in_latency_s": latency,
        "chunks": len(log.arrivals),
        "ticks": len(times),
        "hold_ticks": holds,
        "obs_to_cmd_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "obs_to_cmd_p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        "model_ms_p50": float(np.percentile(np.array(log.model_time) * 1e3, 50)) if lat.size else None,
        "non_model_p50_ms": float(np.percentile(over, 50)) if over.size else None,
        "non_model_p99_ms": float(np.percentile(over, 99)) if over.size else None,
        "switches": int(jumps.size),
        "switch_jump_max_rad": float(jumps.max()) if jumps.size else None,
        "switch_jump_mean_rad": float(jumps.mean()) if jumps.size else None,
        "kink_max_rad_per_step2": max(log.kinks) if log.kinks else None,
        "chunk_curvature_max_rad_per_step2": max(log.chunk_curvature) if log.chunk_curvature else None,
        "filter_clamped_values": log.clamped,
        "filter_faults": len([f for f in log.faults if not f.startswith("driver")]),
        "driver_rejections": log.rejected,
        "first_faults": log.faults[:3],
    }


def start_driver(host: str, servo_rate: float) -> ArmDriver:
    limits = JointLimits.from_yaml()
    gripper = GripperPulseMap.from_yaml()
    driver = ArmDriver(
        DriverConfig(session=SessionConfig(host=host), servo_rate=servo_rate),
        limits,
        gripper,
        on_event=lambda level, text: None if level == "info" else print(f"  driver {level}: {text}"),
    )
    driver.start()
    wait_for(lambda: driver.state == DriverState.READY, 20.0, "the driver to be READY")
    wait_for(lambda: driver.joint_state() is not None, 10.0, "the first joint state")
    return driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["standin", "tiny"], default="standin")
    parser.add_argument(
        "--latencies", type=float, nargs="+", default=[0.1, 0.4], help="stand-in inference latency (s)"
    )
    parser.add_argument(
        "--modes", nargs="+", default=[m.value for m in BlendMode], choices=[m.value for m in BlendMode]
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="loop time per mode and latency")
    parser.add_argument("--control-rate", type=float, default=30.0, help="Hz (chunk step rate)")
    parser.add_argument("--threshold", type=float, default=0.5, help="chunk_threshold")
    parser.add_argument("--n-action-steps", type=int, default=50)
    parser.add_argument("--servo-rate", type=float, default=200.0, help="driver servo rate (Hz)")
    parser.add_argument("--max-step-change", type=float, default=0.05, help="safety filter, rad/step")
    parser.add_argument("--max-start-distance", type=float, default=0.15, help="safety filter, rad")
    parser.add_argument("--clamp-margin", type=float, default=0.05, help="safety filter, rad")
    parser.add_argument(
        "--model-error", type=float, default=0.1, help="stand-in chunk-to-chunk error at the chunk end (rad)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (--model tiny)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from evo1_ros.sim.loopback_host import free_loopback_host

    host = free_loopback_host()
    ctrl = subprocess.Popen(
        [sys.executable, "-m", "evo1_ros.sim.loopback_main", "--host", host, "--initial-joints"]
        + [str(v) for v in HOME[:6]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    driver: ArmDriver | None = None
    try:
        time.sleep(1.0)
        driver = start_driver(host, args.servo_rate)
        # Each run gets a fresh model whose clock starts with the run, so every mode sees the same
        # reference motion from the same start pose.
        factories: list[tuple[float | None, Callable[[], Model]]]
        if args.model == "tiny":
            model, extra = tiny_model(args.seed, args.threads)
            factories = [(None, lambda: model)]
        else:
            factories = [
                (
                    lat,
                    lambda lat=lat: standin_model(args.control_rate, lat, time.monotonic(), args.model_error),
                )
                for lat in args.latencies
            ]
        for latency, factory in factories:
            for mode in args.modes:
                go_home(driver)
                log = run_mode(driver, factory(), BlendMode(mode), args)
                row = summarize(log, BlendMode(mode), latency)
                rows.append(row)
                print(
                    f"  {args.model} latency={latency} {mode}: {row['chunks']} chunks, "
                    f"{row['filter_faults']} faults",
                    flush=True,
                )
    finally:
        if driver is not None:
            driver.shutdown()
        ctrl.terminate()
        ctrl.wait(timeout=5)

    cols = [
        ("stand_in_latency_s", "latency s"),
        ("blend", "blend"),
        ("chunks", "chunks"),
        ("obs_to_cmd_p50_ms", "obs->cmd p50 ms"),
        ("obs_to_cmd_p99_ms", "p99 ms"),
        ("non_model_p99_ms", "non-model p99 ms"),
        ("switch_jump_max_rad", "switch jump max rad"),
        ("switch_jump_mean_rad", "mean"),
        ("kink_max_rad_per_step2", "kink max"),
        ("chunk_curvature_max_rad_per_step2", "chunk's own"),
        ("hold_ticks", "hold ticks"),
        ("filter_clamped_values", "clamped"),
        ("filter_faults", "faults"),
    ]
    print(" | ".join(h for _, h in cols))
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r[key]
            cells.append("-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
        print(" | ".join(cells))
    print(f"machine load average after the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    payload = {
        "benchmark": "policy_loop",
        "model": args.model,
        "model_info": extra,
        "machine": f"{os.cpu_count()} cores",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "results": rows,
    }
    existing: dict[str, Any] = {}
    if args.out.is_file():
        try:
            existing = json.loads(args.out.read_text())
        except json.JSONDecodeError:
            existing = {}
    runs = existing.get("runs", {}) if isinstance(existing, dict) else {}
    runs[args.model] = payload
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "policy_loop", "runs": runs}, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

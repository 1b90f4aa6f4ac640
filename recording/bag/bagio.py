"""Reading and writing standard rosbag2 bags with `rosbags` (no ROS needed): types, QoS, errors, splits.

Bags are rosbag2 metadata version 9 with RIHS01 type hashes, MCAP by default (sqlite3 on request), so
`ros2 bag info/play` and Foxglove open them. Types come from rosbags' Kilted store; a type it does
not know (evo1_msgs, anything built into the venv or an ament prefix) is registered from its `.msg`
file under ``<prefix>/share/<pkg>/msg/``. Every failure a user can cause (missing, empty, corrupt or
truncated bag, unknown topic or type) raises :class:`BagError` with one line saying what to do.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evo1_ros.paths import ament_prefixes, config_file

STORAGES = ("mcap", "sqlite3")


class BagError(Exception):
    """A bag cannot be used (one line: which bag/topic and what to do)."""


# ---------------------------------------------------------------------------- types
_STORE: Any = None


def typestore() -> Any:
    """The process-wide typestore (Kilted + types registered on demand)."""
    global _STORE
    if _STORE is None:
        from rosbags.typesys import Stores, get_typestore

        _STORE = get_typestore(Stores.ROS2_KILTED)
    return _STORE


def _msg_file(msgtype: str) -> Path | None:
    pkg, kind, name = ([*msgtype.split("/"), "", ""])[:3]
    for prefix in ament_prefixes():
        path = Path(prefix) / "share" / pkg / kind / f"{name}.msg"
        if path.is_file():
            return path
    return None


def ensure_type(msgtype: str, msgdef: str | None = None) -> None:
    """Make ``msgtype`` (``pkg/msg/Name``) known to the typestore, from ``msgdef`` or its .msg file."""
    from rosbags.typesys import get_types_from_msg

    store = typestore()
    if msgtype in store.fielddefs:
        return
    if msgdef is None:
        path = _msg_file(msgtype)
        if path is None:
            raise BagError(
                f"unknown message type {msgtype}: no share/{msgtype}.msg under {ament_prefixes()}; "
                "install or source the package that defines it"
            )
        msgdef = path.read_text()
    store.register(get_types_from_msg(msgdef, msgtype))


# ---------------------------------------------------------------------------- QoS
@dataclass(frozen=True)
class QosSpec:
    """The QoS fields the player and recorder need (strings as in rosbag2 metadata)."""

    reliability: str = "reliable"  # reliable | best_effort
    durability: str = "volatile"  # volatile | transient_local
    depth: int = 10


def qos_to_rosbags(spec: QosSpec) -> Any:
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        spec.depth,
        QosReliability[spec.reliability.upper()],
        QosDurability[spec.durability.upper()],
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


def qos_from_connection(conn: Any) -> QosSpec:
    """The QoS the topic was offered with when it was recorded (reliable/volatile if not stored)."""
    profiles = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
    if not profiles:
        return QosSpec()
    rel = {p.reliability.name.lower() for p in profiles}
    dur = {p.durability.name.lower() for p in profiles}
    depth = max(int(p.depth) for p in profiles) or 10
    return QosSpec(
        "best_effort" if "best_effort" in rel else "reliable",
        "transient_local" if dur == {"transient_local"} else "volatile",
        depth,
    )


# ---------------------------------------------------------------------------- profiles
def load_profiles(path: Path | None = None) -> dict[str, list[str]]:
    """Named topic sets of config/bag.yaml (``profiles: {name: [topics]}``)."""
    path = path or config_file("bag.yaml")
    data = yaml.safe_load(path.read_text()) or {}
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict) or not all(isinstance(v, list) for v in profiles.values()):
        raise BagError(f"{path}: 'profiles' must map a name to a list of topics")
    return {str(k): [str(t) for t in v] for k, v in profiles.items()}


# ---------------------------------------------------------------------------- reading
@dataclass
class OpenBag:
    """An opened bag: the rosbags reader and its connections by topic."""

    path: Path
    reader: Any

    @property
    def connections(self) -> list[Any]:
        return list(self.reader.connections)

    def topics(self) -> dict[str, str]:
        return {c.topic: c.msgtype for c in self.reader.connections}

    def select(self, topics: Sequence[str] | None) -> list[Any]:
        """Connections of ``topics`` (all if None); an unknown topic is a BagError naming the known ones."""
        conns = self.connections
        if not topics:
            return conns
        have = {c.topic for c in conns}
        missing = [t for t in topics if t not in have]
        if missing:
            raise BagError(f"{self.path}: topic(s) {missing} not in the bag (it has {sorted(have)})")
        return [c for c in conns if c.topic in set(topics)]

    def messages(self, conns: Sequence[Any], start: int | None = None, stop: int | None = None) -> Iterator:
        """(connection, log time ns, raw CDR) in log order; a damaged file is a BagError."""
        try:
            yield from self.reader.messages(connections=conns, start=start, stop=stop)
        except BagError:
            raise
        except Exception as e:  # rosbags/mcap/sqlite raise many kinds for a damaged file
            raise BagError(
                f"{self.path}: cannot read messages ({type(e).__name__}: {e}); the bag is corrupt or truncated"
            ) from None

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> OpenBag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_bag(path: Path | str, *, allow_empty: bool = False) -> OpenBag:
    """Open a rosbag2 folder (MCAP or sqlite3); raises BagError in one line for anything unusable."""
    from rosbags.rosbag2 import Reader

    path = Path(path).expanduser()
    if not path.exists():
        raise BagError(f"{path}: no such bag (give the bag folder that holds metadata.yaml)")
    if path.is_file():
        raise BagError(f"{path}: is a file; give the bag folder that holds metadata.yaml")
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: no metadata.yaml, not a rosbag2 bag (or it was not closed; reindex it)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as e:
        raise BagError(
            f"{path}: cannot open the bag, corrupt or truncated ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    bag = OpenBag(path, reader)
    if not allow_empty and reader.message_count == 0:
        bag.close()
        raise BagError(f"{path}: the bag has no messages")
    for conn in reader.connections:
        try:
            ensure_type(conn.msgtype, conn.msgdef.data if conn.msgdef and conn.msgdef.data else None)
        except BagError:
            raise
        except Exception:
            ensure_type(conn.msgtype)
    return bag


def deserialize(raw: bytes, msgtype: str) -> Any:
    return typestore().deserialize_cdr(raw, msgtype)


# ---------------------------------------------------------------------------- writing
@dataclass
class SplitPolicy:
    """Start a new bag file when it exceeds ``max_bytes`` or ``max_seconds`` (0 = never)."""

    max_bytes: int = 0
    max_seconds: float = 0.0


class BagWriter:
    """A rosbag2 writer that splits into ``<out>/<out.name>_<k>`` bags (or writes ``<out>`` unsplit).

    Split bags are separate, complete rosbag2 folders (each opens alone), numbered from 0.
    """

    def __init__(self, out: Path | str, storage: str = "mcap", split: SplitPolicy | None = None) -> None:
        if storage not in STORAGES:
            raise BagError(f"storage {storage!r}: use one of {list(STORAGES)}")
        self.out = Path(out).expanduser()
        self.storage = storage
        self.split = split or SplitPolicy()
        self.splitting = bool(self.split.max_bytes or self.split.max_seconds)
        if self.out.exists():
            raise BagError(f"{self.out}: already exists; choose a new output folder")
        self._topics: dict[str, tuple[str, QosSpec]] = {}
        self._writer: Any = None
        self._conns: dict[str, Any] = {}
        self.index = -1
        self.paths: list[Path] = []
        self.counts: dict[str, int] = {}
        self._bytes = 0
        self._first_ns: int | None = None
        self.closed = False
        self._lock = threading.RLock()  # callbacks of several executor threads, and close() from another

    def add_topic(self, topic: str, msgtype: str, qos: QosSpec) -> None:
        with self._lock:
            self._add_topic(topic, msgtype, qos)

    def _add_topic(self, topic: str, msgtype: str, qos: QosSpec) -> None:
        ensure_type(msgtype)
        self._topics[topic] = (msgtype, qos)
        self.counts.setdefault(topic, 0)
        if self._writer is not None:
            self._add_conn(topic)

    def _add_conn(self, topic: str) -> None:
        msgtype, qos = self._topics[topic]
        self._conns[topic] = self._writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=[qos_to_rosbags(qos)]
        )

    def new_file(self) -> Path:
        """Close the current bag file (if any) and open the next one."""
        with self._lock:
            return self._new_file()

    def _new_file(self) -> Path:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if self.closed:
            raise BagError(f"{self.out}: the bag is closed")
        self._close_file()
        self.index += 1
        if self.splitting or self.index > 0:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / f"{self.out.name}_{self.index}"
        else:
            path = self.out
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._conns = {}
        for topic in self._topics:
            self._add_conn(topic)
        self._bytes = 0
        self._first_ns = None
        self.paths.append(path)
        return path

    def write(self, topic: str, t_ns: int, raw: bytes | memoryview) -> None:
        """Append one message (ignored after :meth:`close`: late callbacks must not reopen the bag)."""
        with self._lock:
            self._write(topic, t_ns, raw)

    def _write(self, topic: str, t_ns: int, raw: bytes | memoryview) -> None:
        if self.closed:
            return
        if self._writer is None or (
            self._first_ns is not None
            and (
                (self.split.max_bytes and self._bytes >= self.split.max_bytes)
                or (self.split.max_seconds and t_ns - self._first_ns >= self.split.max_seconds * 1e9)
            )
        ):
            self.new_file()
        if self._first_ns is None:
            self._first_ns = t_ns
        self._writer.write(self._conns[topic], int(t_ns), raw)
        self._bytes += len(raw)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        """Close the bag for good (a valid, complete rosbag2 folder)."""
        with self._lock:
            self._close_file()
            self.closed = True

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def dump_counts(counts: dict[str, int], paths: Sequence[Path]) -> str:
    """The end-of-recording summary: one line per topic, then the bag path(s)."""
    width = max((len(t) for t in counts), default=5)
    lines = [f"{t:<{width}}  {n:>8d} msgs" for t, n in sorted(counts.items())]
    lines.append(
        f"{sum(counts.values())} messages in {', '.join(str(p) for p in paths) or '(no bag written)'}"
    )
    return "\n".join(lines)


def bag_files(path: Path | str) -> list[Path]:
    """A bag folder, or a folder of split bags (``<name>_<k>``, in numeric order)."""
    path = Path(path).expanduser()
    if (path / "metadata.yaml").is_file():
        return [path]
    if path.is_dir():
        subs = [p for p in path.iterdir() if (p / "metadata.yaml").is_file()]
        if subs:
            return sorted(
                subs, key=lambda p: (int(m.group(1)) if (m := re.search(r"_(\d+)$", p.name)) else -1, p.name)
            )
    return [path]  # open_bag reports what is wrong with it

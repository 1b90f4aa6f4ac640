"""Durable file operations: fsync, atomic replace, JSONL append/truncate.

The writer's crash-safety rests on these: a file is either the old version or the new one, never a
mix, and an appended JSONL line is on disk before the episode is declared saved in info.json.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from recording.dataset.errors import DatasetError


def fsync_file(path: Path) -> None:
    """Flush a file's data to the device."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry table, so renames and creations inside it survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same dir, fsync, os.replace).

    ``sync_dir=False`` leaves the directory fsync to the caller: once ``os.replace`` has run, the new
    file is what readers see (a commit point), so a failing directory fsync after it must not be
    treated like a failure before it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(path.parent)


def json_dumps_info(obj: Any) -> str:
    """info.json text as LeRobot writes it (indent 4)."""
    return json.dumps(obj, indent=4, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, obj: Any, *, sync_dir: bool = True) -> None:
    """Atomically replace a JSON file (indent 4, as LeRobot writes info.json)."""
    write_bytes_atomic(path, json_dumps_info(obj).encode("utf-8"), sync_dir=sync_dir)


def jsonl_line(record: dict[str, Any]) -> bytes:
    """One JSONL line for a record."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def append_durable(path: Path, data: bytes) -> int:
    """Append ``data`` to ``path`` and fsync; returns the size before appending (for rollback)."""
    path = Path(path)
    with open(path, "ab") as f:
        before = f.tell()
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                f.truncate(before)
            raise
    return before


def truncate_durable(path: Path, size: int) -> None:
    """Cut a file back to ``size`` bytes and fsync (rollback of an append)."""
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def read_json(path: Path) -> Any:
    """Read a JSON file; DatasetError names the file and the reason on failure."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: cannot parse JSON ({e})") from None


def read_jsonl_prefix(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Parse complete, valid JSONL lines from the start of a file, stopping at the first bad one.

    Returns the records and the byte offset at the end of each, so recovery can truncate a file to
    its first K complete lines (a crash can leave a partial last line).
    """
    records: list[dict[str, Any]] = []
    ends: list[int] = []
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        try:
            rec = json.loads(data[pos:nl].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            break
        if not isinstance(rec, dict):
            break
        records.append(rec)
        ends.append(nl + 1)
        pos = nl + 1
    return records, ends


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a whole JSONL file strictly; DatasetError names file, line and reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read ({e})") from None
    out: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise DatasetError(f"{path}: line {lineno} is empty")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: line {lineno} is not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise DatasetError(f"{path}: line {lineno} is not a JSON object")
        out.append(rec)
    if text and not text.endswith("\n"):
        raise DatasetError(f"{path}: last line is not terminated by a newline (partial write?)")
    return out

"""Exceptions of the recording package.

Each names the file involved and the reason, so a CLI or a ROS node can report one line without a
traceback and an operator knows what to fix.
"""

from __future__ import annotations

import errno


class DatasetError(Exception):
    """A dataset on disk is missing, unreadable or inconsistent (names the file and the reason)."""


class RecordingError(Exception):
    """Recording or saving an episode failed; earlier episodes of the dataset are untouched."""


class DiskFullError(RecordingError):
    """No space left on the device while writing an episode; earlier episodes are untouched."""


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or anything it was raised from) is an ENOSPC/EDQUOT OSError."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        cur = cur.__cause__ or cur.__context__
    return False

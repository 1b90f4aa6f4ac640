"""The test harness's domain leases: no two test processes on the machine share a ROS domain."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fixtures.ros
from fixtures.ros import DOMAIN_IDS, DomainLease

HOLD = """
import sys
from fixtures.ros import DomainLease
lease = DomainLease()
print(lease.domain_id, flush=True)
sys.stdin.read()  # hold it until told to exit
"""


def test_leases_in_one_process_differ():
    a, b = DomainLease(), DomainLease()
    try:
        assert a.domain_id != b.domain_id
        assert a.domain_id in DOMAIN_IDS and b.domain_id in DOMAIN_IDS
    finally:
        a.release()
        b.release()


def test_an_id_leased_by_another_process_is_skipped(monkeypatch: pytest.MonkeyPatch):
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(fixtures.ros.__file__).parents[1])},
    )
    try:
        held = int(other.stdout.readline())
        # make the next lease here try the other process's id first
        monkeypatch.setattr(fixtures.ros, "_counter", itertools.count(DOMAIN_IDS.index(held)))
        lease = DomainLease()
        assert lease.domain_id != held
        lease.release()
    finally:
        other.communicate("")

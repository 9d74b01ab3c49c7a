# SPDX-License-Identifier: Apache-2.0
"""A small or full disk under the SQLite data directory (a tmpfs the test mounts; skipped where
mounting is not allowed). The WAL is checkpointed every 16 MiB by default: on a disk with less
room than that, the WAL alone used to fill it, after which no checkpoint could run and every write
failed until a restart on a bigger disk. Now the checkpoint interval follows the free space, and a
space reserve is released to checkpoint the WAL when the disk fills."""
import os
import subprocess

import pytest

import conftest
from conftest import DataDir, expect, poll_until

pytestmark = pytest.mark.skipif(bool(conftest.PG_SUITE_URL),
                                reason="the SQLite data directory's disk (the suite runs on PostgreSQL)")


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_small_disk_never_wedges_the_wal(small_disk, start_server):
    """1,500 encrypts one after the other on a 6 MB filesystem: each is its own commit, so the
    WAL grows by a few pages per request; before the fix it filled the disk after about 270."""
    srv = start_server(datadir=DataDir(small_disk / "data"))
    kr = srv.create_keyring()
    for i in range(1500):
        expect(srv.admin.post(f"/v1/keyrings/{kr}/encrypt", {"text": f"small-{i}"}), 200)
    wal = os.path.getsize(small_disk / "data" / "difyguard.db-wal")
    assert wal < 3 << 20, f"the WAL grew to {wal} bytes on a 6 MB disk"


def test_a_full_disk_fails_closed_and_recovers_when_space_returns(small_disk, start_server):
    srv = start_server(datadir=DataDir(small_disk / "data"))
    kr = srv.create_keyring()
    expect(srv.admin.post(f"/v1/keyrings/{kr}/encrypt", {"text": "before"}), 200)
    junk = small_disk / "junk"
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT, 0o600)
    refused = 0
    try:
        for _ in range(200):                 # keep the disk full, the released reserve too
            try:
                while True:
                    os.write(fd, b"\0" * 65536)
            except OSError:
                pass
            r = srv.admin.post(f"/v1/keyrings/{kr}/encrypt", {"text": "during"})
            assert r.status_code in (200, 503), r.status_code
            if r.status_code == 503:
                refused += 1
                if refused >= 5:
                    break
    finally:
        os.close(fd)
    assert refused >= 5, "a full disk never refused a request"
    assert srv.running(), "the server died on a full disk"
    os.unlink(junk)
    poll_until(lambda: srv.admin.post(f"/v1/keyrings/{kr}/encrypt",
                                      {"text": "after"}).status_code == 200,
               what="an encrypt succeeding once space returned")
    valid = srv.admin.get("/v1/audit/verify").json()
    assert valid["valid"], valid

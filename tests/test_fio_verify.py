"""fio with verify=crc32c through the mount, on both tiers.

Several fio jobs write a raw volume at once, each in its own region (O_DIRECT,
1 MiB / 64 KiB / 4 KiB / mixed 4 KiB-1 MiB blocks, sequential and random,
libaio at depth 1 and 16, four synchronous writers), then read back and check
every block (crc32c plus the block's offset in its header).  Afterwards the
bytes of the backing file must equal the bytes read through the mount, and
after a remount fio re-checks everything it wrote.  A block corrupted in the
backing file must make that check fail, so a fio that verifies nothing cannot
pass.  No timings are asserted (STYLE.md 9).
"""

import hashlib
import json
import mmap
import os
import shutil
import subprocess

import pytest

from util import ovs
from util.ovs import xget

MiB = ovs.MiB
SIZE = 256 * MiB

pytestmark = pytest.mark.skipif(shutil.which("fio") is None, reason="fio not installed")

# name -> fio options; each job owns [offset, offset + size) of the volume
# (numjobs: offset_increment apart), so no two jobs write the same block.
JOBS = {
    "seq-1m-qd16": "rw=write bs=1m ioengine=libaio iodepth=16 offset=0 size=32m",
    "seq-1m-qd1": "rw=write bs=1m ioengine=libaio iodepth=1 offset=32m size=16m",
    "rand-4k-qd1": "rw=randwrite bs=4k ioengine=libaio iodepth=1 offset=48m size=4m",
    "rand-4k-qd16": "rw=randwrite bs=4k ioengine=libaio iodepth=16 offset=52m size=12m",
    "rand-64k-qd16": "rw=randwrite bs=64k ioengine=libaio iodepth=16 offset=64m size=32m",
    "seq-mixed-qd16": "rw=write bsrange=4k-1m ioengine=libaio iodepth=16 offset=96m size=64m",
    "rand-mixed-qd1": "rw=randwrite bsrange=4k-1m ioengine=libaio iodepth=1 offset=160m "
                      "size=32m",
    "psync-4k-4jobs": "rw=randwrite bs=4k ioengine=psync numjobs=4 offset=192m "
                      "offset_increment=16m size=16m",
}
COMMON = ("direct=1 verify=crc32c do_verify=1 verify_fatal=1 verify_dump=0 fallocate=none "
          "allow_file_create=0")


def kernel_has_passthrough():
    """FUSE passthrough came with Linux 6.9 and needs CAP_SYS_ADMIN (root here)."""
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 9) and os.geteuid() == 0


def job_file(path, volume):
    assert ":" not in volume, "fio reads ':' in filename= as a list separator"
    lines = ["[global]", f"filename={volume}"] + COMMON.split()
    for name, opts in JOBS.items():
        lines += ["", f"[{name}]"] + opts.split()
    path.write_text("\n".join(lines) + "\n")
    return path


def run_fio(jobfile, *extra):
    r = subprocess.run(["fio", "--output-format=json", *extra, str(jobfile)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
                       cwd=jobfile.parent)  # fio leaves *.verify.state files in its cwd
    start = r.stdout.find("{")
    data = json.loads(r.stdout[start:]) if r.returncode == 0 and start >= 0 else None
    return r, data


def check_fio(r, data, what):
    assert r.returncode == 0 and data, (f"fio {what} exited {r.returncode}:\n"
                                        f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    errors = [(j["jobname"], j["error"]) for j in data["jobs"] if j["error"]]
    assert not errors, f"fio {what}: job errors {errors}"
    return {j["jobname"]: j for j in data["jobs"]}


def digest(path):
    """sha256 of a file read with O_DIRECT (no page cache on either side)."""
    h = hashlib.sha256()
    buf = mmap.mmap(-1, MiB)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        off = 0
        while True:
            n = os.preadv(fd, [buf], off)
            if n == 0:
                break
            h.update(buf[:n])
            off += n
    finally:
        os.close(fd)
    return h.hexdigest(), off


def requests(t):
    req = t.mount.status()["requests"]
    return req["read"], req["write"]


@pytest.mark.parametrize("passthrough", ["off", "auto"])
def test_fio_verify(domain, make_tree, workdir, passthrough):
    t = make_tree([domain], opts=[f"passthrough={passthrough}"])
    st = t.mount.status()
    t.mkimg("img")
    v = t.raw("img", "vol", size=SIZE)
    backing = t.backing("img", "vol")
    tier = xget(v, "io")
    if passthrough == "off":
        assert st["passthrough"] is False and tier == "daemon"
    elif kernel_has_passthrough():
        assert st["passthrough"] is True
        assert tier == "passthrough", f"a raw volume with a size gets '{tier}'"
    jobfile = job_file(workdir / "verify.fio", v)

    before = requests(t)
    r, data = run_fio(jobfile)
    check_fio(r, data, "write + verify")
    after = requests(t)
    # one entry per job, the 4 psync writers each their own
    assert len(data["jobs"]) == len(JOBS) + 3
    for j in data["jobs"]:
        w, rd = j["write"]["io_bytes"], j["read"]["io_bytes"]
        assert w > 0 and rd == w, f"{j['jobname']}: wrote {w}, verified {rd} bytes"
    written = sum(j["write"]["io_bytes"] for j in data["jobs"])
    assert written == SIZE, f"the jobs wrote {written} bytes, want all {SIZE}"

    if tier == "daemon":
        # Every byte went through the daemon: at most 1 MiB per request.
        assert after[1] - before[1] >= SIZE // MiB, (before, after)
        assert after[0] - before[0] >= SIZE // MiB, (before, after)
    else:
        # The kernel did the I/O itself.
        assert after == before, f"daemon served I/O with passthrough: {before} -> {after}"

    # The backing file holds exactly what the mount shows.
    assert os.stat(backing).st_size == SIZE
    assert os.stat(v).st_size == SIZE
    assert digest(backing) == digest(v)

    # After a remount fio checks every block again, reading only.
    t.remount()
    r, data = run_fio(jobfile, "--verify_only")
    check_fio(r, data, "verify_only after remount")
    assert sum(j["read"]["io_bytes"] for j in data["jobs"]) == SIZE

    # The check can fail: one corrupted block in the backing file is found.
    off = 40 * MiB + 8192   # in seq-1m-qd1's region
    fd = os.open(backing, os.O_RDWR)
    try:
        good = os.pread(fd, 512, off)
        os.pwrite(fd, bytes(b ^ 0xFF for b in good), off)
        os.fsync(fd)
        r, _ = run_fio(jobfile, "--verify_only", "--section=seq-1m-qd1")
        out = r.stdout + r.stderr
        assert r.returncode != 0, "fio did not notice a corrupted block"
        # the 1 MiB block holding the corrupted bytes, named by its offset
        assert f"verify failed at file {v} offset {40 * MiB}," in out, out[-2000:]
    finally:
        os.pwrite(fd, good, off)
        os.fsync(fd)
        os.close(fd)
    assert digest(backing) == digest(v)

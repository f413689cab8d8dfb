"""The data path: read/write/fsync (buffered and O_DIRECT), alignment,
fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range, chmod/chown, who serves I/O."""

import errno
import mmap
import os
import subprocess

import pytest

from util import ovs
from util.ovs import errname, errno_of, mode, qemu_io, xget

MiB = ovs.MiB


def new_volume(t, fmt, size=64 * MiB, img="img", name="vol"):
    if not os.path.isdir(t.img(img)):
        t.mkimg(img)
    if fmt == "raw":
        return t.raw(img, name, size=size)
    return t.qcow2(img, name, size=str(size))


@pytest.mark.parametrize("cache", ["none", "writeback"])
@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_qemu_io_data(mnt, fmt, cache):
    v = new_volume(mnt, fmt)
    writes = [("0xa1", 0, "1M"), ("0xb2", 4 * MiB, "64k"), ("0xc3", 60 * MiB, "512")]
    qemu_io(v, *[f"write -P {p} {o} {n}" for p, o, n in writes], "flush", fmt=fmt, cache=cache)
    reads = [f"read -P {p} {o} {n}" for p, o, n in writes] + ["read -P 0 1M 3M"]
    qemu_io(v, *reads, fmt=fmt, cache=cache)
    qemu_io(v, *reads, fmt=fmt, cache="none" if cache != "none" else "writeback")
    # the verification itself can fail
    r = qemu_io(v, "read -P 0xee 0 4k", fmt=fmt, cache=cache, check=False)
    assert "Pattern verification failed" in r.stdout + r.stderr
    if fmt == "raw":
        backing = mnt.backing("img", "vol")
        assert ovs.read_at(backing, 0, MiB) == b"\xa1" * MiB
        assert ovs.read_at(backing, 4 * MiB, 65536) == b"\xb2" * 65536
        assert ovs.read_at(backing, 60 * MiB, 512) == b"\xc3" * 512
    mnt.remount()
    qemu_io(v, *reads, fmt=fmt, cache=cache)


def test_plain_read_write_fsync(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    data = os.urandom(3 * MiB + 17)
    fd = os.open(v, os.O_RDWR)
    try:
        assert os.pwrite(fd, data, 12345) == len(data)
        os.fsync(fd)
        os.fdatasync(fd)
        assert os.pread(fd, len(data), 12345) == data
    finally:
        os.close(fd)
    assert os.stat(v).st_size == 12345 + len(data)
    assert xget(v, "capacity") == str(12345 + len(data))
    assert ovs.read_at(mnt.backing("img", "vol"), 12345, len(data)) == data


def test_odirect_alignment(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=MiB)
    buf = mmap.mmap(-1, 3 * 4096)
    mv = memoryview(buf)
    buf[:4096] = b"\x42" * 4096
    fd = os.open(v, os.O_RDWR | os.O_DIRECT)
    try:
        assert os.pwritev(fd, [mv[:4096]], 8192) == 4096
        assert os.preadv(fd, [mv[4096:8192]], 8192) == 4096
        assert bytes(mv[4096:8192]) == b"\x42" * 4096
        # Over written data both tiers refuse what the backing storage
        # refuses.  Over a hole only the daemon tier checks: with passthrough
        # the kernel asks the backing file system, and ext4 reads holes at any
        # alignment (docs/behaviour.md).
        cases = [("offset 1", mv[:512], 8193), ("size 100", mv[:100], 8192),
                 ("offset 100 size 100", mv[:100], 8292)]
        tier = xget(v, "io")
        if tier == "daemon":
            cases += [("hole offset 1", mv[:512], 1), ("hole size 100", mv[:100], 0)]
        for what, view, off in cases:
            for op in (os.preadv, os.pwritev):
                got = errno_of(op, fd, [view], off)
                assert got == errno.EINVAL, (what, op.__name__, errname(got), tier)
    finally:
        os.close(fd)
    back = ovs.read_at(mnt.backing("img", "vol"), 0, 3 * 4096)
    assert back == b"\0" * 8192 + b"\x42" * 4096


def test_fallocate(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    r = subprocess.run(["fallocate", "-l", "4MiB", v], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.stat(v).st_size == 4 * MiB
    assert xget(v, "capacity") == str(4 * MiB)
    b = mnt.backing("img", "vol")
    assert os.stat(b).st_blocks * 512 >= 4 * MiB
    ovs.write_at(v, 0, b"\x11" * (4 * MiB))
    r = subprocess.run(["fallocate", "-p", "-o", "1MiB", "-l", "1MiB", v],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.stat(v).st_size == 4 * MiB
    assert ovs.read_at(v, MiB, MiB) == b"\0" * MiB
    assert ovs.read_at(v, 0, MiB) == b"\x11" * MiB
    fd = os.open(b, os.O_RDONLY)
    try:
        assert os.lseek(fd, MiB, os.SEEK_DATA) == 2 * MiB
    finally:
        os.close(fd)


def test_fallocate_internal_eperm(mnt):
    mnt.mkimg("img")
    base = mnt.raw("img", "base", size=MiB)
    mnt.qcow2("img", "top", backing="base", backing_fmt="raw")
    r = subprocess.run(["fallocate", "-l", "4MiB", base], capture_output=True, text=True)
    assert r.returncode != 0
    assert os.strerror(errno.EPERM) in r.stderr, r.stderr
    assert os.stat(base).st_size == MiB


def segments(fd, size):
    """[(start, end, 'data'|'hole')] by SEEK_DATA/SEEK_HOLE."""
    out = []
    off = 0
    while off < size:
        try:
            data = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            assert e.errno == errno.ENXIO
            out.append((off, size, "hole"))
            break
        if data > off:
            out.append((off, data, "hole"))
        hole = os.lseek(fd, data, os.SEEK_HOLE)
        out.append((data, hole, "data"))
        off = hole
    return out


def test_seek_data_hole(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=16 * MiB)
    ovs.write_at(v, MiB, b"\x01" * 65536)
    ovs.write_at(v, 9 * MiB, b"\x02" * 65536)
    b = mnt.backing("img", "vol")
    fv, fb = os.open(v, os.O_RDONLY), os.open(b, os.O_RDONLY)
    try:
        got, want = segments(fv, 16 * MiB), segments(fb, 16 * MiB)
    finally:
        os.close(fv)
        os.close(fb)
    assert got == want
    assert got[0] == (0, MiB, "hole")
    assert ("hole" in [s[2] for s in got[1:]])


def test_copy_file_range_keeps_holes(mnt):
    mnt.mkimg("img")
    size = 64 * MiB
    src = mnt.raw("img", "src", size=size)
    d1, d2 = os.urandom(MiB), os.urandom(65536)
    ovs.write_at(src, 16 * MiB, d1)
    ovs.write_at(src, 40 * MiB, d2)
    dst = mnt.raw("img", "dst")
    fs, fd = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY)
    try:
        off = 0
        while off < size:
            n = os.copy_file_range(fs, fd, size - off, off, off)
            assert n > 0, f"copy_file_range returned {n} at {off}"
            off += n
        os.fsync(fd)
    finally:
        os.close(fs)
        os.close(fd)
    assert os.stat(dst).st_size == size
    assert xget(dst, "capacity") == str(size)
    assert ovs.read_at(dst, 16 * MiB, MiB) == d1
    assert ovs.read_at(dst, 40 * MiB, 65536) == d2
    with open(dst, "rb") as f, open(src, "rb") as g:
        while True:
            a, b = f.read(4 * MiB), g.read(4 * MiB)
            assert a == b
            if not a:
                break
    # the holes were kept: about as little is allocated as in the source
    backing = mnt.backing("img", "dst")
    assert os.stat(backing).st_blocks * 512 <= 4 * MiB, os.stat(backing).st_blocks
    assert os.stat(dst).st_blocks * 512 <= 4 * MiB


def test_chmod_chown_persist(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol")
    os.chmod(v, 0o640)
    os.chown(v, 107, 108)
    os.chmod(mnt.img("img"), 0o750)
    os.chown(mnt.img("img"), 107, 108)
    for p in (v, mnt.backing("img", "vol")):
        st = os.stat(p)
        assert (mode(p), st.st_uid, st.st_gid) == (0o640, 107, 108), p
    for p in (mnt.img("img"), mnt.backing("img")):
        st = os.stat(p)
        assert (mode(p), st.st_uid, st.st_gid) == (0o750, 107, 108), p
    mnt.remount()
    st = os.stat(v)
    assert (mode(v), st.st_uid, st.st_gid) == (0o640, 107, 108)
    st = os.stat(mnt.img("img"))
    assert (mode(mnt.img("img")), st.st_uid, st.st_gid) == (0o750, 107, 108)


def test_io_attribute(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=MiB)
    q = mnt.qcow2("img", "q")
    st = mnt.mount.status()
    for p in (v, q):
        val = xget(p, "io")
        assert val in ("daemon", "passthrough")
        if not st["passthrough"]:
            assert val == "daemon"


def test_passthrough_off(domain, make_tree):
    t = make_tree([domain], opts=["passthrough=off"])
    assert t.mount.status()["passthrough"] is False
    t.mkimg("img")
    v = t.raw("img", "vol", size=MiB)
    assert xget(v, "io") == "daemon"
    fd = os.open(v, os.O_RDWR)
    try:
        assert xget(v, "io") == "daemon"
    finally:
        os.close(fd)


def test_passthrough_auto(domain, make_tree):
    t = make_tree([domain], opts=["passthrough=auto"])
    st = t.mount.status()
    assert isinstance(st["passthrough"], bool)
    t.mkimg("img")
    v = t.raw("img", "vol", size=4 * MiB)
    fd = os.open(v, os.O_RDWR)
    try:
        io = xget(v, "io")
        assert io in ("daemon", "passthrough")
        if not st["passthrough"]:
            assert io == "daemon"
        assert os.pwrite(fd, b"\x99" * 65536, MiB) == 65536
        os.fsync(fd)
        assert os.pread(fd, 65536, MiB) == b"\x99" * 65536
    finally:
        os.close(fd)
    qemu_io(v, "read -P 0x99 1M 64k", "read -P 0 0 1M", cache="none")
    assert ovs.read_at(t.backing("img", "vol"), MiB, 65536) == b"\x99" * 65536


def direct_write_count(t, v, data):
    """Writes data at 0 with O_DIRECT; returns how many WRITE requests the
    daemon served meanwhile."""
    before = t.mount.status()["requests"]["write"]
    buf = mmap.mmap(-1, len(data))
    buf[:] = data
    fd = os.open(v, os.O_RDWR | os.O_DIRECT)
    try:
        assert os.pwritev(fd, [buf], 0) == len(data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return t.mount.status()["requests"]["write"] - before


def test_io_policy(domain, make_tree):
    """user.ovstore.io_policy=daemon puts a volume on the daemon tier for
    its next opens (16 synchronous writers: behaviour.md), on this host and
    for the life of the mount; `auto` gives it back to the mount's choice."""
    t = make_tree([domain], opts=["passthrough=auto"])
    pt = t.mount.status()["passthrough"]
    t.mkimg("img")
    v = t.raw("img", "vol", size=MiB, data=b"\x01" * 4096)
    assert xget(v, "io_policy") == "auto"
    assert xget(v, "io") == ("passthrough" if pt else "daemon")
    if pt:
        assert direct_write_count(t, v, b"\x02" * 65536) == 0
    ovs.xset(v, "io_policy", "daemon")
    assert xget(v, "io_policy") == "daemon"
    assert xget(v, "io") == "daemon"
    assert direct_write_count(t, v, b"\x03" * 65536) > 0
    assert ovs.read_at(t.backing("img", "vol"), 0, 65536) == b"\x03" * 65536
    # Bad values and places change nothing; the key stays out of listxattr
    # (CONTRACT.md's list), and `io` stays read-only.
    for bad in ("Daemon", "passthrough", "", "daemon\n"):
        assert errno_of(ovs.xset, v, "io_policy", bad) == errno.EINVAL, bad
    assert errno_of(ovs.xset, t.dom(), "io_policy", "daemon") == errno.ENOTSUP
    assert errno_of(xget, t.dom(), "io_policy") == errno.ENODATA
    assert errno_of(ovs.xset, t.img("img"), "io_policy", "threads") == errno.EINVAL
    assert errno_of(ovs.xset, v, "io", "daemon") == errno.EPERM
    assert "user.ovstore.io_policy" not in os.listxattr(v)
    assert xget(v, "io_policy") == "daemon"
    ovs.xset(v, "io_policy", "auto")
    assert xget(v, "io") == ("passthrough" if pt else "daemon")
    if pt:
        assert direct_write_count(t, v, b"\x04" * 65536) == 0
    ovs.xset(v, "io_policy", "daemon")
    t.remount()
    assert xget(v, "io_policy") == "auto"
    assert ovs.read_at(v, 0, 65536) == (b"\x04" if pt else b"\x03") * 65536


def test_io_policy_of_an_image(domain, make_tree):
    """user.ovstore.io_policy on an image (the disk) covers its volumes,
    those there now and those made later (a snapshot's new leaf), without
    changing their own policy."""
    t = make_tree([domain], opts=["passthrough=auto"])
    pt = t.mount.status()["passthrough"]
    t.mkimg("img")
    base = t.raw("img", "base", size=MiB, data=b"\x05" * 4096)
    t.mkimg("other")
    o = t.raw("other", "vol", size=MiB, data=b"\x06" * 4096)
    assert xget(t.img("img"), "io_policy") == "auto"
    ovs.xset(t.img("img"), "io_policy", "daemon")
    assert xget(t.img("img"), "io_policy") == "daemon"
    assert "user.ovstore.io_policy" not in os.listxattr(t.img("img"))
    assert xget(base, "io") == "daemon"
    assert xget(base, "io_policy") == "auto"
    assert xget(o, "io") == ("passthrough" if pt else "daemon")
    assert direct_write_count(t, base, b"\x07" * 4096) > 0
    if pt:
        assert direct_write_count(t, o, b"\x08" * 4096) == 0
    snap = t.qcow2("img", "snap", backing="base", backing_fmt="raw", size=str(MiB))
    assert xget(snap, "io") == "daemon"
    before = t.mount.status()["requests"]["write"]
    qemu_io(snap, "read -P 0x07 0 4k", "write -P 0x09 64k 64k", "read -P 0x09 64k 64k",
            fmt="qcow2", cache="none")
    assert t.mount.status()["requests"]["write"] > before
    ovs.xset(t.img("img"), "io_policy", "auto")
    assert xget(snap, "io") == ("passthrough" if pt else "daemon")


def check_daemon_io(t):
    """Data through the daemon is right: O_DIRECT and not, queued and not,
    across the end of the file, and alignment errors."""
    t.mkimg("img")
    v = t.raw("img", "v", size=8 * MiB)
    qemu_io(v, "aio_write -P 0x5a 0 1M", "aio_write -P 0xa5 1M 1M", "aio_flush",
            "aio_write -P 0x11 4M 4k", "aio_write -P 0x22 5M 64k", "aio_flush", cache="none")
    qemu_io(v, "read -P 0x5a 0 1M", "read -P 0xa5 1M 1M", "read -P 0x11 4M 4k",
            "read -P 0x22 5M 64k", "read -P 0 6M 1M", cache="none", readonly=True)
    qemu_io(v, "write -P 0x33 3 5", "read -P 0x33 3 5", cache="writeback")
    # A read across the end of the file answers what there is.
    data = os.urandom(MiB)
    ovs.write_at(v, 8 * MiB - 4096, data[:4096])
    with open(v, "rb", buffering=0) as f:
        f.seek(8 * MiB - 4096)
        assert f.read(MiB) == data[:4096]
    want = bytearray(b"\x5a" * MiB)
    want[3:8] = b"\x33" * 5
    assert ovs.read_at(t.backing("img", "v"), 0, MiB) == bytes(want)
    # O_DIRECT alignment errors come back from the queued path too.
    buf = mmap.mmap(-1, 4096)
    fd = os.open(v, os.O_RDWR | os.O_DIRECT)
    try:
        assert errno_of(os.preadv, fd, [memoryview(buf)[:100]], 4096) == errno.EINVAL
        assert errno_of(os.pwritev, fd, [memoryview(buf)[:512]], 1) == errno.EINVAL
    finally:
        os.close(fd)


@pytest.mark.parametrize("engine", ["uring", "sync"])
def test_daemon_engines(domain, make_tree, engine):
    """The daemon tier's engines serve data right, O_DIRECT and not.

    threads=1 leaves no free worker, so with engine=uring every read and
    write is queued on io_uring and answered by the completion thread.
    """
    t = make_tree([domain], opts=["passthrough=off", f"engine={engine}", "threads=1"])
    assert t.mount.status()["engine"] == ("io_uring" if engine == "uring" else "sync")
    check_daemon_io(t)
    assert t.mount.status()["requests"]["write"] > 0


@pytest.mark.parametrize("fault", [None, "engine.fixed"], ids=["registered", "refused"])
def test_sync_io_from_registered_buffers(domain, make_tree, fault):
    """Through /dev/fuse, a worker that does a large read or write itself
    (QD1) does it from its own buffers, registered with its own io_uring
    (no page pinning per request); where that is refused (RLIMIT_MEMLOCK,
    an old kernel), pread/pwrite.  The bytes are right either way."""
    env = {"OVSTORE_TEST_FAULT": f"{fault}:EPERM"} if fault else None
    t = make_tree([domain], opts=["passthrough=off", "uring=off"], env=env)
    assert t.mount.status()["transport"] == "dev"
    check_daemon_io(t)
    v = t.raw("img", "big", size=16 * MiB)
    # QD1 (qemu-io's write/read wait for each request): 1 MiB and 192 KiB
    # requests, each done by the worker that got it
    qemu_io(v, "write -P 0x61 0 4M", "write -P 0x62 4M 192k", cache="none")
    qemu_io(v, "read -P 0x61 0 4M", "read -P 0x62 4M 192k", cache="none", readonly=True)
    with open(t.backing("img", "big"), "rb") as f:
        assert f.read(4 * MiB) == b"\x61" * 4 * MiB
        assert f.read(192 * 1024) == b"\x62" * 192 * 1024
    fixed = t.mount.status()["requests"]["fixed"]
    if fault:
        assert fixed == 0
    else:
        assert fixed >= 8, t.mount.status()["requests"]


@pytest.fixture
def uring_knob():
    old = ovs.set_uring_knob(True)
    if old is None:
        pytest.skip("this kernel has no FUSE over io_uring (fuse.enable_uring)")
    yield
    ovs.set_uring_knob(old)


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed-buffers", "plain-buffers"])
def test_uring_transport(domain, make_tree, uring_knob, fixed):
    """With fuse.enable_uring=Y, requests come over io_uring: the queue
    threads serve file volumes' reads and writes, the workers the rest
    (metadata, qcow2 header checks), and the data is right either way:
    with the payload buffers registered with io_uring, and without (where
    registering fails, e.g. RLIMIT_MEMLOCK)."""
    t = make_tree([domain], opts=["passthrough=off"],
                  env=None if fixed else {"OVSTORE_TEST_FAULT": "ring.fixed:ENOMEM"})
    st = t.mount.status()
    assert st["transport"] == "io_uring"
    want = "payload buffers registered" if fixed else "payload buffers not registered"
    assert want in t.mount.stderr(), t.mount.stderr()[-2000:]
    check_daemon_io(t)
    v = t.qcow2("img", "q")
    qemu_io(v, "write -P 0x77 0 3M", "read -P 0x77 0 3M", fmt="qcow2", cache="none")
    subprocess.run(["qemu-img", "check", "-q", v], check=True)
    assert xget(v, "format") == "qcow2"
    # The header rules still hold over the ring: a backing name that is not
    # a volume of the image is refused.
    fd = os.open(v, os.O_RDWR)
    try:
        hdr = bytearray(os.pread(fd, 4096, 0))
        hdr[8:16] = (512).to_bytes(8, "big")
        hdr[16:20] = (8).to_bytes(4, "big")
        hdr[512:520] = b"../x/y/z"
        assert errno_of(os.pwrite, fd, bytes(hdr), 0) == errno.EINVAL
    finally:
        os.close(fd)
    req = t.mount.status()["requests"]
    assert req["ring_direct"] > 0, req
    assert req["ring_workers"] > 0, req
    t.mount.stop()
    t.mount.opts.append("uring=off")
    t.mount.start()
    assert t.mount.status()["transport"] == "dev"
    qemu_io(v, "read -P 0x77 0 3M", fmt="qcow2", cache="none", readonly=True)


@pytest.mark.parametrize("fault", ["ring.start", "ring.queue", "ring.queue:once"])
def test_uring_falls_back(domain, make_tree, uring_knob, fault):
    """When the queues cannot be set up after INIT took io_uring (the kernel
    then holds every request for the ring), the daemon makes the kernel give
    the ring up, and requests come through /dev/fuse: the mount works."""
    t = make_tree([domain], opts=["passthrough=off"],
                  env={"OVSTORE_TEST_FAULT": f"{fault}:EIO" if ":" not in fault
                       else fault.replace(":once", ":EIO:once")})
    t.mount.allow_stderr(r"Input/output error")
    st = t.mount.status()
    assert st["transport"] == "dev"
    check_daemon_io(t)
    assert "requests come through /dev/fuse" in t.mount.stderr()


@pytest.mark.parametrize("passthrough", ["off", "auto"])
def test_writes_do_not_ask_for_capabilities(domain, make_tree, passthrough):
    """The mount takes FUSE_HANDLE_KILLPRIV_V2, so the kernel does not send a
    GETXATTR security.capability before every write (a round trip each, under
    the inode lock); and a volume never keeps set-id bits that writes would
    have to clear."""
    t = make_tree([domain], opts=[f"passthrough={passthrough}"])
    t.mkimg("img")
    v = t.raw("img", "v", size=MiB)
    os.chmod(v, 0o6770)
    assert mode(v) == 0o770, "set-id bits are dropped on volumes"
    buf = mmap.mmap(-1, 4096)
    fd = os.open(v, os.O_RDWR | os.O_DIRECT)
    try:
        os.pwritev(fd, [buf], 0)
        before = t.mount.status()["requests"]["getxattr"]
        for i in range(64):
            assert os.pwritev(fd, [buf], 4096 * i) == 4096
        after = t.mount.status()["requests"]["getxattr"]
    finally:
        os.close(fd)
    assert after - before < 8, f"{after - before} GETXATTR requests for 64 writes"

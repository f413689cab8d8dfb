"""What succeeded survives a clean unmount and a kill -9 of the daemon:
volumes, formats, parents, roles, templates, descriptions, modes, data."""

import mmap
import os
import subprocess

import pytest

from util import ovs
from util.ovs import Domain, qemu_io, xget, xset

MiB = ovs.MiB
SNAP_KEYS = ("format", "allocation", "capacity", "parent", "role", "legality", "description",
             "generation")


@pytest.fixture
def rich(storage, pool, make_tree, workdir):
    """A pool with a bit of everything, mounted."""
    master = Domain.create(storage, pool, "--description", "master")
    regular = Domain.create(storage, pool, "--description", "regular")
    iso = Domain.create(storage, pool, klass="iso")
    t = make_tree([master, regular, iso])
    # chain in image A
    t.mkimg("A")
    base = t.raw("A", "base", size=8 * MiB)
    qemu_io(base, "write -P 0x5a 0 1M")
    top = t.qcow2("A", "top", size="16M", backing="base", backing_fmt="raw")
    qemu_io(top, "write -P 0x6b 2M 64k", fmt="qcow2")
    xset(top, "description", "top of A \u2603")
    os.chmod(top, 0o640)
    # a template in T, linked into C, with a child there
    t.mkimg("T")
    t.mkimg("C")
    tmpl = t.raw("T", "tmpl", size=4 * MiB)
    qemu_io(tmpl, "write -P 0x3c 0 1M")
    os.link(tmpl, t.vol("C", "tmpl"))
    child = t.qcow2("C", "child", size="8M", backing="tmpl", backing_fmt="raw")
    qemu_io(child, "write -P 0x4d 1M 64k", fmt="qcow2")
    # an illegal mark, an empty image, a volume on the regular domain
    t.raw("A", "marked", size=MiB)
    xset(t.vol("A", "marked"), "legality", "illegal")
    t.ondisk["allow_illegal"].add("marked")
    t.mkimg("empty")
    t.mkimg("R", regular)
    rq = t.qcow2("R", "rq", size="32M", d=regular)
    qemu_io(rq, "write -P 0x7e 0 64k", fmt="qcow2")
    xset(rq, "description", "on the regular domain")
    os.chown(t.img("R", regular), 107, 107)
    # an ISO file
    src = workdir / "x.iso"
    src.write_bytes(b"\x01\x02" * 100000)
    r = subprocess.run(["cp", str(src), t.dom(iso)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return t


def snapshot(t):
    snap = {"root": os.listdir(t.root), "pools": {}}
    for p in os.listdir(t.root):
        pdir = os.path.join(t.root, p)
        pool = {"xattr": {k: xget(pdir, k) for k in ("uuid", "spm", "host_id")}, "domains": {}}
        for d in os.listdir(pdir):
            ddir = os.path.join(pdir, d)
            dom = {"xattr": {k: xget(ddir, k) for k in ("uuid", "type", "class", "version",
                                                        "role", "description")},
                   "entries": {}}
            for e in os.listdir(ddir):
                path = os.path.join(ddir, e)
                st = os.stat(path)
                entry = {"mode": oct(st.st_mode), "owner": (st.st_uid, st.st_gid)}
                if os.path.isdir(path):
                    entry["list"] = os.listdir(path)
                    entry["volumes"] = {}
                    for v in entry["list"]:
                        vp = os.path.join(path, v)
                        vst = os.stat(vp)
                        entry["volumes"][v] = {
                            "mode": oct(vst.st_mode), "owner": (vst.st_uid, vst.st_gid),
                            "size": vst.st_size,
                            **{k: xget(vp, k) for k in SNAP_KEYS}}
                else:
                    entry["size"] = st.st_size
                dom["entries"][e] = entry
            pool["domains"][d] = dom
        snap["pools"][p] = pool
    return snap


def verify_data(t):
    qemu_io(t.vol("A", "top"), "read -P 0x5a 0 1M", "read -P 0x6b 2M 64k", "read -P 0 1M 1M",
            fmt="qcow2", readonly=True)
    qemu_io(t.vol("C", "child"), "read -P 0x3c 0 1M", "read -P 0x4d 1M 64k", fmt="qcow2",
            readonly=True)
    qemu_io(t.vol("R", "rq", t.domains[1]), "read -P 0x7e 0 64k", fmt="qcow2", readonly=True)
    with open(os.path.join(t.dom(t.domains[2]), "x.iso"), "rb") as f:
        assert f.read() == b"\x01\x02" * 100000


def test_survives_unmount(rich):
    before = snapshot(rich)
    rich.remount()
    assert snapshot(rich) == before
    verify_data(rich)


def test_survives_kill9(rich):
    before = snapshot(rich)
    rich.kill_and_remount()
    assert snapshot(rich) == before
    verify_data(rich)
    rich.kill_and_remount()
    assert snapshot(rich) == before


def test_fsynced_data_survives_kill9(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=16 * MiB)
    data = os.urandom(MiB)
    fd = os.open(v, os.O_RDWR)
    os.pwrite(fd, data, 3 * MiB)
    os.fsync(fd)
    # O_DIRECT write + fdatasync
    buf = mmap.mmap(-1, 65536)
    buf[:] = b"\xd1" * 65536
    dfd = os.open(v, os.O_RDWR | os.O_DIRECT)
    assert os.pwritev(dfd, [buf], 8 * MiB) == 65536
    os.fdatasync(dfd)
    q = mnt.qcow2("img", "q", size="16M")
    qemu_io(q, "write -P 0xe7 0 1M", "flush", fmt="qcow2", cache="none")
    mnt.mount.kill9()
    for f in (fd, dfd):
        try:
            os.close(f)
        except OSError:
            pass
    mnt.mount.start()
    assert ovs.read_at(v, 3 * MiB, MiB) == data
    assert ovs.read_at(v, 8 * MiB, 65536) == b"\xd1" * 65536
    qemu_io(q, "read -P 0xe7 0 1M", fmt="qcow2", readonly=True)


def test_open_for_write_forgotten_after_kill9(mnt):
    mnt.mkimg("img")
    v = mnt.raw("img", "vol", size=MiB)
    fd = os.open(v, os.O_RDWR)
    mnt.mount.kill9()
    try:
        os.close(fd)
    except OSError:
        pass
    mnt.mount.start()
    os.rename(v, mnt.vol("img", "vol2"))
    os.unlink(mnt.vol("img", "vol2"))
    assert os.listdir(mnt.img("img")) == []

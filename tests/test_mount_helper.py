"""Mounting the way mount(8) does: mount.ovstore (type ovstore, /etc/fstab
lines) and mount.fuse3 (type fuse.ovstore, `ovstore` found on PATH)."""

import os
import shutil
import subprocess

import pytest

from util import ovs
from util.ovs import Domain, assert_one_line_error

MiB = ovs.MiB


@pytest.fixture
def helper(product):
    if not os.access(ovs.HELPER, os.X_OK):
        pytest.skip(f"mount helper not built: {ovs.HELPER}")
    return ovs.HELPER


class Daemonized:
    """A mount made by a helper: the daemon is found by its mount point."""

    def __init__(self, workdir, name="mp"):
        self.path = os.path.join(workdir, name)
        os.makedirs(self.path, exist_ok=True)
        self.pids = []

    def mounted(self):
        assert ovs.is_mounted(self.path), "not mounted when the helper returned"
        self.pids = ovs.pids_with_arg(self.path)
        assert self.pids, "no daemon process"

    def unmount(self):
        r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert ovs.wait_pids_gone(self.pids), "daemon did not exit after unmount"


def run_helper(helper, *args, env=None, path_prefix=None):
    e = ovs.base_env(env, debug=False)
    e["OVSTORE_BIN"] = ovs.BIN
    if path_prefix:
        e["PATH"] = f"{path_prefix}:{e.get('PATH', '')}"
    return subprocess.run([helper, *map(str, args)], capture_output=True, text=True, env=e,
                          stdin=subprocess.DEVNULL, timeout=ovs.DEADLINE)


@pytest.fixture
def dm(workdir):
    d = Daemonized(workdir)
    yield d
    if ovs.is_mounted(d.path):
        subprocess.run(["fusermount3", "-u", d.path], capture_output=True)
        ovs.wait_pids_gone(d.pids)


def test_helper_help(helper):
    r = subprocess.run([helper, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()


def test_helper_mounts(helper, domain, dm):
    r = run_helper(helper, domain.storage, dm.path, "-o", "lease=local")
    assert r.returncode == 0, r.stderr
    dm.mounted()
    assert ovs.mount_entry(dm.path)[0].startswith("fuse")
    assert os.listdir(dm.path) == [domain.pool]
    assert os.listdir(os.path.join(dm.path, domain.pool)) == [domain.uuid]
    img = os.path.join(dm.path, domain.pool, domain.uuid, "img")
    os.mkdir(img)
    ovs.create_volume(os.path.join(img, "vol"))
    dm.unmount()
    assert os.path.exists(domain.images("img", "vol.meta"))


def test_helper_fake_mode(helper, domain, dm):
    r = run_helper(helper, "-f", domain.storage, dm.path,
                   "-o", "lease=local,_netdev,nofail,uid=107")
    assert r.returncode == 0, r.stderr
    assert not ovs.is_mounted(dm.path)
    line = r.stdout.strip()
    assert len(r.stdout.splitlines()) == 1
    for want in ("mount", "--lease", "local", "--storage", domain.storage, dm.path, "uid=107"):
        assert want in line, (want, line)
    for dropped in ("_netdev", "nofail", "lease="):
        assert dropped not in line, (dropped, line)


def test_helper_fstab_options(helper, workdir, storage, pool, dm):
    master = Domain.create(storage, pool)
    extra = workdir / "extra"
    extra.mkdir()
    r = ovs.ovstore("domain", "create", "--pool", pool, "--dir", extra, "--storage", storage)
    assert r.returncode == 0, r.stderr
    regular = r.stdout.strip()
    opts = (f"lease=local,host_id=3,io_timeout=2,storage={extra},_netdev,nofail,defaults,"
            "noauto,x-systemd.requires=foo.service,comment=ovstore,uid=107,gid=108,"
            f"passthrough={ovs.PASSTHROUGH}")
    r = run_helper(helper, storage, dm.path, "-o", opts)
    assert r.returncode == 0, r.stderr
    dm.mounted()
    pdir = os.path.join(dm.path, pool)
    assert sorted(os.listdir(pdir)) == sorted([master.uuid, regular])
    st = os.stat(pdir)
    assert (st.st_uid, st.st_gid) == (107, 108)
    assert os.getxattr(pdir, "user.ovstore.host_id") == b"3"
    dm.unmount()


def test_helper_bad_option(helper, domain, dm):
    r = run_helper(helper, domain.storage, dm.path, "-o", "lease=local,host_id=0")
    assert_one_line_error(r, "host_id=0")
    assert not ovs.is_mounted(dm.path)


def test_helper_missing_storage(helper, workdir, dm):
    r = run_helper(helper, workdir / "nope", dm.path, "-o", "lease=local")
    assert r.returncode != 0
    assert not ovs.is_mounted(dm.path)


def test_fuse_ovstore_through_mount_fuse3(product, domain, workdir, dm):
    mount_fuse = shutil.which("mount.fuse3") or "/sbin/mount.fuse3"
    if not os.access(mount_fuse, os.X_OK):
        pytest.skip("mount.fuse3 not installed")
    bindir = workdir / "bin"
    bindir.mkdir()
    os.symlink(ovs.BIN, bindir / "ovstore")
    r = run_helper(mount_fuse, domain.storage, dm.path, "-t", "fuse.ovstore",
                   "-o", f"lease=local,passthrough={ovs.PASSTHROUGH}", path_prefix=bindir)
    assert r.returncode == 0, r.stdout + r.stderr
    dm.mounted()
    assert os.listdir(dm.path) == [domain.pool]
    dm.unmount()

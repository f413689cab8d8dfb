"""Fixtures of the ovstore black-box suite (tests/README.md).

    workdir   a fresh directory under /var/tmp (O_DIRECT fails on tmpfs);
              everything mounted or started below it is cleaned up at the end
    pool      a fresh pool UUID
    storage   workdir/storage, an empty storage directory
    domain    `ovstore domain create --pool POOL --dir STORAGE` (a Domain)
    mounts    factory: mounts(storages, **Mount kwargs) -> started Mount;
              each is unmounted cleanly and its stderr checked at the end
    mnt       a Tree: domain mounted with `ovstore mount -f --lease local`;
              at the end: clean unmount (exit 0), stderr check, on-disk check
    make_tree factory: make_tree(domains, **Mount kwargs) -> Tree, same checks
"""

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from util import ovs  # noqa: E402


def pytest_report_header(config):
    return [f"ovstore: {ovs.BIN}", f"mount helper: {ovs.HELPER}",
            f"passthrough: {ovs.PASSTHROUGH}", f"uring: {ovs.URING or 'as the kernel is'}"]


@pytest.fixture(scope="session")
def product():
    """Skips (never fails) when the machine or the build cannot run the suite."""
    why = ovs.missing_requirements()
    if why:
        pytest.skip(why)
    if ovs.PASSTHROUGH not in ("auto", "off"):
        pytest.fail(f"OVSTORE_TEST_PASSTHROUGH={ovs.PASSTHROUGH}: want auto or off")
    if ovs.URING not in ("", "on", "off"):
        pytest.fail(f"OVSTORE_TEST_URING={ovs.URING}: want on or off")
    old = ovs.set_uring_knob(ovs.URING == "on") if ovs.URING else None
    yield
    if old is not None:
        ovs.set_uring_knob(old)


@pytest.fixture
def workdir(product, request):
    d = ovs.make_workdir()
    yield Path(d)
    ovs.unmount_everything_under(d)
    ovs.kill_leftovers(d)
    ovs.unmount_everything_under(d)
    failed = getattr(request.node, "rep_call", None) and request.node.rep_call.failed
    if os.environ.get("OVSTORE_TEST_KEEP") == "1" or (
            failed and os.environ.get("OVSTORE_TEST_KEEP") == "failed"):
        print(f"kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def pool():
    return str(uuid.uuid4())


@pytest.fixture
def storage(workdir):
    p = workdir / "storage"
    p.mkdir()
    return p


@pytest.fixture
def domain(storage, pool):
    return ovs.Domain.create(storage, pool, "--description", "test domain")


@pytest.fixture
def mounts(workdir):
    made = []

    def make(storages, name=None, start=True, env=None, **kw):
        m = ovs.Mount(workdir, storages, name=name or f"mnt{len(made)}", **kw)
        made.append(m)
        if start:
            m.start(env)
        return m

    yield make
    errors = []
    for m in made:
        try:
            m.close()
        except AssertionError as e:
            errors.append(f"{m.path}: {e}")
    assert not errors, "\n".join(errors)


@pytest.fixture
def make_tree(mounts):
    trees = []

    def make(domains, storages=None, **kw):
        storages = storages or list(dict.fromkeys(d.storage for d in domains))
        m = mounts(storages, **kw)
        t = ovs.Tree(m, domains)
        trees.append(t)
        return t

    yield make
    errors = []
    for t in trees:
        try:
            t.mount.close()
        except AssertionError as e:
            errors.append(str(e))
        if t.check_ondisk:
            try:
                t.check()
            except AssertionError as e:
                errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture
def mnt(domain, make_tree):
    return make_tree([domain])


@pytest.fixture
def small_fs(workdir):
    """Factory: small_fs(size_mb) -> the mount point of a fresh ext4 on a loop
    device (its own size and free space; fills up quickly).  Skips when
    mkfs.ext4 or loop mounts are not available."""
    made = []

    def make(size_mb=96, name=None):
        if not ovs.shutil.which("mkfs.ext4"):
            pytest.skip("mkfs.ext4 not installed")
        name = name or f"smallfs{len(made)}"
        img = workdir / f"{name}.img"
        mp = workdir / name
        mp.mkdir()
        with open(img, "wb") as f:
            f.truncate(size_mb * ovs.MiB)
        r = ovs.subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096", str(img)],
                               capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"mkfs.ext4 failed: {r.stderr}")
        r = ovs.subprocess.run(["mount", "-o", "loop", str(img), str(mp)],
                               capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot loop-mount: {r.stderr.strip()}")
        made.append(mp)
        return mp

    yield make
    for mp in reversed(made):
        if ovs.is_mounted(mp):
            r = ovs.subprocess.run(["umount", str(mp)], capture_output=True)
            if r.returncode != 0:
                ovs.subprocess.run(["umount", "-l", str(mp)], capture_output=True)


def fill_up(directory):
    """Fills the file system of directory; returns the filler's path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (ovs.MiB, 4096):
            buf = b"\xaa" * chunk
            while True:
                try:
                    os.write(fd, buf)
                except OSError as e:
                    assert e.errno == ovs.errno.ENOSPC, e
                    break
        os.fsync(fd)
        for _ in range(64):
            try:
                os.write(fd, b"\xaa" * 4096)
                os.fsync(fd)
            except OSError:
                break
    finally:
        os.close(fd)
    return path


@pytest.fixture
def filler():
    return fill_up

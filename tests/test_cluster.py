"""Many hosts on one storage (CONTRACT "Cluster behaviour"), black-box: one
real sanlock daemon and one real mount per simulated host (cluster.py), all
on one storage directory.

What is checked: exactly one SPM, found by the hosts themselves; metadata
changes asked on a host that is not SPM are done by the SPM through the
storage mailbox and seen everywhere; hand-over by `release`, by the SPM's
death (kill -9) and never two SPMs at once; ETIMEDOUT with nothing done when
the SPM does not answer; the domain consistent on disk after all of it.
"""

import errno
import os
import signal
import subprocess
import time

import pytest

import ondisk
import test_crash
from cluster import IO_TIMEOUT, cluster, sanlock_daemons  # noqa: F401 (fixtures)
from test_block import create_ok as block_create_ok
from test_block import loops, lvs  # noqa: F401 (loops: fixture)
from util import ovs

MiB = ovs.MiB
GiB = ovs.GiB


def create_domain(storage, pool):
    return ovs.Domain.create(storage, pool, "--io-timeout", str(IO_TIMEOUT))


def wait_for(fn, what, timeout=None):
    deadline = time.monotonic() + (timeout or ovs.DEADLINE)
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def is_spm(m):
    [p] = m.status()["pools"]
    return p["is_spm"]


def spm_of(m):
    [p] = m.status()["pools"]
    return p["spm"]


def spm_mount(mounts):
    """The one mount whose host is SPM (waits until exactly one is)."""
    def one():
        spms = [m for m in mounts if m.alive() and is_spm(m)]
        return spms[0] if len(spms) == 1 else None
    return wait_for(one, "exactly one SPM")


def start_hosts(cluster, storage, n):
    hosts = cluster.hosts(n)
    return hosts, [h.mount([storage]) for h in hosts]


def p(m, dom, *parts):
    return os.path.join(m.path, dom.pool, dom.uuid, *parts)


def check_disk(storage):
    ondisk.assert_consistent([storage])


# --------------------------------------------------------------- election

def test_exactly_one_spm(cluster, storage, pool):
    create_domain(storage, pool)
    hosts, ms = start_hosts(cluster, storage, 3)
    spm = spm_mount(ms)
    assert spm is ms[0], "the first host to mount takes the free SPM lease"
    for m in ms:
        assert wait_for(lambda: spm_of(m) == 1, "every host naming host 1 as SPM")
    assert [is_spm(m) for m in ms] == [True, False, False]
    # only the SPM's sanlock daemon holds the SDM resource
    holders = [h.host_id for h in hosts if h.daemon.resources("SDM")]
    assert holders == [1]
    for m in ms:
        assert ovs.xget(os.path.join(m.path, pool), "spm") == "1"


# ------------------------------------------------------------- forwarding

def test_metadata_from_non_spm_host(cluster, storage, pool):
    dom = create_domain(storage, pool)
    hosts, (a, b) = start_hosts(cluster, storage, 2)
    assert spm_mount([a, b]) is a
    # everything below is asked on host 2, which is not SPM
    img = p(b, dom, "img1")
    os.mkdir(img)
    assert os.path.isdir(img)
    assert os.path.isdir(dom.images("img1")), "the SPM made the image directory"
    base = os.path.join(img, "base")
    ovs.create_volume(base)
    os.truncate(base, 4 * MiB)
    assert os.stat(base).st_size == 4 * MiB
    ovs.write_at(base, MiB, b"written on host 2" * 100)
    ovs.xset(base, "description", "made on host 2")
    assert ovs.xget(base, "description") == "made on host 2"
    # a qcow2 leaf on top, made by qemu-img through host 2
    ovs.qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", "base",
                 os.path.join(img, "top"), "4M")
    assert ovs.xget(os.path.join(img, "top"), "format") == "qcow2"
    assert ovs.xget(base, "role") == "internal"
    ovs.qemu_io(os.path.join(img, "top"), "write -P 0x5a 2M 64k", fmt="qcow2")

    # host 1 (the SPM) sees all of it
    a_img = p(a, dom, "img1")
    wait_for(lambda: os.path.exists(os.path.join(a_img, "top")), "host 1 to see 'top'",
             timeout=5)
    assert ovs.xget(os.path.join(a_img, "base"), "description") == "made on host 2"
    assert ovs.xget(os.path.join(a_img, "top"), "format") == "qcow2"
    assert sorted(os.listdir(a_img)) == ["base", "top"]
    ovs.qemu_io(os.path.join(a_img, "top"), "read -P 0x5a 2M 64k", fmt="qcow2",
                readonly=True)
    assert ovs.read_at(os.path.join(a_img, "base"), MiB, 17) == b"written on host 2"

    # errors come back from the SPM as the caller's errno
    assert ovs.errno_of(os.mkdir, img) == errno.EEXIST
    assert ovs.errno_of(os.unlink, base) == errno.EBUSY       # it has a child
    assert ovs.errno_of(ovs.xset, base, "legality", "bogus") == errno.EINVAL

    # rename and delete, again from host 2
    os.rename(img, p(b, dom, "img2"))
    img = p(b, dom, "img2")
    os.unlink(os.path.join(img, "top"))
    os.unlink(os.path.join(img, "base"))
    os.rmdir(img)
    assert not os.path.exists(img)
    wait_for(lambda: not os.path.exists(p(a, dom, "img2"))
             and not os.path.exists(a_img), "host 1 to see the removal", timeout=5)
    assert os.listdir(dom.images()) == []
    a.stop()
    b.stop()
    check_disk(storage)


def test_changes_on_spm_seen_elsewhere(cluster, storage, pool):
    dom = create_domain(storage, pool)
    hosts, (a, b) = start_hosts(cluster, storage, 2)
    assert spm_mount([a, b]) is a
    os.mkdir(p(a, dom, "imgA"))
    ovs.create_volume(p(a, dom, "imgA", "vol"))
    # CONTRACT: other hosts see it within 2 s (entry/attr timeouts 1 s, change
    # log read every 0.25 s); a loaded CI machine gets some slack
    wait_for(lambda: os.path.exists(p(b, dom, "imgA", "vol")), "host 2 to see 'vol'",
             timeout=5)
    ovs.xset(p(a, dom, "imgA", "vol"), "legality", "illegal")
    wait_for(lambda: ovs.xget(p(b, dom, "imgA", "vol"), "legality") == "illegal",
             "host 2 to see the legality", timeout=5)


def test_open_for_write_elsewhere_is_busy(cluster, storage, pool):
    dom = create_domain(storage, pool)
    hosts, (a, b) = start_hosts(cluster, storage, 2)
    assert spm_mount([a, b]) is a
    os.mkdir(p(a, dom, "img"))
    for name in ("on-b", "on-a"):
        ovs.create_volume(p(a, dom, "img", name))
    wait_for(lambda: os.path.exists(p(b, dom, "img", "on-a")), "host 2 to see them",
             timeout=5)
    # host 2 writes "on-b": the SPM refuses to remove or rename it
    fd = os.open(p(b, dom, "img", "on-b"), os.O_WRONLY)
    try:
        assert ovs.errno_of(os.unlink, p(a, dom, "img", "on-b")) == errno.EBUSY
        assert ovs.errno_of(os.rename, p(a, dom, "img", "on-b"),
                            p(a, dom, "img", "moved")) == errno.EBUSY
    finally:
        os.close(fd)
    # the SPM writes "on-a": host 2's forwarded unlink gets EBUSY
    fd = os.open(p(a, dom, "img", "on-a"), os.O_WRONLY)
    try:
        assert ovs.errno_of(os.unlink, p(b, dom, "img", "on-a")) == errno.EBUSY
    finally:
        os.close(fd)
    # closed: both go (the lease follows the kernel's RELEASE, a moment later)
    wait_for(lambda: ovs.errno_of(os.unlink, p(a, dom, "img", "on-b")) is None,
             "unlink after the close on host 2")
    wait_for(lambda: ovs.errno_of(os.unlink, p(b, dom, "img", "on-a")) is None,
             "unlink after the close on host 1")


# --------------------------------------------------------------- hand-over

def test_release_hands_over(cluster, storage, pool):
    dom = create_domain(storage, pool)
    hosts, (a, b) = start_hosts(cluster, storage, 2)
    assert spm_mount([a, b]) is a
    assert ovs.errno_of(ovs.xset, os.path.join(b.path, pool), "spm", "release") == \
        errno.EPERM, "only the SPM can release"
    ovs.xset(os.path.join(a.path, pool), "spm", "release")
    assert spm_mount([a, b]) is b
    wait_for(lambda: spm_of(a) == 2, "host 1 to name host 2 as SPM")
    kv, seal, _ = ondisk.read_domain_metadata(dom.path)
    assert seal == ondisk.seal(kv)
    assert kv["POOL_SPM_ID"] == "2"
    [(_, _, _, _, lver, _)] = hosts[1].daemon.resources("SDM")
    assert kv["POOL_SPM_LVER"] == str(lver)
    # metadata works from the old SPM, now forwarding to the new one
    os.mkdir(p(a, dom, "after-release"))
    assert os.path.isdir(dom.images("after-release"))


def test_spm_killed_another_takes_over(cluster, storage, pool):
    dom = create_domain(storage, pool)
    hosts, (a, b, c) = start_hosts(cluster, storage, 3)
    assert spm_mount([a, b, c]) is a
    os.mkdir(p(b, dom, "before"))
    a.kill9()
    new = spm_mount([b, c])
    other = c if new is b else b
    os.mkdir(p(other, dom, "after"))
    ovs.create_volume(p(other, dom, "after", "v"))
    assert os.path.isdir(dom.images("after"))
    wait_for(lambda: os.path.exists(p(new, dom, "after", "v")), "the new SPM to see it",
             timeout=5)
    # the killed host comes back as a host that is not SPM
    a.start(hosts[0].env)
    assert not is_spm(a)
    assert os.path.exists(p(a, dom, "after", "v"))


def test_never_two_spms(cluster, storage, pool):
    create_domain(storage, pool)
    hosts, (a, b) = start_hosts(cluster, storage, 2)
    current = spm_mount([a, b])
    for i in range(50):
        ovs.xset(os.path.join(current.path, pool), "spm", "release")
        deadline = time.monotonic() + ovs.DEADLINE
        while True:
            # sampled through sanlock itself: at most one holder of SDM
            holders = [h for h in hosts if h.daemon.resources("SDM")]
            assert len(holders) <= 1, f"hand-over {i}: two SPMs"
            flags = [is_spm(m) for m in (a, b)]
            assert flags.count(True) <= 1, f"hand-over {i}: two hosts say they are SPM"
            nxt = [m for m, f in zip((a, b), flags) if f]
            if nxt and nxt[0] is not current:
                current = nxt[0]
                break
            assert time.monotonic() < deadline, f"hand-over {i} did not happen"
            time.sleep(0.05)


# ---------------------------------------------------------------- timeouts

def test_no_answer_is_etimedout_and_nothing_done(cluster, storage, pool):
    dom = create_domain(storage, pool)
    hosts, (a, b) = start_hosts(cluster, storage, 2)
    assert spm_mount([a, b]) is a
    # the SPM's daemon stops answering but keeps its lease (sanlock renews it)
    a.proc.send_signal(signal.SIGSTOP)
    try:
        e = ovs.errno_of(os.mkdir, p(b, dom, "never"))
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert e == errno.ETIMEDOUT, ovs.errname(e)
    time.sleep(1)
    assert not os.path.exists(dom.images("never")), "a timed-out change is not done later"
    assert not os.path.exists(p(a, dom, "never"))
    # and the next change goes through
    os.mkdir(p(b, dom, "later"))
    assert os.path.isdir(dom.images("later"))


# ------------------------------------------------------------ block domains

def test_block_thin_writes_from_non_spm_host(loops, cluster, pool):
    # loops first: its teardown must come after the mounts'
    devs = loops(1)
    sd = block_create_ok(pool, devs, "--io-timeout", str(IO_TIMEOUT))
    hosts = cluster.hosts(2)
    a = hosts[0].mount(devs, opts=["chunk_mb=128"])
    b = hosts[1].mount(devs, opts=["chunk_mb=128"])
    assert spm_mount([a, b]) is a
    img = os.path.join(b.path, pool, sd, "img")
    os.mkdir(img)                       # forwarded; kept in host 2's memory
    vol = os.path.join(img, "thin")
    ovs.qemu_img("create", "-f", "qcow2", vol, "3G")
    assert ovs.xget(vol, "format") == "qcow2"
    assert int(lvs(devs)["thin"]["lv_size"]) == 128 * MiB
    # 2 GiB through host 2: every extension asked of host 1 by the mailbox
    ovs.qemu_io(vol, "write -P 0x5a 0 1G", "write -P 0xa5 1G 1G", fmt="qcow2",
                cache="none")
    ovs.qemu_io(vol, "read -P 0x5a 0 1G", "read -P 0xa5 1G 1G", fmt="qcow2",
                cache="none", readonly=True)
    grown = int(lvs(devs)["thin"]["lv_size"])
    assert 2 * GiB < grown <= 3 * GiB + 3 * GiB // 10 + 128 * MiB
    [pb] = b.status()["pools"]
    [db] = pb["domains"]
    assert db["thin"]["remote"] > 0, db["thin"]
    # host 1 (the SPM) reads the same bytes through its own, reloaded map
    avol = os.path.join(a.path, pool, sd, "img", "thin")
    wait_for(lambda: os.path.exists(avol), "host 1 to see the volume", timeout=5)
    wait_for(lambda: os.stat(avol).st_size == grown, "host 1 to see the LV's size",
             timeout=5)
    ovs.qemu_io(avol, "read -P 0xa5 1G 1G", fmt="qcow2", cache="none", readonly=True)
    # the writer's view agrees with lvs
    assert os.stat(vol).st_size == grown


def test_block_extension_used_only_once_zeroed(loops, cluster, pool):
    """The SPM zeroes an extension's new extents after its lvextend (they may
    hold a deleted LV's bytes).  A host that re-reads the LV's segments in
    between (any change the SPM publishes makes it re-read the domain) must
    not write there yet, or the zeroing eats its writes."""
    devs = loops(1)
    sd = block_create_ok(pool, devs, "--io-timeout", str(IO_TIMEOUT))
    hosts = cluster.hosts(2)
    # every extension on the SPM waits 3 s between its lvextend and its zeroing
    a = hosts[0].mount(devs, opts=["chunk_mb=128"],
                       env={"OVSTORE_TEST_FAULT": "extend.zero:delay"})
    b = hosts[1].mount(devs, opts=["chunk_mb=128"])
    assert spm_mount([a, b]) is a
    img = os.path.join(b.path, pool, sd, "img")
    os.mkdir(img)
    vol = os.path.join(img, "thin")
    ovs.qemu_img("create", "-f", "qcow2", vol, "1G")
    assert int(lvs(devs)["thin"]["lv_size"]) == 128 * MiB
    # past half the chunk: host 2 asks the SPM to extend ahead, and goes on
    ovs.qemu_io(vol, "write -P 0x5a 0 100M", fmt="qcow2", cache="none")
    # the SPM's lvextend is done, its zeroing not yet; host 2 re-reads
    wait_for(lambda: int(lvs(devs)["thin"]["lv_size"]) == 256 * MiB, "the lvextend")
    time.sleep(1)
    # lands past the old end of the LV: only after the zeroing
    ovs.qemu_io(vol, "write -P 0xa5 100M 100M", fmt="qcow2", cache="none")
    ovs.qemu_io(vol, "read -P 0x5a 0 100M", "read -P 0xa5 100M 100M", fmt="qcow2",
                cache="none", readonly=True)
    avol = os.path.join(a.path, pool, sd, "img", "thin")
    wait_for(lambda: os.path.exists(avol), "host 1 to see the volume", timeout=5)
    ovs.qemu_io(avol, "read -P 0x5a 0 100M", "read -P 0xa5 100M 100M", fmt="qcow2",
                cache="none", readonly=True)


# ------------------------------------------------- persistent tasks (journal)

# One step of each multi-step operation, as tests/test_crash.py names them.
TASK_POINTS = [p for p in ("vol_create.meta", "vol_delete.data", "vol_parent.child",
                           "vol_link.shared", "vol_rename.files", "img_rename.meta")
               if p in test_crash.DAEMON_POINTS]


@pytest.mark.parametrize("point", TASK_POINTS)
def test_spm_killed_inside_operation(cluster, storage, pool, point):
    """Host 2 is SPM when it dies (kill -9) inside an operation host 1 asked
    for; host 1 takes over and its journal replay finishes or rolls it back."""
    dom = create_domain(storage, pool)
    hosts = cluster.hosts(2)
    a = hosts[0].mount([storage])
    b = hosts[1].mount([storage], env={"OVSTORE_TEST_FAULT": f"{point}:crash"})
    assert spm_mount([a, b]) is a
    ta = ovs.Tree(a, [dom])
    sc = test_crash.scenario(point)
    sc.setup(ta)                    # done by host 1, the SPM: host 2's fault waits
    assert sc.state(ta) == "before"
    ovs.xset(os.path.join(a.path, pool), "spm", "release")
    assert spm_mount([a, b]) is b
    # asked on host 1, done by host 2, which dies at the fault point
    a.allow_stderr(r"did not answer|not answer .* in time")
    try:
        sc.op(ta)
    except OSError as e:
        # no answer (ETIMEDOUT), or the new SPM ran the request again after
        # its journal replay had finished it (docs/behaviour.md)
        assert e.errno in (errno.ETIMEDOUT, errno.EIO, errno.ENOENT, errno.EEXIST), \
            ovs.errname(e.errno)
    assert b.wait_exit(30) == -signal.SIGKILL, f"host 2 did not die at {point}"
    b.reap_dead()
    assert spm_mount([a]) is a
    # whole or nothing, on disk and through the tree; then the tree works
    outcome = sc.state(ta)
    ta.check(allow_leaks=True)
    test_crash.follow_up(ta)
    assert sc.state(ta) == outcome

"""The sanlock leases (CONTRACT "Cluster behaviour"), black-box: real sanlock
daemons, one per simulated host (cluster.py), real mounts with
`--lease sanlock --io-timeout 1`, domains created with `--io-timeout 1`.

What is checked: joining every domain's lockspace (the daemon's view and the
delta lease on disk), the SPM resource `SDM` (owner and lease version on disk,
POOL_SPM_LVER), volume leases taken by an open for write and given back by the
last close, EBUSY for a volume another host has open for write, the lease of a
killed daemon or a dead host becoming free, and a lost lockspace: the daemon
survives, gives up what it held there and keeps serving.
"""

import errno
import json
import mmap
import os
import subprocess
import time

import pytest

import ondisk
from cluster import IO_TIMEOUT, cluster, sanlock_daemons  # noqa: F401 (fixtures)
from test_block import create_ok as block_create_ok
from test_block import loops, lv_pv_offset, lvs, mdt, vgs  # noqa: F401 (loops: fixture)
from util import ovs

MiB = ovs.MiB
SECTOR = 512
LOST_LINE = r"this host lost its lease"


def create_domain(storage, pool):
    return ovs.Domain.create(storage, pool, "--io-timeout", str(IO_TIMEOUT))


def wait_for(fn, what, timeout=None):
    """fn()'s value once it is true; fails after the deadline."""
    deadline = time.monotonic() + (timeout or ovs.DEADLINE)
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def open_errno(path, flags):
    """errno of opening path, None when it opens (and is closed again)."""
    try:
        os.close(os.open(path, flags))
    except OSError as e:
        return e.errno
    return None


def pool_status(m):
    st = m.status()
    [p] = st["pools"]
    return st, p


def metadata(domain):
    kv, seal, _ = ondisk.read_domain_metadata(domain.path)
    assert seal == ondisk.seal(kv), "metadata seal broken"
    return kv


def write_sector(path, offset, data):
    """One O_DIRECT sector, as another writer on the storage would."""
    buf = mmap.mmap(-1, SECTOR)
    buf.write(data.ljust(SECTOR, b"\0"))
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        assert os.pwritev(fd, [buf], offset) == SECTOR
    finally:
        os.close(fd)


# ------------------------------------------------------------- one host

def test_file_domain_join_and_spm(cluster, storage, pool):
    dom = create_domain(storage, pool)
    [h] = cluster.hosts(1)
    m = h.mount([storage])
    st, p = pool_status(m)
    assert st["host_id"] == 1 and st["lease"] == "sanlock"
    assert p["is_spm"] is True and p["spm"] == 1
    ids = os.path.join(dom.path, "dom_md", "ids")
    leases = os.path.join(dom.path, "dom_md", "leases")

    # the daemon joined the lockspace at dom_md/ids:0 as host 1
    spaces, resources = h.daemon.status()
    assert spaces == [f"{dom.uuid}:1:{ids}:0"]
    # ...and holds SDM at 1 * align of dom_md/leases for our daemon's pid
    [(ls, name, path, off, lver, pid)] = resources
    assert (ls, name, path, off, pid) == (dom.uuid, "SDM", leases, MiB, m.proc.pid)

    # on disk: host 1's delta lease is ours and live
    delta = ondisk.read_leader(ids, 0)
    assert delta["magic"] == ondisk.DELTA_MAGIC and delta["checksum_ok"]
    assert delta["owner_id"] == 1 and delta["timestamp"] != 0
    assert delta["resource"] == h.daemon.name and delta["io_timeout"] == IO_TIMEOUT
    # the SDM resource is owned by host 1 at the version the daemon reports
    sdm = ondisk.read_leader(leases, MiB)
    assert sdm["magic"] == ondisk.PAXOS_MAGIC and sdm["resource"] == "SDM"
    assert sdm["owner_id"] == 1 and sdm["timestamp"] != 0 and sdm["lver"] == lver
    kv = metadata(dom)
    assert kv["POOL_SPM_ID"] == "1" and kv["POOL_SPM_LVER"] == str(lver)

    # a clean unmount gives SDM back and leaves the lockspace
    m.stop()
    assert ondisk.read_leader(leases, MiB)["timestamp"] == 0
    assert h.daemon.wait_lockspaces(set()) == set()
    assert h.daemon.status() == ([], [])
    assert wait_for(lambda: ondisk.read_leader(ids, 0)["timestamp"] == 0,
                    "host 1's delta lease to be freed")

    # the next start takes SDM at the next version and records it
    m.start()
    [(_, _, _, _, lver2, _)] = h.daemon.resources("SDM")
    assert lver2 == lver + 1
    assert metadata(dom)["POOL_SPM_LVER"] == str(lver2)
    assert pool_status(m)[1]["is_spm"] is True


def test_block_domain_join_and_spm(loops, cluster, pool):
    # loops first: its teardown (detach, lazy unmounts) must come after the mounts'
    devs = loops(1)
    sd = block_create_ok(pool, devs, "--io-timeout", str(IO_TIMEOUT))
    [h] = cluster.hosts(1)
    m = h.mount(devs)
    st, p = pool_status(m)
    assert st["lease"] == "sanlock" and p["is_spm"] is True and p["spm"] == 1

    # the lockspace where the `ids` LV starts on its PV, SDM at 1 MiB of `leases`
    all_lvs = lvs(devs)
    ids_dev, ids_off = lv_pv_offset(devs, all_lvs["ids"], 0)
    leases_dev, sdm_off = lv_pv_offset(devs, all_lvs["leases"], MiB)
    spaces, resources = h.daemon.status()
    assert spaces == [f"{sd}:1:{ids_dev}:{ids_off}"]
    [(ls, name, path, off, lver, pid)] = resources
    assert (ls, name, path, off, pid) == (sd, "SDM", leases_dev, sdm_off, m.proc.pid)
    delta = ondisk.read_leader(ids_dev, ids_off)
    assert delta["magic"] == ondisk.DELTA_MAGIC and delta["owner_id"] == 1
    assert delta["timestamp"] != 0 and delta["resource"] == h.daemon.name
    sdm = ondisk.read_leader(leases_dev, sdm_off)
    assert sdm["resource"] == "SDM" and sdm["owner_id"] == 1 and sdm["lver"] == lver
    [vg] = vgs(devs)
    kv = mdt(vg)
    assert kv["POOL_SPM_ID"] == "1" and kv["POOL_SPM_LVER"] == str(lver)

    # a volume's lease: slot (100 + MD_ slot) * align of `leases`
    dom = os.path.join(m.path, pool, sd)
    os.mkdir(os.path.join(dom, "img"))
    vol = ovs.create_volume(os.path.join(dom, "img", "vol"))
    os.truncate(vol, MiB)
    [slot] = [int(t[3:]) for t in lvs(devs)["vol"]["lv_tags"].split(",")
              if t.startswith("MD_")]
    vol_dev, vol_off = lv_pv_offset(devs, lvs(devs)["leases"], (100 + slot) * MiB)
    fd = os.open(vol, os.O_RDWR)
    try:
        [(_, _, path, off, _, pid)] = h.daemon.resources("vol")
        assert (path, off, pid) == (vol_dev, vol_off, m.proc.pid)
        assert ondisk.read_leader(vol_dev, vol_off)["owner_id"] == 1
        os.pwrite(fd, b"x" * 4096, 0)
    finally:
        os.close(fd)
    wait_for(lambda: not h.daemon.resources("vol"), "the volume lease to be given back")
    assert ondisk.read_leader(vol_dev, vol_off)["timestamp"] == 0


def test_mount_without_daemon_one_line(sanlock_daemons, domain, workdir):
    """A run directory whose daemon died: the socket is there, nobody answers."""
    [d] = sanlock_daemons(1)
    d.kill()
    assert os.path.exists(os.path.join(d.run_dir, "sanlock.sock"))
    mp = workdir / "mp"
    mp.mkdir()
    r = ovs.ovstore("mount", "-f", "--lease", "sanlock", "--storage", domain.storage, mp,
                    env=d.env, timeout=ovs.DEADLINE)
    line = ovs.assert_one_line_error(r, "sanlock daemon gone")
    assert "no sanlock daemon answers" in line and d.run_dir in line
    assert not ovs.is_mounted(mp)


def test_volume_lease_follows_write_handles(cluster, storage, pool):
    dom = create_domain(storage, pool)
    [h] = cluster.hosts(1)
    m = h.mount([storage])
    t = ovs.Tree(m, [dom])
    t.mkimg("img")
    vol = t.raw("img", "vol", size=MiB)
    lease = dom.images("img", "vol.lease")
    wait_for(lambda: not h.daemon.resources("vol"), "the lease of the create to go")

    # reading takes no lease
    with open(vol, "rb") as f:
        f.read(512)
        assert h.daemon.resources("vol") == []
    # the first write handle takes it, the second shares it
    a = os.open(vol, os.O_RDWR)
    b = os.open(vol, os.O_WRONLY)
    try:
        [(ls, _, path, off, _, pid)] = h.daemon.resources("vol")
        assert (ls, path, off, pid) == (dom.uuid, lease, 0, m.proc.pid)
        leader = ondisk.read_leader(lease, 0)
        assert leader["owner_id"] == 1 and leader["timestamp"] != 0
        os.close(a)
        a = None
        time.sleep(0.5)  # the kernel's RELEASE of a comes after close returns
        assert len(h.daemon.resources("vol")) == 1, "released while b is open"
        os.pwrite(b, b"y" * 512, 0)
    finally:
        if a is not None:
            os.close(a)
        os.close(b)
    # the last close gives it back, on disk too
    wait_for(lambda: not h.daemon.resources("vol"), "the volume lease to be given back")
    assert ondisk.read_leader(lease, 0)["timestamp"] == 0
    # SDM stays
    assert len(h.daemon.resources("SDM")) == 1
    t.check()


# ----------------------------------------------------------- two hosts

def test_two_hosts_volume_lease_ebusy(cluster, storage, pool):
    dom = create_domain(storage, pool)
    h1, h2 = cluster.hosts(2)
    m1 = h1.mount([storage])
    t1 = ovs.Tree(m1, [dom])
    t1.mkimg("img")
    t1.raw("img", "vol", size=MiB, data=b"one" * 100)
    m2 = h2.mount([storage])
    t2 = ovs.Tree(m2, [dom])
    v1, v2 = t1.vol("img", "vol"), t2.vol("img", "vol")

    # both hosts joined; host 1 is SPM, host 2 is not (yet: no election here)
    assert h1.daemon.lockspaces() == [dom.uuid] and h2.daemon.lockspaces() == [dom.uuid]
    s1, p1 = pool_status(m1)
    s2, p2 = pool_status(m2)
    assert (s1["host_id"], p1["is_spm"], p1["spm"]) == (1, True, 1)
    assert (s2["host_id"], p2["is_spm"]) == (2, False)
    assert h2.daemon.resources() == []
    delta2 = ondisk.read_leader(os.path.join(dom.path, "dom_md", "ids"), SECTOR)
    assert delta2["owner_id"] == 2 and delta2["resource"] == h2.daemon.name

    fd = os.open(v1, os.O_RDWR)
    try:
        wait_for(lambda: h1.daemon.resources("vol"), "host 1's volume lease")
        # CONTRACT: open for write on one host -> EBUSY on another
        assert open_errno(v2, os.O_RDWR) == errno.EBUSY
        assert open_errno(v2, os.O_WRONLY) == errno.EBUSY
        assert h2.daemon.resources("vol") == []
        # reading is fine
        assert ovs.read_at(v2, 0, 3) == b"one"
    finally:
        os.close(fd)
    # once host 1 closed (its RELEASE is asynchronous), host 2 can
    wait_for(lambda: open_errno(v2, os.O_RDWR) is None, "host 2 to open for write")
    fd = os.open(v2, os.O_RDWR)
    try:
        assert len(h2.daemon.resources("vol")) == 1
        assert open_errno(v1, os.O_RDWR) == errno.EBUSY
    finally:
        os.close(fd)
    wait_for(lambda: not h2.daemon.resources("vol"), "host 2's lease to be given back")
    assert open_errno(v1, os.O_RDWR) is None
    t1.check()


def test_killed_daemon_lease_is_free_at_once(cluster, storage, pool):
    dom = create_domain(storage, pool)
    h1, h2 = cluster.hosts(2)
    m1 = h1.mount([storage])
    t1 = ovs.Tree(m1, [dom])
    t1.mkimg("img")
    t1.raw("img", "vol", size=MiB)
    m2 = h2.mount([storage])
    v1 = t1.vol("img", "vol")
    v2 = os.path.join(m2.path, pool, dom.uuid, "img", "vol")
    fd = os.open(v1, os.O_RDWR)
    try:
        wait_for(lambda: h1.daemon.resources("vol"), "host 1's volume lease")
        assert open_errno(v2, os.O_RDWR) == errno.EBUSY
        # host 1's sanlock daemon lives on: it releases what the dead client held
        m1.kill9()
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    # sanlock releases them as soon as it sees the client gone (its socket
    # closed), asynchronously: well before host 1's id could be found dead
    # (8 io_timeouts + 60 s), which is what this bound tells apart
    wait_for(lambda: h1.daemon.resources() == [], "host 1's sanlock to release the dead "
             "client's leases", timeout=8 * IO_TIMEOUT)
    assert open_errno(v2, os.O_RDWR) is None


def test_dead_host_lease_is_free_after_host_dead_seconds(cluster, storage, pool):
    """Host 1 dies whole (its sanlock daemon first): its lease stays valid until
    its host id is dead (8 io_timeouts + sanlock's 60 s watchdog time); then
    host 2 opens the volume and becomes SPM."""
    dom = create_domain(storage, pool)
    h1, h2 = cluster.hosts(2)
    m1 = h1.mount([storage])
    m1.allow_stderr(LOST_LINE)  # its sanlock daemon goes first
    t1 = ovs.Tree(m1, [dom])
    t1.mkimg("img")
    t1.raw("img", "vol", size=MiB)
    m2 = h2.mount([storage])
    v2 = os.path.join(m2.path, pool, dom.uuid, "img", "vol")
    fd = os.open(t1.vol("img", "vol"), os.O_RDWR)
    try:
        wait_for(lambda: h1.daemon.resources("vol"), "host 1's volume lease")
        h1.daemon.kill()
        m1.kill9()
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    assert ondisk.read_leader(dom.images("img", "vol.lease"), 0)["owner_id"] == 1
    assert open_errno(v2, os.O_RDWR) == errno.EBUSY
    # then free, without host 1 ever coming back
    wait_for(lambda: open_errno(v2, os.O_RDWR) is None, "host 1's lease to expire",
             timeout=8 * IO_TIMEOUT + 60 + ovs.DEADLINE)
    fd = os.open(v2, os.O_RDWR)
    try:
        assert ondisk.read_leader(dom.images("img", "vol.lease"), 0)["owner_id"] == 2
    finally:
        os.close(fd)
    # host 1 was SPM: host 2 takes the role once SDM is free too (it asks
    # sanlock every 5 s while the lease looks held), and metadata works
    wait_for(lambda: pool_status(m2)[1]["is_spm"], "host 2 to become SPM",
             timeout=ovs.DEADLINE)
    kv = metadata(dom)
    assert kv["POOL_SPM_ID"] == "2"
    os.mkdir(os.path.join(m2.path, pool, dom.uuid, "after-loss"))
    assert os.path.isdir(dom.images("after-loss"))


# ------------------------------------------------------------ lease loss

def test_lost_lockspace_daemon_survives(cluster, storage, pool):
    """Host 1's delta lease is overwritten (as a broken or fenced storage
    would make renewals fail): sanlock ends the lockspace and runs our
    killpath; the daemon gives up SDM and the volume lease and keeps serving."""
    dom = create_domain(storage, pool)
    [h] = cluster.hosts(1)
    m = h.mount([storage])
    m.allow_stderr(LOST_LINE)
    t = ovs.Tree(m, [dom])
    t.mkimg("img")
    vol = t.raw("img", "vol", size=MiB, data=b"kept" * 128)
    fd = os.open(vol, os.O_RDWR)
    try:
        wait_for(lambda: h.daemon.resources("vol"), "the volume lease")
        assert len(h.daemon.resources("SDM")) == 1
        write_sector(os.path.join(dom.path, "dom_md", "ids"), 0, b"\0")

        wait_for(lambda: LOST_LINE in m.stderr(), "the daemon to report the loss")
        assert m.alive()
        # everything this host held there is given up...
        wait_for(lambda: h.daemon.status() == ([], []), "the daemon to drop the lockspace")
        # ...the pool is no longer ours, and the tree is still served
        assert pool_status(m)[1]["is_spm"] is False
        assert ovs.read_at(vol, 0, 4) == b"kept"
        assert sorted(os.listdir(t.img("img"))) == ["vol"]
    finally:
        os.close(fd)
    assert m.alive()
    [line] = [l for l in m.stderr().splitlines() if LOST_LINE in l]
    assert dom.uuid in line


def test_daemonized_mount_keeps_its_leases(sanlock_daemons, storage, pool, workdir):
    """Without -f the daemon forks after it took SDM: the leases stay with the
    child, volume leases follow its handles, and a lost lockspace reaches the
    child (its killpath is pointed at the new pid) instead of killing it."""
    dom = create_domain(storage, pool)
    [d] = sanlock_daemons(1)
    mp = workdir / "bg"
    mp.mkdir()
    r = ovs.ovstore("mount", "--lease", "sanlock", "--io-timeout", str(IO_TIMEOUT),
                    "--storage", storage, mp, env=d.env, timeout=ovs.DEADLINE)
    assert r.returncode == 0, r.stderr
    try:
        assert ovs.is_mounted(mp)
        [pid] = ovs.pids_with_arg(os.fspath(mp))
        assert len(d.resources("SDM")) == 1
        vdir = os.path.join(mp, pool, dom.uuid, "img")
        os.mkdir(vdir)
        vol = ovs.create_volume(os.path.join(vdir, "vol"))
        wait_for(lambda: not d.resources("vol"), "the lease of the create to go")
        fd = os.open(vol, os.O_RDWR)
        try:
            assert len(d.resources("vol")) == 1
        finally:
            os.close(fd)
        wait_for(lambda: not d.resources("vol"), "the volume lease to be given back")

        write_sector(os.path.join(dom.path, "dom_md", "ids"), 0, b"\0")
        wait_for(lambda: d.status() == ([], []), "the daemon to drop the lockspace")
        assert os.path.exists(f"/proc/{pid}") and ovs.is_mounted(mp)
        st = json.loads(ovs.ovstore("status", mp, "--json").stdout)
        assert st["pools"][0]["is_spm"] is False
        assert os.listdir(vdir) == ["vol"]
    finally:
        u = subprocess.run(["umount", os.fspath(mp)], capture_output=True, text=True)
    assert u.returncode == 0, u.stderr
    assert ovs.wait_pids_gone([pid])
